"""Benchmark: server CPU per delivery of a live activity fanned out to N Socket.IO clients.

Issue 6: "activity fan-out to N = 50, 200, 1,000 clients, one and two processes" against
"bare python-socketio emitting the same payload to the same clients", target: at most 1.2
times the floor's server CPU per delivery.

Product: `portal serve` (Werkzeug's threaded server, Flask-SocketIO in threading mode with
simple-websocket; for two processes both share Redis on a channel of their own). N clients
of one organisation (the first manufacturer; one API token, sent in the Socket.IO `auth`
payload as integrations do) listen; the largest dealer writes comments on one of its cases
that is shared with that manufacturer and with one more partner (`POST
/api/v1/cases/<id>/timeline`). Two processes: writes go to A, clients are split over A and B.

Floor: bench/fanout_bare.py, a bare `socketio.Server(async_mode="threading")` under the same
Werkzeug threaded server (with `socketio.RedisManager` for two processes), every client in
one room; `POST /emit` emits the very payload the product's clients received to that room.

Clients: a separate asyncio process per setting speaks Engine.IO 4 / Socket.IO 5 over
WebSocket itself (wsproto on asyncio streams; python-socketio's AsyncClient needs aiohttp,
which is not installed), so 1,000 connections are cheap and no client work is on a server.

Fairness. Server CPU is user + system time of the server process(es) only, all threads,
read through getrusage by a meter thread in each server (microseconds; /proc/<pid>/stat only
has 10 ms ticks), summed over both processes for two. A product write also does HTTP,
authentication, SQL and the policy, which the floor's trigger does not; that work does not
depend on N and is taken out by a control: as many writes again whose activity the
listening organisation may NOT see (the entry's audience names the other partner instead,
so the product still emits to two organisation rooms and runs the same code); the floor's
control emits to an empty room. The same clients stay connected throughout, so:

    CPU per delivery = (CPU of K visible triggers - CPU of K control triggers) / (K * N)

Every trigger is read on its own: from just before it until every client has the event
(visible) plus SETTLE_S (both kinds). Visible and control triggers alternate in pairs, and
product and floor pairs alternate too, so a change in the machine's load (the benchmark
machine is shared) hits all four alike. `product` and `floor` are that figure in
microseconds; `details` adds the raw CPU of the visible triggers per delivery (no
subtraction), the CPU per process, the system-time share, the median of the per-pair figures
and the standard error of the mean (from the pair differences: the product's is dominated by
the variance of its write, which is why N = 50 is the least precise size). Every visible
trigger must reach every client exactly once and a control trigger none (only sessions
allowed to see an activity get it). K is about `rounds * 120 / N` writes (12 to 480: at
N = 50 the 160 writes of `rounds * 40 / N` left a standard error of 10 µs, 12 %). For
two processes, `process_b_us_per_delivery` is the same figure for process B alone, which
only delivers (its clients get the activity through Redis; no write, no SQL): the least
noisy comparison.

What the figure contains: `publish` in portal/realtime.py emits once per organisation room;
python-socketio's Manager.emit encodes the packet once per emit (once per process with Redis)
and then, per recipient, puts the same Engine.IO packet on that socket's queue; the socket's
writer thread frames and sends it. In threading mode every socket has its own writer thread,
so a fan-out wakes N threads that take turns on the GIL, which is why the cost per delivery
grows with N for the floor as much as for the product.

    .venv/bin/python -m bench.fanout --database-url postgresql+psycopg://... [--sizes 50,200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    # bench.suite is imported where it is needed: suite.py may import this module at its top.
    from bench.suite import Scenario

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZES = (50, 200, 1000)
TARGET_RATIO = 1.2
METRIC = "server CPU µs per delivery"
SETTLE_S = 0.004  # after a trigger, before reading CPU: queued sends (and Redis) finish
DELIVERIES_PER_ROUND = 120  # each size makes about rounds x 120 deliveries
MIN_WRITES = 12
MAX_WRITES = 480


# --- the client process ------------------------------------------------------------------


class _Connection:
    """One Socket.IO client over a raw WebSocket (Engine.IO 4, Socket.IO 5, namespace /)."""

    def __init__(self, hub: _Hub) -> None:
        self.hub = hub
        self.count = 0
        self.writer: asyncio.StreamWriter | None = None
        self.ws: Any = None
        self.ready = asyncio.get_running_loop().create_future()
        self._text: list[str] = []

    async def run(self, host: str, port: int, token: str) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import (
            AcceptConnection,
            CloseConnection,
            Ping,
            RejectConnection,
            Request,
            TextMessage,
        )

        reader, writer = await asyncio.open_connection(host, port)
        self.writer = writer
        ws = WSConnection(ConnectionType.CLIENT)
        self.ws = ws
        target = "/socket.io/?EIO=4&transport=websocket"
        writer.write(ws.send(Request(host=f"{host}:{port}", target=target)))
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, TextMessage):
                        self._text.append(event.data)
                        if event.message_finished:
                            self._packet("".join(self._text), token)
                            self._text = []
                    elif isinstance(event, Ping):
                        writer.write(ws.send(event.response()))
                    elif isinstance(event, RejectConnection | CloseConnection):
                        raise ConnectionError(f"closed: {event!r}")
                    elif isinstance(event, AcceptConnection):
                        pass
        except (ConnectionError, OSError) as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
        finally:
            if not self.ready.done():
                self.ready.set_exception(ConnectionError("connection ended"))
            writer.close()

    def _send(self, text: str) -> None:
        from wsproto.events import TextMessage

        assert self.writer is not None
        self.writer.write(self.ws.send(TextMessage(data=text)))

    def _packet(self, text: str, token: str) -> None:
        kind, body = text[:1], text[1:]
        if kind == "0":  # Engine.IO open: connect to the default namespace with the token
            self._send("40" + json.dumps({"token": token}))
        elif kind == "2":  # Engine.IO ping
            self._send("3")
        elif kind == "4":  # Socket.IO packet
            if body.startswith("0"):
                if not self.ready.done():
                    self.ready.set_result(True)
            elif body.startswith("4"):
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError("refused: " + body[1:]))
            elif body.startswith("2"):
                name, *args = json.loads(body[1:])
                if name == "activity":
                    self.count += 1
                    self.hub.received(args[0] if args else None)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _Hub:
    """All connections of the client process and the commands the benchmark sends."""

    def __init__(self) -> None:
        self.connections: list[_Connection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.total = 0
        self.target = math.inf
        self.reached = asyncio.Event()
        self.payload: Any = None

    def received(self, payload: Any) -> None:
        self.total += 1
        self.payload = payload
        if self.total >= self.target:
            self.reached.set()

    async def connect(self, url: str, token: str, count: int) -> dict[str, Any]:
        rest = url.split("://", 1)[1]
        host, port = rest.rsplit(":", 1)
        gate = asyncio.Semaphore(25)

        async def one() -> None:
            async with gate:
                connection = _Connection(self)
                self.connections.append(connection)
                self.tasks.append(
                    asyncio.create_task(connection.run(host, int(port.rstrip("/")), token))
                )
                await asyncio.wait_for(connection.ready, 60)

        await asyncio.gather(*(one() for _ in range(count)))
        return {"ok": True, "connections": len(self.connections)}

    def mark(self) -> dict[str, Any]:
        for connection in self.connections:
            connection.count = 0
        self.total = 0
        return {"ok": True}

    async def wait(self, each: int, timeout: float) -> dict[str, Any]:
        self.target = each * len(self.connections)
        self.reached.clear()
        if self.total < self.target:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reached.wait(), timeout)
        self.target = math.inf
        return self.stats()

    def stats(self) -> dict[str, Any]:
        counts = [c.count for c in self.connections] or [0]
        return {"ok": True, "min": min(counts), "max": max(counts), "total": self.total}

    def close(self) -> dict[str, Any]:
        for connection in self.connections:
            connection.close()
        for task in self.tasks:
            task.cancel()
        self.connections, self.tasks = [], []
        return {"ok": True}


async def _client_main() -> None:
    hub = _Hub()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "connect":
                reply = await hub.connect(command["url"], command["token"], command["count"])
            elif op == "mark":
                reply = hub.mark()
            elif op == "wait":
                reply = await hub.wait(command["each"], command["timeout"])
            elif op == "stats":
                reply = hub.stats()
            elif op == "payload":
                reply = {"ok": True, "payload": hub.payload}
            elif op == "close":
                reply = hub.close()
                await asyncio.sleep(0.2)
            else:
                reply = {"ok": False, "error": f"unknown op {op}"}
        except Exception as exc:
            reply = {"ok": False, "error": repr(exc)}
        print(json.dumps(reply), flush=True)
        if op == "close":
            break


class Clients:
    """The client process, driven over its stdin/stdout."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fanout", "--client"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def call(self, **command: Any) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError("the client process ended")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"client process: {reply.get('error')}")
        return reply

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call(op="close")
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# --- servers -----------------------------------------------------------------------------


