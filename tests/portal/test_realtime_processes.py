"""Scale-out: two real server processes share Redis as the Socket.IO message queue; an event
caused through process A reaches a client connected to process B, and a deactivation in A
disconnects B's socket."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import socketio

from tests.support.api import Api
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Process:
    def __init__(self, database_url: str, redis_url: str, channel: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_REDIS_URL": redis_url,
            "PORTAL_SOCKETIO_CHANNEL": channel,
            "PORTAL_SECRET_KEY": "processes",
            "PORTAL_ARGON2_PROFILE": "fast",
            "PORTAL_BASE_URL": self.url,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portal", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server process did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def two_processes(demo_db_url: str, redis_url: str) -> Iterator[tuple[Process, Process]]:
    channel = "wk-test-" + secrets.token_hex(4)
    first = Process(demo_db_url, redis_url, channel)
    second = Process(demo_db_url, redis_url, channel)
    yield first, second
    first.stop()
    second.stop()


@pytest.mark.redis
def test_event_crosses_processes_and_deactivation_disconnects(
    two_processes: tuple[Process, Process], api: Api
) -> None:
    first, second = two_processes
    dealer_token = api("sales@berger.example").token
    writer_token = api("agent@nordwerk.example").token
    admin_token = api("admin@berger.example").token
    received: list[dict] = []
    got = threading.Event()
    disconnected = threading.Event()
    client = socketio.Client(reconnection=False)

    @client.on("activity")
    def on_activity(data: dict) -> None:
        received.append(data)
        got.set()

    @client.on("disconnect")
    def on_disconnect(*_args: object) -> None:
        disconnected.set()

    client.connect(
        second.url, auth={"token": dealer_token}, transports=["websocket"], wait_timeout=10
    )
    try:
        case_id = api.case_id("Bremsgeräusche an der Vorderachse")
        answer = requests.post(
            f"{first.url}/api/v1/cases/{case_id}/timeline",
            json={"body": "über Prozess A", "audience": "shared"},
            headers={"Authorization": f"Bearer {writer_token}"},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        assert got.wait(10), "the activity did not reach the client on process B"
        assert received[0]["case_id"] == case_id
        assert received[0]["type"] == "timeline.added"
        user_id = api.user_id("sales@berger.example")
        session = requests.Session()
        page = session.get(f"{first.url}/login", timeout=10).text
        csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        session.post(
            f"{first.url}/login",
            data={"email": "admin@berger.example", "password": "demo", "csrf_token": csrf},
            timeout=10,
        )
        admin_page = session.get(f"{first.url}/admin", timeout=10).text
        csrf = admin_page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        session.post(
            f"{first.url}/admin/users/{user_id}/active",
            data={"active": "0", "csrf_token": csrf},
            timeout=10,
        )
        assert admin_token
        assert disconnected.wait(10), "deactivation in A did not disconnect the socket on B"
    finally:
        if client.connected:
            client.disconnect()
