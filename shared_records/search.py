"""One search over the customers, contacts and cases a user may see.

`search(session, actor, q)` reads what the query looks like and asks the engine of the
session's database for candidates; rapidfuzz then ranks them in Python, so SQLite and
PostgreSQL answer in the same order.

- A phone number (any format the organisation's region understands) matches stored E.164
  numbers exactly; an email address matches exactly, a part with "@" by prefix. Both only
  for customers whose contact details the actor may see.
- A full case number (C-2026-000123) matches `cases.number`; its tail ("000123", "123") is
  found as a word of the case's document.
- Anything else is words, folded like the stored documents (textkeys.fold), so Müller,
  Mueller and Muller are one word. Every word must match: as the start of a name word, by
  its Kölner Phonetik code, or in postal code or city, the last only where the actor sees
  the customer's contact details. When that finds few hits and none as typed, a typo pass
  adds similar names (PostgreSQL: pg_trgm; SQLite: FTS5 candidates by 3-letter prefix),
  kept only where rapidfuzz agrees that they are close.

Visibility is part of every statement (the policy's SQL conditions), never a filter applied
afterwards. Matches come from the engine's index first; for organisations that see few
customers they are narrowed to those customers by one semi-join before the conditions are
tested (see _candidates). PostgreSQL's unaccent is not used: documents and queries are
folded in Python alike, and unaccent could not undo the transcription "ue" for "ü" anyway.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from rapidfuzz import fuzz
from sqlalchemy.orm import InstrumentedAttribute, Session

from partners.models import User
from shared_records import policy
from shared_records.models import (
    Case,
    Contact,
    Customer,
    EmailAddress,
    PhoneNumber,
    SearchDocument,
)
from shared_records.normalize import InvalidValue, normalize_email, normalize_phone
from shared_records.textkeys import fold, phonetic, words

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
MAX_QUERY_LENGTH = 200
# Words beyond this many add nothing but cost (every word is one more AND).
MAX_WORDS = 8
# The typo pass runs when the full-text pass finds fewer hits than this (none as typed).
FEW_HITS = 3
# How close a match by sound (full-text pass) or by similarity (typo pass) must be, as the
# mean over the query's words of the best rapidfuzz ratio against the record's words.
SOUND_MIN_SCORE = 50.0
TYPO_MIN_SCORE = 75.0
# Organisations owning fewer customers than this have the matches narrowed to their
# visible customers before the policy is tested (see _candidates).
NARROW_BELOW = 20_000
# pg_trgm's word similarity a typo candidate needs (PostgreSQL), as set_config wants it.
WORD_SIMILARITY = "0.4"

_PHONE_SHAPE = re.compile(r"^\+?[\d\s()./-]+$")
# C-2026-000123, c2026-123, or without the C: 2026-000123.
_CASE_NUMBER = re.compile(r"^(?:c\s*-?\s*(\d{4})\s*-?|(20\d\d)\s*-)\s*(\d{1,6})$", re.IGNORECASE)
_CASE_TAIL_DIGITS = 6

_docs = SearchDocument


@dataclass(frozen=True)
class SearchHit:
    """One record found: a customer, a contact (id: the contact's) or a case (id: the case's)."""

    kind: str
    id: int
    title: str
    customer_id: int
    case_id: int | None
    score: float
    # What matched: name, sound, details, typo, phone, email or number.
    match: str
    # Contacts and cases: the name of their customer.
    customer_name: str | None = None
    # Customers only, and only for those who may see the customer's contact details.
    city: str | None = None
    number: str | None = None
    subject: str | None = None
    status: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "customer_id": self.customer_id,
            "case_id": self.case_id,
            "score": self.score,
            "match": self.match,
        }
        if self.kind == "customer":
            data["city"] = self.city
        else:
            data["customer_name"] = self.customer_name
        if self.kind == "case":
            data.update(number=self.number, subject=self.subject, status=self.status)
        return data


@dataclass(frozen=True)
class SearchResults:
    """The hits of one search, grouped by kind, best first within each group."""

    query: str
    customers: list[SearchHit] = field(default_factory=list)
    contacts: list[SearchHit] = field(default_factory=list)
    cases: list[SearchHit] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.customers) + len(self.contacts) + len(self.cases)

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "customers": [hit.as_dict() for hit in self.customers],
            "contacts": [hit.as_dict() for hit in self.contacts],
            "cases": [hit.as_dict() for hit in self.cases],
        }


# --- the query ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One folded query word: the prefixes that match it and its phonetic codes ("k657")."""

    prefixes: tuple[str, ...]
    sounds: tuple[str, ...]


