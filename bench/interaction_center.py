"""Benchmark of the interaction center: screen-pop latency and search over many customers.

Screen pop: from just before a telephone system's `ringing` POST (/api/v1/cti/events, client
credentials with scope `cti`) until the `screen_pop` event reaches the agent's Socket.IO
client, which must name the caller's customer. Callers are random customers of Nordwerk,
their numbers in the formats exchanges send ("0171 2345678", "+49 171 2345678", "0049 …",
digits without "+", tel: URIs). Measured through one server process, and through two
processes sharing Redis (POST on A, the agent's client on B).

Search: GET /api/v1/search?q=… as the agent, with queries built from seeded customers in
spelling variants (Mueller / Muller / lower case, a one-letter typo, surname and city, the
phone number in another format, the email address); latency and recall per kind. A query
counts as "ambiguous" (not as a miss) when the wanted customer is missing only because a
full page of equally named customers came first.

    .venv/bin/python bench/interaction_center.py [--customers 500000] [--rounds 300]
        [--queries 300] [--fresh]

The database is PORTAL_BENCH_DATABASE_URL (PostgreSQL) if set, else `wk_bench_ic` on the
local server (tests/support/postgres.py), kept between runs so that a second run skips the
seeding (bench/seed.py); `--fresh` drops `wk_bench_ic` first. Writes
bench/out/interaction_center.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
import psycopg
import requests
import socketio
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.live_delivery import Server, token  # noqa: E402
from bench.seed import conninfo, seed  # noqa: E402
from shared_records.textkeys import fold, words  # noqa: E402
from tests.support.postgres import obtain_postgres, why_unavailable  # noqa: E402
from tests.support.redis_server import obtain_redis  # noqa: E402

DATABASE = "wk_bench_ic"
AGENT = "agent@nordwerk.example"
AGENT_EXTENSION = "201"
ORGANIZATION = "nordwerk"
SEARCH_LIMIT = 10
POP_TARGET_MS = 50.0
SEARCH_TARGET_MS = 100.0
TIMEOUT = 10.0
KINDS = ("transcribed", "stripped", "lowercase", "typo", "surname_city", "phone", "email")
_TRANSCRIBE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_STRIP = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "Ä": "A", "Ö": "O", "Ü": "U"})


# --- database --------------------------------------------------------------------------------


def database_url(fresh: bool) -> str:
    url = os.environ.get("PORTAL_BENCH_DATABASE_URL", "").strip()
    if url:
        if fresh:
            sys.exit("--fresh only drops the default database; drop yours yourself")
        return url
    server = obtain_postgres()
    if server is None:
        sys.exit("no PostgreSQL: " + "; ".join(why_unavailable))
    if fresh:
        server.drop_database(DATABASE)
    if not server.database_exists(DATABASE):
        server.create_database(DATABASE)
    return server.url_for(DATABASE)


def portal(url: str, *args: str) -> str:
    env = {**os.environ, "PORTAL_DATABASE_URL": url, "PORTAL_ARGON2_PROFILE": "fast"}
    done = subprocess.run(
        [sys.executable, "-m", "portal", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"portal {' '.join(args)} failed:\n{done.stderr.strip()[-2000:]}")
    return done.stdout


def show_progress(stage: str, done: int, total: int) -> None:
    line = f"seeding: {stage} {done:,}/{total:,}"
    if sys.stderr.isatty():
        print(f"\r{line:<60}", end="" if done < total else "\n", file=sys.stderr, flush=True)
    elif done == total or done == 0:
        print(line, file=sys.stderr, flush=True)


def prepare(url: str, customers: int) -> dict[str, Any]:
    portal(url, "db", "upgrade")
    portal(url, "demo", "load", "--if-empty")
    result = seed(url, customers, progress=show_progress)
    return {
        "customers": result.customers_after,
        "cases": result.cases_after,
        "seeded": not result.skipped,
        "seed_seconds": round(result.seconds, 1),
    }


@dataclass(frozen=True)
class Target:
    customer_id: int
    name: str
    kind: str
    city: str
    city_key: str
    name_key: str
    e164: str
    email: str | None


def targets(url: str, count: int, rng: random.Random, umlauts: bool = False) -> list[Target]:
    """Random customers of the agent's organisation with their first phone number."""
    only = "[äöüÄÖÜ]" if umlauts else ""
    with psycopg.connect(conninfo(url)) as conn:
        conn.execute("SELECT setseed(%s)", (rng.random(),))
        rows = conn.execute(
            "SELECT c.id, c.name, c.kind, c.city, c.city_key, c.name_key, p.e164,"
            " (SELECT e.email FROM email_addresses e WHERE e.customer_id = c.id"
            "  AND e.contact_id IS NULL ORDER BY e.position LIMIT 1)"
            " FROM customers c"
            " JOIN organizations o ON o.id = c.owner_organization_id AND o.slug = %s"
            " JOIN phone_numbers p ON p.customer_id = c.id AND p.contact_id IS NULL"
            "  AND p.position = 0"
            " WHERE c.merged_into_id IS NULL AND c.city IS NOT NULL AND c.name ~ %s"
            " ORDER BY random() LIMIT %s",
            (ORGANIZATION, only, count),
        ).fetchall()
    return [Target(*row) for row in rows]


