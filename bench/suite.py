"""`portal bench run`: the scenario suite, each product figure against a floor measured in
the same run on the same machine.

Every scenario calls the product the way a request does (an application context, a fresh
session, the policy, the query layer) and its floor does the least the same work needs
(usually the very SQL the product sent, replayed through raw psycopg). The report gives
p50/p95/p99, operations per second, SQL statements per operation, server CPU per operation
and `ratio` = product / floor against the scenario's target. Scenarios not measured yet are
listed with the reason, so the report never claims more than it measured.

Needs a PostgreSQL database seeded with `portal bench seed --profile S|M` (the facts file
bench/out/seed-<profile>.json tells which organisations and accounts to use).
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from rapidfuzz import fuzz

OUT_DIR = Path(__file__).resolve().parent / "out"


@dataclass
class Scenario:
    name: str
    metric: str
    product: float | None
    floor: float | None
    target_ratio: float
    higher_is_better: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    # A target in the metric's own unit (the screen pop's "p95 <= 10 ms"): `met` compares
    # the product with it; `ratio` is still reported against the floor.
    target_absolute: float | None = None
    # False when the run itself failed its checks (lost or wrong events): never `met`.
    valid: bool = True

    @property
    def ratio(self) -> float | None:
        if self.product is None or not self.floor:
            return None
        return round(self.product / self.floor, 3)

    @property
    def met(self) -> bool | None:
        if not self.valid:
            return False
        if self.target_absolute is not None and self.product is not None:
            if self.higher_is_better:
                return self.product >= self.target_absolute
            return self.product <= self.target_absolute
        if self.ratio is None:
            return None
        if self.higher_is_better:
            return self.ratio >= self.target_ratio
        return self.ratio <= self.target_ratio

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


@dataclass
class Timing:
    """Wall-clock latencies (ms), CPU seconds of this process and SQL statements sent."""

    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    statements: int = 0

    def summary(self) -> dict[str, float]:
        values = sorted(self.latencies)
        count = len(values)
        total = sum(values) / 1000
        return {
            "count": count,
            "p50_ms": round(statistics.median(values), 3),
            "p95_ms": round(_pct(values, 0.95), 3),
            "p99_ms": round(_pct(values, 0.99), 3),
            "ops_per_s": round(count / total, 1) if total else 0.0,
            "cpu_ms_per_op": round(self.cpu * 1000 / count, 3),
            "statements_per_op": round(self.statements / count, 2),
        }


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * (len(values) - 1) + 0.5))]


class StatementCounter:
    """Counts (and remembers the last) SQL statements an engine sends."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        self.last: list[tuple[str, Any]] = []
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.count += 1
        self.last.append((statement, params))


def _measure(operations: list[Callable[[], Any]], counter: StatementCounter | None) -> Timing:
    timing = Timing()
    # Every operation once before timing: on a large database the first touch of a random
    # organisation's pages reads them from disk, and whichever side ran first (product or
    # floor) would pay for both.
    for op in operations:
        op()
    before_statements = counter.count if counter else 0
    cpu_before = time.process_time()
    for op in operations:
        started = time.perf_counter()
        op()
        timing.latencies.append((time.perf_counter() - started) * 1000)
    timing.cpu = time.process_time() - cpu_before
    timing.statements = (counter.count - before_statements) if counter else 0
    return timing