def terms_of(text: str) -> list[Term]:
    """The query's words as terms; a short run of digits also stands for a case-number tail
    (`123` also matches `000123`)."""
    terms: list[Term] = []
    seen: set[str] = set()
    for word in words(text):
        # A single letter would match a good part of all names; initials add nothing.
        if word in seen or (len(word) == 1 and word.isalpha()):
            continue
        seen.add(word)
        prefixes = [word]
        if word.isdigit() and len(word) < _CASE_TAIL_DIGITS:
            prefixes.append(word.zfill(_CASE_TAIL_DIGITS))
        terms.append(Term(tuple(prefixes), tuple(f"k{code}" for code in phonetic(word))))
        if len(terms) == MAX_WORDS:
            break
    return terms


def _phone(q: str, region: str) -> str | None:
    if not _PHONE_SHAPE.match(q) or sum(ch.isdigit() for ch in q) < 5:
        return None
    try:
        return normalize_phone(q, region)
    except InvalidValue:
        return None


def _case_number(q: str) -> str | None:
    found = _CASE_NUMBER.match(q)
    if found is None:
        return None
    year = found.group(1) or found.group(2)
    return f"C-{year}-{int(found.group(3)):0{_CASE_TAIL_DIGITS}d}"


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


# --- the engines -------------------------------------------------------------------------


class Engine(Protocol):
    """Match conditions on `search_documents` in one database's full-text dialect."""

    def words(self, terms: Sequence[Term], *, details: bool) -> sa.ColumnElement[bool]:
        """Every term matches in names or sounds (and, with `details`, in details)."""
        ...

    def prepare_similar(self, session: Session) -> None:
        """Settings the `similar` condition needs in this transaction."""
        ...

    def similar(self, spelt: Sequence[str]) -> sa.ColumnElement[bool]:
        """Candidates for names spelt almost like these words (letters only, 3 or more)."""
        ...


class SqliteEngine:
    """FTS5: the external-content table `search_fts` (rowid = search_documents.id)."""

    _fts = sa.table("search_fts", sa.column("rowid"))

    def _match(self, expression: str) -> sa.ColumnElement[bool]:
        rowids = sa.select(self._fts.c.rowid).where(
            sa.literal_column("search_fts").op("MATCH")(expression)
        )
        return _docs.id.in_(rowids)

    @staticmethod
    def _any(tokens: Sequence[str], *, prefix: bool) -> str:
        star = "*" if prefix else ""
        # Terms are folded to [a-z0-9]+, so quoting them needs no escaping.
        return " OR ".join(f'"{token}"{star}' for token in tokens)

    def words(self, terms: Sequence[Term], *, details: bool) -> sa.ColumnElement[bool]:
        columns = "{names details}" if details else "names"
        parts = []
        for term in terms:
            options = [f"{columns} : ({self._any(term.prefixes, prefix=True)})"]
            if term.sounds:
                options.append(f"sounds : ({self._any(term.sounds, prefix=False)})")
            parts.append("(" + " OR ".join(options) + ")")
        return self._match(" AND ".join(parts))

    def prepare_similar(self, session: Session) -> None:
        return None

    def similar(self, spelt: Sequence[str]) -> sa.ColumnElement[bool]:
        heads = sorted({word[:3] for word in spelt})
        return self._match(f"names : ({self._any(heads, prefix=True)})")


