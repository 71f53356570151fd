"""Benchmark: the portal's HTTP endpoints under load, against a bare "hello" Flask app.

Both apps are served the same way as in production (portal/wsgi.py): gunicorn, one worker
process per core, gthread workers with THREADS threads each. A separate load-generator
process (asyncio, raw HTTP/1.1 keep-alive connections, fixed concurrency) sends requests for
a warm-up period and then for a fixed measurement window; every response is checked (status
200 and the body the endpoint must return) and failures are counted and reported, never
timed as successes.

Scenarios (requests/s of the product against the hello floor, target at least 0.25 of it):

- inbox: ``GET /api/v1/cases?limit=50`` as random agents of random organisations;
- case page: the HTML page ``GET /cases/<id>`` of a case the requesting agent sees;
- case API: ``GET /api/v1/cases/<id>`` for the same (agent, case) pairs.

Every request carries a personal API token (Bearer) of its agent: the benchmark creates
tokens for TOKEN_AGENTS agents of different organisations and deletes them afterwards. The
hello floor is measured before and after the product (the mean is the floor), so drift on a
shared machine shows up in the details.

Server CPU per request is read from /proc (utime + stime of the gunicorn master and workers,
and separately of the PostgreSQL backends serving the product's connections, found by their
application_name) at the start and the end of the measurement window. SQL statements per
request are counted in-process (the app's test client on the same requests). The details
also give `cpu_bound_ratio`: CPU per hello request over CPU per product request (server,
database and load generator), the ratio the machine would show if its cores were the only
limit; unlike requests/s it hardly moves when other work shares the machine.

    .venv/bin/python -m bench.http_load [--database-url URL] [--profile S] [--seconds 10]

Needs a PostgreSQL database seeded with ``portal bench seed`` and migrated to the code's head
(portal/wsgi.py refuses to start otherwise; facts in bench/out/seed-<profile>.json); the
benchmark writes (and deletes again) a few api_tokens rows
and updates their last_used_at. Flask-Limiter limits only the sign-in views
(auth/throttle.py), so nothing here is throttled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/http_load.py` as well as `-m bench.http_load`
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:  # bench.suite imports this module: import it only where it is needed
    from bench.suite import Scenario

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wk_bench_s"
HOST = "127.0.0.1"
#: One worker process per core, as the issue asks.
WORKERS = os.cpu_count() or 1
#: Threads per worker. Requests wait for PostgreSQL (on this host) for part of their time; a
#: few threads keep the core busy during those waits, more only contend for the GIL. 4 is
#: gunicorn's usual advice (2-4 per core) and what portal/wsgi.py documents.
THREADS = 4
#: Connections of the load generator: two per worker thread, so that every thread has the
#: next request queued while it answers one (the server, not the client, is the bottleneck).
CONNECTIONS = min(64, max(8, 2 * WORKERS * THREADS))
WARMUP_SECONDS = 2.0
SECONDS = 10.0
TOKEN_AGENTS = 20
CASES_PER_AGENT = 10
TOKEN_NAME = "bench http_load"  # noqa: S105 - a label
#: application_name of the product's database connections (to find their backends' CPU).
APPLICATION_NAME = "wk_bench_http"
SCENARIO_NAMES = {
    "inbox": "inbox HTTP endpoint under load (gunicorn, one process per core)",
    "case_page": "case page HTTP endpoint under load",
    "case_api": "case API detail HTTP endpoint under load",
}
#: What a good response body must contain, per kind of request.
MARKERS = {
    "hello": b"hello",
    "inbox": b'"items"',
    "case_page": b"</html>",
    "case_api": b'"subject"',
}
#: gunicorn configuration: the hook tells the benchmark when a worker has loaded the app (a
#: keep-alive connection stays with the worker that accepted it, so the load must not start
#: while one worker is still importing).
GUNICORN_CONFIG = """\
import os
import pathlib


