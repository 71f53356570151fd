"""The production entry point: `portal.wsgi:app` served by gunicorn (two gthread workers, as
portal/wsgi.py documents) answers the health check and a signed-in API call."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.api import Api
from tests.support.servers import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gunicorn(demo_db_url: str, tmp_path: Path) -> Iterator[str]:
    """`portal.wsgi:app` under gunicorn on a free port; yields its base URL."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        PORTAL_ENV="production",
        PORTAL_DATABASE_URL=demo_db_url,
        PORTAL_SECRET_KEY="wsgi-test",
        PORTAL_BASE_URL=url,
        PORTAL_INSTANCE_DIR=str(tmp_path / "instance"),
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "portal.wsgi:app"),
                *("--workers", "2", "--worker-class", "gthread", "--threads", "2"),
                *("--bind", f"{HOST}:{port}", "--graceful-timeout", "5", "--no-control-socket"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                # Connections wait in the backlog until a worker has loaded the app.
                if requests.get(url + "/healthz", timeout=10).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start:\n" + log_path.read_text(errors="replace"))
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_gunicorn_serves_health_and_signed_in_api(gunicorn: str, api: Api) -> None:
    token = api("sales@berger.example").token

    health = requests.get(gunicorn + "/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    with requests.Session() as session:  # keep-alive, as browsers and integrations use it
        session.headers["Authorization"] = f"Bearer {token}"
        for _ in range(3):  # more than one request on the connection, maybe both workers
            cases = session.get(gunicorn + "/api/v1/cases?limit=5", timeout=10)
            assert cases.status_code == 200, cases.text
            assert cases.json()["items"], "the demo dealer sees shared cases"

    anonymous = requests.get(gunicorn + "/api/v1/cases", timeout=10)
    assert anonymous.status_code == 401
