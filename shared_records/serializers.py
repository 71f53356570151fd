"""JSON shapes of shared records as the policy lets a given user see them.

Fields hidden by the policy are left out, never sent as null.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from partners.models import Organization, User
from shared_records.models import Activity, CaseShare, Contact, Customer, TimelineEntry
from shared_records.policy import CaseListView, CaseView, claim_expires_at
from shared_records.service import claim_idle


def organization_json(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "slug": org.slug, "kind": org.kind}


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "locale": user.locale,
        "organization": organization_json(user.organization),
    }


def case_json(view: CaseView | CaseListView, idle: dt.timedelta | None = None) -> dict[str, Any]:
    """A case as the API shows it; lists pass the claim `idle` time, read once per page."""
    case = view.case
    return {
        "id": case.id,
        "number": case.number,
        "customer_id": case.customer_id,
        "subject": case.subject,
        "description": case.description,
        "kind": case.kind,
        "status": case.status,
        "priority": case.priority,
        "owner_organization_id": case.owner_organization_id,
        "handling_organization_id": case.handling_organization_id,
        "handling_user_id": case.handling_user_id,
        "claimed_at": case.claimed_at.isoformat() if case.claimed_at else None,
        "claim_expires_at": _iso(claim_expires_at(case, idle or claim_idle())),
        "version": case.version,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "last_activity_at": case.last_activity_at.isoformat(),
        "access": view.access.label,
        "visibility_reason": [reason.as_dict() for reason in view.reasons],
    }


def _contact_json(contact: Contact, details: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": contact.id,
        "name": contact.name,
        "position_title": contact.position_title,
    }
    if details:
        data["emails"] = [e.email for e in contact.emails]
        data["phones"] = [p.e164 for p in contact.phones]
    return data


def customer_json(customer: Customer, contact_details: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": customer.id,
        "name": customer.name,
        "kind": customer.kind,
    }
    if contact_details:
        data["emails"] = [e.email for e in customer.emails]
        data["phones"] = [p.e164 for p in customer.phones]
        data["street"] = customer.street
        data["postal_code"] = customer.postal_code
    data["city"] = customer.city
    data["country"] = customer.country
    data["owner_organization_id"] = customer.owner_organization_id
    data["contact_details_visible"] = contact_details
    data["version"] = customer.version
    data["contacts"] = [_contact_json(c, contact_details) for c in customer.contacts]
    return data


def entry_json(entry: TimelineEntry) -> dict[str, Any]:
    audience: Any = entry.audience
    if entry.audience == "organizations":
        audience = sorted(a.organization_id for a in entry.audience_organizations)
    data: dict[str, Any] = {
        "id": entry.id,
        "kind": entry.kind,
        "channel": entry.channel,
        "direction": entry.direction,
        "body": entry.body,
        "audience": audience,
        "author_user_id": entry.author_user_id,
        "organization_id": entry.organization_id,
        "created_at": entry.created_at.isoformat(),
        "case_id": entry.case_id,
    }
    if entry.duration_seconds is not None:
        data["duration_seconds"] = entry.duration_seconds
    if entry.kind == "change" or entry.field:
        data["field"] = entry.field
        data["old_value"] = entry.old_value
        data["new_value"] = entry.new_value
    return data


def share_json(share: CaseShare) -> dict[str, Any]:
    return {
        "organization_id": share.organization_id,
        "organization_name": share.organization.name,
        "access": share.access,
        "include_contact_details": share.include_contact_details,
        "shared_by_user_id": share.shared_by_user_id,
        "created_at": share.created_at.isoformat(),
        "updated_at": share.updated_at.isoformat(),
    }


def activity_json(activity: Activity) -> dict[str, Any]:
    return {
        "id": activity.id,
        "type": activity.type,
        "case_id": activity.case_id,
        "organization_id": activity.organization_id,
        "actor_user_id": activity.actor_user_id,
        "at": activity.at.isoformat(),
        "summary": activity.summary,
        "data": json.loads(activity.data or "{}"),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
