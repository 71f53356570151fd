"""Benchmark networks built from nothing: `seed_profile(database_url, "S" | "M" | "XS")`.

A profile fills an EMPTY, migrated PostgreSQL database with a whole partner network:

- organisations: three manufacturers, dealers (about one in eight multi-brand, i.e. partner
  of two manufacturers), suppliers (of one to three manufacturers) and a few agencies, each
  with a partnership per manufacturer;
- users: per organisation `admin1@<slug>.bench` and `agent1@<slug>.bench`, sometimes
  `viewer1@…`; manufacturers and the ten largest dealers have more agents (`agent2` …).
  All share one password, `bench` (one argon2 hash, computed once), and have telephone
  extensions from "10" up;
- customers owned by dealers (85 %, Zipf-skewed by dealer rank: dealer 1 is the largest)
  and manufacturers (15 %), with German, Austrian and Swiss names, addresses, E.164
  numbers (mobile or with the city's area code), emails, contacts at companies and a few
  duplicates (the same person entered again by another organisation);
- cases in the order they were opened over the last two years (ids, numbers and activity
  ids follow time): owner is the customer's owner or its manufacturer, handler the owner
  or a partner of its value chain; shares only within the owner's value chains; timeline
  entries of every kind and audience (with `timeline_audiences` rows); one `case.created`
  activity per case; search documents and duplicate keys exactly as the app writes them.

Everything happens in one transaction (an interrupted run leaves the database empty): the
tables are truncated (they are empty: the seeder refuses any database holding rows), their
secondary indexes, unique constraints and foreign keys dropped, the rows copied in frozen
(COPY FREEZE, so the closing VACUUM has nothing to do; each batch in a background thread
while the next one is generated), then indexes and constraints restored, case number
counters and id sequences advanced past the data, the statistics gathered and `derive`
run. `seed_profile` returns handy facts (largest dealer, an agent's email there, sample
caller numbers in several formats) for the benchmarks; `portal bench seed` writes them to
`bench/out/seed-<profile>.json`.

Runs are deterministic for a given profile and random seed (timestamps are relative to now).
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, TypeVar

import phonenumbers
import psycopg

from bench.seed import (
    CASE_SUBJECTS,
    CITIES,
    COMPANY_FORMS,
    COMPANY_TRADES,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PRIORITIES,
    STREETS,
    Phones,
    Progress,
    conninfo,
    copy_rows,
    drop_foreign_keys,
    drop_indexes,
    drop_unique_constraints,
    email_local,
    name_doc,
    place_doc,
)
from shared_records.search_index import _case_doc, _customer_docs

PASSWORD = "bench"  # noqa: S105 - documented benchmark credential
DEFAULT_RANDOM_SEED = 20261123


@dataclass(frozen=True)
class Profile:
    """Sizes of a benchmark network; shares and entries per case are means."""

    name: str
    organizations: int
    customers: int
    cases: int
    shares_per_case: float
    entries_per_case: float
    batch: int = 20_000


PROFILES: dict[str, Profile] = {
    # For tests: seconds, yet every kind of row.
    "XS": Profile("XS", 30, customers=2_000, cases=2_000, shares_per_case=1.5, entries_per_case=3),
    # CI smoke.
    "S": Profile("S", 500, customers=100_000, cases=100_000, shares_per_case=2, entries_per_case=5),
    # The figures: about 2,000,000 shares and 5,000,000 timeline entries.
    "M": Profile(
        "M", 5_000, customers=1_000_000, cases=1_000_000, shares_per_case=2, entries_per_case=5
    ),
}

# The tables a profile fills, and those of them with an `id` sequence.
FILLED = (
    "organizations",
    "partnerships",
    "users",
    "customers",
    "contacts",
    "phone_numbers",
    "email_addresses",
    "search_documents",
    "cases",
    "case_shares",
    "timeline_entries",
    "timeline_audiences",
    "activities",
    "case_number_counters",
)
WITH_ID_SEQUENCE = tuple(
    t for t in FILLED if t not in ("timeline_audiences", "case_number_counters")
)

# Statements that rebuild derived tables from the seeded rows, run in order by `derive`
# inside the seeding transaction, after indexes, foreign keys and statistics are in place.
# The extension point for precomputed data: a materialised visibility table, for instance,
# appends its `INSERT INTO … SELECT …` here (and its table's indexes after it, which are
# faster to build once filled). Nothing is derived yet beyond what the seeder writes itself
# (duplicate keys, search documents, case number counters).
DERIVED_STATEMENTS: list[str] = [
    # The materialised visibility rule (migration 0007), filled in one pass; its triggers
    # are off during the load (see TRIGGERS_OFF_DURING_LOAD) and back on afterwards.
    """
    INSERT INTO case_visibility (organization_id, case_id, customer_id, last_activity_at, details)
    SELECT v.org, c.id, c.customer_id, c.last_activity_at, bool_or(v.d)
    FROM (
        SELECT id AS case_id, owner_organization_id AS org, true AS d FROM cases
        UNION ALL SELECT id, handling_organization_id, true FROM cases
        UNION ALL SELECT case_id, organization_id, include_contact_details FROM case_shares
    ) AS v JOIN cases AS c ON c.id = v.case_id
    GROUP BY v.org, c.id, c.customer_id, c.last_activity_at
    """,
    "ANALYZE case_visibility",
]
# Tables whose row triggers maintain derived data (case_visibility): switched off for the
# bulk load, since DERIVED_STATEMENTS rebuilds that data in one pass.
TRIGGERS_OFF_DURING_LOAD = ("cases", "case_shares")

# (slug, name, phone region, brand weight)
MANUFACTURERS = (
    ("hansewerk", "Hansewerk Automobile AG", "DE", 50),
    ("alpenmotor", "Alpenmotor Fahrzeugbau GmbH", "AT", 30),
    ("rheintal", "Rheintal Motoren AG", "CH", 20),
)
REGION_WEIGHTS = {"DE": 75, "AT": 15, "CH": 10}
MULTI_BRAND_SHARE = 0.12
MANUFACTURER_CUSTOMER_SHARE = 0.15
OUTSIDE_LINE_SHARE = 0.3
DUPLICATE_SHARE = 0.02
COMPANY_SHARE = 0.1
CONTACT_SHARE = 0.6
SECOND_PHONE_SHARE = 0.25
EMAIL_SHARE = 0.55
BIG_DEALERS = 10
DEALER_FORMS = ("Autohaus {} GmbH", "Autohaus {}", "{} Automobile GmbH", "Autozentrum {} KG")
SUPPLIER_TRADES = (
    "Bremsen",
    "Karosserieteile",
    "Fahrzeugelektronik",
    "Reifen",
    "Autoglas",
    "Antriebstechnik",
    "Sitzsysteme",
    "Lichttechnik",
    "Lacke",
    "Filtertechnik",
)
CONTACT_TITLES = ("Fuhrparkleitung", "Einkauf", "Geschäftsführung", "Buchhaltung", "Werkstatt")
DESCRIPTIONS = (
    "",
    "",
    "Kunde bittet um Rückruf am Vormittag.",
    "Fahrzeug 14 Monate alt, Kilometerstand etwa 23.000.",
    "Termin in der Werkstatt bereits vereinbart.",
    "Kunde ist Stammkunde, Kulanz prüfen.",
)
INTERACTION_BODIES = (
    "Kunde angerufen, Rückruf vereinbart.",
    "Anruf vom Kunden, Anliegen aufgenommen.",
    "E-Mail mit Angebot verschickt.",
    "Kunde hat Unterlagen per E-Mail geschickt.",
    "Anfrage über das Kontaktformular.",
    "Kunde war vor Ort, Fahrzeug angesehen.",
    "Chat: Frage zur Lieferzeit beantwortet.",
    "Brief mit Kostenvoranschlag versandt.",
)
NOTE_BODIES = (
    "Teil bestellt, Lieferung in drei Tagen.",
    "Intern: Kulanz bis 300 EUR freigegeben.",
    "Bitte Bremsbeläge zur Analyse einsenden.",
    "Werkstatttermin am Donnerstag bestätigt.",
    "Rückfrage beim Hersteller gestellt.",
    "Kunde zufrieden, Fall kann geschlossen werden.",
    "Gutachten angefordert.",
)
CHANNELS = ("phone", "phone", "phone", "email", "email", "web", "letter", "visit", "chat")
OPEN = ("new", "open", "waiting")
DAY = 86400.0
_T = TypeVar("_T")


def _columns(names: str) -> list[str]:
    return names.split()


# --- the network -----------------------------------------------------------------------------


@dataclass
class _Org:
    id: int
    slug: str
    name: str
    kind: str
    region: str
    prefix: str | None
    rank: int = -1  # dealers: by size, 0 = largest
    manufacturers: tuple[int, ...] = ()  # whose value chains it belongs to
    workers: list[tuple[int, str]] = field(default_factory=list)  # admins, agents: (id, name)


@dataclass
class _Chain:
    """The partners in the value chains of some manufacturers, by kind."""

    dealers: list[int]
    dealer_cum: list[float]
    suppliers: list[int]
    agencies: list[int]


@dataclass
class _Network:
    orgs: list[_Org]
    partnerships: list[tuple[int, int, str]]
    users: list[tuple[Any, ...]]
    chains: dict[int, _Chain]
    owners: list[int]
    owner_cum: list[float]
    dealers_of: dict[int, list[int]]
    dealer_cum_of: dict[int, list[float]]

    def org(self, org_id: int) -> _Org:
        return self.orgs[org_id - 1]


def _slug_part(text: str) -> str:
    return email_local(text).replace(".", "-")


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def _network(
    rng: random.Random, profile: Profile, password_hash: str, now: dt.datetime
) -> _Network:
    count = profile.organizations
    agencies = max(1, count // 250)
    suppliers = max(2, round(count * 0.12))
    dealers = count - len(MANUFACTURERS) - agencies - suppliers
    if dealers < 2:
        raise ValueError(f"profile {profile.name}: too few organisations for a network")
    orgs: list[_Org] = []

    def add(slug: str, name: str, kind: str, region: str, rank: int = -1) -> _Org:
        prefix = "0" if rng.random() < OUTSIDE_LINE_SHARE else None
        org = _Org(len(orgs) + 1, slug, name, kind, region, prefix, rank)
        orgs.append(org)
        return org

    makers = [add(slug, name, "manufacturer", region) for slug, name, region, _w in MANUFACTURERS]
    for maker in makers:
        maker.manufacturers = (maker.id,)
    brand_weights = [w for *_rest, w in MANUFACTURERS]
    partnerships: list[tuple[int, int, str]] = []

    def partner(org: _Org, role: str, how_many: int) -> None:
        chosen: list[int] = []
        while len(chosen) < how_many:
            maker = rng.choices(makers, brand_weights)[0].id
            if maker not in chosen:
                chosen.append(maker)
        org.manufacturers = tuple(sorted(chosen))
        partnerships.extend((maker, org.id, role) for maker in org.manufacturers)

    for rank in range(dealers):
        last = rng.choice(LAST_NAMES)
        org = add(
            f"autohaus-{_slug_part(last)}-{rank + 1}",
            rng.choice(DEALER_FORMS).format(last),
            "dealer",
            _weighted(rng, REGION_WEIGHTS),
            rank,
        )
        # The second-largest dealer is always multi-brand, so the benchmarks have a big one.
        partner(org, "dealer", 2 if rank == 1 or rng.random() < MULTI_BRAND_SHARE else 1)
    for number in range(1, suppliers + 1):
        last, trade = rng.choice(LAST_NAMES), rng.choice(SUPPLIER_TRADES)
        org = add(
            f"{_slug_part(last)}-{_slug_part(trade)}-{number}",
            f"{trade} {last} {rng.choice(COMPANY_FORMS['DE'])}",
            "supplier",
            _weighted(rng, REGION_WEIGHTS),
        )
        partner(org, "supplier", rng.choices((1, 2, 3), (60, 30, 10))[0])
    for number in range(1, agencies + 1):
        last = rng.choice(LAST_NAMES)
        org = add(
            f"agentur-{_slug_part(last)}-{number}",
            f"Agentur {last} Marketing GmbH",
            "agency",
            "DE",
        )
        partner(org, "agency", rng.choices((1, 2), (70, 30))[0])

    users = _users(rng, orgs, password_hash, now)
    dealer_weight = {o.id: 1.0 / (o.rank + 2) for o in orgs if o.kind == "dealer"}
    chains = _chains(orgs, partnerships, dealer_weight)
    # Customers: manufacturers 15 % by brand, dealers the rest Zipf-skewed by rank.
    owners = [o.id for o in makers] + list(dealer_weight)
    brand_total = sum(brand_weights)
    dealer_total = sum(dealer_weight.values())
    weights = [MANUFACTURER_CUSTOMER_SHARE * w / brand_total for w in brand_weights] + [
        (1 - MANUFACTURER_CUSTOMER_SHARE) * w / dealer_total for w in dealer_weight.values()
    ]
    dealers_of: dict[int, list[int]] = {}
    dealer_cum_of: dict[int, list[float]] = {}
    for maker in makers:
        own = [p for m, p, role in partnerships if m == maker.id and role == "dealer"]
        dealers_of[maker.id] = own
        dealer_cum_of[maker.id] = list(itertools.accumulate(dealer_weight[d] for d in own))
    return _Network(
        orgs,
        partnerships,
        users,
        chains,
        owners,
        list(itertools.accumulate(weights)),
        dealers_of,
        dealer_cum_of,
    )


def _users(
    rng: random.Random, orgs: Sequence[_Org], password_hash: str, now: dt.datetime
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    created = now - dt.timedelta(days=3 * 365)
    for org in orgs:
        if org.kind == "manufacturer":
            agents, viewer = 10, True
        elif org.kind == "dealer" and org.rank < BIG_DEALERS:
            agents, viewer = 5, True
        else:
            agents, viewer = 1, rng.random() < 1 / 3
        people = [("admin", 1)] + [("agent", n) for n in range(1, agents + 1)]
        if viewer:
            people.append(("viewer", 1))
        for extension, (role, number) in enumerate(people, 10):
            user_id = len(rows) + 1
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            email = f"{role}{number}@{org.slug}.bench"
            rows.append(
                (
                    *(user_id, org.id, email, name, role, "person", True, password_hash),
                    *(False, str(extension), created),
                )
            )
            if role != "viewer":
                org.workers.append((user_id, name))
    return rows


USER_COLUMNS = _columns(
    "id organization_id email name role kind active password_hash totp_enabled phone_extension "
    "created_at"
)


def _chains(
    orgs: Sequence[_Org], partnerships: Sequence[tuple[int, int, str]], weight: dict[int, float]
) -> dict[int, _Chain]:
    """Every organisation's value chain (the same object for equal sets of manufacturers)."""
    members: dict[int, list[int]] = {}
    for maker, partner, _role in partnerships:
        members.setdefault(maker, []).append(partner)
    by_set: dict[tuple[int, ...], _Chain] = {}
    chains: dict[int, _Chain] = {}
    for org in orgs:
        key = org.manufacturers
        if key not in by_set:
            ids = sorted({*key, *(p for m in key for p in members.get(m, []))})
            dealers = [i for i in ids if orgs[i - 1].kind == "dealer"]
            by_set[key] = _Chain(
                dealers=dealers,
                dealer_cum=list(itertools.accumulate(weight[d] for d in dealers)),
                suppliers=[i for i in ids if orgs[i - 1].kind == "supplier"],
                agencies=[i for i in ids if orgs[i - 1].kind == "agency"],
            )
        chains[org.id] = by_set[key]
    return chains