class Suite:
    def __init__(self, database_url: str, facts: dict[str, Any], rounds: int, seed: int) -> None:
        from portal.app import create_app

        self.rng = random.Random(seed)
        self.rounds = rounds
        self.facts = facts
        self.app = create_app({"DATABASE_URL": database_url, "CHECK_MIGRATIONS": False})
        self.engine: sa.Engine = self.app.extensions["portal_db"].engine
        self.counter = StatementCounter(self.engine)
        from bench.seed import conninfo

        self.raw = psycopg.connect(conninfo(database_url), autocommit=True)

    def close(self) -> None:
        self.raw.close()
        self.app.extensions["portal_db"].dispose()

    @contextmanager
    def request(self) -> Iterator[Any]:
        """An application context with a fresh session, closed like a request's."""
        from portal.db import close_session, get_session

        with self.app.app_context():
            try:
                yield get_session()
            finally:
                close_session()

    def user(self, session: Any, email: str) -> Any:
        from partners.models import User

        return session.scalars(sa.select(User).where(User.email == email)).one()

    def raw_replay(
        self, statements: list[tuple[str, Any]], transaction: bool = True
    ) -> Callable[[], Any]:
        """The same SQL the product sent, through raw psycopg (psycopg's own paramstyle),
        in one transaction as the product's request session sends it (BEGIN … ROLLBACK)."""

        def run() -> None:
            for sql, params in statements:
                with self.raw.cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()

        def replay() -> None:
            if not transaction:
                run()
                return
            with self.raw.transaction(force_rollback=True):
                run()

        return replay

    def capture(self, action: Callable[[], Any]) -> list[tuple[str, Any]]:
        self.counter.last = []
        action()
        return list(self.counter.last)

    # --- scenarios ---------------------------------------------------------------------

    def agents(self) -> list[str]:
        with self.raw.cursor() as cursor:
            cursor.execute(
                "SELECT email FROM users WHERE kind = 'person' AND role = 'agent' AND active "
                "ORDER BY id"
            )
            emails = [row[0] for row in cursor.fetchall()]
        self.rng.shuffle(emails)
        return emails[: max(20, self.rounds // 5)]

    def _page(self, email: str, after: tuple[Any, int] | None = None) -> Callable[[], Any]:
        from shared_records import queries

        def page() -> Any:
            with self.request() as session:
                actor = self.user(session, email)
                views, _next = queries.case_page(session, actor, queries.CaseFilters(), 50, after)
                return [v.case.number for v in views]

        return page

    def inbox_first_page(self) -> Scenario:
        emails = self.agents()
        product_ops = [self._page(self.rng.choice(emails)) for _ in range(self.rounds)]
        product = _measure(product_ops, self.counter)
        floor_ops = []
        for email in emails:
            statements = self.capture(self._page(email))
            floor_ops.append(self.raw_replay(statements))
        floor = _measure([self.rng.choice(floor_ops) for _ in range(self.rounds)], None)
        return Scenario(
            "inbox first page (50 rows), random organisation, query layer",
            "p95 ms",
            product.summary()["p95_ms"],
            floor.summary()["p95_ms"],
            1.5,
            details={"product": product.summary(), "floor": floor.summary()},
            note="floor: the product's own SQL (user, page) replayed through raw psycopg, in one "
            "transaction like the product's request",
        )

    def inbox_deep_page(self) -> Scenario:
        largest = self.facts["largest_dealer"]
        email = largest["agent_email"]
        depth = min(10_000, max(0, largest["visible_cases"] - 60))
        with self.raw.cursor() as cursor:
            cursor.execute(
                "SELECT last_activity_at, case_id FROM case_visibility "
                "WHERE organization_id = %s ORDER BY last_activity_at DESC, case_id DESC "
                "OFFSET %s LIMIT 1",
                (largest["id"], depth),
            )
            at, case_id = cursor.fetchone() or (None, None)
        deep = _measure([self._page(email, (at, case_id))] * self.rounds, self.counter)
        first = _measure([self._page(email)] * self.rounds, self.counter)
        return Scenario(
            f"inbox page at depth {depth:,} (keyset cursor), largest dealer",
            "p95 ms",
            deep.summary()["p95_ms"],
            first.summary()["p95_ms"],
            2.0,
            details={"product": deep.summary(), "floor": first.summary(), "depth": depth},
            note="floor: the first page of the same inbox",
        )

    def phone_lookup(self) -> Scenario:
        from shared_records import queries

        with self.raw.cursor() as cursor:
            cursor.execute(
                "SELECT p.e164, u.email FROM phone_numbers p "
                "JOIN customers c ON c.id = p.customer_id "
                "JOIN users u ON u.organization_id = c.owner_organization_id "
                "AND u.role = 'agent' AND u.kind = 'person' "
                "ORDER BY p.id DESC LIMIT %s",
                (self.rounds * 3,),
            )
            pairs = cursor.fetchall()
        self.rng.shuffle(pairs)
        pairs = pairs[: self.rounds]
        with self.request() as session:
            agents = {email: self.user(session, email) for _, email in pairs}
            for agent in agents.values():
                session.expunge(agent)

        def lookup(e164: str, email: str) -> Callable[[], Any]:
            def op() -> Any:
                with self.app.app_context():
                    return queries.callers(agents[email], e164)

            return op

        product = _measure([lookup(n, e) for n, e in pairs], self.counter)
        found = 0
        for number, email in pairs[:50]:
            found += bool(lookup(number, email)())

        def raw(e164: str) -> Callable[[], Any]:
            def op() -> Any:
                with self.raw.cursor() as cursor:
                    cursor.execute("SELECT customer_id FROM phone_numbers WHERE e164 = %s", (e164,))
                    return cursor.fetchall()

            return op

        floor = _measure([raw(n) for n, _ in pairs], None)
        return Scenario(
            "phone number -> customer lookup (visibility included)",
            "p95 ms",
            product.summary()["p95_ms"],
            floor.summary()["p95_ms"],
            2.0,
            details={
                "product": product.summary(),
                "floor": floor.summary(),
                "found_of_50_owned_numbers": found,
            },
            note="floor: raw psycopg on the E.164 index",
        )

    def search(self) -> Scenario:
        from shared_records import search

        with self.raw.cursor() as cursor:
            cursor.execute(
                "SELECT c.id, c.name, c.city, u.email FROM customers c "
                "JOIN users u ON u.organization_id = c.owner_organization_id "
                "AND u.role = 'agent' AND u.kind = 'person' "
                "WHERE c.kind = 'person' ORDER BY c.id DESC LIMIT %s",
                (self.rounds * 4,),
            )
            rows = cursor.fetchall()
        self.rng.shuffle(rows)
        labelled: list[tuple[str, str, int, str]] = []
        for customer_id, name, _city, email in rows[: self.rounds]:
            kind, query = _variant(self.rng, name)
            labelled.append((kind, query, customer_id, email))
        with self.request() as session:
            agents = {email: self.user(session, email) for *_rest, email in labelled}
            for agent in agents.values():
                session.expunge(agent)

        hits: dict[str, list[bool]] = {}

        def op(kind: str, query: str, wanted: int, email: str) -> Callable[[], Any]:
            def run() -> Any:
                with self.request() as session:
                    results = search.search(session, agents[email], query, limit=10)
                    ids = {h.customer_id for h in results.customers} | {
                        h.customer_id for h in results.contacts
                    }
                    return wanted in ids

            return run

        operations = [op(*item) for item in labelled]
        product = _measure(operations, self.counter)
        for item, operation in zip(labelled, operations, strict=True):
            hits.setdefault(item[0], []).append(bool(operation()))
        replays = [self.raw_replay(self.capture(operation)) for operation in operations]
        floor = _measure(replays, None)
        recall = {kind: round(sum(v) / len(v), 3) for kind, v in sorted(hits.items())}
        return Scenario(
            "search, tenant-scoped, spelling variants",
            "p95 ms",
            product.summary()["p95_ms"],
            floor.summary()["p95_ms"],
            2.0,
            details={"product": product.summary(), "floor": floor.summary(), "recall": recall},
            note="floor: the product's full-text (and typo) SQL replayed through raw psycopg",
        )

    def duplicate_check(self) -> Scenario:
        from shared_records import duplicates
        from shared_records.textkeys import fold

        with self.raw.cursor() as cursor:
            cursor.execute(
                "SELECT c.name, c.postal_code, c.city, p.e164, u.email FROM customers c "
                "JOIN phone_numbers p ON p.customer_id = c.id AND p.contact_id IS NULL "
                "JOIN users u ON u.organization_id = c.owner_organization_id "
                "AND u.role = 'agent' AND u.kind = 'person' ORDER BY c.id DESC LIMIT %s",
                (self.rounds * 3,),
            )
            rows = cursor.fetchall()
        self.rng.shuffle(rows)
        rows = rows[: self.rounds]
        with self.request() as session:
            agents = {row[4]: self.user(session, row[4]) for row in rows}
            for agent in agents.values():
                session.expunge(agent)

        def product_op(row: tuple[Any, ...]) -> Callable[[], Any]:
            name, postal, city, e164, email = row

            def run() -> Any:
                with self.request() as session:
                    return duplicates.find_duplicates(
                        session,
                        agents[email],
                        name=name,
                        phones=[e164],
                        postal_code=postal,
                        city=city,
                    )

            return run

        def floor_op(row: tuple[Any, ...]) -> Callable[[], Any]:
            name, postal, city, e164, _email = row
            key = fold(name)

            def run() -> Any:
                with self.raw.cursor() as cursor:
                    cursor.execute(
                        "SELECT id, name_key FROM customers WHERE id IN ("
                        " SELECT customer_id FROM phone_numbers WHERE e164 = %s"
                        " UNION SELECT id FROM customers WHERE postal_code = %s"
                        " UNION SELECT id FROM customers WHERE city_key = %s) LIMIT 500",
                        (e164, postal, fold(city or "")),
                    )
                    return [i for i, k in cursor.fetchall() if fuzz.WRatio(key, k) >= 85]

            return run

        product = _measure([product_op(r) for r in rows], self.counter)
        floor = _measure([floor_op(r) for r in rows], None)
        return Scenario(
            "duplicate check on create",
            "p95 ms",
            product.summary()["p95_ms"],
            floor.summary()["p95_ms"],
            3.0,
            details={"product": product.summary(), "floor": floor.summary()},
            note="floor: blocking-key lookup (E.164, postal code, city key) + rapidfuzz, scripted",
        )

    def run(self, only: set[str] | None = None) -> list[Scenario]:
        results: list[Scenario] = []
        for name, scenario in (
            ("inbox", self.inbox_first_page),
            ("inbox", self.inbox_deep_page),
            ("phone", self.phone_lookup),
            ("search", self.search),
            ("duplicates", self.duplicate_check),
        ):
            if only is None or name in only:
                idle = wait_until_quiet()
                result = scenario()
                result.details["cpu_idle_before"] = idle
                results.append(result)
        return results


# Scenarios measured by their own modules (servers, clients, writes), in report order:
# (group name, module, rounds: None = the suite's, else a fixed count).
EXTERNAL: list[tuple[str, str, int | None]] = [
    ("http", "bench.http_load", None),
    ("cti", "bench.cti_latency", None),
    ("fanout", "bench.fanout", None),
    ("shares", "bench.share_recalc", 3),
]


QUIET_IDLE = 0.9  # share of CPU time idle over QUIET_WINDOW_S that counts as quiet
QUIET_WINDOW_S = 2.0
QUIET_MAX_WAIT_S = 90.0


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def wait_until_quiet() -> float:
    """Wait (at most QUIET_MAX_WAIT_S) until the machine is idle for QUIET_IDLE of a
    QUIET_WINDOW_S window, and return the idle share seen last. The scenarios before leave
    work behind (PostgreSQL's autovacuum and checkpoints after their writes, exiting
    servers); a fan-out to 1,000 threads measured meanwhile cost 2.4 times its quiet figure."""
    deadline = time.monotonic() + QUIET_MAX_WAIT_S
    while True:
        idle0, total0 = _cpu_times()
        time.sleep(QUIET_WINDOW_S)
        idle1, total1 = _cpu_times()
        share = (idle1 - idle0) / max(1, total1 - total0)
        if share >= QUIET_IDLE or time.monotonic() >= deadline:
            return round(share, 3)


def external_scenarios(
    database_url: str, facts: dict[str, Any], rounds: int, only: set[str] | None
) -> list[Scenario]:
    import importlib
    import traceback

    results: list[Scenario] = []
    for name, module_name, fixed_rounds in EXTERNAL:
        if only is not None and name not in only:
            continue
        module = importlib.import_module(module_name)
        idle = wait_until_quiet()
        try:
            found = module.scenarios(database_url, facts, fixed_rounds or rounds)
            for scenario in found:
                scenario.details["cpu_idle_before"] = idle
            results.extend(found)
        except Exception as exc:  # one broken scenario must not hide the others' figures
            traceback.print_exc()
            results.append(Scenario(module_name, "-", None, None, 0.0, note=f"FAILED: {exc!r}"))
    return results


_TRANSCRIBE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_STRIP = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "Ä": "A", "Ö": "O", "Ü": "U", "ß": "ss"})


