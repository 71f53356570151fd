"""Bulk seeding of benchmark data: many customers and cases in a PostgreSQL database, fast.

`seed(database_url, customers=500_000)` tops the database up to that many customers (and by
default one case for every fifth of them), spread over the organisations already there (the
demo network: Nordwerk about 40 %, the rest spread). Each new customer gets one unique phone
number in E.164 (German, Austrian or Swiss; mobile or landline with the city's area code),
about half of them an email address, street, postal code and city, the folded duplicate keys
and the same search documents the session listener would write (`search_index` builds them).
Cases get numbers like C-2025-004711 from the per-year counters, which are advanced so the
application keeps numbering after them; some are shared along the value chain.

Rows go in through COPY in one transaction: an interrupted run leaves nothing behind, and a
second run finds the totals reached and skips. Large batches drop the secondary indexes of
the filled tables and build them again at the end (faster than updating them row by row).
The tables are vacuumed and analysed afterwards.

Whole benchmark networks in an empty database (organisations, users, shares, timelines)
come from `bench.profiles` (`portal bench seed`), which shares the vocabularies and the
COPY helpers below.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import phonenumbers
import psycopg
from anyascii import anyascii
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from shared_records.search_index import _case_doc, _customer_docs
from shared_records.textkeys import fold

Progress = Callable[[str, int, int], None]


def _listed(text: str, separator: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(separator))


DEFAULT_CASE_RATIO = 0.2
# Share of the customers per organisation slug; organisations not named share the rest.
OWNER_WEIGHTS = {"nordwerk": 40, "berger": 18, "kaya": 17, "suedstern": 17, "schulz": 8}
COMPANY_SHARE = 0.1
EMAIL_SHARE = 0.5
MOBILE_SHARE = 0.55
TABLES = (
    "customers",
    "phone_numbers",
    "email_addresses",
    "search_documents",
    "cases",
    "case_shares",
)

FIRST_NAMES = _listed(
    "Jürgen Sabine Klaus Monika Uwe Birgit Stefan Jörg Käthe Günther Björn Dörte Hans-Peter "
    "Anja Sören Ingrid Thomas Michael Andreas Peter Wolfgang Christian Markus Frank Bernd "
    "Martin Matthias Alexander Tobias Florian Sebastian Daniel Jan Lukas Leon Felix "
    "Maximilian Jonas Paul Elias Noah Ben Finn Luca Nico Tim Niklas Simon Fabian Dominik "
    "Manuel Patrick René Rüdiger Dieter Horst Helmut Heinz Manfred Werner Gerhard Karl-Heinz "
    "Ulrich Reinhard Walter Franz Josef Johann Alois Sepp Reto Urs Beat Hansruedi Ueli Jürg "
    "Claudia Susanne Petra Andrea Nicole Stefanie Julia Katharina Anna Lena Laura Lea Sophie "
    "Marie Emma Mia Hannah Lina Ella Clara Johanna Charlotte Greta Frieda Luise Ursula Gisela "
    "Brigitte Renate Helga Karin Gabriele Elke Heike Silke Anke Bärbel Jutta Doris Marlene "
    "Theresia Vreni Regula Margrit Mehmet Ayşe Emre Zeynep Ülkü Özlem Fatma Ali Murat Piotr "
    "Katarzyna Agnieszka Tomasz Giuseppe Francesca Marco Françoise Renée Zoë Chloé Noémie "
    "André Jérôme Małgorzata Dragana Miloš Nikola Ömer Gül Şebnem"
)
LAST_NAMES = _listed(
    "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch "
    "Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann "
    "Hartmann Lange Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler "
    "Herrmann König Walter Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn "
    "Schubert Vogel Friedrich Keller Günther Frank Berger Winkler Roth Beck Lorenz Baumann "
    "Franke Albrecht Schuster Simon Ludwig Böhm Winter Kraus Martin Schumacher Krämer Vogt "
    "Stein Jäger Otto Sommer Groß Seidel Heinrich Brandt Haas Schreiber Graf Schulte Dietrich "
    "Ziegler Kuhn Kühn Pohl Engel Horn Busch Bergmann Thomas Voigt Sauer Arnold Wolff "
    "Pfeiffer Gruber Pichler Steiner Moser Hofer Leitner Eder Wimmer Egger Brunner Reiter "
    "Baumgartner Auer Binder Lechner Wallner Holzer Aigner Ebner Koller Lehner Haider "
    "Schwaiger Mayr Wieser Stadler Gerber Frei Widmer Wyss Suter Bachmann Bühler Kälin "
    "Zürcher Lüthi Bärtschi Hürlimann Nüssli Rüegg Schärer Öztürk Yılmaz Kaya Demir Şahin "  # noqa: RUF001 - Turkish dotless i
    "Çelik Yıldız Aydın Özdemir Arslan Doğan Kowalski Nowak Wiśniewski Lewandowski Rossi "  # noqa: RUF001
    "Bianchi Esposito Russo Nguyen Dubois Lefèvre Brückner Hübner Wölfl Hoß Bäcker Kröger "
    "Gößling Jankowski Petrović Jovanović Hänsel Märklin Dürr Fröhlich Förster Gärtner "
    "Kästner Löffler Mößner Nägele Pfähler Rößler Schlüter Seemüller Stöckl Thürmer Völker "
    "Wörner Zöller Abendroth Achenbach Brandstätter Eichhorn Feuerstein Grünewald Habermann "
    "Kirchhoff Lindemann Mühlbauer Neuhaus Oberländer Rosenthal Sonnleitner Tannenberger "
    "Weidinger Ziegenbein"
)
COMPANY_TRADES = _listed(
    "Haustechnik Logistik Bau Transporte Elektrotechnik Gartenbau Metallbau Autovermietung "
    "Pflegedienst Immobilien Holzbau Bäckerei Fuhrpark Kurierdienst Sanitär Dachdeckerei "
    "Reisen Malerbetrieb Landtechnik Getränkehandel"
)
COMPANY_FORMS = {
    "DE": ["GmbH", "GmbH & Co. KG", "AG", "KG", "e.K.", "OHG"],
    "AT": ["GmbH", "GesmbH", "KG", "OG", "AG"],
    "CH": ["AG", "GmbH", "Sàrl", "& Co."],
}
STREETS = _listed(
    "Hauptstraße|Lindenallee|Bahnhofstraße|Schillerstraße|Gartenweg|Am Mühlbach|Goethestraße|"
    "Kirchgasse|Dorfstraße|Birkenweg|Rosenstraße|Bergstraße|Marktplatz|Wiener Straße|"
    "Seestrasse|Bahnhofstrasse|Industriestraße|Am Sonnenhang|Mozartgasse|Lerchenfeld|"
    "Ringstraße|Waldweg|Schulstraße|Friedhofstraße|Kastanienallee|Tulpenweg",
    "|",
)
# (country, city, first postal code, last postal code, area code without the trunk 0, weight)
CITIES: tuple[tuple[str, str, int, int, str, int], ...] = (
    ("DE", "Berlin", 10115, 14199, "30", 40),
    ("DE", "Hamburg", 20095, 22769, "40", 20),
    ("DE", "München", 80331, 81929, "89", 16),
    ("DE", "Köln", 50667, 51149, "221", 12),
    ("DE", "Frankfurt am Main", 60311, 60599, "69", 8),
    ("DE", "Stuttgart", 70173, 70629, "711", 7),
    ("DE", "Düsseldorf", 40210, 40629, "211", 7),
    ("DE", "Leipzig", 4103, 4357, "341", 6),
    ("DE", "Dortmund", 44135, 44388, "231", 6),
    ("DE", "Essen", 45127, 45359, "201", 6),
    ("DE", "Bremen", 28195, 28779, "421", 6),
    ("DE", "Dresden", 1067, 1328, "351", 6),
    ("DE", "Hannover", 30159, 30669, "511", 6),
    ("DE", "Nürnberg", 90402, 90491, "911", 6),
    ("DE", "Duisburg", 47051, 47279, "203", 5),
    ("DE", "Bochum", 44787, 44894, "234", 4),
    ("DE", "Wuppertal", 42103, 42399, "202", 4),
    ("DE", "Bielefeld", 33602, 33739, "521", 4),
    ("DE", "Bonn", 53111, 53229, "228", 4),
    ("DE", "Münster", 48143, 48167, "251", 4),
    ("DE", "Mannheim", 68159, 68309, "621", 4),
    ("DE", "Karlsruhe", 76131, 76229, "721", 4),
    ("DE", "Augsburg", 86150, 86199, "821", 4),
    ("DE", "Wiesbaden", 65183, 65207, "611", 3),
    ("DE", "Mönchengladbach", 41061, 41239, "2161", 3),
    ("DE", "Braunschweig", 38100, 38126, "531", 3),
    ("DE", "Kiel", 24103, 24159, "431", 3),
    ("DE", "Chemnitz", 9111, 9247, "371", 3),
    ("DE", "Aachen", 52062, 52080, "241", 3),
    ("DE", "Halle (Saale)", 6108, 6132, "345", 3),
    ("DE", "Magdeburg", 39104, 39130, "391", 3),
    ("DE", "Freiburg im Breisgau", 79098, 79117, "761", 3),
    ("DE", "Lübeck", 23552, 23570, "451", 3),
    ("DE", "Mainz", 55116, 55131, "6131", 3),
    ("DE", "Erfurt", 99084, 99099, "361", 3),
    ("DE", "Rostock", 18055, 18147, "381", 3),
    ("DE", "Kassel", 34117, 34134, "561", 3),
    ("DE", "Saarbrücken", 66111, 66133, "681", 3),
    ("DE", "Potsdam", 14467, 14482, "331", 3),
    ("DE", "Osnabrück", 49074, 49090, "541", 2),
    ("DE", "Oldenburg", 26121, 26135, "441", 2),
    ("DE", "Würzburg", 97070, 97084, "931", 2),
    ("DE", "Regensburg", 93047, 93059, "941", 2),
    ("DE", "Göttingen", 37073, 37085, "551", 2),
    ("DE", "Ulm", 89073, 89081, "731", 2),
    ("DE", "Heidelberg", 69115, 69126, "6221", 2),
    ("DE", "Lüneburg", 21335, 21339, "4131", 1),
    ("DE", "Görlitz", 2826, 2828, "3581", 1),
    ("DE", "Tübingen", 72070, 72076, "7071", 1),
    ("DE", "Fürth", 90762, 90768, "911", 1),
    ("DE", "Bad Homburg vor der Höhe", 61348, 61352, "6172", 1),
    ("AT", "Wien", 1010, 1230, "1", 20),
    ("AT", "Graz", 8010, 8055, "316", 6),
    ("AT", "Linz", 4020, 4040, "732", 5),
    ("AT", "Salzburg", 5020, 5026, "662", 4),
    ("AT", "Innsbruck", 6020, 6080, "512", 4),
    ("AT", "Klagenfurt am Wörthersee", 9020, 9073, "463", 3),
    ("AT", "Villach", 9500, 9524, "4242", 2),
    ("AT", "Wels", 4600, 4600, "7242", 2),
    ("AT", "St. Pölten", 3100, 3100, "2742", 2),
    ("AT", "Dornbirn", 6850, 6850, "5572", 2),
    ("CH", "Zürich", 8001, 8057, "44", 12),
    ("CH", "Genève", 1201, 1209, "22", 5),
    ("CH", "Basel", 4001, 4059, "61", 5),
    ("CH", "Bern", 3001, 3027, "31", 5),
    ("CH", "Lausanne", 1003, 1018, "21", 4),
    ("CH", "Winterthur", 8400, 8411, "52", 3),
    ("CH", "Luzern", 6003, 6006, "41", 3),
    ("CH", "St. Gallen", 9000, 9016, "71", 3),
    ("CH", "Lugano", 6900, 6908, "91", 2),
    ("CH", "Biel/Bienne", 2500, 2505, "32", 2),
    ("CH", "Chur", 7000, 7000, "81", 1),
)
COUNTRY_CODES = {"DE": "49", "AT": "43", "CH": "41"}
# Mobile prefixes (national, without trunk 0) with their subscriber number lengths.
MOBILE_PREFIXES = {
    "DE": [("151", 8), ("152", 8), ("157", 8), ("159", 8), ("160", 7), ("162", 7), ("163", 7)]
    + [(str(p), 7) for p in range(170, 176)]
    + [(str(p), 8) for p in range(176, 180)],
    "AT": [(p, 7) for p in ("664", "660", "676", "650", "699", "680", "681", "688")],
    "CH": [(p, 7) for p in ("76", "77", "78", "79")],
}
EMAIL_DOMAINS = {
    "DE": ["example.de", "mail.example.de", "web.example", "posteo.example"],
    "AT": ["example.at", "aon.example.at"],
    "CH": ["example.ch", "bluewin.example.ch"],
}
CASE_SUBJECTS = {
    "inquiry": ["Frage zur Lieferzeit", "Anfrage Zubehör Dachträger", "Rückruf zu Finanzierung"],
    "service": ["Inspektion fällig", "Reifenwechsel Termin", "Ölwechsel und Bremsflüssigkeit"],
    "complaint": ["Quietschende Bremsen", "Lackschaden nach Werkstattbesuch", "Lange Wartezeit"],
    "warranty": ["Garantiefall Turbolader", "Bremssattel undicht", "Infotainment fällt aus"],
    "sales": ["Probefahrt Kombi", "Angebot Firmenwagen", "Inzahlungnahme Gebrauchtwagen"],
}
OPEN_STATUSES = ("new", "open", "waiting")
DONE_STATUSES = ("resolved", "closed")
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")
ACCESS = ("read", "comment", "edit")

CUSTOMER_COLUMNS = _listed(
    "id owner_organization_id kind name street postal_code city country name_key city_key "
    "version created_at updated_at"
)
PHONE_COLUMNS = ["id", "customer_id", "e164", "position"]
EMAIL_COLUMNS = ["id", "customer_id", "email", "position"]
DOC_COLUMNS = _listed("ref kind customer_id contact_id case_id title names details sounds")
CASE_COLUMNS = _listed(
    "id number customer_id subject description kind status priority owner_organization_id "
    "handling_organization_id version created_at updated_at last_activity_at"
)
SHARE_COLUMNS = _listed(
    "case_id organization_id access include_contact_details shared_by_user_id created_at updated_at"
)


@dataclass(frozen=True)
class SeedResult:
    """Totals before and after a `seed` call; `skipped` when nothing had to be added."""

    customers_before: int
    customers_after: int
    cases_before: int
    cases_after: int
    seconds: float

    @property
    def skipped(self) -> bool:
        return (self.customers_before, self.cases_before) == (
            self.customers_after,
            self.cases_after,
        )


@dataclass(frozen=True)
class _Org:
    id: int
    slug: str
    neighbours: tuple[int, ...]
    sharer_id: int | None


def conninfo(database_url: str) -> str:
    """A libpq connection string from a SQLAlchemy or libpq PostgreSQL URL."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {url.render_as_string(hide_password=True)}")
    params: dict[str, Any] = {"dbname": url.database, "host": url.host, "port": url.port}
    params.update(user=url.username, password=url.password)
    params.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


