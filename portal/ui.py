"""Helpers shared by the server-rendered pages: labels of the closed vocabularies, readable
(translated) form errors, form parsing and safe redirects.

The blueprints in */views.py use these; templates reach the labels through `label()` and
`choices()`, registered as template globals by `portal.views`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import request
from flask_babel import gettext as babel_gettext
from flask_babel import lazy_gettext as _l
from pydantic import ValidationError

from portal.errors import PortalError


def gettext(string: str, **variables: Any) -> str:
    """flask_babel.gettext with a type (views import it as `_`, so extraction finds it)."""
    return str(babel_gettext(string, **variables))


_ = gettext

# Every value of the closed vocabularies in portal/enums.py, as a person reads it.
VOCABULARY: dict[str, dict[str, Any]] = {
    "case_status": {
        "new": _l("New"),
        "open": _l("Open"),
        "waiting": _l("Waiting"),
        "resolved": _l("Resolved"),
        "closed": _l("Closed"),
    },
    "case_priority": {
        "low": _l("Low"),
        "normal": _l("Normal"),
        "high": _l("High"),
        "urgent": _l("Urgent"),
    },
    "case_kind": {
        "inquiry": _l("Inquiry"),
        "service": _l("Service"),
        "complaint": _l("Complaint"),
        "warranty": _l("Warranty"),
        "sales": _l("Sales"),
    },
    "consent_channel": {
        "email": _l("Email"),
        "phone": _l("Phone"),
        "sms": _l("SMS"),
        "post": _l("Post"),
        "messenger": _l("Messenger"),
    },
    "consent_purpose": {
        "service": _l("Service"),
        "marketing": _l("Marketing"),
        "newsletter": _l("Newsletter"),
        "surveys": _l("Surveys"),
    },
    "call_state": {
        "ringing": _l("Ringing"),
        "answered": _l("Answered"),
        "ended": _l("Ended"),
    },
    "channel": {
        "phone": _l("Phone"),
        "email": _l("Email"),
        "letter": _l("Letter"),
        "web": _l("Web"),
        "visit": _l("Visit"),
        "chat": _l("Chat"),
        "field_service": _l("Field service"),
    },
    "direction": {
        "in": _l("Incoming"),
        "out": _l("Outgoing"),
    },
    "access": {
        "read": _l("Read"),
        "comment": _l("Comment"),
        "edit": _l("Edit"),
    },
    "user_role": {
        "admin": _l("Admin"),
        "agent": _l("Agent"),
        "viewer": _l("Viewer"),
    },
    "customer_kind": {
        "person": _l("Person"),
        "company": _l("Company"),
    },
    "organization_kind": {
        "manufacturer": _l("Manufacturer"),
        "dealer": _l("Dealer"),
        "supplier": _l("Supplier"),
        "agency": _l("Agency"),
    },
    "partner_role": {
        "dealer": _l("Dealer"),
        "supplier": _l("Supplier"),
        "agency": _l("Agency"),
    },
    "entry_kind": {
        "note": _l("Note"),
        "interaction": _l("Interaction"),
        "change": _l("Change"),
    },
    # Fields named by recorded changes on the timeline (TimelineEntry.field).
    "case_field": {
        "subject": _l("the subject"),
        "description": _l("the description"),
        "kind": _l("the kind"),
        "status": _l("the status"),
        "priority": _l("the priority"),
        "handling_user": _l("the handler"),
        "handling_organization": _l("the handling organisation"),
        "share": _l("the sharing"),
        "customer": _l("the customer"),
    },
}

# Which vocabulary translates the values of a changed field (others are shown as stored).
FIELD_VALUE_GROUPS = {"status": "case_status", "priority": "case_priority", "kind": "case_kind"}

LANGUAGES = {"de": "Deutsch", "en": "English"}


def label(group: str, value: object) -> str:
    """The translated label of `value` in vocabulary `group` (the raw value if unknown)."""
    if value is None:
        return ""
    text = VOCABULARY.get(group, {}).get(str(value))
    return str(text) if text is not None else str(value)


def choices(group: str) -> list[tuple[str, str]]:
    """(value, label) pairs of a vocabulary, in their declared order."""
    return [(value, str(text)) for value, text in VOCABULARY[group].items()]


def change_value(field_name: str | None, value: str | None) -> str:
    """A stored old/new value of a recorded change, translated where it is a vocabulary value."""
    if value is None:
        return ""
    group = FIELD_VALUE_GROUPS.get(field_name or "")
    if group:
        return label(group, value)
    if field_name == "share":
        # Stored as "<organisation>: <access>"; shown as "<organisation> (<access>)".
        org, sep, access = value.rpartition(": ")
        if sep and access in VOCABULARY["access"]:
            return f"{org} ({label('access', access)})"
    return value


# --- forms ---------------------------------------------------------------------------------


@dataclass
class FormState:
    """What a form shows: the values typed (or current), messages per field and one on top."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    open: bool = False

    def value(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.message)


def form_text(name: str) -> str:
    return request.form.get(name, "").strip()


def form_multiline(name: str) -> str:
    """A textarea's text with the browser's CRLF line breaks made plain newlines."""
    return request.form.get(name, "").replace("\r\n", "\n")


def form_lines(name: str) -> list[str]:
    """A textarea with one value per line (blank lines dropped)."""
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


_NUMBER_ERRORS = frozenset(
    {"int_parsing", "int_type", "int_from_float", "greater_than_equal", "less_than_equal"}
)


def _message_for(problem: Mapping[str, Any]) -> str:
    kind = problem.get("type", "")
    ctx = problem.get("ctx") or {}
    if kind == "missing":
        return _("This field is required.")
    if kind == "string_too_short":
        return _("Please fill in this field.")
    if kind == "string_too_long":
        return _("This text is too long (at most %(max)s characters).", max=ctx.get("max_length"))
    if kind == "string_pattern_mismatch":
        return _("This value has the wrong format.")
    if kind in _NUMBER_ERRORS:
        return _("Please choose or enter a valid number.")
    if kind in {"enum", "literal_error"}:
        return _("Please choose one of the offered options.")
    if kind == "too_long":
        return _("Too many entries (at most %(max)s).", max=ctx.get("max_length"))
    if kind == "too_short":
        return _("Please choose at least one.")
    if kind == "bool_parsing":
        return _("Please choose yes or no.")
    return _("This value is not valid.")


def validation_errors(
    exc: ValidationError, model_messages: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Readable, translated messages per form field from a pydantic error.

    Nested locations (`phones.1`) are reported on their form field (`phones`); errors of the
    whole model (cross-field rules) go to `model_messages["field"]` as given by the caller,
    else to the key `__all__`.
    """
    messages: dict[str, str] = {}
    for problem in exc.errors():
        loc = problem.get("loc") or ()
        if not loc:
            target = next(iter(model_messages or {}), "__all__")
            text = (model_messages or {}).get(target) or _("Some values do not fit together.")
            messages.setdefault(target, text)
            continue
        messages.setdefault(str(loc[0]), _message_for(problem))
    return messages


def service_errors(error: PortalError) -> dict[str, str]:
    """Field messages of a service error, keyed by form field (`phones.0` -> `phones`)."""
    messages: dict[str, str] = {}
    for key, text in error.fields.items():
        messages.setdefault(key.split(".")[0], text)
    return messages


# --- navigation ----------------------------------------------------------------------------


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site (no scheme, host or protocol-relative URL)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def template_globals() -> dict[str, Any]:
    return {
        "label": label,
        "choices": choices,
        "change_value": change_value,
        "languages": LANGUAGES,
    }