# --- documents, computed once per distinct text ---------------------------------------------


@lru_cache(maxsize=100_000)
def _contact_doc(name: str, title: str) -> tuple[str, str, str]:
    contact = SimpleNamespace(id=0, name=name, position_title=title)
    doc = _customer_docs(SimpleNamespace(id=0, name="", postal_code=None, city=None), [contact])
    return doc[1]["title"], doc[1]["names"], doc[1]["sounds"]


@lru_cache(maxsize=1_000)
def _subject_doc(subject: str) -> tuple[str, str]:
    """The folded subject and its sounds; a case's document is its number's words plus these
    (checked against search_index._case_doc for the first case of each subject)."""
    doc = _case_doc(SimpleNamespace(id=0, customer_id=0, number="C-2000-000000", subject=subject))
    return doc["names"].removeprefix("c 2000 000000 "), doc["sounds"]


_checked_subjects: set[str] = set()


def _case_document(
    doc_id: int, case_id: int, customer_id: int, number: str, subject: str
) -> tuple[Any, ...]:
    folded, sounds = _subject_doc(subject)
    year, serial = number[2:6], number[7:]
    row = (
        *(doc_id, f"case:{case_id}", "case", customer_id, None, case_id),
        *(f"{number} {subject}"[:300], f"c {year} {serial} {folded}", "", sounds),
    )
    if subject not in _checked_subjects:
        real = _case_doc(
            SimpleNamespace(id=case_id, customer_id=customer_id, number=number, subject=subject)
        )
        if row[1:] != tuple(real[c] for c in DOC_COLUMNS[1:]):
            raise AssertionError(f"case document differs from the app's: {row} {real}")
        _checked_subjects.add(subject)
    return row