def seed(
    database_url: str,
    customers: int = 500_000,
    cases: int | None = None,
    *,
    random_seed: int = 20261122,
    batch: int = 50_000,
    rebuild_indexes: bool | None = None,
    progress: Progress | None = None,
) -> SeedResult:
    """Top the database up to `customers` customers and `cases` cases (default: a fifth of
    `customers`); totals already reached are left alone.

    The schema must be current and the organisations must exist (`portal db upgrade`,
    `portal demo load`). `rebuild_indexes` (default: when more rows are added than exist)
    drops the filled tables' secondary indexes for the load and builds them again after it.
    `progress(stage, done, total)` is called now and then.
    """
    started = time.monotonic()
    target_cases = round(customers * DEFAULT_CASE_RATIO) if cases is None else cases
    report: Progress = progress or (lambda _stage, _done, _total: None)
    with psycopg.connect(conninfo(database_url)) as conn:
        customers_before = _count(conn, "customers")
        cases_before = _count(conn, "cases")
        add_customers = max(0, customers - customers_before)
        add_cases = max(0, target_cases - cases_before)
        if not add_customers and not add_cases:
            return SeedResult(
                customers_before,
                customers_before,
                cases_before,
                cases_before,
                time.monotonic() - started,
            )
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute(f"LOCK TABLE {', '.join(TABLES)}, case_number_counters IN EXCLUSIVE MODE")
        orgs = _organizations(conn)
        if rebuild_indexes is None:
            rebuild_indexes = add_customers + add_cases > customers_before + cases_before
        indexes = drop_indexes(conn) if rebuild_indexes else []
        rng = random.Random(f"{random_seed}:{customers_before}:{cases_before}")
        if add_customers:
            _add_customers(conn, rng, orgs, add_customers, batch, report)
        if add_cases:
            _add_cases(conn, rng, orgs, add_cases, batch, report)
        for number, (name, definition) in enumerate(indexes, 1):
            report(f"index {name}", number - 1, len(indexes))
            conn.execute(definition)
        if indexes:
            report("indexes", len(indexes), len(indexes))
        for table in TABLES:
            highest = f"SELECT coalesce(max(id), 1) FROM {table}"  # noqa: S608 - fixed names
            conn.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), ({highest}))", (table,))
        conn.commit()
        customers_after = _count(conn, "customers")
        cases_after = _count(conn, "cases")
    report("vacuum analyze", 0, 1)
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(TABLES)}")
    report("vacuum analyze", 1, 1)
    return SeedResult(
        customers_before, customers_after, cases_before, cases_after, time.monotonic() - started
    )