# --- credentials ---------------------------------------------------------------------------


def cti_token(url: str, server: Server) -> str:
    out = portal(url, "clients", "create", ORGANIZATION, "--name", "Benchmark", "--scopes", "cti")
    client_id, secret = out.strip().splitlines()[-1].split()
    answer = requests.post(
        f"{server.url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "cti"},
        auth=(client_id, secret),
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


# --- screen pop --------------------------------------------------------------------------------


def caller_formats(e164: str) -> dict[str, str]:
    """The number as telephone systems send it; national dialling form only for German
    numbers (Nordwerk's region is DE)."""
    number = phonenumbers.parse(e164)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    formats = {
        "e164": e164,
        "international": international,
        "00-prefix": "00" + international[1:],
        "digits": e164[1:],
        "tel-uri": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966),
    }
    if number.country_code == 49:
        formats["national"] = phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.NATIONAL
        )
    return formats


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[round(share * (len(ordered) - 1))], 2)

    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 2),
    }


def connect_agent(
    server: Server, agent_token: str, on_pop: Callable[[dict[str, Any]], None]
) -> Any:
    client = socketio.Client(reconnection=False)
    client.on("screen_pop", lambda data: on_pop(data))
    client.connect(
        server.url, auth={"token": agent_token}, transports=["websocket"], wait_timeout=20
    )
    return client


def measure_pops(
    post_to: Server,
    listen_on: Server,
    cti: str,
    agent_token: str,
    callers: Sequence[Target],
    warmup: int,
    rng: random.Random,
    label: str,
) -> dict[str, Any]:
    waiting: dict[str, threading.Event] = {}
    arrived: dict[str, tuple[float, dict[str, Any]]] = {}

    def on_pop(data: dict[str, Any]) -> None:
        now = time.perf_counter()
        call_id = str(data.get("call_id"))
        arrived[call_id] = (now, data)
        if call_id in waiting:
            waiting[call_id].set()

    client = connect_agent(listen_on, agent_token, on_pop)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {cti}"
    run = f"{label}-{int(time.time())}"
    latencies: list[float] = []
    answered: list[float] = []
    mismatches = errors = lost = 0
    formats: dict[str, int] = {}
    try:
        for index, caller in enumerate(callers):
            kind, raw = rng.choice(sorted(caller_formats(caller.e164).items()))
            call_id = f"bench-{run}-{index}"
            waiting[call_id] = threading.Event()
            started = time.perf_counter()
            event = {"call_id": call_id, "event": "ringing", "from": raw, "agent": AGENT_EXTENSION}
            try:
                status = http.post(
                    f"{post_to.url}/api/v1/cti/events", json=event, timeout=30
                ).status_code
            except requests.RequestException:
                status = 0
            replied = time.perf_counter()
            if status != 200:
                errors += 1
                continue
            if not waiting[call_id].wait(TIMEOUT):
                lost += 1
                continue
            at, payload = arrived.pop(call_id)
            if index < warmup:
                continue
            formats[kind] = formats.get(kind, 0) + 1
            latencies.append((at - started) * 1000)
            answered.append((replied - started) * 1000)
            if caller.customer_id not in {m["customer_id"] for m in payload.get("matches", [])}:
                mismatches += 1
    finally:
        client.disconnect()
    return {
        "rounds": len(latencies),
        **percentiles(latencies),
        "mismatches": mismatches,
        "errors": errors,
        "lost": lost,
        "formats": dict(sorted(formats.items())),
        # The POST's own round trip (the pop usually arrives before the response).
        "post_response": percentiles(answered),
    }


# --- search ----------------------------------------------------------------------------------


def typo(word: str, rng: random.Random) -> str:
    """One edit (substitution, deletion, swap of neighbours) after the first letter."""
    position = rng.randrange(1, len(word) - 1)
    operation = rng.choice(("substitute", "delete", "swap"))
    if operation == "delete":
        return word[:position] + word[position + 1 :]
    if operation == "swap":
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    letters = [c for c in "aeioulnrst" if c != word[position].lower()]
    return word[:position] + rng.choice(letters) + word[position + 1 :]