def _variant(rng: random.Random, name: str) -> tuple[str, str]:
    """A spelling of `name` as someone might type it, with the kind of variation."""
    kind = rng.choice(["exact", "transcribed", "stripped", "lowercase", "typo"])
    if kind == "transcribed":
        return kind, name.translate(_TRANSCRIBE)
    if kind == "stripped":
        return kind, name.translate(_STRIP)
    if kind == "lowercase":
        return kind, name.lower()
    if kind == "typo":
        parts = name.split()
        last = parts[-1]
        if len(last) > 4:
            i = rng.randrange(1, len(last) - 1)
            last = last[:i] + last[i + 1 :]  # one letter dropped
        return kind, " ".join([*parts[:-1], last])
    return kind, name


def write_report(results: list[Scenario], out_dir: Path, meta: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {**meta, "scenarios": [r.as_dict() for r in results]}
    (out_dir / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    lines = [
        f"# Benchmark report (profile {meta['profile']})",
        "",
        f"{meta['machine']}; {meta['rounds']} operations per measurement.",
        "",
        "| scenario | metric | product | floor | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sign = "≥" if r.higher_is_better else "≤"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        target = f"{sign} {r.target_ratio}"
        if r.target_absolute is not None:
            target = f"{sign} {r.target_absolute:g} ({r.metric})"
        lines.append(
            f"| {r.name} | {r.metric} | {_fmt(r.product)} | {_fmt(r.floor)} | "
            f"{_fmt(r.ratio)} | {target} | {met} |"
        )
    lines += ["", "Details (p50/p95/p99 ms, operations/s, CPU ms and SQL statements per op):", ""]
    for r in results:
        if r.details:
            lines.append(f"- **{r.name}**: {json.dumps(r.details)}; {r.note}")
        else:
            lines.append(f"- **{r.name}**: {r.note}")
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def run_suite(
    database_url: str, profile: str, out_dir: Path, rounds: int, only: set[str] | None = None
) -> list[Scenario]:
    import os
    import platform

    facts_file = OUT_DIR / f"seed-{profile}.json"
    facts = json.loads(facts_file.read_text(encoding="utf-8"))
    suite = Suite(database_url, facts, rounds, seed=20261122)
    try:
        results = suite.run(only)
    finally:
        suite.close()
    results.extend(external_scenarios(database_url, facts, rounds, only))
    python = f"{platform.python_implementation()} {platform.python_version()}"
    machine = f"{os.cpu_count()} CPUs, {python}"
    write_report(
        results,
        out_dir,
        {"profile": profile, "rounds": rounds, "machine": machine, "counts": facts["counts"]},
    )
    return results
