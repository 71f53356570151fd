"""Share recalculation when a dealer leaves or rejoins a value chain (issue 6 scenario).

Product: `partners.service.end_partnership` / `resume_partnership` as the admin page calls
them (an application context, a fresh session, one transaction including the commit): the
partnership row, the pairs of organisations in `share_suspensions` and the visibility rows
their shares grant, in one statement each way (migration 0009).

Floor: the least the same change of the visibility index needs, in the same run: for the
leave the plain `DELETE FROM case_visibility WHERE (organization_id, case_id) IN (…)` of
exactly the rows that disappear, for the join the `INSERT INTO case_visibility … SELECT …`
of exactly those rows again, each committed (the join's floor undoes the leave's).

Product and floor are timed alike, without other load. Then, in two more leave/rejoin pairs,
a reader thread loads the first inbox page (the query layer, as bench/suite.py `_page`) over
and over for the leaving dealer and for an organisation the change does not involve; the
report gives their latencies during the recalculation next to the same reads when nothing
else runs ("the inbox stays answerable").

The partnership picked is the dealer's whose end suspends about 10,000 shares: the smallest
change of at least 10,000 (in a network without one, the largest change there is). Every
leave is undone by a rejoin, so the data ends as it began; still, run it standalone on a
copy of a seeded database, e.g.

    psql -c "CREATE DATABASE wk_shares TEMPLATE wk_bench_s"
    PORTAL_DATABASE_URL=postgresql+psycopg://…/wk_shares portal db upgrade
    .venv/bin/python bench/share_recalc.py --database-url postgresql+psycopg://…/wk_shares

Every round leaves the database as it found it (the partnership active, no share suspended).
Suspensions are kept per pair of organisations (migration 0009, `share_suspensions`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.seed import conninfo  # noqa: E402
from bench.suite import OUT_DIR, Scenario, _pct  # noqa: E402

TARGET_RATIO = 2.0
# A read slower than this during the recalculation counts as blocked.
BLOCKED_MS = 1000.0


@dataclass(frozen=True)
class Subject:
    """The partnership measured and the accounts used."""

    partnership_id: int
    manufacturer_id: int
    partner_id: int
    partner_slug: str
    admin_email: str
    partner_agent: str
    bystander_agent: str
    bystander_slug: str
    shares: int


@dataclass
class Reads:
    """Inbox first-page latencies (ms) per reader, and errors."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for who, values in self.latencies.items():
            ordered = sorted(values)
            out[who] = {
                "count": len(ordered),
                "p50_ms": round(statistics.median(ordered), 2) if ordered else None,
                "p95_ms": round(_pct(ordered, 0.95), 2) if ordered else None,
                "max_ms": round(ordered[-1], 2) if ordered else None,
                "blocked": sum(1 for v in ordered if v > BLOCKED_MS),
            }
        out["errors"] = self.errors[:5]
        out["error_count"] = len(self.errors)
        return out


def _chains(org: int, kinds: dict[int, str], links: list[tuple[int, int, int]]) -> set[int]:
    found = {m for (_id, m, p) in links if p == org}
    if kinds[org] == "manufacturer":
        found.add(org)
    return found


SUBJECT_SHARES = 10_000


