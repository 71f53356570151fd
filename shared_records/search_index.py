"""Keeps the search documents current: every flush that touches a customer, contact or case
rewrites that record's documents in the same transaction.

A session event does this, not the services, so that every writer (services, merge, import,
demo loader) keeps the index current without remembering to. The engines' own indexes
(SQLite FTS5 triggers, PostgreSQL GIN indexes) follow the `search_documents` rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction

from shared_records.models import Case, Contact, Customer, SearchDocument
from shared_records.textkeys import fold, phonetic

_docs: sa.Table = SearchDocument.__table__  # type: ignore[assignment]


def sounds_of(text: str) -> str:
    return " ".join(f"k{code}" for code in phonetic(text))


def _customer_docs(customer: Any, contacts: Iterable[Any]) -> list[dict[str, Any]]:
    details = " ".join(filter(None, [customer.postal_code, customer.city]))
    docs = [
        {
            "ref": f"customer:{customer.id}",
            "kind": "customer",
            "customer_id": customer.id,
            "contact_id": None,
            "case_id": None,
            "title": customer.name[:300],
            "names": fold(customer.name),
            "details": fold(details),
            "sounds": sounds_of(customer.name),
        }
    ]
    for contact in contacts:
        docs.append(
            {
                "ref": f"contact:{contact.id}",
                "kind": "contact",
                "customer_id": customer.id,
                "contact_id": contact.id,
                "case_id": None,
                "title": contact.name[:300],
                "names": fold(f"{contact.name} {contact.position_title or ''}"),
                "details": "",
                "sounds": sounds_of(contact.name),
            }
        )
    return docs


def _case_doc(case: Any) -> dict[str, Any]:
    return {
        "ref": f"case:{case.id}",
        "kind": "case",
        "customer_id": case.customer_id,
        "contact_id": None,
        "case_id": case.id,
        "title": f"{case.number} {case.subject}"[:300],
        "names": fold(f"{case.number} {case.subject}"),
        "details": "",
        "sounds": sounds_of(case.subject),
    }


def reindex_customers(connection: sa.Connection, customer_ids: Iterable[int]) -> None:
    """Rewrite the customer and contact documents of these customers (merged ones: none)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    connection.execute(sa.delete(_docs).where(_docs.c.customer_id.in_(ids), _docs.c.kind != "case"))
    customers = connection.execute(
        sa.select(Customer.id, Customer.name, Customer.postal_code, Customer.city).where(
            Customer.id.in_(ids), Customer.merged_into_id.is_(None)
        )
    ).all()
    contacts: dict[int, list[Any]] = {}
    for row in connection.execute(
        sa.select(Contact.id, Contact.customer_id, Contact.name, Contact.position_title).where(
            Contact.customer_id.in_(ids)
        )
    ):
        contacts.setdefault(row.customer_id, []).append(row)
    rows = [doc for c in customers for doc in _customer_docs(c, contacts.get(c.id, []))]
    if rows:
        connection.execute(sa.insert(_docs), rows)


def reindex_cases(connection: sa.Connection, case_ids: Iterable[int]) -> None:
    """Rewrite the documents of these cases."""
    ids = sorted(set(case_ids))
    if not ids:
        return
    connection.execute(sa.delete(_docs).where(_docs.c.case_id.in_(ids)))
    cases = connection.execute(
        sa.select(Case.id, Case.customer_id, Case.number, Case.subject).where(Case.id.in_(ids))
    ).all()
    if cases:
        connection.execute(sa.insert(_docs), [_case_doc(c) for c in cases])


def backfill(connection: sa.Connection, batch: int = 2000) -> None:
    """Build every key and document from scratch (migration 0006, `portal search rebuild`)."""
    customer_ids = connection.execute(sa.select(Customer.id).order_by(Customer.id)).scalars()
    table = Customer.__table__
    pending: list[int] = []
    for customer_id in customer_ids.all():
        pending.append(customer_id)
        if len(pending) >= batch:
            _backfill_customers(connection, table, pending)
            pending = []
    _backfill_customers(connection, table, pending)
    case_ids = connection.execute(sa.select(Case.id).order_by(Case.id)).scalars().all()
    for start in range(0, len(case_ids), batch):
        reindex_cases(connection, case_ids[start : start + batch])


def _backfill_customers(connection: sa.Connection, table: Any, ids: list[int]) -> None:
    if not ids:
        return
    rows = connection.execute(
        sa.select(table.c.id, table.c.name, table.c.city).where(table.c.id.in_(ids))
    ).all()
    for row in rows:
        connection.execute(
            table.update()
            .where(table.c.id == row.id)
            .values(
                name_key=fold(row.name)[:200],
                city_key=(fold(row.city)[:100] or None) if row.city else None,
            )
        )
    reindex_customers(connection, ids)


# --- keeping the index current ----------------------------------------------------------

_PENDING = "search_index_pending"


_CUSTOMER_FIELDS = ("name", "postal_code", "city", "merged_into_id")
_CONTACT_FIELDS = ("name", "position_title", "customer_id")
_CASE_FIELDS = ("number", "subject", "customer_id")


def _changed(obj: object, fields: tuple[str, ...]) -> bool:
    attrs = sa.inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in fields)


def _note(session: Session, flush_context: UOWTransaction) -> None:
    customers: set[int] = set()
    cases: set[int] = set()
    touched = [(obj, True) for obj in (*session.new, *session.deleted)]
    touched += [(obj, False) for obj in session.dirty]
    for obj, whole in touched:
        if isinstance(obj, Customer) and obj.id is not None:
            if whole or _changed(obj, _CUSTOMER_FIELDS):
                customers.add(obj.id)
        elif isinstance(obj, Contact) and obj.customer_id is not None:
            if whole or _changed(obj, _CONTACT_FIELDS):
                customers.add(obj.customer_id)
                # A contact moved by a merge leaves its old customer's documents too.
                old = sa.inspect(obj).attrs.customer_id.history.deleted
                customers.update(i for i in old if i is not None)
        elif (
            isinstance(obj, Case) and obj.id is not None and (whole or _changed(obj, _CASE_FIELDS))
        ):
            cases.add(obj.id)
    if customers or cases:
        pending = session.info.setdefault(_PENDING, (set(), set()))
        pending[0].update(customers)
        pending[1].update(cases)


def _write(session: Session, flush_context: UOWTransaction) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    connection = session.connection()
    reindex_customers(connection, pending[0])
    reindex_cases(connection, pending[1])


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING, None)


# New objects have no id before the flush, so the ids are collected after it: `after_flush`
# still sees new/dirty/deleted objects, now with their ids.
event.listen(Session, "after_flush", _note)
event.listen(Session, "after_flush_postexec", _write)
event.listen(Session, "after_rollback", _forget)
