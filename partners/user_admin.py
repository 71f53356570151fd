"""User administration from the organisation admin page: the admin check and creating a user
of the admin's own organisation in one committed step (partners.service.create_user leaves
the commit to its caller)."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from partners import service
from partners.models import User
from portal.enums import UserRole
from portal.errors import Forbidden


def is_admin(actor: User) -> bool:
    return bool(actor.is_active and actor.role == UserRole.ADMIN)


def require_admin(actor: User) -> None:
    """Raise Forbidden unless the actor administers its organisation."""
    if not is_admin(actor):
        raise Forbidden(_("Only admins manage users."))


def add_user(
    session: Session,
    admin: User,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    argon2_profile: str,
) -> User:
    """Create a user in the admin's organisation with an initial password and commit.

    Raises Forbidden (not an admin), ValidationFailed (field messages) or Conflict (email
    taken).
    """
    require_admin(admin)
    try:
        user = service.create_user(
            session,
            admin.organization,
            email=email,
            name=name,
            role=role,
            password=password,
            argon2_profile=argon2_profile,
        )
    except Exception:
        session.rollback()
        raise
    session.commit()
    return user
