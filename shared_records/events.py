"""Activity types and the one place that builds each activity's summary and details.

Summaries never carry contact details (phones, emails, street), so an activity is safe to show
to every organisation that may see its case."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from partners.models import User
from shared_records.models import Activity, Case, TimelineEntry


class ActivityType(StrEnum):
    CASE_CREATED = "case.created"
    CASE_UPDATED = "case.updated"
    CASE_SHARED = "case.shared"
    CASE_UNSHARED = "case.unshared"
    CASE_CLAIMED = "case.claimed"
    CASE_RELEASED = "case.released"
    CASE_HANDED_OVER = "case.handed_over"
    TIMELINE_ADDED = "timeline.added"
    CALL_LOGGED = "call.logged"
    CUSTOMER_MERGED = "customer.merged"


def build(
    type_: ActivityType,
    case: Case,
    actor: User,
    at: Any,
    *,
    entry: TimelineEntry | None = None,
    details: dict[str, Any] | None = None,
) -> Activity:
    data = dict(details or {})
    data.setdefault("case_number", case.number)
    return Activity(
        type=type_.value,
        case_id=case.id,
        entry_id=entry.id if entry is not None else None,
        organization_id=actor.organization_id,
        actor_user_id=actor.id,
        at=at,
        summary=_summary(type_, case, actor, data)[:300],
        data=json.dumps(data, ensure_ascii=False, sort_keys=True),
    )


def _summary(type_: ActivityType, case: Case, actor: User, data: dict[str, Any]) -> str:
    who = actor.name
    number = case.number
    if type_ is ActivityType.CASE_CREATED:
        return f"{who} opened {number}: {case.subject}"
    if type_ is ActivityType.CASE_UPDATED:
        fields = ", ".join(sorted(data.get("fields", {})))
        return f"{who} changed {fields} of {number}"
    if type_ is ActivityType.CASE_SHARED:
        return f"{who} shared {number} with {data.get('organization_name', '')}"
    if type_ is ActivityType.CASE_UNSHARED:
        return f"{who} stopped sharing {number} with {data.get('organization_name', '')}"
    if type_ is ActivityType.CASE_CLAIMED:
        return f"{who} ({actor.organization.name}) is handling {number}"
    if type_ is ActivityType.CASE_RELEASED:
        return f"{who} released {number}"
    if type_ is ActivityType.CASE_HANDED_OVER:
        return f"{who} handed {number} over to {data.get('to', '')}"
    if type_ is ActivityType.CALL_LOGGED:
        return f"{who} logged a call on {number}"
    if type_ is ActivityType.CUSTOMER_MERGED:
        merged, survivor = data.get("merged_name", ""), data.get("survivor_name", "")
        return f"{who} merged customer {merged} into {survivor} ({number})"
    kind = data.get("kind", "note")
    article = "an" if str(kind)[:1] in "aeiou" else "a"
    return f"{who} added {article} {kind} to {number}"