# --- the load -----------------------------------------------------------------------------

DOC_COLUMNS = _columns("id ref kind customer_id contact_id case_id title names details sounds")
CUSTOMER_COLUMNS = _columns(
    "id owner_organization_id kind name street postal_code city country name_key city_key "
    "version created_at updated_at"
)
CONTACT_COLUMNS = _columns("id customer_id name position_title created_at")
PHONE_COLUMNS = _columns("id customer_id contact_id e164 position")
EMAIL_COLUMNS = _columns("id customer_id contact_id email position")
CASE_COLUMNS = _columns(
    "id number customer_id subject description kind status priority owner_organization_id "
    "handling_organization_id handling_user_id claimed_at claim_renewed_at created_by_user_id "
    "version created_at updated_at last_activity_at"
)
SHARE_COLUMNS = _columns(
    "id case_id organization_id access include_contact_details shared_by_user_id created_at "
    "updated_at"
)
ENTRY_COLUMNS = _columns(
    "id case_id kind channel direction body audience author_user_id organization_id field "
    "duration_seconds old_value new_value created_at"
)
ACTIVITY_COLUMNS = _columns(
    "id type case_id entry_id organization_id actor_user_id at summary data"
)


class SeedError(RuntimeError):
    """The database cannot take a benchmark network (not PostgreSQL, not migrated, not empty)."""


