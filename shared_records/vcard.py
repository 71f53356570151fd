"""Reading business cards: a vCard file (`.vcf`, as scanner apps export it) as a would-be customer.

Only parsing happens here; nothing is written. Files are limited in size, decoded as UTF-8
(with or without BOM, or UTF-16 with BOM) and else as Windows-1252, which older exports use;
anything else, binary data and text that is not a vCard are refused with a message that says
what to do. A file with several cards yields the first and says how many there were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import vobject
from flask_babel import gettext as _

from portal.errors import PortalError, ValidationFailed

#: Largest accepted file; a card with a photo stays well below.
MAX_VCARD_BYTES = 256 * 1024
MAX_VALUES = 10

_BEGIN = re.compile(rb"^BEGIN:VCARD\s*$", re.IGNORECASE | re.MULTILINE)
# Control characters other than tab, line feed and carriage return: a binary file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_COUNTRIES = {
    "deutschland": "DE",
    "germany": "DE",
    "osterreich": "AT",
    "österreich": "AT",
    "austria": "AT",
    "schweiz": "CH",
    "switzerland": "CH",
    "suisse": "CH",
    "nederland": "NL",
    "netherlands": "NL",
    "france": "FR",
    "frankreich": "FR",
    "italia": "IT",
    "italien": "IT",
    "italy": "IT",
}


class VcardTooLarge(PortalError):
    status = 413
    code = "vcard_too_large"


class VcardInvalid(ValidationFailed):
    code = "vcard_invalid"


@dataclass
class BusinessCard:
    """The fields of one vCard, shaped like the capture form (strings, lists of strings)."""

    name: str = ""
    company: str = ""
    position_title: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""
    # How many cards the file held (only the first is used).
    cards: int = 1

    @property
    def notice(self) -> str | None:
        if self.cards <= 1:
            return None
        return str(
            _(
                "The file holds %(count)s cards; only the first one (%(name)s) was read.",
                count=self.cards,
                name=self.name,
            )
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "company": self.company or None,
            "position_title": self.position_title or None,
            "phones": self.phones,
            "emails": self.emails,
            "street": self.street or None,
            "postal_code": self.postal_code or None,
            "city": self.city or None,
            "country": self.country or None,
        }


def decode(data: bytes) -> str:
    """The file's text. Raises VcardInvalid for binary data or an unknown character set."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise _unreadable() from None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise _unreadable() from None
    if _CONTROL.search(text):
        raise VcardInvalid(
            _("This file is not a vCard (it holds binary data). Export the card as .vcf.")
        )
    return text


def _unreadable() -> VcardInvalid:
    return VcardInvalid(
        _(
            "The characters of this file cannot be read. Export the card again as UTF-8 "
            "(vCard 3.0 or 4.0)."
        )
    )


def _malformed(detail: str = "") -> VcardInvalid:
    message = _("This file is not a valid vCard; export the card again as .vcf.")
    return VcardInvalid(message, fields={"file": detail} if detail else None)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v).strip() for v in value if str(v).strip())
    return str(value).strip() if value is not None else ""


def _values(card: Any, key: str) -> list[str]:
    result: list[str] = []
    for line in card.contents.get(key, []):
        text = _text(line.value)
        if text and text not in result:
            result.append(text[:254])
    return result[:MAX_VALUES]


def _first(card: Any, key: str) -> Any:
    lines = card.contents.get(key) or []
    return lines[0].value if lines else None


def _name(card: Any) -> str:
    formatted = _text(_first(card, "fn"))
    if formatted:
        return formatted
    structured = _first(card, "n")
    if structured is None:
        return ""
    if isinstance(structured, vobject.vcard.Name):
        parts = [structured.prefix, structured.given, structured.additional, structured.family]
        return " ".join(_text(p) for p in parts if _text(p))
    return _text(structured)


def _country(value: str) -> str:
    text = value.strip()
    if re.fullmatch(r"[A-Za-z]{2}", text):
        return text.upper()
    return _COUNTRIES.get(text.lower(), "")


def _address(card: Any, result: BusinessCard) -> None:
    address = _first(card, "adr")
    if not isinstance(address, vobject.vcard.Address):
        return
    result.street = _text(address.street)[:200]
    result.postal_code = _text(address.code)[:20]
    result.city = _text(address.city)[:100]
    result.country = _country(_text(address.country))


def parse_vcard(data: bytes) -> BusinessCard:
    """The first card of a vCard file.

    Raises VcardTooLarge (413) above MAX_VCARD_BYTES and VcardInvalid (422) for an empty,
    unreadable, malformed or nameless file.
    """
    if len(data) > MAX_VCARD_BYTES:
        raise VcardTooLarge(
            _(
                "The file is too large (at most %(size)s KB). A business card needs far less; "
                "export it without photo.",
                size=MAX_VCARD_BYTES // 1024,
            )
        )
    if not data.strip():
        raise VcardInvalid(_("The file is empty."))
    text = decode(data)
    try:
        card = next(vobject.readComponents(text, allowQP=True), None)
    except Exception as exc:  # vobject raises ParseError, but also ValueError & co. on junk
        raise _malformed(str(exc)[:200]) from None
    if card is None or card.name.upper() != "VCARD":
        raise _malformed()
    try:
        result = BusinessCard(
            name=_name(card)[:200],
            company=_text(_first(card, "org"))[:200],
            position_title=_text(_first(card, "title"))[:200],
            phones=_values(card, "tel"),
            emails=_values(card, "email"),
            cards=max(1, len(_BEGIN.findall(text.encode()))),
        )
        _address(card, result)
    except Exception as exc:  # a property vobject could not turn into a value
        raise _malformed(str(exc)[:200]) from None
    if not result.name and not result.company:
        raise VcardInvalid(_("This card has no name. Fill in the name by hand."))
    if not result.name:
        result.name = result.company
    return result