# --- reading what is there -----------------------------------------------------------------


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 - fixed names
    return int(row[0]) if row else 0


def _next_id(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()  # noqa: S608
    return int(row[0]) if row else 1


def _organizations(conn: psycopg.Connection[Any]) -> list[_Org]:
    rows = conn.execute("SELECT id, slug FROM organizations WHERE active ORDER BY id").fetchall()
    if not rows:
        raise RuntimeError("no organisations: load the demo network first (portal demo load)")
    links = conn.execute(
        "SELECT manufacturer_id, partner_id FROM partnerships WHERE active"
    ).fetchall()
    sharers = dict(
        conn.execute(
            "SELECT DISTINCT ON (organization_id) organization_id, id FROM users"
            " WHERE active AND kind = 'person' AND role <> 'viewer'"
            " ORDER BY organization_id, id"
        ).fetchall()
    )
    orgs = []
    for org_id, slug in rows:
        neighbours = sorted(
            {b for a, b in links if a == org_id} | {a for a, b in links if b == org_id}
        )
        orgs.append(_Org(org_id, slug, tuple(neighbours), sharers.get(org_id)))
    return orgs


def _owner_weights(orgs: Sequence[_Org]) -> list[float]:
    named = sum(OWNER_WEIGHTS.get(o.slug, 0) for o in orgs)
    unnamed = [o for o in orgs if o.slug not in OWNER_WEIGHTS]
    rest = max(0, 100 - named) / len(unnamed) if unnamed else 0.0
    weights = [float(OWNER_WEIGHTS.get(o.slug, rest)) for o in orgs]
    return weights if sum(weights) > 0 else [1.0] * len(orgs)


def drop_indexes(
    conn: psycopg.Connection[Any], tables: Sequence[str] = TABLES
) -> list[tuple[str, str]]:
    """Drop the secondary indexes (not those of primary keys or constraints) of `tables`;
    return (name, definition) to build them again."""
    found = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_class t ON t.oid = i.indrelid"
        " WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace"
        " AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
        " ORDER BY t.relname, c.relname",
        (list(tables),),
    ).fetchall()
    for name, _definition in found:
        conn.execute(f'DROP INDEX "{name}"')
    return [(str(name), str(definition)) for name, definition in found]