def pick_subject(raw: psycopg.Connection[Any]) -> Subject:
    """The active dealer partnership whose end suspends about 10,000 shares (the smallest
    change of at least SUBJECT_SHARES; the largest there is in a smaller network)."""
    kinds = dict(raw.execute("SELECT id, kind FROM organizations").fetchall())
    links = [
        (int(i), int(m), int(p))
        for i, m, p in raw.execute(
            "SELECT id, manufacturer_id, partner_id FROM partnerships WHERE active"
        ).fetchall()
    ]
    pairs = raw.execute(
        "SELECT c.owner_organization_id, s.organization_id, count(*) FROM case_shares s "
        "JOIN cases c ON c.id = s.case_id WHERE NOT EXISTS (SELECT 1 FROM share_suspensions x "
        "WHERE x.owner_organization_id = c.owner_organization_id "
        "AND x.organization_id = s.organization_id) GROUP BY 1, 2"
    ).fetchall()
    by_org: dict[int, list[tuple[int, int]]] = {}
    for owner, target, count in pairs:
        by_org.setdefault(owner, []).append((target, count))
        by_org.setdefault(target, []).append((owner, count))
    candidates: list[tuple[int, tuple[int, int, int]]] = []
    for link in links:
        partner = link[2]
        if kinds[partner] != "dealer":
            continue
        rest = [other for other in links if other[0] != link[0]]
        mine = _chains(partner, kinds, rest)
        lost = sum(
            count
            for other, count in by_org.get(partner, [])
            if not mine & _chains(other, kinds, rest)
        )
        candidates.append((lost, link))
    assert candidates, "no dealer partnership"
    # The case: a dealer with about 10,000 cases in the chain. The smallest change of
    # at least SUBJECT_SHARES shares, else (small networks) the largest there is.
    large = [c for c in candidates if c[0] >= SUBJECT_SHARES]
    lost, (link_id, manufacturer, partner) = (
        min(large, key=lambda c: (c[0], c[1][0])) if large else max(candidates)
    )

    def person(org: int, role: str) -> str:
        row = raw.execute(
            "SELECT email FROM users WHERE organization_id = %s AND role = %s AND active "
            "AND kind = 'person' ORDER BY id LIMIT 1",
            (org, role),
        ).fetchone()
        assert row is not None, (org, role)
        return str(row[0])

    involved = {manufacturer, partner} | {o for o, _ in by_org.get(partner, [])}
    bystander = raw.execute(
        "SELECT o.id, o.slug FROM organizations o JOIN users u ON u.organization_id = o.id "
        "WHERE o.kind = 'dealer' AND u.role = 'agent' AND u.active AND NOT o.id = ANY(%s) "
        "GROUP BY o.id, o.slug ORDER BY count(*) DESC, o.id LIMIT 1",
        (sorted(involved),),
    ).fetchone()
    assert bystander is not None
    slug = raw.execute("SELECT slug FROM organizations WHERE id = %s", (partner,)).fetchone()
    assert slug is not None
    return Subject(
        partnership_id=link_id,
        manufacturer_id=manufacturer,
        partner_id=partner,
        partner_slug=str(slug[0]),
        admin_email=person(manufacturer, "admin"),
        partner_agent=person(partner, "agent"),
        bystander_agent=person(int(bystander[0]), "agent"),
        bystander_slug=str(bystander[1]),
        shares=lost,
    )