class _Loader:
    """One seeding run: the connection, the random source and the ids handed out so far.

    The loops below run millions of times: they draw with `random()` and index sequences
    directly instead of `choice`/`randint`, and count ids in plain attributes.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        profile: Profile,
        rng: random.Random,
        now: dt.datetime,
        report: Progress,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.conn = conn
        self.pool = pool
        self.pending: Future[Any] | None = None
        self.profile = profile
        self.rng = rng
        self.now = now
        self.now_ts = now.timestamp()
        self.report = report
        # The last id handed out per table.
        self.last_phone = self.last_email = self.last_contact = self.last_doc = 0
        self.last_share = self.last_entry = 0
        # Per customer (index id - 1): creation time (epoch seconds) and owner.
        self.customer_times: list[float] = []
        self.customer_owner: list[int] = []

    def copy(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        copy_rows(self.conn, table, columns, rows, freeze=True, binary=True)

    def copy_batch(self, tables: Sequence[tuple[str, Sequence[str], Sequence[Any]]]) -> None:
        """COPY one batch's rows in the background, so the server stores them while the
        next batch is generated; the batch before must be in first (bounds the memory)."""
        self.wait()
        self.pending = self.pool.submit(self._copy_all, tables)

    def _copy_all(self, tables: Sequence[tuple[str, Sequence[str], Sequence[Any]]]) -> None:
        for table, columns, rows in tables:
            self.copy(table, columns, rows)

    def wait(self) -> None:
        """Until the batch in flight is stored (its errors are raised here)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    @staticmethod
    def ts(epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC)

    # --- customers ---------------------------------------------------------------------

    def customers(self, net: _Network) -> None:
        rng, profile = self.rng, self.profile
        r = rng.random
        total = profile.customers
        phones = Phones(None, rng)
        regions = {c: [x for x in CITIES if x[0] == c] for c in REGION_WEIGHTS}
        region_cum = {c: list(itertools.accumulate(x[5] for x in v)) for c, v in regions.items()}
        start = self.now_ts - 6 * 365 * DAY
        span = self.now_ts - 3600 - start
        self.customer_times = sorted(start + r() * span for _ in range(total))
        previous: tuple[Any, ...] | None = None
        done = 0
        self.report("customers", 0, total)
        while done < total:
            size = min(profile.batch, total - done)
            customers: list[tuple[Any, ...]] = []
            contacts: list[tuple[Any, ...]] = []
            numbers: list[tuple[Any, ...]] = []
            emails: list[tuple[Any, ...]] = []
            docs: list[tuple[Any, ...]] = []
            owners = rng.choices(net.owners, cum_weights=net.owner_cum, k=size)
            for customer_id, owner in enumerate(owners, done + 1):
                created = self.ts(self.customer_times[customer_id - 1])
                self.customer_owner.append(owner)
                if previous is not None and r() < DUPLICATE_SHARE:
                    # The same person again, entered by another organisation.
                    name, country, city, postal_code, street, e164, email = previous
                    if r() < 0.5:
                        name = name.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")
                    kind = "person"
                else:
                    region = net.orgs[owner - 1].region
                    country = region if r() < 0.85 else _weighted(rng, REGION_WEIGHTS)
                    place = rng.choices(regions[country], cum_weights=region_cum[country])[0]
                    _c, city, low, high, area, _w = place
                    code = low + int(r() * (high - low + 1))
                    postal_code = f"{code:05d}" if country == "DE" else f"{code:04d}"
                    street = f"{_pick(r, STREETS)} {1 + int(r() * 180)}"
                    first, last = _pick(r, FIRST_NAMES), _pick(r, LAST_NAMES)
                    if r() < COMPANY_SHARE:
                        kind = "company"
                        trade, form = _pick(r, COMPANY_TRADES), _pick(r, COMPANY_FORMS[country])
                        name = f"{last} {trade} {form}"
                        local = email_local(f"info.{last}")
                    else:
                        kind = "person"
                        if r() < 0.06:
                            last = f"{last}-{_pick(r, LAST_NAMES)}"
                        name = f"{first} {last}"
                        local = email_local(f"{first}.{last}")
                    e164 = phones.new(country, area)
                    email = None
                    if r() < EMAIL_SHARE:
                        email = f"{local}.{customer_id}@{_pick(r, EMAIL_DOMAINS[country])}"
                    if kind == "person":
                        previous = (name, country, city, postal_code, street, e164, email)
                    if r() < SECOND_PHONE_SHARE:
                        self.last_phone += 1
                        second = phones.new(country, area)
                        numbers.append((self.last_phone, customer_id, None, second, 1))
                    if kind == "company" and r() < CONTACT_SHARE:
                        self.last_contact += 1
                        contact_id = self.last_contact
                        person = f"{_pick(r, FIRST_NAMES)} {_pick(r, LAST_NAMES)}"
                        title = _pick(r, CONTACT_TITLES)
                        contacts.append((contact_id, customer_id, person, title, created))
                        self.last_phone += 1
                        mobile = phones.new(country, area)
                        numbers.append((self.last_phone, customer_id, contact_id, mobile, 0))
                        doc_title, doc_names, doc_sounds = _contact_doc(person, title)
                        self.last_doc += 1
                        docs.append(
                            (
                                *(self.last_doc, f"contact:{contact_id}", "contact", customer_id),
                                *(contact_id, None, doc_title, doc_names, "", doc_sounds),
                            )
                        )
                doc = name_doc(name)
                details, city_key = place_doc(postal_code, city)
                customers.append(
                    (
                        *(customer_id, owner, kind, name, street, postal_code, city, country),
                        *(doc["name_key"], city_key, 1, created, created),
                    )
                )
                self.last_phone += 1
                numbers.append((self.last_phone, customer_id, None, e164, 0))
                if email is not None:
                    self.last_email += 1
                    emails.append((self.last_email, customer_id, None, email, 0))
                self.last_doc += 1
                docs.append(
                    (
                        *(self.last_doc, f"customer:{customer_id}", "customer", customer_id, None),
                        *(None, doc["title"], doc["names"], details, doc["sounds"]),
                    )
                )
            self.copy_batch(
                [
                    ("customers", CUSTOMER_COLUMNS, customers),
                    ("contacts", CONTACT_COLUMNS, contacts),
                    ("phone_numbers", PHONE_COLUMNS, numbers),
                    ("email_addresses", EMAIL_COLUMNS, emails),
                    ("search_documents", DOC_COLUMNS, docs),
                ]
            )
            done += size
            self.report("customers", done, total)
        self.wait()

    # --- cases -------------------------------------------------------------------------

    def cases(self, net: _Network) -> dict[int, int]:
        """Cases with their shares, timeline, audiences, activities and search documents;
        returns the last case number per year."""
        rng, profile = self.rng, self.profile
        total = profile.cases
        start = self.now_ts - 2 * 365 * DAY
        span = self.now_ts - 7200 - start
        opened = sorted(start + rng.random() * span for _ in range(total))
        counters: dict[int, int] = {}
        done = 0
        self.report("cases", 0, total)
        while done < total:
            size = min(profile.batch, total - done)
            batch = _CaseBatch()
            for case_id in range(done + 1, done + size + 1):
                self._case(net, batch, case_id, opened[case_id - 1], counters)
            self.copy_batch(
                [
                    ("cases", CASE_COLUMNS, batch.cases),
                    ("search_documents", DOC_COLUMNS, batch.docs),
                    ("case_shares", SHARE_COLUMNS, batch.shares),
                    ("timeline_entries", ENTRY_COLUMNS, batch.entries),
                    ("timeline_audiences", ["entry_id", "organization_id"], batch.audiences),
                    ("activities", ACTIVITY_COLUMNS, batch.activities),
                ]
            )
            done += size
            self.report("cases", done, total)
        self.wait()
        return counters

    def _case(
        self, net: _Network, out: _CaseBatch, case_id: int, at: float, counters: dict[int, int]
    ) -> None:
        rng, orgs = self.rng, net.orgs
        r = rng.random
        customer_id = 1 + int(r() * bisect.bisect_right(self.customer_times, at))
        owner = orgs[self.customer_owner[customer_id - 1] - 1]
        if owner.kind == "dealer" and r() < 0.1:
            owner = orgs[_pick(r, owner.manufacturers) - 1]
        chain = net.chains[owner.id]
        handler = owner
        if owner.kind == "manufacturer":
            if r() < 0.5 and net.dealers_of[owner.id]:
                dealers, cum = net.dealers_of[owner.id], net.dealer_cum_of[owner.id]
                handler = orgs[rng.choices(dealers, cum_weights=cum)[0] - 1]
        elif (pick := r()) < 0.04:
            handler = orgs[_pick(r, owner.manufacturers) - 1]
        elif pick < 0.08:
            handler = orgs[rng.choices(chain.dealers, cum_weights=chain.dealer_cum)[0] - 1]
        created = self.ts(at)
        year = created.year
        counters[year] = serial = counters.get(year, 0) + 1
        number = f"C-{year}-{serial:06d}"
        kind = _pick(r, KINDS)
        subject = _pick(r, CASE_SUBJECTS[kind])
        if (self.now_ts - at) / DAY > 90:
            status = "closed" if (pick := r()) < 0.6 else "resolved" if pick < 0.95 else "open"
        else:
            status = _pick(r, STATUSES_RECENT)
        # Activity stays within weeks of opening; long-running cases are rare.
        first = at + 60
        last = first + min(self.now_ts - 120 - at, rng.expovariate(1 / (8 * DAY)))
        count = 1 + int(r() * (2 * self.profile.entries_per_case - 1))
        times = [first, *sorted(first + r() * (last - first) for _ in range(count - 1))]
        last_at = self.ts(times[-1])
        creator_id, creator_name = _pick(r, owner.workers)
        handling_user = claimed = None
        if status in OPEN and r() < 0.3:
            handling_user = _pick(r, handler.workers)[0]
            claimed = self.ts(at + 600)
        out.cases.append(
            (
                *(case_id, number, customer_id, subject, _pick(r, DESCRIPTIONS), kind, status),
                *(_pick(r, PRIORITIES), owner.id, handler.id, handling_user, claimed, claimed),
                *(creator_id, 1, created, last_at, last_at),
            )
        )
        self.last_doc += 1
        out.docs.append(_case_document(self.last_doc, case_id, customer_id, number, subject))
        out.activities.append(
            (
                *(case_id, "case.created", case_id, None, owner.id, creator_id, created),
                *(
                    f"{creator_name} opened {number}: {subject}"[:300],
                    f'{{"case_number": "{number}"}}',
                ),
            )
        )
        # Shares: only within the owner's value chains, never with owner or handler.
        seeing = [owner.id] if handler is owner else [owner.id, handler.id]
        insiders = len(seeing)
        writers = list(seeing)
        wanted = int(r() * (2 * self.profile.shares_per_case + 1))
        for _attempt in range(2 * wanted):
            if len(seeing) - insiders >= wanted:
                break
            target = self._share_target(owner, chain)
            if target is None or target in seeing:
                continue
            seeing.append(target)
            access = "read" if (pick := r()) < 0.35 else "comment" if pick < 0.8 else "edit"
            if access != "read":
                writers.append(target)
            shared = self.ts(min(times[-1], at + 300 + r() * DAY))
            self.last_share += 1
            out.shares.append(
                (
                    *(self.last_share, case_id, target, access, r() < 0.5, creator_id),
                    *(shared, shared),
                )
            )
        for index, entry_at in enumerate(times):
            self._entry(orgs, out, case_id, index, entry_at, writers, seeing, creator_id)

    def _share_target(self, owner: _Org, chain: _Chain) -> int | None:
        rng = self.rng
        r = rng.random
        pick = r()
        if owner.kind == "dealer":
            if pick < 0.45:
                return _pick(r, owner.manufacturers)
            if pick < 0.7:
                return _pick(r, chain.suppliers) if chain.suppliers else None
            if pick < 0.97:
                return rng.choices(chain.dealers, cum_weights=chain.dealer_cum)[0]
            return _pick(r, chain.agencies) if chain.agencies else None
        if pick < 0.7 and chain.dealers:
            return rng.choices(chain.dealers, cum_weights=chain.dealer_cum)[0]
        if pick < 0.95 and chain.suppliers:
            return _pick(r, chain.suppliers)
        return _pick(r, chain.agencies) if chain.agencies else None

    def _entry(
        self,
        orgs: list[_Org],
        out: _CaseBatch,
        case_id: int,
        index: int,
        at: float,
        writers: list[int],
        seeing: list[int],
        creator_id: int,
    ) -> None:
        r = self.rng.random
        self.last_entry += 1
        entry_id = self.last_entry
        pick = r()
        if index == 0:
            author, org_id = creator_id, writers[0]
        else:
            if pick < 0.6 or len(writers) == 1:
                org_id = writers[0]
            else:
                org_id = writers[1] if pick < 0.8 else _pick(r, writers)
            author = _pick(r, orgs[org_id - 1].workers)[0]
        pick = r()
        kind = "interaction" if index == 0 or pick < 0.45 else "note" if pick < 0.85 else "change"
        channel = direction = field_name = old = new = duration = None
        body = ""
        audience = "shared"
        if kind == "change":
            field_name = "status"
            old, new = _pick(r, STATUS_CHANGES)
        else:
            if kind == "interaction":
                channel = _pick(r, CHANNELS)
                direction = "in" if index == 0 or r() < 0.5 else "out"
                body = _pick(r, INTERACTION_BODIES)
                if channel == "phone":
                    duration = 20 + int(r() * 900)
            else:
                body = _pick(r, NOTE_BODIES)
            pick = r()
            if pick < 0.3:
                audience = "internal"
            elif pick < 0.4 and len(seeing) > 1:
                audience = "organizations"
                others = [o for o in seeing if o != org_id]
                named = {org_id, *self.rng.sample(others, min(len(others), 1 + int(r() * 2)))}
                out.audiences.extend((entry_id, o) for o in sorted(named))
        out.entries.append(
            (
                *(entry_id, case_id, kind, channel, direction, body, audience, author, org_id),
                *(field_name, duration, old, new, self.ts(at)),
            )
        )