def phone_query(e164: str, rng: random.Random) -> str:
    number = phonenumbers.parse(e164)
    national = phonenumbers.national_significant_number(number)
    if number.country_code == 49 and rng.random() < 0.6:
        national_form = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return rng.choice([national_form.replace(" ", "/"), "0" + national])
    return f"00{number.country_code} {national}"


def build_query(kind: str, target: Target, rng: random.Random) -> str | None:
    surname = target.name.split()[-1]
    if kind == "transcribed":
        return target.name.translate(_TRANSCRIBE).replace("ß", "ss")
    if kind == "stripped":
        return target.name.translate(_STRIP)
    if kind == "lowercase":
        return target.name.lower()
    if kind == "typo":
        parts = target.name.split()
        longest = max(range(len(parts)), key=lambda i: len(parts[i]) * parts[i].isalpha())
        if len(parts[longest]) < 5 or not parts[longest].isalpha():
            return None
        parts[longest] = typo(parts[longest], rng)
        return " ".join(parts)
    if kind == "surname_city":
        return None if target.kind != "person" else f"{surname} {target.city}"
    if kind == "phone":
        return phone_query(target.e164, rng)
    if kind == "email":
        return target.email
    raise ValueError(kind)


def equivalent(kind: str, target: Target, hit: dict[str, Any]) -> bool:
    """Whether a hit is as good an answer as the target (an equally named customer)."""
    if kind in ("transcribed", "stripped", "lowercase", "typo"):
        return fold(str(hit.get("title", ""))) == target.name_key
    if kind == "surname_city":
        surname = set(words(target.name.split()[-1]))
        return surname <= set(words(str(hit.get("title", "")))) and (
            fold(str(hit.get("city") or "")) == target.city_key
        )
    return False