def drop_foreign_keys(conn: psycopg.Connection[Any], tables: Sequence[str]) -> list[str]:
    """Drop the foreign keys of `tables` (checking them row by row slows a bulk load down
    several times); return the statements that add them again, each validated in one join."""
    found = conn.execute(
        "SELECT t.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
        " JOIN pg_class t ON t.oid = k.conrelid"
        " WHERE k.contype = 'f' AND t.relname = ANY(%s)"
        " AND t.relnamespace = 'public'::regnamespace ORDER BY t.relname, k.conname",
        (list(tables),),
    ).fetchall()
    for table, name, _definition in found:
        conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    return [
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
        for table, name, definition in found
    ]


def drop_unique_constraints(conn: psycopg.Connection[Any], tables: Sequence[str]) -> list[str]:
    """Drop the unique constraints (not primary keys) of `tables` that no foreign key needs;
    return the statements that add them again (each builds its index in one sorted pass,
    where a load would insert into it row by row in random order)."""
    found = conn.execute(
        "SELECT t.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
        " JOIN pg_class t ON t.oid = k.conrelid"
        " WHERE k.contype = 'u' AND t.relname = ANY(%s)"
        " AND t.relnamespace = 'public'::regnamespace"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint f"
        "  WHERE f.contype = 'f' AND f.conindid = k.conindid)"
        " ORDER BY t.relname, k.conname",
        (list(tables),),
    ).fetchall()
    for table, name, _definition in found:
        conn.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    return [
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'
        for table, name, definition in found
    ]