def post_worker_init(worker):
    pathlib.Path(os.environ["WK_BENCH_READY_DIR"], str(worker.pid)).touch()
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- servers and /proc ---------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3, "state", is index 0)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """utime + stime of each process (all its threads) that still exists."""
    found = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def children(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == parent:
                pids.append(int(entry.name))
    return sorted(pids)


class Gunicorn:
    """`target` (module:app) under gunicorn on a free loopback port, until `stop`."""

    def __init__(self, target: str, env: dict[str, str], health_path: str) -> None:
        from tests.support.servers import free_port

        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="wk-gunicorn-")
        ready = Path(self._dir.name, "ready")
        ready.mkdir()
        config = Path(self._dir.name, "gunicorn.conf.py")
        config.write_text(GUNICORN_CONFIG)
        self._log: IO[bytes] = Path(self._dir.name, "gunicorn.log").open("w+b")  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(config),
            "--workers",
            str(WORKERS),
            "--worker-class",
            "gthread",
            "--threads",
            str(THREADS),
            # Emulates the balance of many clients: keep-alive connections stay with the worker
            # that accepted them, and without a cap one worker may take all of them.
            "--worker-connections",
            str(-(-CONNECTIONS // WORKERS)),
            "--keep-alive",
            "30",
            "--bind",
            f"{HOST}:{self.port}",
            "--log-level",
            "warning",
            "--no-control-socket",  # the default path is per user: instances would collide
            target,
        ]
        self.command = command
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "WK_BENCH_READY_DIR": str(ready)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(ready, health_path)

    def _wait_ready(self, ready: Path, health_path: str) -> None:
        import requests

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if len(list(ready.iterdir())) >= WORKERS:
                try:
                    if requests.get(self.url + health_path, timeout=5).ok:
                        return
                except requests.ConnectionError:
                    pass
            time.sleep(0.1)
        log = self.log_tail()
        self.stop()
        raise RuntimeError(f"gunicorn did not start: {' '.join(self.command)}\n{log}")

    @property
    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.process.pid, *children(self.process.pid)]

    def log_tail(self, limit: int = 4000) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: gunicorn's graceful shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        self._dir.cleanup()


# --- the load generator (runs in its own process) -------------------------------------------


@dataclass
class _Load:
    host: str
    port: int
    requests: list[bytes]
    marker: bytes
    measuring: bool = False
    stopping: bool = False
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    response_bytes: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers = head.lower()
    keep_alive = b"\r\nconnection: close" not in headers
    at = headers.find(b"\r\ncontent-length:")
    if at >= 0:
        end = headers.index(b"\r\n", at + 2)
        body = await reader.readexactly(int(headers[at + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in headers:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    else:
        body = await reader.read()
        keep_alive = False
    return status, body, keep_alive


async def _connection(load: _Load, first: int) -> None:
    index = first
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while not load.stopping:
        if writer is None or reader is None:
            reader, writer = await asyncio.open_connection(load.host, load.port)
        request = load.requests[index % len(load.requests)]
        index += 1
        started = time.perf_counter()
        try:
            writer.write(request)
            status, body, keep_alive = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if load.measuring:
                load.errors[f"exception {type(exc).__name__}"] += 1
            writer.close()
            reader = writer = None
            continue
        elapsed = time.perf_counter() - started
        if load.measuring:
            if status != 200:
                load.errors[f"status {status}"] += 1
            elif load.marker not in body:
                load.errors["unexpected body"] += 1
            else:
                load.latencies.append(elapsed * 1000)
                load.response_bytes += len(body)
        if not keep_alive:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _generate(spec: dict[str, Any]) -> dict[str, Any]:
    load = _Load(
        spec["host"],
        spec["port"],
        [r.encode("latin-1") for r in spec["requests"]],
        spec["marker"].encode("latin-1"),
    )
    step = max(1, len(load.requests) // spec["connections"])
    tasks = [asyncio.create_task(_connection(load, n * step)) for n in range(spec["connections"])]
    await asyncio.sleep(spec["warmup"])
    cpu_before = time.process_time()
    started = time.perf_counter()
    load.measuring = True
    print("START", flush=True)
    await asyncio.sleep(spec["seconds"])
    load.measuring = False
    elapsed = time.perf_counter() - started
    print("END", flush=True)
    client_cpu = time.process_time() - cpu_before
    load.stopping = True
    done, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    crashed = [t.exception() for t in done if not t.cancelled() and t.exception()]
    return {
        "elapsed_s": elapsed,
        "latencies_ms": load.latencies,
        "errors": dict(load.errors),
        "client_cpu_s": client_cpu,
        "response_bytes": load.response_bytes,
        "crashed_connections": [repr(e) for e in crashed],
    }


def _client_main() -> None:
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(_generate(spec))
    print(json.dumps(result), flush=True)


# --- one measurement -------------------------------------------------------------------------


@dataclass
class Run:
    """One load run against one server: figures for the report."""

    label: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: dict[str, int]
    app_cpu_s: float
    worker_cpu_s: list[float]
    db_cpu_s: float | None
    client_cpu_s: float
    response_bytes: int
    statements_per_request: float | None = None

    @property
    def requests_per_s(self) -> float:
        return round(self.requests / self.seconds, 1) if self.seconds else 0.0

    @property
    def cpu_s_per_request(self) -> float:
        """Every CPU second one request cost on this machine: server, database and client."""
        total = self.app_cpu_s + (self.db_cpu_s or 0.0) + self.client_cpu_s
        return total / max(1, self.requests)

    def summary(self) -> dict[str, Any]:
        values = sorted(self.latencies_ms)
        count = max(1, self.requests)
        data: dict[str, Any] = {
            "requests_per_s": self.requests_per_s,
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": round(statistics.median(values), 2) if values else None,
            "p95_ms": round(_pct(values, 0.95), 2) if values else None,
            "p99_ms": round(_pct(values, 0.99), 2) if values else None,
            "server_cpu_ms_per_request": round(self.app_cpu_s * 1000 / count, 3),
            "worker_cpu_s": [round(s, 2) for s in self.worker_cpu_s],
            "client_cpu_ms_per_request": round(self.client_cpu_s * 1000 / count, 3),
            "mean_response_bytes": round(self.response_bytes / count),
        }
        if self.db_cpu_s is not None:
            data["db_cpu_ms_per_request"] = round(self.db_cpu_s * 1000 / count, 3)
        if self.statements_per_request is not None:
            data["statements_per_request"] = self.statements_per_request
        return data


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * (len(values) - 1) + 0.5))]


def _db_backends(conninfo: str | None) -> list[int]:
    if conninfo is None:
        return []
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APPLICATION_NAME,)
        ).fetchall()
    return [row[0] for row in rows]