class PostgresEngine:
    """Full-text search over `to_tsvector('simple', ...)` and pg_trgm on `names`.

    The expressions are exactly those of the indexes of migration 0006, so the planner uses
    them: `names || ' ' || sounds` and `details` (GIN, tsvector), `names` (GIN, trigrams).
    """

    _simple: sa.ColumnElement[Any] = sa.literal_column("'simple'::regconfig")

    def _vector(
        self, expression: sa.ColumnElement[Any] | InstrumentedAttribute[str]
    ) -> sa.ColumnElement[Any]:
        return sa.func.to_tsvector(self._simple, expression)

    def _names(self) -> sa.ColumnElement[Any]:
        names = _docs.names.op("||")(sa.literal_column("' '")).op("||")(_docs.sounds)
        return self._vector(names)

    def _query(self, text: str) -> sa.ColumnElement[Any]:
        return sa.func.to_tsquery(self._simple, text)

    @staticmethod
    def _any(term: Term, *, sounds: bool) -> str:
        options = [f"{p}:*" for p in term.prefixes]
        if sounds:
            options += list(term.sounds)
        return "(" + " | ".join(options) + ")"

    def words(self, terms: Sequence[Term], *, details: bool) -> sa.ColumnElement[bool]:
        if not details:
            text = " & ".join(self._any(t, sounds=True) for t in terms)
            return self._names().op("@@")(self._query(text))
        return sa.and_(
            *(
                sa.or_(
                    self._names().op("@@")(self._query(self._any(t, sounds=True))),
                    self._vector(_docs.details).op("@@")(self._query(self._any(t, sounds=False))),
                )
                for t in terms
            )
        )

    def prepare_similar(self, session: Session) -> None:
        # The default word-similarity threshold (0.6) misses one wrong letter in a short name
        # ("mulker" in "jurgen muller": 0.43); rapidfuzz decides afterwards what is kept.
        # Local to the transaction, so pooled connections keep their defaults.
        session.execute(
            sa.select(
                sa.func.set_config("pg_trgm.word_similarity_threshold", WORD_SIMILARITY, True)
            )
        )

    def similar(self, spelt: Sequence[str]) -> sa.ColumnElement[bool]:
        folded = " ".join(spelt)
        # `names %> q`: q is spelt like the whole or a part of names (word similarity),
        # answered by the trigram index.
        return _docs.names.op("%>")(folded)


def engine_for(session: Session) -> Engine:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresEngine()
    return SqliteEngine()


# --- statements --------------------------------------------------------------------------

_TEXT_NULL = sa.cast(sa.null(), sa.String)
_PEOPLE = ("customer", "contact")
_CASES = ("case",)


def _matches(name: str, condition: sa.ColumnElement[bool]) -> sa.CTE:
    """The documents that match (id, customer, kind), straight from the engine's index.

    Materialized on PostgreSQL: otherwise the planner may, under the outer LIMIT, read the
    table in order, or start from the visible customers, computing a tsvector per row
    (seconds for a common name over 500,000 customers).
    """
    return (
        sa.select(_docs.id, _docs.customer_id, _docs.kind)
        .where(condition)
        .cte(name)
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )


def _sees_many(session: Session, org_id: int) -> bool:
    """Whether the organisation owns at least NARROW_BELOW customers (read from the index,
    stopping there)."""
    owned = (
        sa.select(sa.literal(1))
        .where(Customer.owner_organization_id == org_id)
        .limit(NARROW_BELOW)
        .subquery()
    )
    return (session.scalar(sa.select(sa.func.count()).select_from(owned)) or 0) >= NARROW_BELOW


def _visible_keys(org_id: int) -> sa.CTE:
    return policy.customer_visibility_keys(org_id).cte("visible_customers")