def plan_queries(url: str, count: int, rng: random.Random) -> list[tuple[str, str, Target]]:
    per_kind = -(-count // len(KINDS))
    general = targets(url, per_kind * 6, rng)
    umlauted = targets(url, per_kind * 3, rng, umlauts=True)
    plan: list[tuple[str, str, Target]] = []
    for kind in KINDS:
        pool = umlauted if kind in ("transcribed", "stripped") else general
        made = 0
        for target in rng.sample(pool, len(pool)):
            query = build_query(kind, target, rng)
            if query:
                plan.append((kind, query, target))
                made += 1
            if made == per_kind:
                break
    rng.shuffle(plan)
    return plan[:count]


def measure_search(
    server: Server, agent_token: str, plan: Sequence[tuple[str, str, Target]], warmup: int
) -> dict[str, Any]:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {agent_token}"
    by_kind: dict[str, dict[str, Any]] = {
        k: {"latencies": [], "hits": 0, "ambiguous": 0, "misses": [], "errors": 0} for k in KINDS
    }
    for index, (kind, query, target) in enumerate([*plan[:warmup], *plan]):
        params: dict[str, str | int] = {"q": query, "limit": SEARCH_LIMIT}
        started = time.perf_counter()
        try:
            answer = http.get(f"{server.url}/api/v1/search", params=params, timeout=60)
            body = answer.json() if answer.ok else None
        except requests.RequestException:
            body = None
        elapsed = (time.perf_counter() - started) * 1000
        if index < warmup:
            continue
        stats = by_kind[kind]
        if body is None:
            stats["errors"] += 1
            continue
        stats["latencies"].append(elapsed)
        found = body.get("customers", [])
        if any(hit.get("id") == target.customer_id for hit in found):
            stats["hits"] += 1
        elif len(found) >= SEARCH_LIMIT and all(equivalent(kind, target, h) for h in found):
            stats["ambiguous"] += 1
        else:
            stats["misses"].append(query)
    kinds: dict[str, Any] = {}
    everything: list[float] = []
    for kind, stats in by_kind.items():
        everything.extend(stats["latencies"])
        judged = stats["hits"] + len(stats["misses"])
        kinds[kind] = {
            "queries": len(stats["latencies"]) + stats["errors"],
            **percentiles(stats["latencies"]),
            "recall": round(stats["hits"] / judged, 3) if judged else None,
            "hits": stats["hits"],
            "ambiguous": stats["ambiguous"],
            "errors": stats["errors"],
            "missed_queries": stats["misses"][:10],
        }
    return {"queries": len(everything), **percentiles(everything), "by_kind": kinds}


# --- output ----------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    return "-" if value is None else f"{value}"


def print_report(result: dict[str, Any]) -> None:
    data = result["data"]
    print(
        f"\nInteraction center on PostgreSQL: {data['customers']:,} customers, "
        f"{data['cases']:,} cases ({result['cpus']} CPUs, load average"
        f" {result['load_average']['before']} before, {result['load_average']['after']} after)"
    )
    print("\nScreen pop: ringing POST until screen_pop at the agent's client")
    print(
        f"{'setup':30} {'rounds':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'mismatch':>8} {'lost':>5} {'errors':>6}"
    )
    for row in result["screen_pop"]:
        print(
            f"{row['setup']:30} {row['rounds']:>6} {fmt(row['p50_ms']):>8}"
            f" {fmt(row['p95_ms']):>8} {fmt(row['p99_ms']):>8} {fmt(row['max_ms']):>8}"
            f" {row['mismatches']:>8} {row['lost']:>5} {row['errors']:>6}"
        )
    search = result["search"]
    print(f"\nSearch: GET /api/v1/search as the agent, limit {SEARCH_LIMIT}")
    print(
        f"{'kind':14} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'recall':>7} {'ambiguous':>9}"
    )
    for kind, row in search["by_kind"].items():
        print(
            f"{kind:14} {row['queries']:>7} {fmt(row['p50_ms']):>8} {fmt(row['p95_ms']):>8}"
            f" {fmt(row['p99_ms']):>8} {fmt(row['max_ms']):>8} {fmt(row['recall']):>7}"
            f" {row['ambiguous']:>9}"
        )
    print(
        f"{'all':14} {search['queries']:>7} {fmt(search['p50_ms']):>8}"
        f" {fmt(search['p95_ms']):>8} {fmt(search['p99_ms']):>8} {fmt(search['max_ms']):>8}"
    )
    print()
    for line in result["verdict"]:
        print(line)
    if result["notes"]:
        print("\n".join(result["notes"]))


def verdict(pops: Sequence[dict[str, Any]], search: dict[str, Any]) -> list[str]:
    lines = []
    for row in pops:
        p95 = row["p95_ms"]
        met = p95 is not None and p95 < POP_TARGET_MS and row["mismatches"] == 0
        lines.append(
            f"screen pop p95 ({row['setup']}): {fmt(p95)} ms, target < {POP_TARGET_MS:g} ms:"
            f" {'met' if met else 'NOT met'}"
        )
    p95 = search["p95_ms"]
    met = p95 is not None and p95 < SEARCH_TARGET_MS
    outcome = "met" if met else "NOT met"
    lines.append(f"search p95: {fmt(p95)} ms, target < {SEARCH_TARGET_MS:g} ms: {outcome}")
    return lines


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=300, help="screen pops per setup")
    parser.add_argument("--queries", type=int, default=300, help="search queries")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured rounds/queries first")
    parser.add_argument("--fresh", action="store_true", help=f"drop {DATABASE} first")
    parser.add_argument("--random-seed", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(args.random_seed)
    load_before = os.getloadavg()[0]

    url = database_url(args.fresh)
    data = prepare(url, args.customers)
    agent_token = token(url, AGENT)
    callers = targets(url, (args.warmup + args.rounds) * 2, rng)
    plan = plan_queries(url, args.queries, rng)
    notes: list[str] = []
    pops: list[dict[str, Any]] = []

    single = Server(url, None, "bench-ic-one")
    try:
        cti = cti_token(url, single)
        sample = rng.sample(callers, min(len(callers), args.warmup + args.rounds))
        row = measure_pops(single, single, cti, agent_token, sample, args.warmup, rng, "one")
        pops.append({"setup": "one process", **row})
        search = measure_search(single, agent_token, plan, args.warmup)
    finally:
        single.stop()

    redis_url = obtain_redis()
    if redis_url is None:
        notes.append("No Redis: the two-process setup was skipped (one process only).")
    else:
        first = Server(url, redis_url, "bench-ic-two")
        second = Server(url, redis_url, "bench-ic-two")
        try:
            sample = rng.sample(callers, min(len(callers), args.warmup + args.rounds))
            row = measure_pops(first, second, cti, agent_token, sample, args.warmup, rng, "two")
            pops.append({"setup": "two processes, Redis (A->B)", **row})
        finally:
            first.stop()
            second.stop()

    result = {
        "database": make_url(url).render_as_string(hide_password=True),
        "data": data,
        "warmup": args.warmup,
        "cpus": os.cpu_count(),
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "screen_pop": pops,
        "search": search,
        "verdict": verdict(pops, search),
        "notes": notes,
    }
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "interaction_center.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print_report(result)


if __name__ == "__main__":
    main()