class Server:
    """A product (`portal serve`) or floor (`bench.fanout_bare`) server process, both started
    through bench/fanout_bare.py so that both carry the same CPU meter thread."""

    def __init__(self, args: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        request_r, self._request_w = os.pipe()
        self._reply_r, reply_w = os.pipe()
        meter = ["-m", "bench.fanout_bare", "--meter", f"{request_r},{reply_w}"]
        self.process = subprocess.Popen(
            [sys.executable, *meter, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(request_r, reply_w),
        )
        os.close(request_r)
        os.close(reply_w)
        self._replies = os.fdopen(self._reply_r, "rb", buffering=0)
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"server {args} exited with {self.process.returncode}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server {args} did not start")

    @classmethod
    def product(cls, database_url: str, redis_url: str | None, channel: str) -> Server:
        from tests.support.servers import free_port

        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PORTAL_REDIS_URL", "FLASK_DEBUG")}
        env.update(
            PORTAL_DATABASE_URL=database_url,
            PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
            PORTAL_SECRET_KEY="bench",  # noqa: S106 - a throwaway benchmark server
            PORTAL_SOCKETIO_CHANNEL=channel,
        )
        if redis_url:
            env["PORTAL_REDIS_URL"] = redis_url
        return cls(["--portal", "serve", "--port", str(port)], env, port)

    @classmethod
    def bare(cls, redis_url: str | None, channel: str) -> Server:
        from tests.support.servers import free_port

        port = free_port()
        args = ["--port", str(port), "--channel", channel]
        if redis_url:
            args += ["--redis-url", redis_url]
        return cls(args, dict(os.environ), port)

    def cpu(self) -> tuple[float, float]:
        """User and system CPU seconds (all threads) the server process has used so far."""
        os.write(self._request_w, b"?")
        line = b""
        while not line.endswith(b"\n"):
            chunk = self._replies.read(64)
            if not chunk:
                raise RuntimeError("the server's CPU meter is gone")
            line += chunk
        user, system = line.split()
        return float(user), float(system)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for closing in (self._replies.close, lambda: os.close(self._request_w)):
            with contextlib.suppress(OSError):
                closing()


# --- one setting -------------------------------------------------------------------------


@dataclass
class Setting:
    """Servers, how to trigger a visible and a control activity, the clients' token, and the
    client process (clients are split evenly over the servers)."""

    servers: list[Server]
    trigger: Callable[[bool], None]
    token: str
    clients: Clients | None = None
    connected: int = 0

    def cpu(self) -> list[tuple[float, float]]:
        return [server.cpu() for server in self.servers]

    def grow(self, wanted: int) -> None:
        """Connect clients until `wanted` listen, split evenly over the servers."""
        if self.clients is None:
            self.clients = Clients()
        count = len(self.servers)
        for index, server in enumerate(self.servers):
            have = self.connected // count + (1 if index < self.connected % count else 0)
            need = wanted // count + (1 if index < wanted % count else 0)
            if need > have:
                self.client().call(
                    op="connect", url=server.url, token=self.token, count=need - have
                )
        self.connected = wanted

    def client(self) -> Clients:
        assert self.clients is not None
        return self.clients

    def warm_up(self) -> Any:
        """Caches, connection pools, the first emits; returns the payload the clients got."""
        self.client().call(op="mark")
        for index in range(3):
            self.trigger(True)
            self.trigger(False)
            self.client().call(op="wait", each=index + 1, timeout=60)
        return self.client().call(op="payload")["payload"]

    def stop(self) -> None:
        if self.clients is not None:
            self.clients.stop()
        for server in self.servers:
            server.stop()


@dataclass
class Tally:
    """CPU of the visible and the control triggers of one setting at one size."""

    visible: list[float]
    control: list[float]
    differences: list[float]
    system: dict[bool, float] = field(default_factory=dict)
    delivered: int = 0
    wall: float = 0.0


def _writes(n: int, rounds: int) -> int:
    return max(MIN_WRITES, min(MAX_WRITES, math.ceil(rounds * DELIVERIES_PER_ROUND / n)))


def _pair(setting: Setting, tally: Tally, n: int, visible_first: bool) -> None:
    """One visible and one control trigger, each read on its own: the servers' CPU from before
    the trigger until every client has the event (visible) and SETTLE_S more (both)."""
    started = time.perf_counter()
    pair = {}
    for visible in (True, False) if visible_first else (False, True):
        before = setting.cpu()
        setting.trigger(visible)
        if visible:
            tally.delivered += 1
            got = setting.client().call(op="wait", each=tally.delivered, timeout=60)
            if got["min"] < tally.delivered:
                raise RuntimeError(f"{n} clients: {got['min']} of {tally.delivered} arrived")
        time.sleep(SETTLE_S)
        after = setting.cpu()
        used = [sum(a) - sum(b) for a, b in zip(after, before, strict=True)]
        totals = tally.visible if visible else tally.control
        for server, value in enumerate(used):
            totals[server] += value
        system = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
        tally.system[visible] = tally.system.get(visible, 0.0) + system
        pair[visible] = sum(used)
    tally.differences.append(pair[True] - pair[False])
    tally.wall += time.perf_counter() - started


def _measure(settings: list[Setting], n: int, k: int) -> list[dict[str, Any]]:
    """k visible and k control triggers per setting, all settings interleaved pair by pair
    (and the order inside a pair alternating), so that a change in the machine's load hits
    product and floor, visible and control alike."""
    tallies = []
    for setting in settings:
        setting.client().call(op="mark")
        zeros = [0.0] * len(setting.servers)
        tallies.append(Tally(list(zeros), list(zeros), []))
    for index in range(k):
        order = list(zip(settings, tallies, strict=True))
        for setting, tally in order if index % 2 == 0 else reversed(order):
            _pair(setting, tally, n, visible_first=index % 4 < 2)
    time.sleep(SETTLE_S * 10)
    results = []
    for setting, tally in zip(settings, tallies, strict=True):
        got = setting.client().call(op="stats")
        if got["min"] != k or got["max"] != k:
            raise RuntimeError(f"clients got {got['min']}..{got['max']} activities, not {k}")
        deliveries = k * n
        visible, control = sum(tally.visible), sum(tally.control)
        spread = statistics.stdev(tally.differences) / math.sqrt(k)
        median = statistics.median(tally.differences)
        results.append(
            {
                "clients": n,
                "writes": k,
                "deliveries": deliveries,
                "cpu_visible_s": [round(x, 4) for x in tally.visible],
                "cpu_control_s": [round(x, 4) for x in tally.control],
                "system_share_visible": round(tally.system.get(True, 0.0) / (visible or 1), 3),
                "system_share_control": round(tally.system.get(False, 0.0) / (control or 1), 3),
                "wall_s": round(tally.wall, 2),
                "raw_us_per_delivery": round(visible * 1e6 / deliveries, 2),
                "us_per_delivery": round((visible - control) * 1e6 / deliveries, 2),
                "median_us_per_delivery": round(median * 1e6 / n, 2),
                "standard_error_us": round(spread * 1e6 / n, 2),
            }
        )
        if len(setting.servers) == 2:
            # B only delivers (no write, no SQL): the cleanest figure of the delivery path.
            on_b = k * (n // 2)
            results[-1]["process_b_us_per_delivery"] = round(
                (tally.visible[1] - tally.control[1]) * 1e6 / on_b, 2
            )
    return results


def _run(
    make_product: Callable[[], Setting],
    make_floor: Callable[[Any], Setting],
    sizes: Sequence[int],
    rounds: int,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], Any]:
    """Every size through one set of product and floor servers (clients are added), product
    and floor measured interleaved; returns (product, floor) results and the payload."""
    settings: list[Setting] = []
    results = []
    payload = None
    try:
        product = make_product()
        settings.append(product)
        for n in sorted(sizes):
            product.grow(n)
            got = product.warm_up()
            if payload is None:
                payload = got
                settings.append(make_floor(payload))
            floor = settings[1]
            floor.grow(n)
            if floor.warm_up() != payload:
                raise RuntimeError("the floor's clients got another payload than the product's")
            started = time.perf_counter()
            measured = _measure(settings, n, _writes(n, rounds))
            results.append((measured[0], measured[1]))
            print(
                f"fan-out to {n} clients on {len(product.servers)} process(es): product "
                f"{measured[0]['us_per_delivery']} ± {measured[0]['standard_error_us']}, floor "
                f"{measured[1]['us_per_delivery']} ± {measured[1]['standard_error_us']} "
                f"µs/delivery ({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for setting in settings:
            setting.stop()
    return results, payload


# --- the benchmark -----------------------------------------------------------------------


@dataclass
class Plan:
    database_url: str
    writer_token: str
    reader_token: str
    case_id: int
    reader_org: int
    other_org: int


def _token(database_url: str, email: str) -> str:
    env = {**os.environ, "PORTAL_DATABASE_URL": database_url}
    out = subprocess.run(
        [sys.executable, "-m", "portal", "users", "token", email, "--name", "fanout bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def plan(database_url: str, facts: dict[str, Any]) -> Plan:
    """The writer (largest dealer), the listening organisation (first manufacturer) and a case
    of the dealer shared with that manufacturer and with one more partner."""
    import psycopg

    from bench.seed import conninfo

    dealer = facts["largest_dealer"]
    reader = facts["manufacturers"][0]
    with psycopg.connect(conninfo(database_url)) as conn:
        row = conn.execute(
            "SELECT c.id, o.organization_id FROM cases c "
            "JOIN case_shares r ON r.case_id = c.id AND r.organization_id = %(reader)s "
            "JOIN case_shares o ON o.case_id = c.id "
            " AND o.organization_id NOT IN (%(reader)s, %(dealer)s) "
            "WHERE c.owner_organization_id = %(dealer)s "
            " AND c.handling_organization_id = %(dealer)s "
            " AND c.status IN ('new', 'open', 'waiting') "
            "ORDER BY c.id, o.organization_id LIMIT 1",
            {"reader": reader["id"], "dealer": dealer["id"]},
        ).fetchone()
    if row is None:
        raise RuntimeError("no case of the largest dealer shared with a manufacturer and another")
    return Plan(
        database_url=database_url,
        writer_token=_token(database_url, dealer["agent_email"]),
        reader_token=_token(database_url, reader["agent_email"]),
        case_id=row[0],
        reader_org=reader["id"],
        other_org=row[1],
    )


def _product_setting(p: Plan, redis_url: str | None) -> Setting:
    channel = f"fanout-{uuid.uuid4().hex[:12]}"
    first = Server.product(p.database_url, redis_url, channel)
    servers = [first]
    try:
        if redis_url:
            servers.append(Server.product(p.database_url, redis_url, channel))
    except Exception:
        first.stop()
        raise
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {p.writer_token}"
    url = f"{first.url}/api/v1/cases/{p.case_id}/timeline"
    counter = iter(range(10**9))

    def trigger(visible: bool) -> None:
        audience = [p.reader_org] if visible else [p.other_org]
        body: dict[str, Any] = {"body": f"fan-out comment {next(counter)}", "audience": audience}
        session.post(url, json=body, timeout=60).raise_for_status()

    return Setting(servers, trigger, p.reader_token)


def _floor_setting(payload: Any, redis_url: str | None) -> Setting:
    channel = f"fanout-bare-{uuid.uuid4().hex[:12]}"
    first = Server.bare(redis_url, channel)
    servers = [first]
    try:
        if redis_url:
            servers.append(Server.bare(redis_url, channel))
    except Exception:
        first.stop()
        raise
    session = requests.Session()
    session.post(first.url + "/payload", json=payload, timeout=10).raise_for_status()

    def trigger(visible: bool) -> None:
        room = "fanout" if visible else "nobody"
        session.post(f"{first.url}/emit", params={"room": room}, timeout=60).raise_for_status()

    return Setting(servers, trigger, "bare")


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def scenarios(
    database_url: str,
    facts: dict[str, Any],
    rounds: int,
    *,
    sizes: Sequence[int] = SIZES,
    processes: Sequence[int] = (1, 2),
) -> list[Scenario]:
    """Fan-out scenarios for every size, one process and two processes over Redis."""
    from bench.suite import Scenario
    from tests.support.redis_server import obtain_redis

    _raise_file_limit()
    p = plan(database_url, facts)
    setups: list[tuple[str, str | None]] = []
    if 1 in processes:
        setups.append(("one process", None))
    redis_url = obtain_redis() if 2 in processes else None
    results: list[Scenario] = []
    if redis_url is not None:
        setups.append(("two processes over Redis", redis_url))
    for label, redis in setups:

        def make_product(r: str | None = redis) -> Setting:
            return _product_setting(p, r)

        def make_floor(payload: Any, r: str | None = redis) -> Setting:
            return _floor_setting(payload, r)

        measured, payload = _run(make_product, make_floor, sizes, rounds)
        for product, floor in measured:
            n = product["clients"]
            results.append(
                Scenario(
                    f"activity fan-out to {n:,} clients, {label}",
                    METRIC,
                    product["us_per_delivery"],
                    floor["us_per_delivery"],
                    TARGET_RATIO,
                    higher_is_better=False,
                    details={
                        "product": product,
                        "floor": floor,
                        "payload_bytes": len(json.dumps(payload)),
                    },
                    note=(
                        "server CPU of K visible writes minus K control writes (activity not "
                        "visible to the listeners) per delivery, product and floor interleaved; "
                        "floor: bare python-socketio (bench/fanout_bare.py), same payload"
                        + ("; writes on A, clients split over A and B" if redis else "")
                    ),
                )
            )
    if redis_url is None and 2 in processes:
        results.append(
            Scenario(
                "activity fan-out, two processes over Redis",
                METRIC,
                None,
                None,
                TARGET_RATIO,
                note="no Redis server available",
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url")
    parser.add_argument("--profile", default="S", help="which seed facts file to read")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--processes", default="1,2", help="1: one process, 2: two over Redis")
    args = parser.parse_args()
    if args.client:
        _raise_file_limit()
        asyncio.run(_client_main())
        return
    if not args.database_url:
        parser.error("--database-url is required")
    from bench.suite import OUT_DIR

    facts = json.loads((OUT_DIR / f"seed-{args.profile}.json").read_text(encoding="utf-8"))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    started = time.perf_counter()
    processes = [int(s) for s in args.processes.split(",") if s]
    results = scenarios(args.database_url, facts, args.rounds, sizes=sizes, processes=processes)
    out = [r.as_dict() for r in results]
    print(
        json.dumps({"seconds": round(time.perf_counter() - started, 1), "scenarios": out}, indent=2)
    )


if __name__ == "__main__":
    main()