def _pick(r: Callable[[], float], items: Sequence[_T]) -> _T:
    """`random.choice` without its overhead (the seeder calls it tens of millions of times)."""
    return items[int(r() * len(items))]


KINDS = tuple(CASE_SUBJECTS)
STATUSES_RECENT = ("new", "new", "open", "open", "open", "waiting", "waiting", "resolved", "closed")
STATUS_CHANGES = (("new", "open"), ("open", "waiting"), ("waiting", "open"), ("open", "resolved"))


@dataclass
class _CaseBatch:
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    docs: list[tuple[Any, ...]] = field(default_factory=list)
    shares: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    audiences: list[tuple[Any, ...]] = field(default_factory=list)
    activities: list[tuple[Any, ...]] = field(default_factory=list)


# --- the run ---------------------------------------------------------------------------------


def seed_profile(
    database_url: str,
    profile: str | Profile,
    *,
    random_seed: int = DEFAULT_RANDOM_SEED,
    argon2_profile: str = "default",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build the profile's network in the empty, migrated PostgreSQL database at
    `database_url`; return facts about it (see the module docstring).

    Raises SeedError (nothing written) when the URL is not PostgreSQL, the schema is not
    current or any table holds rows. `progress(phase, done, total)` is called per batch.
    """
    from auth.passwords import hash_password

    chosen = PROFILES[profile.upper()] if isinstance(profile, str) else profile
    report: Progress = progress or (lambda _phase, _done, _total: None)
    try:
        info = conninfo(database_url)
    except ValueError as exc:
        raise SeedError(f"benchmark networks need PostgreSQL ({exc})") from None
    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        phases[name] = round(time.monotonic() - since, 2)
        return time.monotonic()

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rng = random.Random(f"{random_seed}:{chosen.name}")
    with psycopg.connect(info) as conn:
        _claim_empty_database(conn)
        for table in TRIGGERS_OFF_DURING_LOAD:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        conn.execute("SET LOCAL work_mem = '256MB'")
        indexes = drop_indexes(conn, FILLED)
        foreign_keys = drop_foreign_keys(conn, FILLED)
        # Unique constraints after the foreign keys (which may rely on them), back before.
        restore = drop_unique_constraints(conn, FILLED) + foreign_keys
        mark = time.monotonic()
        network = _network(rng, chosen, hash_password(PASSWORD, argon2_profile), now)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy") as pool:
            loader = _Loader(conn, chosen, rng, now, report, pool)
            _copy_network(loader, network)
            mark = phase("organizations and users", mark)
            loader.customers(network)
            mark = phase("customers", mark)
            counters = loader.cases(network)
        for year, last_value in sorted(counters.items()):
            conn.execute(
                "INSERT INTO case_number_counters (year, last_value) VALUES (%s, %s)",
                (year, last_value),
            )
        mark = phase("cases", mark)
        for number, (_name, definition) in enumerate(indexes):
            report("indexes", number, len(indexes))
            conn.execute(definition)
        report("indexes", len(indexes), len(indexes))
        mark = phase("indexes", mark)
        for number, statement in enumerate(restore):
            report("constraints", number, len(restore))
            conn.execute(statement)
        report("constraints", len(restore), len(restore))
        mark = phase("constraints", mark)
        for table in WITH_ID_SEQUENCE:
            highest = f"SELECT coalesce(max(id), 0) + 1 FROM {table}"  # noqa: S608 - fixed names
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), ({highest}), false)", (table,)
            )
        conn.execute(f"ANALYZE {', '.join(FILLED)}")
        mark = phase("analyze", mark)
        derive(conn, report)
        for table in TRIGGERS_OFF_DURING_LOAD:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        mark = phase("derive", mark)
        conn.commit()
    report("vacuum", 0, 1)
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        mark = phase("vacuum", mark)
        report("vacuum", 1, 1)
        facts = _facts(conn, chosen, network, random_seed)
    facts["phases"] = phases
    facts["seconds"] = round(time.monotonic() - started, 1)
    return facts


def derive(conn: psycopg.Connection[Any], progress: Progress | None = None) -> None:
    """Rebuild the derived tables from the seeded rows: DERIVED_STATEMENTS in order."""
    report: Progress = progress or (lambda _phase, _done, _total: None)
    for number, statement in enumerate(DERIVED_STATEMENTS):
        report("derive", number, len(DERIVED_STATEMENTS))
        conn.execute(statement)
    report("derive", len(DERIVED_STATEMENTS), len(DERIVED_STATEMENTS))


def _claim_empty_database(conn: psycopg.Connection[Any]) -> None:
    """Check schema and emptiness, then truncate every table (all empty) so COPY may freeze."""
    from portal.migrate import head_revision

    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
    ]
    if "alembic_version" not in tables:
        raise SeedError("the database has no schema: run `portal db upgrade` first")
    current = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    if current is None or current[0] != head_revision():
        raise SeedError(
            f"the database schema is at {current[0] if current else 'nothing'}, the code at "
            f"{head_revision()}: run `portal db upgrade` first"
        )
    tables.remove("alembic_version")
    quoted = ", ".join(f'"{t}"' for t in tables)
    conn.execute(f"LOCK TABLE {quoted} IN ACCESS EXCLUSIVE MODE")
    holding = [
        t
        for t in tables
        if conn.execute(f'SELECT EXISTS (SELECT 1 FROM "{t}")').fetchone() == (True,)  # noqa: S608
    ]
    if holding:
        raise SeedError(
            "benchmark networks go into an empty database only; these tables hold rows: "
            + ", ".join(holding)
            + " (create a new database and run `portal db upgrade`)"
        )
    conn.execute(f"TRUNCATE {quoted}")


def _copy_network(loader: _Loader, net: _Network) -> None:
    created = loader.now - dt.timedelta(days=6 * 365)
    loader.copy(
        "organizations",
        _columns(
            "id name slug kind phone_region outside_line_prefix active require_totp created_at"
        ),
        [
            (o.id, o.name, o.slug, o.kind, o.region, o.prefix, True, False, created)
            for o in net.orgs
        ],
    )
    loader.copy(
        "partnerships",
        _columns("id manufacturer_id partner_id role active created_at"),
        [(n, m, p, role, True, created) for n, (m, p, role) in enumerate(net.partnerships, 1)],
    )
    loader.copy("users", USER_COLUMNS, net.users)


# --- facts for the benchmarks ------------------------------------------------------------------


def _visible_cases(conn: psycopg.Connection[Any], org_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM (SELECT id FROM cases WHERE owner_organization_id = %(o)s"
        " UNION SELECT id FROM cases WHERE handling_organization_id = %(o)s"
        " UNION SELECT case_id FROM case_shares WHERE organization_id = %(o)s) AS visible",
        {"o": org_id},
    ).fetchone()
    return int(row[0]) if row else 0


def _org_facts(conn: psycopg.Connection[Any], org: _Org) -> dict[str, Any]:
    owned = conn.execute(
        "SELECT count(*) FROM cases WHERE owner_organization_id = %s", (org.id,)
    ).fetchone()
    return {
        "id": org.id,
        "slug": org.slug,
        "name": org.name,
        "kind": org.kind,
        "phone_region": org.region,
        "outside_line_prefix": org.prefix,
        "manufacturer_ids": list(org.manufacturers),
        "admin_email": f"admin1@{org.slug}.bench",
        "agent_email": f"agent1@{org.slug}.bench",
        "agent_extension": "11",
        "owned_cases": int(owned[0]) if owned else 0,
        "visible_cases": _visible_cases(conn, org.id),
    }


def _facts(
    conn: psycopg.Connection[Any], profile: Profile, net: _Network, random_seed: int
) -> dict[str, Any]:
    dealers = sorted((o for o in net.orgs if o.kind == "dealer"), key=lambda o: o.rank)
    multi = next(o for o in dealers if len(o.manufacturers) > 1)
    largest = dealers[0]
    counts = {
        table: int(row[0])
        for table in FILLED
        if (row := conn.execute(f"SELECT count(*) FROM {table}").fetchone())  # noqa: S608
    }
    sizes = {
        table: round(int(row[0]) / 2**20, 1)
        for table in FILLED
        if (row := conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone())
    }
    callers = []
    for customer_id, name, e164 in conn.execute(
        "SELECT c.id, c.name, p.e164 FROM customers c JOIN phone_numbers p"
        " ON p.customer_id = c.id AND p.contact_id IS NULL AND p.position = 0"
        " WHERE c.owner_organization_id = %s ORDER BY c.id LIMIT 5",
        (largest.id,),
    ):
        number = phonenumbers.parse(e164)
        callers.append(
            {
                "customer_id": customer_id,
                "name": name,
                "e164": e164,
                "national": phonenumbers.format_number(
                    number, phonenumbers.PhoneNumberFormat.NATIONAL
                ),
                "international": phonenumbers.format_number(
                    number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
                ),
            }
        )
    kinds: dict[str, int] = {}
    for org in net.orgs:
        kinds[org.kind] = kinds.get(org.kind, 0) + 1
    return {
        "profile": profile.name,
        "random_seed": random_seed,
        "password": PASSWORD,
        "emails": "{role}{n}@{slug}.bench: admin1, agent1 (agent1..agent10 at manufacturers, "
        "agent1..agent5 at the ten largest dealers), sometimes viewer1; extensions from 10",
        "organizations": {
            **kinds,
            "multi_brand_dealers": sum(1 for o in dealers if len(o.manufacturers) > 1),
        },
        "counts": counts,
        "sizes_mb": sizes,
        "largest_dealer": _org_facts(conn, largest),
        "largest_multi_brand_dealer": _org_facts(conn, multi),
        "median_dealer": _org_facts(conn, dealers[len(dealers) // 2]),
        "manufacturers": [_org_facts(conn, o) for o in net.orgs if o.kind == "manufacturer"],
        "supplier": _org_facts(conn, next(o for o in net.orgs if o.kind == "supplier")),
        "callers_of_largest_dealer": callers,
    }


def progress_printer(echo: Callable[[str], None]) -> Progress:
    """A `Progress` that prints each phase's batches with rows per second."""
    started: dict[str, float] = {}

    def show(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        since = started.setdefault(phase, now)
        rate = done / (now - since) if now > since else 0.0
        if phase in ("customers", "cases") and done:
            echo(f"{phase}: {done:,}/{total:,} ({rate:,.0f} rows/s)")
        elif done == total:
            echo(f"{phase}: {total:,} done in {now - since:.1f} s")

    return show
