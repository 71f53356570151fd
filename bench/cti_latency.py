"""CTI screen-pop latency (issue 6): a telephone system's `ringing` POST until the agent's
Socket.IO client has the `screen_pop`, through two server processes sharing Redis, against a
scripted floor measured in the same run.

Product: two `python -m portal serve` processes (the same Redis, their own
PORTAL_SOCKETIO_CHANNEL). The telephone system POSTs /api/v1/cti/events on A over one
keep-alive HTTP connection (a requests.Session, so no TCP connect is measured) with a
client-credentials token of scope `cti`; the agent's Socket.IO client (WebSocket transport,
a personal API token) is connected to B. A round lasts from just before the POST is sent
until the client's `screen_pop` handler runs. Callers are random customers of the largest
dealer, their numbers in the formats exchanges send (E.164, international with spaces,
00-prefix, bare digits, tel: URI, national); every pop must name the caller's customer
(`mismatches`), arrive within a few seconds (`lost`) and the POST must answer 200 (`errors`).

Floor: the least the same work needs, scripted in this process: a raw psycopg E.164 lookup
(phone_numbers joined to customers, autocommit) and one Redis PUBLISH of a screen-pop-sized
message in python-socketio's message-queue format, forwarded as one WebSocket frame by a bare
python-socketio server process of the same stack as `portal serve` (threading mode,
simple-websocket, Werkzeug's threaded server, socketio.RedisManager on the same Redis) to the
same kind of client. A round lasts from the start of the lookup until the client's handler
runs (`publish_to_frame` in the details: from the PUBLISH alone). Product and floor rounds
alternate, so both see the same machine load.

The target of issue 6 is absolute, p95 <= 10 ms on this machine, not a ratio. The Scenario
of bench/suite.py judges `product / floor <= target_ratio`; the scenario therefore sets
`target_ratio = 10 ms / floor p95` of this run, which makes `met` exactly "product p95 <=
10 ms", and also gives `details["target_p95_ms"]` and `details["met_absolute"]` (the ratio
stays informative: how far the product is from the floor).

The run writes `calls` rows, one OAuth token (and its audit event) and one personal API token
of the agent (revoked at the end) into the database; the API client "Benchmark CTI" of the
largest dealer is created once and reused.

    .venv/bin/python bench/cti_latency.py --database-url postgresql+psycopg://…/wk_bench_s
        [--profile S] [--rounds 300]

Redis: PORTAL_BENCH_REDIS_URL, else the test suite's choice (PORTAL_TEST_REDIS_URL, the local
server on 127.0.0.1:6379, else a throwaway redis-server).
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
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
import psycopg
import redis
import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.seed import conninfo  # noqa: E402
from bench.suite import OUT_DIR, Scenario  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

TARGET_P95_MS = 10.0
CLIENT_NAME = "Benchmark CTI"
POP_TIMEOUT = 5.0
WARMUP = 20


# --- setup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    cti_token: str
    agent_token: str
    agent_token_id: int
    agent_user_id: int
    agent_extension: str


def credentials(database_url: str, org_slug: str, agent_email: str) -> Credentials:
    """A CTI access token (the organisation's "Benchmark CTI" client, created once) and a
    personal API token of the agent; idempotent apart from the two new token rows."""
    import sqlalchemy as sa

    from auth.clients import create_client_for, new_access_token, store_token
    from auth.models import ApiClient
    from auth.service import create_api_token, find_user
    from partners.models import Organization
    from portal.app import create_app

    app = create_app({"DATABASE_URL": database_url, "CHECK_MIGRATIONS": False})
    try:
        with app.app_context(), app.extensions["portal_db"].sessionmaker() as session:
            org = session.scalars(
                sa.select(Organization).where(Organization.slug == org_slug)
            ).one()
            client = session.scalars(
                sa.select(ApiClient).where(
                    ApiClient.organization_id == org.id,
                    ApiClient.name == CLIENT_NAME,
                    ApiClient.revoked_at.is_(None),
                )
            ).first()
            if client is None:
                client, _secret = create_client_for(session, org, CLIENT_NAME, "cti")
            cti = new_access_token()
            store_token(session, client, cti, ["cti"], 3600)
            agent = find_user(session, agent_email)
            if agent is None or agent.phone_extension is None:
                raise RuntimeError(f"{agent_email}: no such agent with an extension")
            row, secret = create_api_token(session, agent, "bench/cti_latency.py")
            return Credentials(cti, secret, row.id, agent.id, agent.phone_extension)
    finally:
        app.extensions["portal_db"].dispose()


def revoke_agent_token(database_url: str, token_id: int) -> None:
    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = %s", (token_id,))


@dataclass(frozen=True)
class Caller:
    customer_id: int
    name: str
    e164: str


def warm(database_url: str, people: Sequence[Caller]) -> None:
    """Read every caller's rows once (phone, customer, visibility, cases) before timing: a
    server that has been running holds them in memory, and without this the first of
    product and floor to look a caller up would pay the disk reads for both."""
    with psycopg.connect(conninfo(database_url)) as conn:
        for caller in people:
            conn.execute(
                "SELECT count(*) FROM phone_numbers p JOIN customers c ON c.id = p.customer_id "
                "LEFT JOIN case_visibility v ON v.customer_id = c.id "
                "LEFT JOIN cases k ON k.customer_id = c.id WHERE p.e164 = %s",
                (caller.e164,),
            ).fetchall()


def callers(database_url: str, org_id: int, count: int, rng: random.Random) -> list[Caller]:
    """Random customers of the organisation with their first own phone number."""
    with psycopg.connect(conninfo(database_url)) as conn:
        conn.execute("SELECT setseed(%s)", (rng.random(),))
        rows = conn.execute(
            "SELECT c.id, c.name, p.e164 FROM customers c"
            " JOIN phone_numbers p ON p.customer_id = c.id AND p.contact_id IS NULL"
            "  AND p.position = 0"
            " WHERE c.owner_organization_id = %s AND c.merged_into_id IS NULL"
            " ORDER BY random() LIMIT %s",
            (org_id, count),
        ).fetchall()
    return [Caller(*row) for row in rows]


def caller_formats(e164: str) -> dict[str, str]:
    """The number as telephone systems send it (national form for German numbers only)."""
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


# --- the floor's bare Socket.IO server ---------------------------------------------------


def serve_floor(port: int, redis_url: str, channel: str) -> None:
    """A bare python-socketio server: threading mode, simple-websocket, Werkzeug's threaded
    server (what `portal serve` runs), RedisManager on the channel. A client joins the room
    `user:<id>` it names in its auth payload; GET /healthz answers 200."""
    from werkzeug.serving import run_simple

    manager = socketio.RedisManager(redis_url, channel=channel)
    server = socketio.Server(async_mode="threading", client_manager=manager)

    def connect(sid: str, _environ: dict[str, Any], auth: Any = None) -> bool:
        if not isinstance(auth, dict) or not isinstance(auth.get("user"), int):
            return False
        server.enter_room(sid, f"user:{auth['user']}")
        return True

    server.on("connect", connect)

    def health(_environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        start("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    run_simple("127.0.0.1", port, socketio.WSGIApp(server, health), threaded=True)


class GunicornServer:
    """The product as deployed (portal/wsgi.py): gunicorn, one gthread worker. Werkzeug's
    threaded development server (`portal serve`) answers HTTP/1.0, so every POST of a
    telephone system would pay a new connection and a new thread."""

    def __init__(self, database_url: str, redis_url: str, channel: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_BASE_URL": self.url,
            "PORTAL_SECRET_KEY": "bench",
            "PORTAL_SOCKETIO_CHANNEL": channel,
            "PORTAL_REDIS_URL": redis_url,
        }
        command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread"]
        command += ["--workers", "1", "--threads", "32", "--keep-alive", "30"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"]
        command += ["--no-control-socket", "portal.wsgi:app"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(self.url + "/healthz", timeout=5).ok:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class FloorServer:
    def __init__(self, redis_url: str, channel: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--floor-server",
                str(self.port),
                "--redis-url",
                redis_url,
                "--channel",
                channel,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(150):
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("floor server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


# --- measuring ---------------------------------------------------------------------------


class Inbox:
    """Arrival times of `screen_pop` events by call id, for a Socket.IO client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}
        self._arrived: dict[str, tuple[float, dict[str, Any]]] = {}

    def expect(self, call_id: str) -> threading.Event:
        with self._lock:
            self._events[call_id] = event = threading.Event()
            return event

    def on_pop(self, data: dict[str, Any]) -> None:
        now = time.perf_counter()
        call_id = str(data.get("call_id"))
        with self._lock:
            self._arrived[call_id] = (now, data)
            waiting = self._events.get(call_id)
        if waiting is not None:
            waiting.set()

    def take(self, call_id: str) -> tuple[float, dict[str, Any]]:
        with self._lock:
            self._events.pop(call_id, None)
            return self._arrived.pop(call_id)


