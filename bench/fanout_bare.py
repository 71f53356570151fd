"""The floor of the activity fan-out benchmark: bare python-socketio on the product's stack.

The same `socketio.Server(async_mode="threading")` the product gets from Flask-SocketIO,
served by the same Werkzeug threaded server that `portal serve` runs (`SocketIO.run` calls
`app.run(threaded=True)`), optionally with `socketio.RedisManager` as the client manager so
several processes share one channel exactly as the product's do. No Flask, no database, no
authentication, no policy: every client joins one room on connect, and

- `POST /payload` (JSON body) stores the payload to send,
- `POST /emit?room=R` emits `activity` with that payload to room R (one `emit`, like the
  product's one emit per organisation); `&busy_ms=M` then keeps the request thread busy in
  Python for M ms of CPU (a diagnostic: work a request still does after its emit),
- `GET /healthz` answers 200 once the server is up.

    python -m bench.fanout_bare --port 5100 [--redis-url redis://... --channel NAME]

`--meter R,W` starts a CPU meter: a thread that answers each byte read from file descriptor
R with this process's user and system CPU seconds (every thread, exited ones included, from
getrusage, microsecond resolution, unlike the 10 ms clock ticks of /proc/<pid>/stat) on W.
`--portal ARGS...` runs the product instead (`portal ARGS...`, i.e. `portal serve --port N`,
the very code `python -m portal serve` runs) with the same meter, so that product and floor
are read the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import socketio
from werkzeug.serving import run_simple

ROOM = "fanout"

StartResponse = Callable[..., Any]


def _busy(seconds: float) -> None:
    """Pure-Python work holding the GIL for `seconds` of this thread's CPU (a diagnostic: the
    work a product request still does after its emit)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(200))


def build(redis_url: str | None, channel: str) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: Socket.IO under /socket.io/, the trigger endpoints elsewhere."""
    manager = socketio.RedisManager(redis_url, channel=channel) if redis_url else None
    sio = socketio.Server(
        async_mode="threading",
        client_manager=manager,
        cors_allowed_origins=None,
        logger=False,
        engineio_logger=False,
    )
    state: dict[str, Any] = {"payload": None}

    def connect(sid: str, _environ: dict[str, Any], _auth: Any = None) -> bool:
        sio.enter_room(sid, ROOM)
        return True

    sio.on("connect", connect)

    def trigger(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if method == "POST" and path == "/payload":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            state["payload"] = json.loads(environ["wsgi.input"].read(length))
            start_response("204 No Content", [])
            return []
        if method == "POST" and path == "/emit":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            sio.emit("activity", state["payload"], to=query.get("room", [ROOM])[0])
            _busy(float(query.get("busy_ms", ["0"])[0]) / 1000)
            start_response("204 No Content", [])
            return []
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    app: Callable[..., Iterable[bytes]] = socketio.WSGIApp(sio, trigger)
    return app


def start_cpu_meter(spec: str) -> None:
    """Answer every byte read from fd R with this process's user and system CPU seconds on
    fd W ("R,W")."""
    request_fd, reply_fd = (int(fd) for fd in spec.split(","))

    def run() -> None:
        while os.read(request_fd, 1):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            os.write(reply_fd, f"{usage.ru_utime:.6f} {usage.ru_stime:.6f}\n".encode())

    threading.Thread(target=run, name="cpu-meter", daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--channel", default="fanout-bare")
    parser.add_argument("--meter", default=None, help="R,W: file descriptors of the CPU meter")
    parser.add_argument("--portal", nargs=argparse.REMAINDER, help="run `portal ARGS...`")
    args = parser.parse_args()
    if args.meter:
        start_cpu_meter(args.meter)
    if args.portal is not None:
        from portal.cli import main as portal_main

        portal_main(args=args.portal, prog_name="portal")
        return
    if not args.port:
        parser.error("--port is required")
    run_simple(args.host, args.port, build(args.redis_url, args.channel), threaded=True)


if __name__ == "__main__":
    main()
