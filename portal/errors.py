"""Domain errors raised by policy and services; the web layer turns them into responses.

Each carries a stable machine code, a human message (already translated where shown to a
person) and, for validation errors, messages per field.
"""

from __future__ import annotations

from typing import Any


class PortalError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code
        self.extra = extra or {}


class BadRequest(PortalError):
    status = 400
    code = "bad_request"


class Unauthorized(PortalError):
    status = 401
    code = "unauthorized"


class NotFound(PortalError):
    """Not there, or not visible: the two are never told apart."""

    status = 404
    code = "not_found"


class Forbidden(PortalError):
    """Visible, but this action is not permitted for this user."""

    status = 403
    code = "forbidden"


class Conflict(PortalError):
    """The record changed meanwhile or is held by someone else; `extra` says by whom or how."""

    status = 409
    code = "conflict"


class ValidationFailed(PortalError):
    status = 422
    code = "validation_failed"
