"""API scopes: what a bearer token may do. People (session or personal token) hold every
scope; an API client holds exactly the scopes it was created with."""

from __future__ import annotations

from enum import StrEnum

from flask import g


class Scope(StrEnum):
    CASES_READ = "cases:read"
    CASES_WRITE = "cases:write"
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CTI = "cti"
    # Managing one's own account (personal tokens, profile): people only, never API clients.
    ACCOUNT = "account"


CLIENT_SCOPES = (
    Scope.CASES_READ,
    Scope.CASES_WRITE,
    Scope.CUSTOMERS_READ,
    Scope.CUSTOMERS_WRITE,
    Scope.CTI,
)
PERSON_SCOPES = frozenset(Scope)


def current_scopes() -> frozenset[str]:
    """Scopes of the current request's credentials (set by the bearer loader for clients)."""
    scopes: frozenset[str] = g.get("auth_scopes", PERSON_SCOPES)
    return scopes


def parse_scopes(text: str) -> tuple[list[str], list[str]]:
    """(valid client scopes, unknown words) of a space- or comma-separated scope string."""
    words = [w for w in text.replace(",", " ").split() if w]
    allowed = {s.value for s in CLIENT_SCOPES}
    valid = sorted({w for w in words if w in allowed})
    unknown = [w for w in words if w not in allowed]
    return valid, unknown