class ShareRecalcBench:
    def __init__(self, database_url: str, rounds: int) -> None:
        from portal.app import create_app

        self.rounds = rounds
        self.app = create_app({"DATABASE_URL": database_url, "CHECK_MIGRATIONS": False})
        self.raw = psycopg.connect(conninfo(database_url), autocommit=True)
        self.floor_conn = psycopg.connect(conninfo(database_url))
        self.subject = pick_subject(self.raw)
        # The last product call's statements (>= 1 ms) with their times, per direction.
        self.breakdown: dict[str, list[dict[str, Any]]] = {}

    def close(self) -> None:
        self.raw.close()
        self.floor_conn.close()
        self.app.extensions["portal_db"].dispose()

    @contextmanager
    def request(self) -> Iterator[Any]:
        from portal.db import close_session, get_session

        with self.app.app_context():
            try:
                yield get_session()
            finally:
                close_session()

    def _user(self, session: Any, email: str) -> Any:
        from partners.models import User

        return session.scalars(sa.select(User).where(User.email == email)).one()

    # --- product ----------------------------------------------------------------------

    def product(self, active: bool) -> tuple[float, int]:
        """Seconds of the service call (incl. commit) and the shares it changed; the time
        of each SQL statement (and the commit) of the call goes to `self.breakdown`."""
        from partners import service

        engine: sa.Engine = self.app.extensions["portal_db"].engine
        steps: list[tuple[str, float]] = []
        marks: dict[int, float] = {}
        caller = threading.get_ident()

        def before(_conn: Any, cursor: Any, *_args: Any) -> None:
            if threading.get_ident() == caller:
                marks[id(cursor)] = time.perf_counter()

        def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
            started = marks.pop(id(cursor), None)
            if started is not None:
                label = " ".join(statement.split())[:70]
                steps.append((label, (time.perf_counter() - started) * 1000))

        def commit(_conn: Any) -> None:
            if threading.get_ident() == caller:
                marks[-1] = time.perf_counter()

        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "after_cursor_execute", after)
        sa.event.listen(engine, "commit", commit)
        try:
            with self.request() as session:
                admin = self._user(session, self.subject.admin_email)
                steps.clear()
                started = time.perf_counter()
                if active:
                    _link, outcome = service.resume_partnership(
                        session, admin, self.subject.partnership_id
                    )
                else:
                    _link, outcome = service.end_partnership(
                        session, admin, self.subject.partnership_id
                    )
                ended = time.perf_counter()
        finally:
            sa.event.remove(engine, "before_cursor_execute", before)
            sa.event.remove(engine, "after_cursor_execute", after)
            sa.event.remove(engine, "commit", commit)
        if -1 in marks:
            steps.append(("COMMIT", (ended - marks[-1]) * 1000))
        self.breakdown["join" if active else "leave"] = [
            {"sql": label, "ms": round(ms, 1)} for label, ms in steps if ms >= 1.0
        ]
        return ended - started, outcome.resumed if active else outcome.suspended

    # --- floor ------------------------------------------------------------------------

    def changing_rows(self) -> list[tuple[int, int]]:
        """(organisation, case) of the visibility rows a leave removes: the pairs of the
        shares it suspends where the organisation is neither owner nor handler. Read while
        those shares are suspended."""
        rows = self.raw.execute(
            "SELECT s.organization_id, s.case_id FROM case_shares s "
            "JOIN cases c ON c.id = s.case_id WHERE EXISTS (SELECT 1 FROM share_suspensions x "
            "WHERE x.owner_organization_id = c.owner_organization_id "
            "AND x.organization_id = s.organization_id) "
            "AND s.organization_id NOT IN (c.owner_organization_id, c.handling_organization_id)"
        ).fetchall()
        return [(int(org), int(case)) for org, case in rows]

    def floor_delete(self, rows: list[tuple[int, int]]) -> float:
        orgs, cases = [r[0] for r in rows], [r[1] for r in rows]
        started = time.perf_counter()
        with self.floor_conn.cursor() as cursor:
            cursor.execute(
                "DELETE FROM case_visibility v USING unnest(%s::int[], %s::int[]) AS p(org, id) "
                "WHERE v.organization_id = p.org AND v.case_id = p.id",
                (orgs, cases),
            )
            deleted = cursor.rowcount
        self.floor_conn.commit()
        seconds = time.perf_counter() - started
        assert deleted == len(rows), (deleted, len(rows))
        return seconds

    def floor_insert(self, rows: list[tuple[int, int]]) -> float:
        orgs, cases = [r[0] for r in rows], [r[1] for r in rows]
        started = time.perf_counter()
        with self.floor_conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO case_visibility "
                "(organization_id, case_id, customer_id, last_activity_at, details) "
                "SELECT p.org, c.id, c.customer_id, c.last_activity_at, s.include_contact_details "
                "FROM unnest(%s::int[], %s::int[]) AS p(org, id) "
                "JOIN cases c ON c.id = p.id "
                "JOIN case_shares s ON s.case_id = p.id AND s.organization_id = p.org",
                (orgs, cases),
            )
            inserted = cursor.rowcount
        self.floor_conn.commit()
        seconds = time.perf_counter() - started
        assert inserted == len(rows), (inserted, len(rows))
        return seconds

    # --- the inbox meanwhile ------------------------------------------------------------

    def _page(self, email: str) -> Callable[[], Any]:
        from shared_records import queries

        def page() -> Any:
            with self.request() as session:
                actor = self._user(session, email)
                views, _next = queries.case_page(session, actor, queries.CaseFilters(), 50)
                return len(views)

        return page

    @contextmanager
    def readers(self, reads: Reads) -> Iterator[None]:
        """A thread loading both inboxes' first page in turn until the block ends."""
        pages = {
            "leaving_dealer": self._page(self.subject.partner_agent),
            "uninvolved": self._page(self.subject.bystander_agent),
        }
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                for who, page in pages.items():
                    started = time.perf_counter()
                    try:
                        page()
                    except Exception as exc:  # reported, never raised
                        reads.errors.append(f"{who}: {type(exc).__name__}: {exc}")
                    reads.latencies.setdefault(who, []).append(
                        (time.perf_counter() - started) * 1000
                    )

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        time.sleep(0.05)  # let the reader get going
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=30)

    # --- the run -----------------------------------------------------------------------

    def run(self) -> list[Scenario]:
        self.raw.execute("VACUUM (ANALYZE) case_shares, case_visibility, cases")
        assert self._suspended_count() == 0, "start from a database without suspended shares"
        quiet = Reads()
        with self.readers(quiet):
            time.sleep(2.0)
        leave: list[float] = []
        join: list[float] = []
        floor_leave: list[float] = []
        floor_join: list[float] = []
        changed: set[int] = set()
        rows: list[tuple[int, int]] = []
        # One untimed round warms caches and plans; the timed rounds run product and floor
        # alike without concurrent readers.
        for round_no in range(self.rounds + 1):
            seconds, shares = self.product(active=False)
            if round_no == 0:
                rows = self.changing_rows()
            else:
                leave.append(seconds)
            changed.add(shares)
            seconds, shares = self.product(active=True)
            if round_no:
                join.append(seconds)
            changed.add(shares)
            deleted = self.floor_delete(rows)
            inserted = self.floor_insert(rows)
            if round_no:
                floor_leave.append(deleted)
                floor_join.append(inserted)
        timed_breakdown = dict(self.breakdown)
        # Then the inbox during recalculations: two more leave/rejoin pairs with a reader.
        busy = Reads()
        with_readers: list[float] = []
        for _ in range(2):
            for active in (False, True):
                with self.readers(busy):
                    seconds, shares = self.product(active=active)
                with_readers.append(seconds)
                changed.add(shares)
        assert self._suspended_count() == 0
        self._check_consistent()
        s = self.subject
        common = {
            "partnership_id": s.partnership_id,
            "partner": s.partner_slug,
            "shares_changed": sorted(changed),
            "visibility_rows_changed": len(rows),
            "rounds": self.rounds,
            "inbox_reads_during_recalculation": busy.summary(),
            "product_s_with_reader_leave_join": [round(v, 4) for v in with_readers],
            "inbox_reads_quiet": quiet.summary(),
            "uninvolved_organisation": s.bystander_slug,
        }
        return [
            Scenario(
                f"share recalculation: dealer {s.partner_slug} leaves a chain "
                f"({s.shares:,} shares, {len(rows):,} visibility rows)",
                "seconds (median)",
                round(statistics.median(leave), 4),
                round(statistics.median(floor_leave), 4),
                TARGET_RATIO,
                details={
                    **common,
                    "product_s": [round(v, 4) for v in leave],
                    "product_statements_last_round": timed_breakdown.get("leave", []),
                    "floor_s": [round(v, 4) for v in floor_leave],
                },
                note="product: end_partnership incl. commit; floor: DELETE of exactly the "
                "visibility rows that go, committed",
            ),
            Scenario(
                f"share recalculation: dealer {s.partner_slug} rejoins the chain "
                f"({s.shares:,} shares, {len(rows):,} visibility rows)",
                "seconds (median)",
                round(statistics.median(join), 4),
                round(statistics.median(floor_join), 4),
                TARGET_RATIO,
                details={
                    **common,
                    "product_s": [round(v, 4) for v in join],
                    "product_statements_last_round": timed_breakdown.get("join", []),
                    "floor_s": [round(v, 4) for v in floor_join],
                },
                note="product: resume_partnership incl. commit; floor: INSERT … SELECT of "
                "exactly the visibility rows that come back, committed",
            ),
        ]

    def _suspended_count(self) -> int:
        row = self.raw.execute("SELECT count(*) FROM share_suspensions").fetchone()
        return int(row[0]) if row else 0

    def _check_consistent(self) -> None:
        """The partner's visibility rows equal the rule over the base tables."""
        partner = self.subject.partner_id
        row = self.raw.execute(
            "SELECT (SELECT count(*) FROM case_visibility WHERE organization_id = %(p)s), "
            "(SELECT count(*) FROM cases c WHERE c.owner_organization_id = %(p)s "
            " OR c.handling_organization_id = %(p)s OR EXISTS (SELECT 1 FROM case_shares s "
            " WHERE s.case_id = c.id AND s.organization_id = %(p)s "
            "AND NOT EXISTS (SELECT 1 FROM share_suspensions x "
            "WHERE x.owner_organization_id = c.owner_organization_id "
            "AND x.organization_id = s.organization_id)))",
            {"p": partner},
        ).fetchone()
        assert row is not None
        assert row[0] == row[1], row


def scenarios(database_url: str, facts: dict[str, Any], rounds: int) -> list[Scenario]:
    """The leave and rejoin scenarios (`facts` of the seed are not needed: the partnership
    is picked from the data). `rounds` leave/rejoin pairs, each with its floor."""
    del facts
    bench = ShareRecalcBench(database_url, rounds)
    try:
        return bench.run()
    finally:
        bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="A seeded, migrated copy.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="S", help="Facts file bench/out/seed-<profile>.json")
    args = parser.parse_args()
    facts_file = OUT_DIR / f"seed-{args.profile}.json"
    facts = json.loads(facts_file.read_text(encoding="utf-8")) if facts_file.exists() else {}
    results = scenarios(args.database_url, facts, args.rounds)
    print(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