def _expect(stream: IO[str], word: str) -> None:
    line = stream.readline().strip()
    if line != word:
        raise RuntimeError(f"load generator said {line!r}, expected {word!r}")


def run_load(
    server: Gunicorn,
    label: str,
    requests: list[str],
    marker: bytes,
    *,
    seconds: float,
    warmup: float = WARMUP_SECONDS,
    connections: int = CONNECTIONS,
    db_conninfo: str | None = None,
) -> Run:
    """Load `server` with `requests` (raw HTTP/1.1, cycled) from a separate process."""
    spec = {
        "host": HOST,
        "port": server.port,
        "requests": requests,
        "marker": marker.decode("latin-1"),
        "connections": connections,
        "warmup": warmup,
        "seconds": seconds,
    }
    client = subprocess.Popen(
        [sys.executable, "-m", "bench.http_load", "--client"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None
    assert client.stdout is not None
    try:
        client.stdin.write(json.dumps(spec))
        client.stdin.close()
        _expect(client.stdout, "START")
        app_pids = server.pids
        app_before = cpu_seconds(app_pids)
        db_pids = _db_backends(db_conninfo)
        db_before = cpu_seconds(db_pids)
        _expect(client.stdout, "END")
        app_after = cpu_seconds(app_pids)
        db_pids_after = _db_backends(db_conninfo)
        db_after = cpu_seconds(sorted(set(db_pids) | set(db_pids_after)))
        result = json.loads(client.stdout.read())
        client.wait(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    if result["crashed_connections"]:
        raise RuntimeError(f"load generator connections crashed: {result['crashed_connections']}")
    workers = [
        app_after[pid] - app_before.get(pid, 0.0) for pid in app_pids[1:] if pid in app_after
    ]
    app_cpu = sum(app_after[pid] - app_before.get(pid, 0.0) for pid in app_after)
    db_cpu = (
        sum(db_after[pid] - db_before.get(pid, 0.0) for pid in db_after)
        if db_conninfo is not None
        else None
    )
    return Run(
        label=label,
        requests=len(result["latencies_ms"]),
        seconds=result["elapsed_s"],
        latencies_ms=result["latencies_ms"],
        errors=result["errors"],
        app_cpu_s=app_cpu,
        worker_cpu_s=workers,
        db_cpu_s=db_cpu,
        client_cpu_s=result["client_cpu_s"],
        response_bytes=result["response_bytes"],
    )


# --- the workload ----------------------------------------------------------------------------


@dataclass
class Agent:
    user_id: int
    email: str
    organization_id: int
    token: str = ""
    token_id: int = 0
    case_ids: list[int] = field(default_factory=list)


@dataclass
class Request:
    agent: Agent
    path: str
    accept: str


def pick_agents(conninfo: str, rng: random.Random, count: int) -> list[Agent]:
    """`count` active agents of different organisations that see at least one case, each with
    up to CASES_PER_AGENT cases of its organisation's visibility."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT DISTINCT ON (u.organization_id) u.id, u.email, u.organization_id "
            "FROM users u WHERE u.kind = 'person' AND u.role = 'agent' AND u.active "
            "AND EXISTS (SELECT 1 FROM case_visibility v "
            "WHERE v.organization_id = u.organization_id) "
            "ORDER BY u.organization_id, u.id"
        ).fetchall()
        agents = [Agent(*row) for row in rows]
        agents = rng.sample(agents, min(count, len(agents)))
        for agent in agents:
            case_ids = [
                row[0]
                for row in connection.execute(
                    "SELECT case_id FROM case_visibility WHERE organization_id = %s "
                    "ORDER BY last_activity_at DESC LIMIT 500",
                    (agent.organization_id,),
                )
            ]
            agent.case_ids = rng.sample(case_ids, min(CASES_PER_AGENT, len(case_ids)))
    return agents


def create_tokens(conninfo: str, agents: list[Agent]) -> None:
    """A personal API token per agent, as `portal users token` makes it (one INSERT)."""
    import psycopg

    from auth.tokens import API_TOKEN_PREFIX, digest, new_api_token

    with psycopg.connect(conninfo) as connection:
        for agent in agents:
            agent.token = new_api_token()
            row = connection.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) "
                "VALUES (%s, %s, %s, %s, now()) RETURNING id",
                (
                    agent.user_id,
                    TOKEN_NAME,
                    digest(agent.token),
                    agent.token[: len(API_TOKEN_PREFIX) + 6],
                ),
            ).fetchone()
            assert row is not None
            agent.token_id = row[0]


def delete_tokens(conninfo: str, agents: list[Agent]) -> None:
    import psycopg

    ids = [a.token_id for a in agents if a.token_id]
    if ids:
        with psycopg.connect(conninfo) as connection:
            connection.execute("DELETE FROM api_tokens WHERE id = ANY(%s)", (ids,))


def http_request(port: int, path: str, token: str | None = None, accept: str = "*/*") -> str:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", f"Accept: {accept}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return "\r\n".join(lines) + "\r\n\r\n"


def workload(agents: list[Agent], rng: random.Random, size: int) -> dict[str, list[Request]]:
    """`size` requests per scenario: random agents, and for the case endpoints random cases
    those agents see (the same (agent, case) pairs for the page and the API)."""
    pairs = [(agent, case_id) for agent in agents for case_id in agent.case_ids]
    chosen = [rng.choice(pairs) for _ in range(size)]
    return {
        "inbox": [
            Request(rng.choice(agents), "/api/v1/cases?limit=50", "application/json")
            for _ in range(size)
        ],
        "case_page": [Request(a, f"/cases/{c}", "text/html") for a, c in chosen],
        "case_api": [Request(a, f"/api/v1/cases/{c}", "application/json") for a, c in chosen],
    }


def count_statements(
    database_url: str, work: dict[str, list[Request]], sample: int = 20
) -> dict[str, float]:
    """SQL statements per request of each kind, counted in-process (the app's test client on
    the first `sample` requests, after one request that warms the caches)."""
    from bench.suite import StatementCounter
    from portal.app import create_app

    app = create_app(
        {"DATABASE_URL": database_url, "CHECK_MIGRATIONS": False, "SECRET_KEY": "bench"}
    )
    counts = {}
    try:
        counter = StatementCounter(app.extensions["portal_db"].engine)
        client = app.test_client()
        for kind, requests in work.items():
            chosen = requests[:sample]
            for index, request in enumerate([chosen[0], *chosen]):
                if index == 1:
                    counter.count = 0
                headers = {
                    "Authorization": f"Bearer {request.agent.token}",
                    "Accept": request.accept,
                }
                response = client.get(request.path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{request.path} as {request.agent.email}: {response.status}"
                    )
            counts[kind] = round(counter.count / len(chosen), 2)
    finally:
        app.extensions["portal_db"].dispose()
    return counts


# --- scenarios -------------------------------------------------------------------------------


def _tagged(database_url: str) -> str:
    """`database_url` with the application_name that marks the product's connections."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url).update_query_dict({"application_name": APPLICATION_NAME})
    return url.render_as_string(hide_password=False)


def _raw(requests: list[Request], port: int) -> list[str]:
    return [http_request(port, r.path, r.agent.token, r.accept) for r in requests]


def measure(
    database_url: str, *, rounds: int = 200, seconds: float = SECONDS, seed: int = 20261122
) -> dict[str, Any]:
    """Run hello, the three product endpoints and hello again; the runs and the set-up."""
    from bench.seed import conninfo as make_conninfo

    rng = random.Random(seed)
    conninfo = make_conninfo(database_url)
    agents = pick_agents(conninfo, rng, TOKEN_AGENTS)
    work = workload(agents, rng, max(50, rounds))
    servers: list[Gunicorn] = []
    runs: dict[str, Run] = {}
    create_tokens(conninfo, agents)
    try:
        statements = count_statements(database_url, work)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        hello = Gunicorn("bench.hello_app:app", base_env, "/")
        servers.append(hello)
        product_env = {
            **base_env,
            "PORTAL_ENV": "production",
            "PORTAL_DATABASE_URL": _tagged(database_url),
            "PORTAL_SECRET_KEY": "bench-http-load",
            "PORTAL_BASE_URL": f"http://{HOST}",
        }
        product = Gunicorn("portal.wsgi:app", product_env, "/healthz")
        servers.append(product)
        hello_requests = [http_request(hello.port, "/")]
        runs["hello_before"] = run_load(
            hello, "hello", hello_requests, MARKERS["hello"], seconds=seconds
        )
        for kind, requests in work.items():
            runs[kind] = run_load(
                product,
                kind,
                _raw(requests, product.port),
                MARKERS[kind],
                seconds=seconds,
                db_conninfo=conninfo,
            )
            runs[kind].statements_per_request = statements[kind]
        runs["hello_after"] = run_load(
            hello, "hello", hello_requests, MARKERS["hello"], seconds=seconds
        )
    finally:
        for server in servers:
            server.stop()
        delete_tokens(conninfo, agents)
    return {
        "runs": runs,
        "setup": {
            "server": f"gunicorn gthread, {WORKERS} workers x {THREADS} threads",
            "load": f"{CONNECTIONS} keep-alive connections, {WARMUP_SECONDS:g} s warm-up, "
            f"{seconds:g} s measured",
            "agents": len(agents),
            "organizations": len({a.organization_id for a in agents}),
            "cases": sum(len(a.case_ids) for a in agents),
        },
    }


def scenarios(
    database_url: str, facts: dict[str, Any], rounds: int, seconds: float = SECONDS
) -> list[Scenario]:
    """The HTTP scenarios of the suite: product requests/s against the hello floor.

    `rounds` sets how many distinct requests each scenario cycles through (at least 50); the
    load itself runs for `seconds` after a warm-up. `facts` (the seed's facts file) only
    labels the report: agents and cases are picked from the database.
    """
    from bench.suite import Scenario

    measured = measure(database_url, rounds=rounds, seconds=seconds)
    runs: dict[str, Run] = measured["runs"]
    floors = [runs["hello_before"].requests_per_s, runs["hello_after"].requests_per_s]
    floor = round(statistics.mean(floors), 1)
    results = []
    for kind, name in SCENARIO_NAMES.items():
        run = runs[kind]
        failed = sum(run.errors.values())
        valid = failed <= 0.01 * (run.requests + failed)
        note = (
            "floor: bare Flask 'hello' under the same gunicorn and load (mean of a run before "
            "and after the product); CPU from /proc, statements counted in-process"
        )
        if not valid:
            note = f"INVALID: {failed} failed requests ({run.errors}); " + note
        if not run.requests:
            valid = False
            note = "INVALID: no request completed in the window (make it longer); " + note
        floor_cpu = statistics.mean(
            [runs["hello_before"].cpu_s_per_request, runs["hello_after"].cpu_s_per_request]
        )
        results.append(
            Scenario(
                name,
                "requests/s",
                run.requests_per_s if valid else None,
                floor,
                0.25,
                higher_is_better=True,
                details={
                    # The ratio if the cores were the only limit: CPU per hello request (server
                    # and client) over CPU per product request (server, database and client).
                    # Unlike requests/s it hardly moves when other work shares the machine.
                    "cpu_bound_ratio": round(floor_cpu / run.cpu_s_per_request, 4)
                    if run.requests
                    else None,
                    "product": run.summary(),
                    "floor": runs["hello_before"].summary(),
                    "floor_after": runs["hello_after"].summary(),
                    "setup": measured["setup"],
                    "profile": facts.get("profile"),
                },
                note=note,
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--profile", default="S")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        _client_main()
        return
    from bench.suite import OUT_DIR

    facts = json.loads((OUT_DIR / f"seed-{args.profile.upper()}.json").read_text("utf-8"))
    results = scenarios(args.database_url, facts, args.rounds, args.seconds)
    print(json.dumps([r.as_dict() for r in results], indent=2, default=str))


if __name__ == "__main__":
    main()
