"""Typed models of the partners domain: organisations, partnerships and users."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, created_at_col, intpk
from portal.enums import OrganizationKind, PartnerRole, UserRole


class Organization(Base):
    """A tenant: manufacturer, dealer, supplier or agency."""

    __tablename__ = "organizations"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(sa.String(200))
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    phone_region: Mapped[str] = mapped_column(sa.String(2), default="DE")
    # Digits the organisation's telephone system puts before every outside caller's number
    # (often "0"); stripped before the number is normalised.
    outside_line_prefix: Mapped[str | None] = mapped_column(sa.String(5))
    active: Mapped[bool] = mapped_column(default=True)
    # Local accounts of this organisation must use a TOTP second factor.
    require_totp: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[created_at_col]

    users: Mapped[list[User]] = relationship(back_populates="organization")

    __table_args__ = (
        sa.CheckConstraint(sa.column("kind").in_([k.value for k in OrganizationKind]), name="kind"),
    )


class Partnership(Base):
    """A manufacturer and one partner: together with the manufacturer's other partnerships
    this forms the manufacturer's value chain."""

    __tablename__ = "partnerships"

    id: Mapped[intpk]
    manufacturer_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[created_at_col]

    manufacturer: Mapped[Organization] = relationship(foreign_keys=[manufacturer_id])
    partner: Mapped[Organization] = relationship(foreign_keys=[partner_id])

    __table_args__ = (
        sa.UniqueConstraint("manufacturer_id", "partner_id"),
        sa.CheckConstraint(sa.column("role").in_([r.value for r in PartnerRole]), name="role"),
        sa.CheckConstraint("manufacturer_id <> partner_id", name="not_self"),
    )


class User(Base):
    """Someone who acts in the portal; belongs to exactly one organisation.

    `kind` is `person` for people (password and/or single sign-on) or `service` for the
    account an API client acts as (never signs in interactively).
    """

    __tablename__ = "users"

    id: Mapped[intpk]
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[str] = mapped_column(sa.String(10), default="person", server_default="person")
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    password_changed_at: Mapped[dt.datetime | None]
    totp_secret_encrypted: Mapped[str | None] = mapped_column(sa.String(255))
    totp_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    locale: Mapped[str | None] = mapped_column(sa.String(10))
    # The user's extension on the organisation's telephone system (for screen pops).
    phone_extension: Mapped[str | None] = mapped_column(sa.String(20))
    created_at: Mapped[created_at_col]
    deactivated_at: Mapped[dt.datetime | None]

    organization: Mapped[Organization] = relationship(back_populates="users", lazy="joined")

    __table_args__ = (
        sa.CheckConstraint(sa.column("role").in_([r.value for r in UserRole]), name="role"),
        sa.CheckConstraint(sa.column("kind").in_(["person", "service"]), name="kind"),
        sa.UniqueConstraint("organization_id", "phone_extension"),
    )

    # Flask-Login protocol: the login manager asks these of the current user.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active and self.organization.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)
