"""Normalisation of phone numbers (E.164 via phonenumbers) and email addresses on write.

Numbers are normalised once, when stored, so that lookups compare plain strings.
"""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class InvalidValue(ValueError):
    """A value that cannot be normalised; the message says why, for the person who typed it."""


def normalize_phone(raw: str, region: str) -> str:
    """`raw` as E.164 (`+491712345678`), with `region` as the default country."""
    text = raw.strip()
    if not text:
        raise InvalidValue("empty phone number")
    try:
        number = phonenumbers.parse(text, region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """A stored E.164 number in international notation for display (+49 171 2345678)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalize_email(raw: str) -> str:
    text = raw.strip()
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(f"not a valid email address: {raw!r}") from exc
    return result.normalized.lower()