def _candidates(matches: sa.CTE, kinds: tuple[str, ...], visible: sa.CTE | None) -> sa.Select[int]:
    """Ids of the matches of these kinds; given the `visible` customers (_visible_keys),
    only those of customers the organisation sees.

    Narrowing is one semi-join with the visible customers instead of one visibility test
    per match, which pays when the organisation sees few customers and a name is common.
    An organisation that sees many is better served without: the outer query tests the
    policy per match and stops as soon as it has enough. Either way the policy's own
    conditions decide (see _people, _cases).
    """
    ids = sa.select(matches.c.id).where(matches.c.kind.in_(kinds))
    if visible is None:
        return ids
    return ids.where(matches.c.customer_id.in_(sa.select(visible.c.customer_id)))


def _people(
    org_id: int,
    candidates: sa.Select[int],
    *,
    names_only: sa.ColumnElement[bool] | None,
    limit: int,
) -> sa.Select[*tuple[Any, ...]]:
    """Customer and contact documents of visible customers. Candidates that may have matched
    through postal code or city (details) must, where the organisation may not see the
    customer's contact details, match `names_only` as well; postal code and city come back
    only where it may see them."""
    details_visible = policy.customer_details_visible_to(org_id)
    stmt = (
        sa.select(
            _docs.id,
            _docs.kind,
            _docs.customer_id,
            _docs.contact_id,
            _docs.case_id,
            _docs.title,
            _docs.names,
            sa.case((details_visible, _docs.details), else_="").label("details"),
            Customer.name.label("customer_name"),
            sa.case((details_visible, Customer.city), else_=_TEXT_NULL).label("city"),
            _TEXT_NULL.label("number"),
            _TEXT_NULL.label("subject"),
            _TEXT_NULL.label("status"),
        )
        .join(Customer, Customer.id == _docs.customer_id)
        .where(
            _docs.id.in_(candidates),
            _docs.kind.in_(("customer", "contact")),
            Customer.merged_into_id.is_(None),
            policy.customer_visible_to(org_id),
        )
    )
    if names_only is not None:
        stmt = stmt.where(sa.or_(details_visible, names_only))
    return stmt.limit(limit)


def _cases(org_id: int, candidates: sa.Select[int], *, limit: int) -> sa.Select[*tuple[Any, ...]]:
    """Case documents of cases the organisation sees (a visible case's customer is visible,
    so candidates narrowed by visible customers hold every visible case)."""
    return (
        sa.select(
            _docs.id,
            _docs.kind,
            _docs.customer_id,
            _docs.contact_id,
            _docs.case_id,
            _docs.title,
            _docs.names,
            sa.literal("").label("details"),
            Customer.name.label("customer_name"),
            _TEXT_NULL.label("city"),
            Case.number,
            Case.subject,
            Case.status,
        )
        .join(Case, Case.id == _docs.case_id)
        .join(Customer, Customer.id == Case.customer_id)
        .where(
            _docs.id.in_(candidates),
            _docs.kind == "case",
            policy.case_visible_to(org_id),
        )
        .limit(limit)
    )


def _union(*selects: sa.Select[*tuple[Any, ...]]) -> sa.CompoundSelect[*tuple[Any, ...]]:
    # SQLite allows no LIMIT on the members of a compound select, so each is wrapped.
    return sa.union_all(*(sa.select(*s.subquery().c) for s in selects))


# --- ranking -----------------------------------------------------------------------------


def _word_score(terms: Sequence[Term], tokens: Sequence[str]) -> float:
    """Mean over the terms of the best match among the record's words (100: a prefix)."""
    if not terms or not tokens:
        return 0.0
    total = 0.0
    for term in terms:
        best = 0.0
        for prefix in term.prefixes:
            for token in tokens:
                best = max(best, 100.0 if token.startswith(prefix) else fuzz.ratio(prefix, token))
        total += best
    return total / len(terms)


def _all_prefixed(terms: Sequence[Term], tokens: Sequence[str]) -> bool:
    return all(any(t.startswith(p) for p in term.prefixes for t in tokens) for term in terms)


def _score(folded_query: str, text: str) -> float:
    return round(float(fuzz.WRatio(folded_query, text)), 1)


