"""Live delivery over Socket.IO: the only Socket.IO handlers, and the publisher that sends each
committed activity to exactly the organisations the visibility policy allows at delivery time.

- A connection is accepted with a bearer token (Authorization header or the auth payload
  `{"token": ...}`) or with the session cookie; a cookie connection must come from the
  configured base URL's origin (no cross-site WebSocket hijacking).
- Every socket joins `user:<id>` and `org:<id>`; rooms are an implementation detail: each
  activity is emitted to the rooms of the organisations that may see it now.
- A registry maps credentials to socket ids so that signing out, revoking a token or
  deactivating a user disconnects the sockets at once, across processes when Redis is used.
- With PORTAL_REDIS_URL the Redis message queue connects several server processes (and lets
  command-line processes emit). Without it, one process serves everything.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, request, session
from flask_socketio import SocketIO, join_room
from sqlalchemy import event
from sqlalchemy.orm import Session

from auth import service as auth_service
from auth.tokens import digest
from partners.models import User
from portal.db import Database
from portal.presence import MemoryPresence, RedisPresence, Viewer

EXTENSION = "portal_socketio"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Registry:
    """Which sockets belong to which user and credential (in this process; with Redis the
    disconnect itself still reaches every process through the message queue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_user: dict[int, set[str]] = defaultdict(set)
        self._by_credential: dict[str, set[str]] = defaultdict(set)
        self._of_sid: dict[str, tuple[int, str]] = {}

    def add(self, sid: str, user_id: int, credential: str) -> None:
        with self._lock:
            self._by_user[user_id].add(sid)
            self._by_credential[credential].add(sid)
            self._of_sid[sid] = (user_id, credential)

    def remove(self, sid: str) -> None:
        with self._lock:
            found = self._of_sid.pop(sid, None)
            if found is None:
                return
            user_id, credential = found
            self._by_user[user_id].discard(sid)
            self._by_credential[credential].discard(sid)

    def user_of(self, sid: str) -> int | None:
        with self._lock:
            found = self._of_sid.get(sid)
            return found[0] if found else None

    def for_user(self, user_id: int) -> list[str]:
        with self._lock:
            return list(self._by_user.get(user_id, ()))

    def for_credential(self, credential: str) -> list[str]:
        with self._lock:
            return list(self._by_credential.get(credential, ()))


def init_realtime(app: Flask) -> SocketIO:
    """Create the app's Socket.IO server and hook activity publishing into commits."""

    def origin_allowed(origin: str | None, _environ: dict[str, Any] | None = None) -> bool:
        # Same-origin only; a missing Origin (non-browser clients with tokens) is checked in
        # the connect handler, which insists on an Origin for cookie connections.
        return origin is None or origin == _origin(str(app.config["BASE_URL"]))

    redis_url = app.config.get("REDIS_URL") or None
    socketio = SocketIO(
        app,
        async_mode="threading",
        cors_allowed_origins=origin_allowed,
        message_queue=redis_url,
        channel=app.config.get("SOCKETIO_CHANNEL", "wertkette"),
        manage_session=False,
        logger=False,
        engineio_logger=False,
    )
    registry = Registry()
    app.extensions["portal_presence"] = (
        RedisPresence(redis_url, str(app.config.get("SOCKETIO_CHANNEL", "wertkette")))
        if redis_url
        else MemoryPresence()
    )
    app.extensions[EXTENSION] = socketio
    app.extensions["portal_socket_registry"] = registry
    _register_handlers(app, socketio, registry)
    _hook_commits(app)
    if redis_url and app.config.get("SOCKETIO_CONTROL_LISTENER", True):
        _listen_for_control(app, socketio)
    return socketio


def _authenticate(auth: Any) -> tuple[User, str] | None:
    from auth.clients import user_for_oauth_token
    from portal.db import get_session
    from portal.web import bearer_token

    db = get_session()
    token = bearer_token()
    if token is None and isinstance(auth, dict) and isinstance(auth.get("token"), str):
        token = auth["token"]
    if token:
        user = auth_service.user_for_api_token(db, token)
        if user is None:
            client = user_for_oauth_token(db, token)
            # An integration needs cases:read to follow activities.
            user = client[0] if client and "cases:read" in client[1] else None
        return (user, "token:" + digest(token)) if user is not None else None
    origin = request.headers.get("Origin")
    if origin is None or origin != _origin(str(current_app.config["BASE_URL"])):
        return None
    secret = session.get("sid")
    if not secret:
        return None
    idle = dt.timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    user = auth_service.user_for_session(db, secret, idle)
    return (user, "session:" + digest(secret)) if user is not None else None


def _register_handlers(app: Flask, socketio: SocketIO, registry: Registry) -> None:
    @socketio.on("connect")
    def connect(auth: Any = None) -> bool:
        found = _authenticate(auth)
        if found is None:
            return False
        user, credential = found
        sid: str = request.sid  # type: ignore[attr-defined]
        join_room(f"user:{user.id}")
        join_room(f"org:{user.organization_id}")
        registry.add(sid, user.id, credential)
        return True

    @socketio.on("disconnect")
    def disconnect(*_args: Any) -> None:
        sid: str = request.sid  # type: ignore[attr-defined]
        store = _presence(app)
        for case_id in store.cases_of(sid):
            store.remove(case_id, sid)
            broadcast_presence(app, case_id)
        registry.remove(sid)

    @socketio.on("view_case")
    def view_case(data: Any) -> dict[str, Any]:
        """A case page is open: join the case's room of the viewer's organisation (after the
        policy says the viewer may see the case) and tell the others who is looking."""
        from partners.models import User
        from portal.db import get_session
        from portal.errors import NotFound
        from shared_records import policy

        sid: str = request.sid  # type: ignore[attr-defined]
        case_id = data.get("case_id") if isinstance(data, dict) else None
        user_id = registry.user_of(sid)
        if not isinstance(case_id, int) or isinstance(case_id, bool) or user_id is None:
            return {"ok": False, "error": "bad_request"}
        db = get_session()
        user = db.get(User, user_id)
        try:
            if user is None or not user.is_active:
                raise NotFound("gone")
            policy.get_visible_case(db, user, case_id)
        except NotFound:
            return {"ok": False, "error": "not_found"}
        viewer_org, viewer_org_name = user.organization_id, user.organization.name
        viewer_name, viewer_id = user.name, user.id
        db.rollback()  # end the read before broadcasting (SQLite allows one writer at a time)
        join_room(_case_room(case_id, viewer_org))
        _presence(app).set(
            case_id,
            Viewer(
                sid=sid,
                user_id=viewer_id,
                name=viewer_name,
                organization_id=viewer_org,
                organization_name=viewer_org_name,
                seen=time.time(),
                editing=bool(data.get("editing")),
            ),
        )
        broadcast_presence(app, case_id)
        return {"ok": True}

    @socketio.on("leave_case")
    def leave_case(data: Any) -> None:
        sid: str = request.sid  # type: ignore[attr-defined]
        case_id = data.get("case_id") if isinstance(data, dict) else None
        if isinstance(case_id, int):
            _presence(app).remove(case_id, sid)
            broadcast_presence(app, case_id)


def _case_room(case_id: int, organization_id: int) -> str:
    return f"case:{case_id}:org:{organization_id}"


def _presence(app: Flask) -> MemoryPresence | RedisPresence:
    store: MemoryPresence | RedisPresence = app.extensions["portal_presence"]
    return store


def broadcast_presence(app: Flask, case_id: int) -> None:
    """Send each organisation that sees the case the viewers the policy lets it see."""
    from shared_records import policy
    from shared_records.models import Case

    socketio: SocketIO = app.extensions[EXTENSION]
    database: Database = app.extensions["portal_db"]
    viewers = _presence(app).viewers(case_id)
    with database.sessionmaker() as db:
        case = db.get(Case, case_id)
        if case is None:
            return
        orgs = policy.org_ids_seeing_case(case)
        # Viewers whose organisation lost sight of the case (share revoked) no longer count.
        viewers = [v for v in viewers if v.organization_id in orgs]
        for org_id in sorted(orgs):
            seen: dict[int, dict[str, Any]] = {}
            for v in viewers:
                if policy.viewer_visible_to(case, v.organization_id, org_id):
                    entry = seen.setdefault(v.user_id, v.public())
                    entry["editing"] = entry["editing"] or v.editing
            socketio.emit(
                "presence",
                {"case_id": case_id, "viewers": list(seen.values())},
                to=_case_room(case_id, org_id),
            )


# --- publishing --------------------------------------------------------------------------


def _hook_commits(app: Flask) -> None:
    from shared_records.feed import NOTIFICATIONS_KEY, PENDING_KEY

    database: Database = app.extensions["portal_db"]

    @event.listens_for(database.sessionmaker, "after_commit")
    def after_commit(db_session: Session) -> None:
        pending = db_session.info.pop(PENDING_KEY, None)
        if pending:
            publish(app, pending)
        notified = db_session.info.pop(NOTIFICATIONS_KEY, None)
        if notified:
            publish_notifications(app, notified)

    @event.listens_for(database.sessionmaker, "after_rollback")
    def after_rollback(db_session: Session) -> None:
        db_session.info.pop(PENDING_KEY, None)
        db_session.info.pop(NOTIFICATIONS_KEY, None)


def publish(app: Flask, activity_ids: list[int]) -> None:
    """Emit committed activities to the organisations that may see them now."""
    from shared_records import policy
    from shared_records.models import Activity
    from shared_records.serializers import activity_json

    socketio: SocketIO | None = app.extensions.get(EXTENSION)
    if socketio is None:
        return
    database: Database = app.extensions["portal_db"]
    with database.sessionmaker() as db:
        for activity_id in activity_ids:
            activity = db.get(Activity, activity_id)
            if activity is None:
                continue
            payload = activity_json(activity)
            for org_id in sorted(policy.activity_audience(db, activity)):
                socketio.emit("activity", payload, to=f"org:{org_id}")
            if activity.type == "case.unshared":
                # The former partner's open case pages leave the case's room at once.
                former = json.loads(activity.data).get("organization_id")
                if isinstance(former, int):
                    socketio.close_room(_case_room(activity.case_id, former))


def send_to_user(app: Flask, user_id: int, event_name: str, payload: dict[str, Any]) -> None:
    """Send an event to one person's open sessions only (their `user:<id>` room, on every
    server process through the message queue)."""
    socketio: SocketIO | None = app.extensions.get(EXTENSION)
    if socketio is not None:
        socketio.emit(event_name, payload, to=f"user:{user_id}")


def publish_notifications(app: Flask, notification_ids: list[int]) -> None:
    """Tell each notified person (all their open pages) about a new notification and their
    unread count."""
    from shared_records import notifications
    from shared_records.models import Notification

    socketio: SocketIO | None = app.extensions.get(EXTENSION)
    if socketio is None:
        return
    database: Database = app.extensions["portal_db"]
    with database.sessionmaker() as db:
        for notification_id in notification_ids:
            found = db.get(Notification, notification_id)
            if found is None:
                continue
            user = db.get(User, found.user_id)
            if user is None:
                continue
            payload = notifications.notification_json(found)
            payload["unread"] = notifications.unread_count(db, user)
            socketio.emit("notification", payload, to=f"user:{found.user_id}")


def _disconnect_local(app: Flask, user_id: int | None, credential: str | None) -> None:
    socketio: SocketIO | None = app.extensions.get(EXTENSION)
    registry: Registry | None = app.extensions.get("portal_socket_registry")
    if socketio is None or registry is None:
        return
    sids = registry.for_user(user_id) if user_id is not None else []
    if credential is not None:
        sids += registry.for_credential(credential)
    for sid in set(sids):
        socketio.server.disconnect(sid, namespace="/")
        registry.remove(sid)


def disconnect_sockets(
    app: Flask, *, user_id: int | None = None, credential: str | None = None
) -> None:
    """Disconnect the sockets of a user or of one credential (sign-out, revocation,
    deactivation) in this process and, through Redis, in every other one."""
    _disconnect_local(app, user_id, credential)
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        try:
            message = json.dumps({"user_id": user_id, "credential": credential})
            client.publish(_control_channel(app), message)
        finally:
            client.close()


def _control_channel(app: Flask) -> str:
    return str(app.config.get("SOCKETIO_CHANNEL", "wertkette")) + ":control"


def _listen_for_control(app: Flask, socketio: SocketIO) -> None:
    """Each server process follows the control channel to drop sockets whose credentials
    ended in another process (or in a command-line process)."""
    import redis

    def run() -> None:
        while True:
            try:
                client = redis.Redis.from_url(app.config["REDIS_URL"])
                pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(_control_channel(app))
                for message in pubsub.listen():
                    data = json.loads(message["data"])
                    _disconnect_local(app, data.get("user_id"), data.get("credential"))
            except Exception:
                app.logger.warning("control channel lost; reconnecting", exc_info=True)
                socketio.sleep(1)

    socketio.start_background_task(run)
