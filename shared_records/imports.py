"""CSV import of customers: read the file, preview every row with its errors and duplicate
candidates, then create the chosen rows in one transaction.

Files are UTF-8 (with or without byte order mark), UTF-16 with a byte order mark, or
Windows-1252 as older spreadsheet programs save them. The delimiter (`;`, `,` or tab) is
taken from the header row, which names the columns (English or German names, see
`COLUMN_NAMES`); a cell may hold several phone numbers or email addresses separated by `|`,
`;` or `,`. Rows are numbered as a spreadsheet shows them: the header is row 1.

Nothing is imported while any row has an error, and every row that looks like an existing
customer (or like an earlier row of the same file) needs an explicit decision: create or skip.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from partners.models import User
from portal.enums import CustomerKind
from portal.errors import PortalError, ValidationFailed
from shared_records import policy
from shared_records.duplicates import DuplicateReport, find_duplicates
from shared_records.models import Customer, EmailAddress, PhoneNumber
from shared_records.normalize import InvalidValue, normalize_email, normalize_phone
from shared_records.textkeys import fold

MAX_CSV_BYTES = 256 * 1024
# Each row of the preview form posts one decision field; servers cap form fields at 1,000.
MAX_ROWS = 500
MAX_VALUES = 10  # phone numbers or email addresses per row, as in the API
DECISIONS = ("create", "skip")
FIELDS = ("name", "kind", "street", "postal_code", "city", "country", "phones", "emails")
LIMITS = {"name": 200, "street": 200, "postal_code": 20, "city": 100}

# Header names (folded, spaces as "_") of each column; phone and email columns may repeat
# ("phone", "phone 2", "Mobil"), so they match by prefix.
COLUMN_NAMES = {
    "name": ("name", "kunde", "kundenname", "customer", "customer_name", "firmenname"),
    "kind": ("kind", "type", "art", "typ", "kundenart"),
    "street": ("street", "strasse", "str", "address", "adresse", "anschrift"),
    "postal_code": ("postal_code", "postalcode", "postcode", "zip", "zip_code", "plz"),
    "city": ("city", "ort", "stadt", "wohnort"),
    "country": ("country", "land"),
}
COLUMN_PREFIXES = {
    "phones": ("phone", "telefon", "tel", "mobil", "handy"),
    "emails": ("email", "e_mail", "mail"),
}
KIND_NAMES = {
    "": CustomerKind.PERSON,
    "person": CustomerKind.PERSON,
    "privat": CustomerKind.PERSON,
    "privatperson": CustomerKind.PERSON,
    "private": CustomerKind.PERSON,
    "company": CustomerKind.COMPANY,
    "firma": CustomerKind.COMPANY,
    "unternehmen": CustomerKind.COMPANY,
    "business": CustomerKind.COMPANY,
    "gewerbe": CustomerKind.COMPANY,
}
ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (BOM)",
    "utf-16": "UTF-16",
    "cp1252": "Windows-1252",
}
_SPLIT_VALUES = re.compile(r"[|;,\n]")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


class CsvTooLarge(PortalError):
    status = 413
    code = "csv_too_large"


class ImportRefused(ValidationFailed):
    """The import cannot run as asked; `extra["rows"]` lists the rows concerned."""


def _file_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="csv_invalid", fields={"csv": message})


def _too_large() -> CsvTooLarge:
    return CsvTooLarge(
        _("The file is too large (at most %(kb)s KB).", kb=MAX_CSV_BYTES // 1024),
        fields={"csv": _("At most %(kb)s KB.", kb=MAX_CSV_BYTES // 1024)},
    )


# --- reading the file ------------------------------------------------------------------------


def decode(raw: bytes) -> tuple[str, str]:
    """The text of an uploaded file and the encoding it was read with.

    Raises CsvTooLarge and ValidationFailed (not a text file, unknown encoding).
    """
    if len(raw) > MAX_CSV_BYTES:
        raise _too_large()
    encodings: tuple[str, ...]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ("utf-16",)
    elif raw.startswith(b"\xef\xbb\xbf"):
        encodings = ("utf-8-sig",)
    else:
        encodings = ("utf-8", "cp1252")
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text, ENCODING_NAMES[encoding]
    raise _file_error(
        _("This file cannot be read as text. Save it as CSV (UTF-8 or Windows-1252) and retry.")
    )


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _column_field(header: str) -> str | None:
    key = fold(header).replace(" ", "_")
    for name, aliases in COLUMN_NAMES.items():
        if key in aliases:
            return name
    for name, prefixes in COLUMN_PREFIXES.items():
        if key.startswith(prefixes):
            return name
    return None


@dataclass
class _Table:
    delimiter: str
    columns: list[str | None]  # the field of each column (None: ignored)
    headers: list[str]
    records: list[tuple[int, list[str]]]  # (row number, cells)


def _read_table(text: str) -> _Table:
    text = text.removeprefix("\ufeff")
    if len(text.encode("utf-8")) > MAX_CSV_BYTES:
        raise _too_large()
    if "\x00" in text:
        raise _file_error(_("This does not look like a CSV text file."))
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if not first_line:
        raise _file_error(_("The file is empty."))
    delimiter = _delimiter(first_line)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise _file_error(_("The file is not valid CSV: %(problem)s", problem=str(exc))) from None
    numbered = [(index + 1, row) for index, row in enumerate(rows)]
    numbered = [(n, row) for n, row in numbered if any(cell.strip() for cell in row)]
    if not numbered:
        raise _file_error(_("The file is empty."))
    (_header_number, headers), records = numbered[0], numbered[1:]
    headers = [h.strip() for h in headers]
    columns = [_column_field(h) for h in headers]
    if "name" not in columns:
        raise _file_error(
            _(
                "The header row needs a column “name” (or “Name”, “Kunde”); found: %(found)s.",
                found=", ".join(h or "?" for h in headers),
            )
        )
    if not records:
        raise _file_error(_("The file has a header row but no customers."))
    if len(records) > MAX_ROWS:
        raise _file_error(_("The file has too many rows (at most %(max)s).", max=MAX_ROWS))
    return _Table(delimiter, columns, headers, records)


# --- rows ------------------------------------------------------------------------------------


@dataclass
class ImportRow:
    """One data row: its values, what is wrong with it and what it may duplicate."""

    number: int
    values: dict[str, Any]
    phones: list[str] = field(default_factory=list)  # E.164
    emails: list[str] = field(default_factory=list)  # normalised
    errors: dict[str, str] = field(default_factory=dict)
    duplicates: DuplicateReport = field(default_factory=DuplicateReport)
    same_as_rows: list[int] = field(default_factory=list)
    decision: str | None = None

    @property
    def needs_decision(self) -> bool:
        return not self.errors and (self.duplicates.found or bool(self.same_as_rows))

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.number,
            "values": self.values,
            "phones": self.phones,
            "emails": self.emails,
            "errors": self.errors,
            "duplicates": self.duplicates.as_json(),
            "same_as_rows": self.same_as_rows,
            "needs_decision": self.needs_decision,
            "decision": self.decision,
        }


@dataclass
class ImportPreview:
    rows: list[ImportRow]
    delimiter: str
    ignored_columns: list[str]

    @property
    def invalid_rows(self) -> list[ImportRow]:
        return [row for row in self.rows if row.errors]

    @property
    def undecided_rows(self) -> list[ImportRow]:
        return [row for row in self.rows if not row.errors and row.decision is None]

    @property
    def ready(self) -> bool:
        return not self.invalid_rows and not self.undecided_rows

    def summary(self) -> dict[str, int]:
        return {
            "rows": len(self.rows),
            "invalid": len(self.invalid_rows),
            "possible_duplicates": sum(1 for row in self.rows if row.needs_decision),
            "undecided": len(self.undecided_rows),
            "to_create": sum(1 for row in self.rows if row.decision == "create"),
            "to_skip": sum(1 for row in self.rows if row.decision == "skip"),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "delimiter": self.delimiter,
            "ignored_columns": self.ignored_columns,
            "summary": self.summary(),
            "rows": [row.as_json() for row in self.rows],
        }


def _values(table: _Table, cells: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {name: "" for name in FIELDS if name not in ("phones", "emails")}
    values["phones"] = []
    values["emails"] = []
    errors: dict[str, str] = {}
    if len(cells) > len(table.columns):
        errors["row"] = _(
            "This row has %(cells)s cells but the header only %(columns)s (a separator inside "
            "a value needs quotes).",
            cells=len(cells),
            columns=len(table.columns),
        )
    for column, cell in zip(table.columns, cells, strict=False):
        text = cell.strip()
        if column in ("phones", "emails"):
            values[column].extend(v.strip() for v in _SPLIT_VALUES.split(text) if v.strip())
        elif column is not None and text and not values[column]:
            values[column] = text
    return values, errors


def _check_row(row: ImportRow, region: str) -> None:
    values, errors = row.values, row.errors
    if not values["name"]:
        errors["name"] = _("The name is missing.")
    for name, limit in LIMITS.items():
        if len(values[name]) > limit:
            errors[name] = _("Too long (at most %(max)s characters).", max=limit)
    kind = KIND_NAMES.get(fold(values["kind"]))
    if kind is None:
        errors["kind"] = _("Kind must be “person” or “company”.")
    else:
        values["kind"] = kind.value
    country = values["country"]
    if country and not _COUNTRY.match(country):
        errors["country"] = _("Country must be a two-letter code such as DE.")
    values["country"] = (country if _COUNTRY.match(country) else region).upper()
    for name, normalize, message, target in (
        (
            "phones",
            lambda raw: normalize_phone(raw, values["country"]),
            _("Not a valid phone number: %(value)s"),
            row.phones,
        ),
        ("emails", normalize_email, _("Not a valid email address: %(value)s"), row.emails),
    ):
        raw_values: list[str] = values[name]
        if len(raw_values) > MAX_VALUES:
            errors[name] = _("Too many values (at most %(max)s).", max=MAX_VALUES)
            continue
        for raw in raw_values:
            try:
                value = normalize(raw)
            except InvalidValue:
                errors.setdefault(name, message % {"value": raw})
                continue
            if value not in target:
                target.append(value)


def _same_keys(row: ImportRow) -> set[tuple[str, str]]:
    name_key = fold(row.values["name"])
    keys = {("phone", p) for p in row.phones} | {("email", e) for e in row.emails}
    if name_key and row.values["postal_code"]:
        keys.add(("name_postal_code", f"{name_key}|{row.values['postal_code']}"))
    if name_key and row.values["city"]:
        keys.add(("name_city", f"{name_key}|{fold(row.values['city'])}"))
    return keys


def preview(
    session: Session, actor: User, text: str, decisions: Mapping[int, str] | None = None
) -> ImportPreview:
    """Every row of the CSV text with its errors, duplicate candidates and decision.

    Rows without any hint of a duplicate are created unless decided otherwise; the others
    keep the decision given (None: still open). Raises CsvTooLarge and ValidationFailed for
    problems of the whole file (encoding, no header, no name column, too many rows) and for
    decisions naming rows that do not exist.
    """
    policy.require_worker(actor)
    table = _read_table(text)
    decisions = dict(decisions or {})
    numbers = {number for number, _cells in table.records}
    unknown = sorted(set(decisions) - numbers)
    if unknown:
        raise ValidationFailed(
            _(
                "Decisions name rows that are not in the file: %(rows)s",
                rows=", ".join(map(str, unknown)),
            ),
            code="unknown_rows",
            fields={"decisions": ", ".join(map(str, unknown))},
        )
    region = actor.organization.phone_region
    rows: list[ImportRow] = []
    seen: dict[tuple[str, str], int] = {}
    for number, cells in table.records:
        values, errors = _values(table, cells)
        row = ImportRow(number=number, values=values, errors=errors)
        _check_row(row, region)
        if not row.errors:
            row.duplicates = find_duplicates(
                session,
                actor,
                name=values["name"],
                phones=row.phones,
                emails=row.emails,
                postal_code=values["postal_code"] or None,
                city=values["city"] or None,
            )
            keys = _same_keys(row)
            row.same_as_rows = sorted({seen[k] for k in keys if k in seen})
            for key in keys:
                seen.setdefault(key, number)
            decision = decisions.get(number)
            row.decision = decision or (None if row.needs_decision else "create")
        rows.append(row)
    ignored = [h for h, c in zip(table.headers, table.columns, strict=True) if c is None and h]
    return ImportPreview(rows=rows, delimiter=table.delimiter, ignored_columns=ignored)


# --- importing -------------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: list[tuple[int, Customer]]  # (row number, customer)
    skipped: list[int]

    def as_json(self) -> dict[str, Any]:
        return {
            "created": [
                {"row": number, "id": customer.id, "name": customer.name}
                for number, customer in self.created
            ],
            "skipped": self.skipped,
            "summary": {"created": len(self.created), "skipped": len(self.skipped)},
        }


def run_import(
    session: Session, actor: User, text: str, decisions: Mapping[int, str] | None = None
) -> tuple[ImportPreview, ImportResult]:
    """Create the customers of every row decided "create", in one transaction, and commit.

    Raises ImportRefused (422) and imports nothing when any row has an error
    (code `import_invalid`) or a possible duplicate has no decision (`decisions_required`).
    """
    checked = preview(session, actor, text, decisions)
    if checked.invalid_rows:
        raise ImportRefused(
            _(
                "Nothing was imported: rows %(rows)s have errors.",
                rows=", ".join(str(row.number) for row in checked.invalid_rows),
            ),
            code="import_invalid",
            extra={"rows": [row.as_json() for row in checked.invalid_rows]},
        )
    if checked.undecided_rows:
        raise ImportRefused(
            _(
                "Nothing was imported: decide for each possible duplicate whether to create "
                "or skip it (rows %(rows)s).",
                rows=", ".join(str(row.number) for row in checked.undecided_rows),
            ),
            code="decisions_required",
            extra={"rows": [row.as_json() for row in checked.undecided_rows]},
        )
    created: list[tuple[int, Customer]] = []
    skipped: list[int] = []
    for row in checked.rows:
        if row.decision != "create":
            skipped.append(row.number)
            continue
        values = row.values
        customer = Customer(
            owner_organization_id=actor.organization_id,
            kind=values["kind"],
            name=values["name"],
            street=values["street"] or None,
            postal_code=values["postal_code"] or None,
            city=values["city"] or None,
            country=values["country"],
        )
        session.add(customer)
        session.flush()
        session.add_all(
            PhoneNumber(customer_id=customer.id, e164=e164, position=index)
            for index, e164 in enumerate(row.phones)
        )
        session.add_all(
            EmailAddress(customer_id=customer.id, email=email, position=index)
            for index, email in enumerate(row.emails)
        )
        created.append((row.number, customer))
    session.commit()
    return checked, ImportResult(created=created, skipped=skipped)