# --- customers -----------------------------------------------------------------------------


# The documents come from search_index itself; names (Kölner Phonetik costs ~0.2 ms each)
# and places repeat, so each is computed once.
@lru_cache(maxsize=500_000)
def name_doc(name: str) -> dict[str, Any]:
    row = SimpleNamespace(id=0, name=name, postal_code=None, city=None)
    return {**_customer_docs(row, [])[0], "name_key": fold(name)[:200]}


@lru_cache(maxsize=100_000)
def place_doc(postal_code: str, city: str) -> tuple[str, str | None]:
    row = SimpleNamespace(id=0, name="", postal_code=postal_code, city=city)
    return _customer_docs(row, [])[0]["details"], fold(city)[:100] or None


def email_local(text: str) -> str:
    ascii_text = anyascii(text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")).lower()
    return "".join(c if c.isalnum() else "." for c in ascii_text).strip(".")


class Phones:
    """Unique, valid E.164 numbers: mobiles or landlines with the city's area code."""

    def __init__(self, conn: psycopg.Connection[Any] | None, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = (
            {row[0] for row in conn.execute("SELECT e164 FROM phone_numbers")} if conn else set()
        )
        self.checked: set[tuple[str, int]] = set()

    def new(self, country: str, area: str) -> str:
        rng = self.rng
        if rng.random() < MOBILE_SHARE:
            prefix, length = rng.choice(MOBILE_PREFIXES[country])
        else:
            prefix = area
            length = {"DE": 10, "AT": 10, "CH": 9}[country] - len(area)
            length = min(8, max(5, length))
        while True:
            # Subscriber numbers do not start with 0 or 1.
            subscriber = rng.randrange(2 * 10 ** (length - 1), 10**length)
            e164 = f"+{COUNTRY_CODES[country]}{prefix}{subscriber}"
            if e164 not in self.taken:
                break
        self._check_pattern(e164, prefix, length)
        self.taken.add(e164)
        return e164

    def _check_pattern(self, e164: str, prefix: str, length: int) -> None:
        # phonenumbers costs ~0.1 ms per number: check one number per pattern only.
        if (prefix, length) in self.checked:
            return
        if not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
            raise AssertionError(f"seed pattern gives invalid numbers: {e164}")
        self.checked.add((prefix, length))


def _add_customers(
    conn: psycopg.Connection[Any],
    rng: random.Random,
    orgs: Sequence[_Org],
    count: int,
    batch: int,
    report: Progress,
) -> None:
    phones = Phones(conn, rng)
    owner_ids = [o.id for o in orgs]
    owner_weights = _owner_weights(orgs)
    city_weights = [c[5] for c in CITIES]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    customer_id = _next_id(conn, "customers")
    phone_id = _next_id(conn, "phone_numbers")
    email_id = _next_id(conn, "email_addresses")
    done = 0
    report("customers", 0, count)
    while done < count:
        size = min(batch, count - done)
        customer_rows: list[tuple[Any, ...]] = []
        phone_rows: list[tuple[Any, ...]] = []
        email_rows: list[tuple[Any, ...]] = []
        doc_rows: list[tuple[Any, ...]] = []
        owners = rng.choices(owner_ids, owner_weights, k=size)
        cities = rng.choices(CITIES, city_weights, k=size)
        for owner, (country, city, low, high, area, _weight) in zip(owners, cities, strict=True):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if rng.random() < COMPANY_SHARE:
                kind = "company"
                name = f"{last} {rng.choice(COMPANY_TRADES)} {rng.choice(COMPANY_FORMS[country])}"
            else:
                kind = "person"
                if rng.random() < 0.06:
                    last = f"{last}-{rng.choice(LAST_NAMES)}"
                name = f"{first} {last}"
            postal_code = f"{rng.randint(low, high):0{5 if country == 'DE' else 4}d}"
            doc = name_doc(name)
            details, city_key = place_doc(postal_code, city)
            created = now - dt.timedelta(seconds=rng.randint(3600, 5 * 365 * 86400))
            street = f"{rng.choice(STREETS)} {rng.randint(1, 180)}"
            customer_rows.append(
                (
                    *(customer_id, owner, kind, name, street, postal_code, city, country),
                    *(doc["name_key"], city_key, 1, created, created),
                )
            )
            phone_rows.append((phone_id, customer_id, phones.new(country, area), 0))
            phone_id += 1
            if rng.random() < EMAIL_SHARE:
                local = email_local(last if kind == "company" else f"{first}.{last}")
                if kind == "person" and rng.random() < 0.3:
                    local = email_local(f"{first[0]}.{last}")
                email = f"{local}.{customer_id}@{rng.choice(EMAIL_DOMAINS[country])}"
                email_rows.append((email_id, customer_id, email, 0))
                email_id += 1
            doc_rows.append(
                tuple(
                    {
                        **doc,
                        "ref": f"customer:{customer_id}",
                        "customer_id": customer_id,
                        "details": details,
                    }[c]
                    for c in DOC_COLUMNS
                )
            )
            customer_id += 1
        copy_rows(conn, "customers", CUSTOMER_COLUMNS, customer_rows)
        copy_rows(conn, "phone_numbers", PHONE_COLUMNS, phone_rows)
        copy_rows(conn, "email_addresses", EMAIL_COLUMNS, email_rows)
        copy_rows(conn, "search_documents", DOC_COLUMNS, doc_rows)
        done += size
        report("customers", done, count)


# --- cases ---------------------------------------------------------------------------------


def _add_cases(
    conn: psycopg.Connection[Any],
    rng: random.Random,
    orgs: Sequence[_Org],
    count: int,
    batch: int,
    report: Progress,
) -> None:
    by_id = {o.id: o for o in orgs}
    owners = conn.execute(
        "SELECT id, owner_organization_id, created_at FROM customers"
        " WHERE merged_into_id IS NULL ORDER BY id"
    ).fetchall()
    if not owners:
        return
    # One case per customer while they last (a random choice of them), then some get more.
    picks = rng.sample(owners, count) if count <= len(owners) else rng.choices(owners, k=count)
    counters = dict(conn.execute("SELECT year, last_value FROM case_number_counters").fetchall())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    case_id = _next_id(conn, "cases")
    done = 0
    report("cases", 0, count)
    for chunk in _chunks(picks, batch):
        case_rows: list[tuple[Any, ...]] = []
        share_rows: list[tuple[Any, ...]] = []
        doc_rows: list[tuple[Any, ...]] = []
        for customer_id, owner_id, customer_created in chunk:
            oldest = max(customer_created, now - dt.timedelta(days=3 * 365))
            span = max(60, int((now - oldest).total_seconds()))
            created = oldest + dt.timedelta(seconds=rng.randint(0, span - 60))
            age_days = (now - created).days
            status = rng.choice(DONE_STATUSES if age_days > 90 else OPEN_STATUSES + DONE_STATUSES)
            kind = rng.choice(list(CASE_SUBJECTS))
            subject = rng.choice(CASE_SUBJECTS[kind])
            counters[created.year] = counters.get(created.year, 0) + 1
            number = f"C-{created.year}-{counters[created.year]:06d}"
            owner = by_id.get(owner_id)
            handler = owner_id
            if owner is not None and owner.neighbours and rng.random() < 0.05:
                handler = rng.choice(owner.neighbours)
            active = min(now, created + dt.timedelta(hours=rng.uniform(0.1, 24 * 30)))
            case_rows.append(
                (
                    *(case_id, number, customer_id, subject, "", kind, status),
                    *(rng.choice(PRIORITIES), owner_id, handler, 1, created, active, active),
                )
            )
            if owner is not None and owner.neighbours and rng.random() < 0.35:
                shared = created + dt.timedelta(hours=1)
                share_rows.append(
                    (
                        *(case_id, rng.choice(owner.neighbours), rng.choice(ACCESS)),
                        *(rng.random() < 0.6, owner.sharer_id, shared, shared),
                    )
                )
            doc = _case_doc(
                SimpleNamespace(id=case_id, customer_id=customer_id, number=number, subject=subject)
            )
            doc_rows.append(tuple(doc[c] for c in DOC_COLUMNS))
            case_id += 1
        copy_rows(conn, "cases", CASE_COLUMNS, case_rows)
        copy_rows(conn, "case_shares", SHARE_COLUMNS, share_rows)
        copy_rows(conn, "search_documents", DOC_COLUMNS, doc_rows)
        done += len(chunk)
        report("cases", done, count)
    for year, last_value in counters.items():
        conn.execute(
            "INSERT INTO case_number_counters (year, last_value) VALUES (%s, %s)"
            " ON CONFLICT (year) DO UPDATE SET last_value ="
            " greatest(case_number_counters.last_value, excluded.last_value)",
            (year, last_value),
        )


# --- helpers -------------------------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def copy_rows(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    freeze: bool = False,
    binary: bool = False,
) -> None:
    """COPY `rows` into `table`. `freeze` writes them frozen (the table must have been
    created or truncated in the same transaction), so no vacuum has to visit them again;
    `binary` uses the binary format (about twice as fast; values must match the column
    types exactly, e.g. no str for an integer)."""
    if not rows:
        return
    options = ", ".join(o for o, on in (("FREEZE", freeze), ("FORMAT BINARY", binary)) if on)
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    if options:
        statement += f" WITH ({options})"
    types = column_types(conn, table, tuple(columns)) if binary else None
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        if types is not None:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


# Built-in types have the same oids in every database, so one cache serves all connections.
_COLUMN_TYPES: dict[tuple[str, tuple[str, ...]], list[int]] = {}


def column_types(conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...]) -> list[int]:
    """The type oids of `columns` of `table` (for binary COPY)."""
    key = (table, columns)
    if key not in _COLUMN_TYPES:
        found = dict(
            conn.execute(
                "SELECT attname, atttypid::int FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            ).fetchall()
        )
        _COLUMN_TYPES[key] = [found[c] for c in columns]
    return _COLUMN_TYPES[key]
