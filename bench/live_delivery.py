"""Benchmark: delivery latency of a live activity to N connected Socket.IO clients.

Measures from the moment the write request is sent (an upper bound of "from the committed
change": the commit happens inside that request) until each client has the `activity` event,
for N = 1, 100, 500 clients, through one server process and through two processes sharing
Redis (writes on process A, clients on process B). Prints p50, p95 and max per setting and
writes bench/out/live_delivery.json.

    .venv/bin/python bench/live_delivery.py [--sizes 1,100,500] [--rounds 20]

Needs a Redis server for the two-process case (PORTAL_TEST_REDIS_URL, else 127.0.0.1:6379,
else a throwaway redis-server from the installed binary).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.redis_server import obtain_redis  # noqa: E402
from tests.support.servers import free_port  # noqa: E402


def prepare_database(directory: Path) -> str:
    url = f"sqlite:///{directory / 'bench.sqlite3'}"
    env = {**os.environ, "PORTAL_DATABASE_URL": url, "PORTAL_ARGON2_PROFILE": "fast"}
    for args in (["db", "upgrade"], ["demo", "load"]):
        subprocess.run(
            [sys.executable, "-m", "portal", *args], env=env, check=True, capture_output=True
        )
    return url


def token(url: str, email: str) -> str:
    env = {**os.environ, "PORTAL_DATABASE_URL": url}
    out = subprocess.run(
        [sys.executable, "-m", "portal", "users", "token", email],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


class Server:
    def __init__(self, database_url: str, redis_url: str | None, channel: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_BASE_URL": self.url,
            "PORTAL_SECRET_KEY": "bench",
            "PORTAL_SOCKETIO_CHANNEL": channel,
        }
        if redis_url:
            env["PORTAL_REDIS_URL"] = redis_url
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portal", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(150):
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def measure(
    write_to: Server,
    listen_on: Server,
    reader: str,
    writer: str,
    case_id: int,
    clients: int,
    rounds: int,
) -> dict[str, float]:
    arrivals: dict[int, list[float]] = {}
    lock = threading.Lock()
    connected = []
    for _ in range(clients):
        client = socketio.Client(reconnection=False)

        @client.on("activity")
        def on_activity(data: dict, _client: socketio.Client = client) -> None:
            now = time.perf_counter()
            with lock:
                arrivals.setdefault(data["id"], []).append(now)

        client.connect(
            listen_on.url, auth={"token": reader}, transports=["websocket"], wait_timeout=20
        )
        connected.append(client)
    latencies: list[float] = []
    session = requests.Session()
    try:
        for index in range(rounds):
            started = time.perf_counter()
            answer = session.post(
                f"{write_to.url}/api/v1/cases/{case_id}/timeline",
                json={"body": f"bench {index}", "audience": "shared"},
                headers={"Authorization": f"Bearer {writer}"},
                timeout=30,
            )
            answer.raise_for_status()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with lock:
                    got = [t for times in arrivals.values() for t in times]
                if len(got) >= clients:
                    break
                time.sleep(0.001)
            with lock:
                latencies.extend((t - started) * 1000 for times in arrivals.values() for t in times)
                arrivals.clear()
            time.sleep(0.05)
    finally:
        # Each disconnect waits for the WebSocket close handshake (~3 s): close them together.
        closers = [threading.Thread(target=client.disconnect) for client in connected]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(30)
    latencies.sort()
    return {
        "clients": clients,
        "deliveries": len(latencies),
        "expected": clients * rounds,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "max_ms": round(latencies[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,500")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as directory:
        url = prepare_database(Path(directory))
        reader = token(url, "sales@berger.example")
        writer = token(url, "agent@nordwerk.example")
        case_id = 1  # the demo's "Bremsgeräusche an der Vorderachse", shared with Berger
        single = Server(url, None, "bench-one")
        try:
            for size in sizes:
                results.append(
                    {
                        "setup": "one process",
                        **measure(single, single, reader, writer, case_id, size, args.rounds),
                    }
                )
        finally:
            single.stop()
        redis_url = obtain_redis()
        if redis_url is None:
            print("no Redis: two-process figures skipped")
        else:
            first = Server(url, redis_url, "bench-two")
            second = Server(url, redis_url, "bench-two")
            try:
                for size in sizes:
                    results.append(
                        {
                            "setup": "two processes over Redis",
                            **measure(first, second, reader, writer, case_id, size, args.rounds),
                        }
                    )
            finally:
                first.stop()
                second.stop()
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "live_delivery.json").write_text(json.dumps(results, indent=2))
    print(
        f"{'setup':28} {'clients':>7} {'deliveries':>10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    )
    for row in results:
        print(
            f"{row['setup']:28} {row['clients']:>7} {row['deliveries']:>10} "
            f"{row['p50_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8}"
        )


if __name__ == "__main__":
    main()
