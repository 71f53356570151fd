"""Who is viewing which case right now (Socket.IO presence).

Entries live in memory (one process) or in a Redis hash per case (several processes), keyed by
socket id, and count only while their holder's page keeps renewing them (every 30 s)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

STALE_AFTER_SECONDS = 75


@dataclass(frozen=True)
class Viewer:
    sid: str
    user_id: int
    name: str
    organization_id: int
    organization_name: str
    seen: float
    editing: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "editing": self.editing,
        }


class MemoryPresence:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cases: dict[int, dict[str, Viewer]] = {}

    def set(self, case_id: int, viewer: Viewer) -> None:
        with self._lock:
            self._cases.setdefault(case_id, {})[viewer.sid] = viewer

    def remove(self, case_id: int, sid: str) -> None:
        with self._lock:
            self._cases.get(case_id, {}).pop(sid, None)

    def cases_of(self, sid: str) -> list[int]:
        with self._lock:
            return [case_id for case_id, viewers in self._cases.items() if sid in viewers]

    def viewers(self, case_id: int) -> list[Viewer]:
        limit = time.time() - STALE_AFTER_SECONDS
        with self._lock:
            return [v for v in self._cases.get(case_id, {}).values() if v.seen >= limit]


class RedisPresence:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix

    def _key(self, case_id: int) -> str:
        return f"{self._prefix}:presence:{case_id}"

    def set(self, case_id: int, viewer: Viewer) -> None:
        key = self._key(case_id)
        self._redis.hset(key, viewer.sid, json.dumps(asdict(viewer)))
        self._redis.expire(key, STALE_AFTER_SECONDS * 4)
        self._redis.sadd(f"{self._prefix}:presence-sid:{viewer.sid}", case_id)
        self._redis.expire(f"{self._prefix}:presence-sid:{viewer.sid}", STALE_AFTER_SECONDS * 4)

    def remove(self, case_id: int, sid: str) -> None:
        self._redis.hdel(self._key(case_id), sid)
        self._redis.srem(f"{self._prefix}:presence-sid:{sid}", case_id)

    def cases_of(self, sid: str) -> list[int]:
        members = self._redis.smembers(f"{self._prefix}:presence-sid:{sid}")
        return [int(m) for m in members]

    def viewers(self, case_id: int) -> list[Viewer]:
        limit = time.time() - STALE_AFTER_SECONDS
        raw = self._redis.hgetall(self._key(case_id))
        found = [Viewer(**json.loads(value)) for value in raw.values()]
        return [v for v in found if v.seen >= limit]
