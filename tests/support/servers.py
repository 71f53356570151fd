"""Live HTTP servers for tests: a free loopback port and a WSGI app served in a thread.

``ServerThread`` is what browser tests point Chromium at: it serves the Flask app (or any WSGI
callable) with Werkzeug's threaded development server on ``127.0.0.1`` in a daemon thread.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Self

from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """Return a TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """Serve ``app`` on ``127.0.0.1`` in a daemon thread until :meth:`stop`.

    The socket is bound when the object is created (port 0: the OS picks a free port, so there
    is no race with other processes); serving starts with :meth:`start` or ``with``::

        with ServerThread(app) as server:
            page.goto(server.url + "/login")
    """

    def __init__(self, app: WSGIApplication, host: str = HOST, port: int = 0) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.host = host
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"wsgi-{self.port}",
            daemon=True,
        )
        self._started = False
        self._stopped = False

    @property
    def url(self) -> str:
        """Base URL without trailing slash, e.g. ``http://127.0.0.1:45678``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the serving thread (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._started:
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
