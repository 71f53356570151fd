"""The audit log of identity events (sign-ins, tokens, clients, identity settings).

`record` adds an event to the caller's transaction; `record_now` commits it on its own, for
events that must survive a refused request (a failed sign-in)."""

from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy.orm import Session

from auth.models import AuthEvent
from partners.models import User


def _client() -> tuple[str | None, str | None]:
    if not has_request_context():
        return None, "cli"
    return request.remote_addr, (request.user_agent.string or "")[:300]


def record(
    session: Session,
    kind: str,
    *,
    user: User | None = None,
    organization_id: int | None = None,
    actor: User | None = None,
    method: str | None = None,
    success: bool = True,
    email: str | None = None,
    detail: str = "",
) -> AuthEvent:
    ip, agent = _client()
    event = AuthEvent(
        organization_id=organization_id
        if organization_id is not None
        else (user.organization_id if user is not None else None),
        user_id=user.id if user is not None else None,
        actor_user_id=actor.id if actor is not None else None,
        kind=kind,
        method=method,
        success=success,
        email=(email or (user.email if user is not None else None)),
        ip=ip,
        user_agent=agent,
        detail=detail[:2000],
    )
    session.add(event)
    return event


def record_now(session: Session, kind: str, **kwargs: object) -> None:
    """Record and commit in a separate transaction (the caller's is rolled back or empty)."""
    record(session, kind, **kwargs)  # type: ignore[arg-type]
    session.commit()
