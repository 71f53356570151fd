"""Redis for the test suite: the server named by PORTAL_TEST_REDIS_URL, else the local one on
127.0.0.1:6379, else a throwaway `redis-server` on a free loopback port (stopped at exit)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time

import redis

from tests.support.servers import free_port

why_unavailable: list[str] = []


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError as exc:
        why_unavailable.append(f"{url}: {exc}")
        return False


def _throwaway() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        why_unavailable.append("no redis-server binary")
        return None
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="wk-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        if _answers(url):
            return url
        time.sleep(0.1)
    why_unavailable.append("throwaway redis-server did not answer")
    return None


_cached: list[str | None] = []


def obtain_redis() -> str | None:
    """A Redis URL for tests, or None (see why_unavailable)."""
    if _cached:
        return _cached[0]
    url = os.environ.get("PORTAL_TEST_REDIS_URL")
    if url:
        found = url if _answers(url) else None
    elif _answers("redis://127.0.0.1:6379/0"):
        found = "redis://127.0.0.1:6379/0"
    else:
        found = _throwaway()
    _cached.append(found)
    return found
