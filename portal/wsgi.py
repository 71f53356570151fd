"""The production WSGI entry point: ``app`` for gunicorn (or any WSGI server).

    gunicorn -w "$(nproc)" -k gthread --threads 4 -b 127.0.0.1:8000 portal.wsgi:app

Configuration comes from the environment exactly as for ``portal serve`` (PORTAL_DATABASE_URL,
PORTAL_SECRET_KEY, PORTAL_BASE_URL, PORTAL_ENV=production, ...; see portal/config.py). The
app refuses to start on a database whose migrations are behind, so run ``portal db upgrade``
before starting or restarting the workers.

Worker model: one process per core (``-w $(nproc)``), each with a few threads (``-k gthread
--threads N``). Requests spend part of their time waiting for PostgreSQL, so a few threads
per process keep a core busy; many more only contend for the GIL. With the ``threading``
async mode of Flask-SocketIO (portal/realtime.py) every open WebSocket holds one worker
thread for as long as it is open, so N must cover the live clients of a worker *plus* the
requests it should serve at once (or serve /socket.io/ from a separate gunicorn with many
threads behind the same reverse proxy).

Do not use ``--preload``: create_app() opens a database connection (the migration check)
that forked workers would share. gunicorn 25.1+ opens a control socket, by default
``$HOME/.gunicorn/gunicorn.ctl``; give each instance run by one user its own
``--control-socket PATH`` (or ``--no-control-socket``).

Several worker processes and Socket.IO:

- PORTAL_REDIS_URL is required: it is the Socket.IO message queue (an activity committed in
  one worker reaches the sockets held by the others), the presence store, and the storage of
  the sign-in throttle (auth/throttle.py; with the in-memory default each worker counts on its
  own, so the limits would be multiplied by the number of workers).
- The product's client (portal/static/live.js:228) opens ``io({transports: ["websocket",
  "polling"]})``. With socket.io-client 4.8 / engine.io-client 6.6 the first transport is
  the only one tried unless ``tryAllTransports`` is set, so it is in effect WebSocket-only:
  a WebSocket stays with the worker that accepted it and needs no sticky sessions. Keep it
  that way: long-polling (a client with ``tryAllTransports``, or ``transports: ["polling",
  ...]``) sends each request of one Engine.IO session anew, and gunicorn cannot route them
  all to the worker holding that session; it would need sticky sessions in a reverse proxy
  in front of separately addressable workers. The proxy must pass WebSockets on (``Upgrade``
  and ``Connection`` headers).
- Behind a reverse proxy set PORTAL_PROXY_COUNT so client addresses and the scheme are taken
  from X-Forwarded-* (the throttle keys on the client address).
"""

from __future__ import annotations

from portal.app import create_app

app = create_app()