@contextmanager
def connected(url: str, auth: dict[str, Any], inbox: Inbox) -> Iterator[socketio.Client]:
    client = socketio.Client(reconnection=False)
    client.on("screen_pop", inbox.on_pop)
    client.connect(url, auth=auth, transports=["websocket"], wait_timeout=20)
    try:
        yield client
    finally:
        client.disconnect()


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)  # the POST's answer / publish -> frame
    mismatches: int = 0
    lost: int = 0
    errors: int = 0
    formats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            **percentiles(self.latencies),
            "mismatches": self.mismatches,
            "lost": self.lost,
            "errors": self.errors,
        }


def percentiles(values: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * (len(ordered) - 1) + 0.5))], 3)

    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 3),
    }


class ProductRound:
    """One `ringing` POST on A, waiting for the pop on B's client."""

    def __init__(self, post_to: str, creds: Credentials, inbox: Inbox) -> None:
        self.url = f"{post_to}/api/v1/cti/events"
        self.creds = creds
        self.inbox = inbox
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {creds.cti_token}"
        self.run = uuid.uuid4().hex[:8]

    def __call__(self, index: int, caller: Caller, raw: str, tally: Tally | None) -> None:
        call_id = f"bench-{self.run}-{index}"
        arrived = self.inbox.expect(call_id)
        event = {
            "call_id": call_id,
            "event": "ringing",
            "from": raw,
            "agent": self.creds.agent_extension,
        }
        started = time.perf_counter()
        try:
            status = self.http.post(self.url, json=event, timeout=30).status_code
        except requests.RequestException:
            status = 0
        answered = time.perf_counter()
        if status != 200:
            if tally is not None:
                tally.errors += 1
            return
        if not arrived.wait(POP_TIMEOUT):
            if tally is not None:
                tally.lost += 1
            return
        at, payload = self.inbox.take(call_id)
        if tally is None:
            return
        tally.latencies.append((at - started) * 1000)
        tally.second.append((answered - started) * 1000)
        if caller.customer_id not in {m.get("customer_id") for m in payload.get("matches", [])}:
            tally.mismatches += 1


