"""Normalisation of phone numbers (E.164 via phonenumbers) and email addresses on write.

Numbers are normalised once, when stored, so that lookups compare plain strings.
"""

from __future__ import annotations

import re

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


_DIAL_PUNCTUATION = re.compile(r"[\s()\-./]")


def normalize_caller(raw: str, region: str, outside_line_prefix: str | None = None) -> str:
    """A caller number as a telephone system reports it, as E.164.

    Handles what exchanges send besides the formats people type: digits without "+" that
    start with the country code (`491712345678`), `tel:` URIs, and an outside-line prefix
    the organisation's system puts before every number (`0` + `0171 2345678`). National
    numbers in dialling form always start with the trunk prefix `0`, so a long number
    without `0` or `+` is read as international first.
    """
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if not text or len(text) > 40:
        raise InvalidValue(f"not a phone number: {raw!r}")
    plus = text.startswith("+")
    digits = _DIAL_PUNCTUATION.sub("", text[1:] if plus else text)
    if not digits.isdigit():
        raise InvalidValue(f"not a phone number: {raw!r}")
    prefix = (outside_line_prefix or "").strip()
    if not plus and prefix and digits.startswith(prefix) and len(digits) > len(prefix) + 4:
        digits = digits[len(prefix) :]
    if plus:
        candidates = ["+" + digits]
    elif digits.startswith("0") or len(digits) < 10:
        candidates = [digits]
    else:
        candidates = ["+" + digits, digits]
    for candidate in candidates:
        try:
            return normalize_phone(candidate, region)
        except InvalidValue:
            continue
    raise InvalidValue(f"not a valid phone number: {raw!r}")