def _document_hit(
    row: sa.Row[Any], folded_query: str, terms: Sequence[Term], typo: bool
) -> SearchHit | None:
    """The hit of a candidate document, or None when its match is too loose to show."""
    names = row.names.split()
    details = row.details.split()
    if typo:
        if _word_score(terms, names + details) < TYPO_MIN_SCORE:
            return None
        match = "typo"
    elif _all_prefixed(terms, names):
        match = "name"
    elif _all_prefixed(terms, names + details):
        match = "details"
    else:
        if _word_score(terms, names + details) < SOUND_MIN_SCORE:
            return None
        match = "sound"
    # Postal code and city count only when they were needed for the match, so a customer
    # ranks the same for users with and without access to its contact details.
    score = _score(folded_query, " ".join(names + details if match == "details" else names))
    common: dict[str, Any] = {
        "title": row.title,
        "customer_id": row.customer_id,
        "score": score,
        "match": match,
    }
    if row.kind == "customer":
        return SearchHit(kind="customer", id=row.customer_id, case_id=None, city=row.city, **common)
    if row.kind == "contact":
        return SearchHit(
            kind="contact",
            id=row.contact_id,
            case_id=None,
            customer_name=row.customer_name,
            **common,
        )
    return SearchHit(
        kind="case",
        id=row.case_id,
        case_id=row.case_id,
        customer_name=row.customer_name,
        number=row.number,
        subject=row.subject,
        status=row.status,
        **common,
    )


def _grouped(query: str, hits: Sequence[SearchHit], limit: int) -> SearchResults:
    best: dict[tuple[str, int], SearchHit] = {}
    for hit in hits:
        key = (hit.kind, hit.id)
        if key not in best or hit.score > best[key].score:
            best[key] = hit
    ordered = sorted(best.values(), key=lambda h: (-h.score, fold(h.title), h.id))
    results = SearchResults(query=query)
    groups = {"customer": results.customers, "contact": results.contacts, "case": results.cases}
    for hit in ordered:
        group = groups[hit.kind]
        if len(group) < limit:
            group.append(hit)
    return results


# --- the search --------------------------------------------------------------------------


def search(session: Session, actor: User, q: str, limit: int = DEFAULT_LIMIT) -> SearchResults:
    """The records matching `q` that the actor may see, grouped and ranked (at most `limit`
    per group). An empty or unsearchable query finds nothing."""
    query = " ".join(q.split())[:MAX_QUERY_LENGTH]
    limit = max(1, min(limit, MAX_LIMIT))
    org_id = actor.organization_id
    if not query:
        return SearchResults(query=query)
    if "@" in query:
        return _grouped(query, _by_email(session, org_id, query, limit), limit)
    number = _case_number(query)
    if number is not None:
        return _grouped(query, _by_case_number(session, org_id, number), limit)
    e164 = _phone(query, actor.organization.phone_region)
    if e164 is not None:
        hits = _by_phone(session, org_id, e164, limit)
        # Digits that happen to form a valid number may still be meant as a postal code or
        # case number, so a number nobody visible has is searched as words too.
        if hits:
            return _grouped(query, hits, limit)
    return _grouped(query, _by_words(session, org_id, query, limit), limit)


def _row_limit(limit: int) -> int:
    return max(50, limit * 5)