class FloorRound:
    """Raw psycopg E.164 lookup + one Redis PUBLISH, forwarded by the bare server."""

    SQL = (
        "SELECT c.id, c.name, p.contact_id FROM phone_numbers p"
        " JOIN customers c ON c.id = p.customer_id WHERE p.e164 = %s"
    )

    def __init__(self, database_url: str, redis_url: str, channel: str, user_id: int) -> None:
        self.db = psycopg.connect(conninfo(database_url), autocommit=True)
        self.redis = redis.Redis.from_url(redis_url)
        self.channel = channel
        self.room = f"user:{user_id}"
        self.inbox = Inbox()
        self.run = uuid.uuid4().hex[:8]

    def close(self) -> None:
        self.db.close()
        self.redis.close()

    def __call__(self, index: int, caller: Caller, _raw: str, tally: Tally | None) -> None:
        call_id = f"floor-{self.run}-{index}"
        arrived = self.inbox.expect(call_id)
        started = time.perf_counter()
        rows = self.db.execute(self.SQL, (caller.e164,)).fetchall()
        payload = {
            "call_id": call_id,
            "number": caller.e164,
            "state": "ringing",
            "matches": [
                {"customer_id": cid, "name": name, "contact_ids": [], "open_case_ids": []}
                for cid, name, _contact in rows
            ],
        }
        message = {
            "method": "emit",
            "event": "screen_pop",
            "data": [payload],
            "binary": False,
            "namespace": "/",
            "room": self.room,
            "skip_sid": None,
            "callback": None,
            "host_id": "floor-script",
        }
        published = time.perf_counter()
        self.redis.publish(self.channel, json.dumps(message))
        if not arrived.wait(POP_TIMEOUT):
            if tally is not None:
                tally.lost += 1
            return
        at, data = self.inbox.take(call_id)
        if tally is None:
            return
        tally.latencies.append((at - started) * 1000)
        tally.second.append((at - published) * 1000)
        if caller.customer_id not in {m.get("customer_id") for m in data.get("matches", [])}:
            tally.mismatches += 1


@dataclass
class Result:
    product: Tally
    floor: Tally
    setup: dict[str, Any]


