"""Telephony (CTI): events from an organisation's telephone system, the screen pop they
cause and the logging of a finished call.

A telephone system (an API client with scope `cti`, acting as its organisation's service
user) reports `ringing`, `answered` and `ended` for a call and names the agent by email or
extension. The caller is identified through the policy *as the agent*: only numbers whose
owner's contact details the agent may see can match. The screen pop goes to the agent's
own sessions (Socket.IO room `user:<id>`) after the call row is committed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from partners.models import User
from portal.db import utcnow
from portal.enums import AudienceKind, Channel, Direction, UserRole
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared_records import policy, service
from shared_records.cti_schemas import CallLog, CtiEvent
from shared_records.events import ActivityType
from shared_records.models import Call, Case, TimelineEntry
from shared_records.normalize import InvalidValue, format_phone, normalize_caller
from shared_records.schemas import CaseCreate, EntryCreate

CallEvent = Literal["ringing", "answered", "ended"]


@dataclass(frozen=True)
class CallerMatch:
    customer_id: int
    name: str
    contact_ids: tuple[int, ...]
    open_case_ids: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "name": self.name,
            "contact_ids": list(self.contact_ids),
            "open_case_ids": list(self.open_case_ids),
        }


@dataclass
class CallOutcome:
    call: Call
    matches: list[CallerMatch] = field(default_factory=list)
    # Who gets a screen pop or a call update after the commit.
    pop_to: int | None = None
    update_to: int | None = None

    def as_json(self) -> dict[str, Any]:
        return call_json(self.call, self.matches)


def call_json(call: Call, matches: list[CallerMatch]) -> dict[str, Any]:
    return {
        "id": call.id,
        "call_id": call.call_id,
        "number": call.number,
        "number_display": format_phone(call.number),
        "state": call.state,
        "agent_user_id": call.agent_user_id,
        "ringing_at": _iso(call.ringing_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "logged_entry_id": call.logged_entry_id,
        "matches": [m.as_json() for m in matches],
    }


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- identifying agent and caller --------------------------------------------------------


def _agent_query(condition: sa.ColumnElement[bool]) -> sa.Select[User]:
    return sa.select(User).where(
        User.organization_id == sa.bindparam("organization_id"),
        User.kind == "person",
        User.active.is_(True),
        condition,
    )


# Built once: each call event resolves its agent, and building (and keying) the statement
# cost more CPU than the lookup itself.
_AGENT_BY_EMAIL = _agent_query(sa.func.lower(User.email) == sa.bindparam("agent"))
_AGENT_BY_EXTENSION = _agent_query(User.phone_extension == sa.bindparam("agent"))


def resolve_agent(session: Session, organization_id: int, agent: str) -> User:
    """The active person of the organisation named by email or by extension."""
    text = agent.strip()
    by_email = "@" in text
    user = session.scalars(
        _AGENT_BY_EMAIL if by_email else _AGENT_BY_EXTENSION,
        {"organization_id": organization_id, "agent": text.lower() if by_email else text},
    ).first()
    if user is None:
        raise ValidationFailed(
            _("Unknown agent or extension."),
            code="unknown_agent",
            fields={"agent": _("No active user of this organisation has this email or extension.")},
        )
    return user


def match_caller(session: Session, agent: User, e164: str) -> list[CallerMatch]:
    """Customers with this number that the agent may see, each with its open cases."""
    stmt, params = policy.caller_lookup(agent, e164)  # built once, at most 50 rows
    rows = session.execute(stmt, params).all()
    contacts: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for customer_id, name, contact_id in rows:
        names[customer_id] = name
        bucket = contacts.setdefault(customer_id, [])
        if contact_id is not None and contact_id not in bucket:
            bucket.append(contact_id)
    if not names:
        return []
    open_cases: dict[int, list[int]] = {}
    stmt_cases, params_cases = policy.open_case_ids_lookup(agent, list(names))
    case_rows = session.execute(stmt_cases, params_cases).all()
    for case_id, customer_id in case_rows:
        open_cases.setdefault(customer_id, []).append(case_id)
    return [
        CallerMatch(cid, names[cid], tuple(contacts[cid]), tuple(open_cases.get(cid, ())))
        for cid in names
    ]


# --- events ------------------------------------------------------------------------------


def _caller_number(raw: str, system: User) -> str:
    org = system.organization
    try:
        return normalize_caller(raw, org.phone_region, org.outside_line_prefix)
    except InvalidValue:
        raise ValidationFailed(
            _("The caller number is not a valid phone number."),
            code="invalid_number",
            fields={"from": _("Not a valid phone number: %(value)s", value=raw)},
        ) from None


def _stored_matches(call: Call) -> list[int]:
    try:
        ids = json.loads(call.matches)
    except ValueError:
        return []
    return [i for i in ids if isinstance(i, int)]


def handle_event(session: Session, system: User, event: CtiEvent) -> CallOutcome:
    """Record one telephone-system event; raises 4xx errors before anything is written."""
    if system.kind != "service":
        raise Forbidden(
            _("Call events come from the organisation's telephone system (an API client)."),
            code="not_a_telephone_system",
        )
    number = _caller_number(event.from_, system)
    agent = resolve_agent(session, system.organization_id, event.agent)
    at = event.at or utcnow()
    matches: list[CallerMatch] | None = None
    if event.event == "ringing":
        # The screen pop's path: a new call is one INSERT (no lookup first); a call id seen
        # before takes the general path below.
        matches = match_caller(session, agent, number)
        fresh_call = _insert_ringing(session, system, agent, event, number, at, matches)
        if fresh_call is not None:
            outcome = CallOutcome(call=fresh_call, matches=matches, pop_to=agent.id)
            _commit_call_event(session, ringing=True, switched=True)
            return outcome
    call = session.scalars(
        sa.select(Call)
        .where(Call.organization_id == system.organization_id, Call.call_id == event.call_id)
        .with_for_update(of=Call)
    ).first()
    if call is not None and call.number != number:
        raise Conflict(
            _("This call id belongs to a call from another number."), code="call_id_reused"
        )
    if call is None:
        call = Call(
            organization_id=system.organization_id,
            call_id=event.call_id,
            agent_user_id=agent.id,
            number=number,
            dialed=event.to,
            state="ringing",
            ringing_at=at,
            matches="[]",
        )
        session.add(call)
        fresh = True
    else:
        fresh = False
        if call.state == "ended" and event.event != "ended":
            raise Conflict(_("This call has already ended."), code="call_ended")
    outcome = CallOutcome(call=call)
    agent_changed = call.agent_user_id != agent.id
    if event.event == "ringing" or fresh or agent_changed:
        # A pop for a new call, and again when the call moved to another agent.
        outcome.matches = matches if matches is not None else match_caller(session, agent, number)
        call.matches = json.dumps([m.customer_id for m in outcome.matches])
        call.agent_user_id = agent.id
        outcome.pop_to = agent.id
    else:
        outcome.matches = _matches_for(session, agent, call)
    if event.event == "answered" and call.answered_at is None:
        call.answered_at = at
        call.state = "answered"
    elif event.event == "ended" and call.ended_at is None:
        call.ended_at = at
        call.state = "ended"
        start = call.answered_at
        call.duration_seconds = (
            max(0, round((at - start).total_seconds())) if start is not None else 0
        )
    if event.event != "ringing":
        outcome.update_to = agent.id
    try:
        _commit_call_event(session, ringing=event.event == "ringing")
    except IntegrityError:
        # Two events of a new call at once: the other one created it; this one retries.
        session.rollback()
        return handle_event(session, system, event)
    return outcome


# INSERT ... ON CONFLICT (organization_id, call_id) DO NOTHING RETURNING id, built once per
# dialect (the values are parameters). On PostgreSQL the same round trip switches the
# transaction to an asynchronous commit (see _commit_call_event): set_config(..., true) is
# SET LOCAL as a function.
_RINGING_INSERT = {
    "postgresql": postgresql.insert(Call)
    .on_conflict_do_nothing(index_elements=[Call.organization_id, Call.call_id])
    .returning(Call.id, sa.func.set_config("synchronous_commit", "off", True)),
    "sqlite": sqlite.insert(Call)
    .on_conflict_do_nothing(index_elements=[Call.organization_id, Call.call_id])
    .returning(Call.id),
}


def _insert_ringing(
    session: Session,
    system: User,
    agent: User,
    event: CtiEvent,
    number: str,
    at: dt.datetime,
    matches: list[CallerMatch],
) -> Call | None:
    """Insert the call of a `ringing` event unless its call id is known (then None): one
    statement instead of a locking lookup and the ORM's INSERT. The row, created under this
    transaction, joins the session as a persistent object without being read back."""
    values = {
        "organization_id": system.organization_id,
        "call_id": event.call_id,
        "agent_user_id": agent.id,
        "number": number,
        "dialed": event.to,
        "state": "ringing",
        "ringing_at": at,
        "matches": json.dumps([m.customer_id for m in matches]),
        "created_at": utcnow(),
    }
    stmt = _RINGING_INSERT["postgresql" if _on_postgresql(session) else "sqlite"]
    # A plain Core execution: the ORM would turn the RETURNING into an object load.
    call_pk = session.connection().execute(stmt, values).scalar()
    if call_pk is None:
        return None
    call = Call(
        id=call_pk,
        answered_at=None,
        ended_at=None,
        duration_seconds=None,
        logged_entry_id=None,
        **values,
    )
    make_transient_to_detached(call)
    session.add(call)
    return call


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _commit_call_event(session: Session, *, ringing: bool, switched: bool = False) -> None:
    """Commit; a `ringing` event without waiting for the WAL flush on PostgreSQL
    (`synchronous_commit = off` for this transaction only): the fsync was the largest single
    wait before the screen pop, which leaves after the commit.

    Why that is acceptable: only a crash of the database server (or its machine) can lose
    such a commit, and only those of its last few hundred milliseconds (3 x wal_writer_delay
    at most); nothing is corrupted or reordered, and a crash of the application loses
    nothing. A lost ringing row costs nothing lasting: the pop has been shown, and the
    telephone system's next event of the call (answered, ended) records the call afresh.
    Those later events, which have no next one to repair them, commit synchronously.

    `switched`: the transaction already said so (the INSERT of a ringing call does)."""
    if ringing and not switched and _on_postgresql(session):
        session.execute(sa.text("SET LOCAL synchronous_commit = off"))
    session.commit()


def _matches_for(session: Session, agent: User, call: Call) -> list[CallerMatch]:
    """The matches shown when the call rang, as the agent may see them now."""
    from shared_records.merge import final_survivor_id

    shown = set(_stored_matches(call))
    # A customer merged since the call rang lives on in its survivor.
    shown |= {final_survivor_id(session, i) or i for i in shown}
    return [m for m in match_caller(session, agent, call.number) if m.customer_id in shown]


# --- the agent's side --------------------------------------------------------------------


def get_call(session: Session, actor: User, call_pk: int) -> Call:
    call = session.scalars(policy.visible_calls(actor).where(Call.id == call_pk)).first()
    if call is None:
        raise NotFound(_("Call not found."))
    return call


def matches_of(session: Session, actor: User, call: Call) -> list[CallerMatch]:
    return _matches_for(session, actor, call)


def recent_calls(session: Session, actor: User, limit: int = 10) -> list[Call]:
    return list(session.scalars(policy.visible_calls(actor).order_by(Call.id.desc()).limit(limit)))


def logged_case(session: Session, actor: User, call: Call) -> Case | None:
    """The case the call was logged on, if the actor (still) sees it."""
    if call.logged_entry_id is None:
        return None
    entry = session.get(TimelineEntry, call.logged_entry_id)
    if entry is None:
        return None
    try:
        return policy.get_visible_case(session, actor, entry.case_id).case
    except NotFound:
        return None


def remember_match(session: Session, call: Call, customer_id: int) -> None:
    """The caller, unknown when the call rang, was just created as this customer: the call
    now shows it."""
    call.matches = json.dumps([customer_id])
    session.commit()


def format_duration(seconds: int | None) -> str:
    total = seconds or 0
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def log_call(session: Session, actor: User, call_pk: int, data: CallLog) -> TimelineEntry:
    """Log the agent's call as a phone interaction on a case (an existing one or a new one
    for the caller), in one transaction."""
    if actor.role == UserRole.VIEWER:
        raise Forbidden(_("Viewers cannot create or change records."))
    call = session.scalars(
        policy.visible_calls(actor).where(Call.id == call_pk).with_for_update(of=Call)
    ).first()
    if call is None:
        raise NotFound(_("Call not found."))
    if call.logged_entry_id is not None:
        raise Conflict(
            _("This call is already logged."),
            code="already_logged",
            extra={"entry_id": call.logged_entry_id},
        )
    if data.case_id is not None:
        case_id = data.case_id
    else:
        assert data.new_case is not None
        view = service.create_case(
            session,
            actor,
            CaseCreate.model_validate(
                {"customer_id": data.new_case.customer_id, "subject": data.new_case.subject}
            ),
            commit=False,
        )
        case_id = view.case.id
    duration = call.duration_seconds
    summary = _("Phone call with %(number)s", number=format_phone(call.number))
    if duration is not None:
        summary += " (" + format_duration(duration) + ")"
    body = summary + ("\n\n" + data.note if data.note else "")
    entry = service.add_entry(
        session,
        actor,
        case_id,
        EntryCreate.model_validate(
            {
                "kind": "interaction",
                "channel": Channel.PHONE,
                "direction": Direction.IN,
                "body": body,
                "audience": data.audience or AudienceKind.SHARED.value,
            }
        ),
        duration_seconds=duration,
        activity=ActivityType.CALL_LOGGED,
        commit=False,
    )
    call.logged_entry_id = entry.id
    session.commit()
    return entry