def _by_words(session: Session, org_id: int, query: str, limit: int) -> list[SearchHit]:
    terms = terms_of(query)
    if not terms:
        return []
    folded = " ".join(t.prefixes[0] for t in terms)
    engine = engine_for(session)
    n = _row_limit(limit)
    # One pass over everything that matches in names, sounds, postal code or city; whether
    # postal code and city may count is decided per customer (see _people).
    visible = None if _sees_many(session, org_id) else _visible_keys(org_id)
    matches = _matches("matches", engine.words(terms, details=True))
    stmt = _union(
        _people(
            org_id,
            _candidates(matches, _PEOPLE, visible),
            names_only=engine.words(terms, details=False),
            limit=n,
        ),
        _cases(org_id, _candidates(matches, _CASES, visible), limit=n),
    )
    hits = [h for row in session.execute(stmt) if (h := _document_hit(row, folded, terms, False))]
    # A name found as typed needs no "did you mean"; the typo pass runs when there are few
    # hits and none of them matched the words as typed.
    typed = any(h.match in ("name", "details") for h in hits)
    if typed or len({(h.kind, h.id) for h in hits}) >= FEW_HITS:
        return hits
    # Typos are looked for in words of letters; numbers are either right or not found.
    spelt = [t.prefixes[0] for t in terms if t.prefixes[0].isalpha() and len(t.prefixes[0]) >= 3]
    if not spelt:
        return hits
    engine.prepare_similar(session)
    similar = _matches("similar", engine.similar(spelt))
    stmt = _union(
        _people(org_id, _candidates(similar, _PEOPLE, visible), names_only=None, limit=n),
        _cases(org_id, _candidates(similar, _CASES, visible), limit=n),
    )
    found = {(h.kind, h.id) for h in hits}
    for row in session.execute(stmt):
        hit = _document_hit(row, folded, terms, True)
        if hit is not None and (hit.kind, hit.id) not in found:
            hits.append(hit)
    return hits


def _contact_point_hits(rows: Sequence[sa.Row[Any]], match: str) -> list[SearchHit]:
    hits = []
    for row in rows:
        common: dict[str, Any] = {
            "customer_id": row.customer_id,
            "case_id": None,
            "score": 100.0,
            "match": match,
        }
        if row.contact_id is None:
            hit = SearchHit(
                kind="customer",
                id=row.customer_id,
                title=row.customer_name,
                city=row.city,
                **common,
            )
        else:
            hit = SearchHit(
                kind="contact",
                id=row.contact_id,
                title=row.contact_name,
                customer_name=row.customer_name,
                **common,
            )
        hits.append(hit)
    return hits


def _contact_point_select(
    table: type[PhoneNumber] | type[EmailAddress], org_id: int
) -> sa.Select[*tuple[Any, ...]]:
    """Owners (customer or contact) of phone numbers or email addresses, limited to customers
    whose contact details the organisation sees (which implies that it sees the customer)."""
    return (
        sa.select(
            table.customer_id,
            table.contact_id,
            Customer.name.label("customer_name"),
            Customer.city,
            Contact.name.label("contact_name"),
        )
        .join(Customer, Customer.id == table.customer_id)
        .outerjoin(Contact, Contact.id == table.contact_id)
        .where(Customer.merged_into_id.is_(None), policy.customer_details_visible_to(org_id))
    )


def _by_phone(session: Session, org_id: int, e164: str, limit: int) -> list[SearchHit]:
    stmt = _contact_point_select(PhoneNumber, org_id).where(PhoneNumber.e164 == e164)
    rows = session.execute(stmt.limit(_row_limit(limit))).all()
    return _contact_point_hits(rows, "phone")


def _by_email(session: Session, org_id: int, query: str, limit: int) -> list[SearchHit]:
    text = query.strip().lower()
    try:
        condition = EmailAddress.email == normalize_email(text)
    except InvalidValue:
        condition = EmailAddress.email.like(_like_prefix(text), escape="\\")
    stmt = _contact_point_select(EmailAddress, org_id).where(condition)
    rows = session.execute(stmt.limit(_row_limit(limit))).all()
    return _contact_point_hits(rows, "email")


def _by_case_number(session: Session, org_id: int, number: str) -> list[SearchHit]:
    stmt = (
        sa.select(Case.id, Case.customer_id, Case.number, Case.subject, Case.status, Customer.name)
        .join(Customer, Customer.id == Case.customer_id)
        .where(Case.number == number, policy.case_visible_to(org_id))
    )
    return [
        SearchHit(
            kind="case",
            id=row.id,
            title=f"{row.number} {row.subject}",
            customer_id=row.customer_id,
            case_id=row.id,
            score=100.0,
            match="number",
            customer_name=row.name,
            number=row.number,
            subject=row.subject,
            status=row.status,
        )
        for row in session.execute(stmt)
    ]