def measure(database_url: str, facts: dict[str, Any], rounds: int, seed: int = 6) -> Result:
    from tests.support.redis_server import obtain_redis

    redis_url = os.environ.get("PORTAL_BENCH_REDIS_URL") or obtain_redis()
    if redis_url is None:
        raise RuntimeError("the CTI scenario needs Redis")
    rng = random.Random(seed)
    dealer = facts["largest_dealer"]
    creds = credentials(database_url, dealer["slug"], dealer["agent_email"])
    people = callers(database_url, dealer["id"], WARMUP + rounds, rng)
    plan = []
    for caller in people:
        kind, raw = rng.choice(sorted(caller_formats(caller.e164).items()))
        plan.append((caller, kind, raw))
    warm(database_url, [caller for caller, _, _ in plan])
    channel = f"bench-cti-{os.getpid()}"
    servers: list[GunicornServer | FloorServer] = []
    product, floor = Tally(), Tally()
    try:
        first = GunicornServer(database_url, redis_url, channel)
        servers.append(first)
        second = GunicornServer(database_url, redis_url, channel)
        servers.append(second)
        bare = FloorServer(redis_url, channel + "-floor")
        servers.append(bare)
        inbox = Inbox()
        floor_round = FloorRound(database_url, redis_url, channel + "-floor", creds.agent_user_id)
        product_round = ProductRound(first.url, creds, inbox)
        agent_auth = {"token": creds.agent_token}
        floor_auth = {"user": creds.agent_user_id}
        try:
            with (
                connected(second.url, agent_auth, inbox),
                connected(bare.url, floor_auth, floor_round.inbox),
            ):
                for index, (caller, kind, raw) in enumerate(plan):
                    measured = index >= WARMUP
                    # Alternate which goes first, so neither always follows the other.
                    order = (
                        (product_round, floor_round) if index % 2 else (floor_round, product_round)
                    )
                    for step in order:
                        tally = (product if step is product_round else floor) if measured else None
                        step(index, caller, raw, tally)
                        time.sleep(0.002)
                    if measured:
                        product.formats[kind] = product.formats.get(kind, 0) + 1
        finally:
            floor_round.close()
    finally:
        for server in reversed(servers):
            server.stop()
        revoke_agent_token(database_url, creds.agent_token_id)
    setup = {
        "organization": dealer["slug"],
        "agent": dealer["agent_email"],
        "redis": redis_url,
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
    }
    return Result(product, floor, setup)


def scenarios(database_url: str, facts: dict[str, Any], rounds: int) -> list[Scenario]:
    """The CTI scenario of the suite (one Scenario); see the module docstring."""
    result = measure(database_url, facts, rounds)
    product = result.product.summary()
    floor = result.floor.summary()
    product_p95, floor_p95 = product["p95_ms"], floor["p95_ms"]
    ok = result.product.mismatches == 0 and result.product.lost == 0
    met = product_p95 is not None and product_p95 <= TARGET_P95_MS and ok
    return [
        Scenario(
            "CTI ringing POST -> screen_pop at the agent's client, two processes over Redis",
            "p95 ms",
            product_p95,
            floor_p95,
            # The target is absolute (p95 <= 10 ms); as a ratio to this run's floor it makes
            # `met` say exactly that.
            round(TARGET_P95_MS / floor_p95, 3) if floor_p95 else 0.0,
            details={
                "product": product,
                "floor": floor,
                "target_p95_ms": TARGET_P95_MS,
                "met_absolute": met,
                "post_response": percentiles(result.product.second),
                "floor_publish_to_frame": percentiles(result.floor.second),
                "formats": dict(sorted(result.product.formats.items())),
                **result.setup,
            },
            note=(
                "target absolute: p95 <= 10 ms (target_ratio = 10 ms / floor p95); floor: raw "
                "psycopg E.164 lookup + Redis PUBLISH, forwarded as one WebSocket frame by a "
                "bare python-socketio server (threading, simple-websocket, Werkzeug, Redis)"
            ),
            target_absolute=TARGET_P95_MS,
            valid=ok,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", help="the seeded PostgreSQL database")
    parser.add_argument("--profile", default="S", help="which bench/out/seed-<profile>.json")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--floor-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--channel", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        serve_floor(args.floor_server, args.redis_url, args.channel)
        return
    if not args.database_url:
        parser.error("--database-url is required")
    facts = json.loads((OUT_DIR / f"seed-{args.profile}.json").read_text(encoding="utf-8"))
    results = scenarios(args.database_url, facts, args.rounds)
    print(json.dumps([r.as_dict() for r in results], indent=2, default=str))


if __name__ == "__main__":
    main()
