"""Self-checks of the test infrastructure (tests/support, tests/conftest.py).

These use no application code, so they pass (and guard the fixtures) on their own: database
backends, the PostgreSQL helper incl. the throwaway cluster, the threaded WSGI server, headless
Chromium, and the CI policy that turns skips into failures.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support.postgres import PostgresServer, start_throwaway_cluster, unique_name
from tests.support.servers import ServerThread, free_port

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent


def test_blank_db_url_is_an_empty_database(blank_db_url: str, backend: str) -> None:
    expected_scheme = "sqlite" if backend == "sqlite" else "postgresql+psycopg"
    assert blank_db_url.startswith(f"{expected_scheme}://")
    engine = create_engine(blank_db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_blank_db_url_is_writable(blank_db_url: str) -> None:
    engine = create_engine(blank_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE marker (id INTEGER PRIMARY KEY)"))
        assert inspect(engine).get_table_names() == ["marker"]
    finally:
        engine.dispose()
    assert unique_name() != unique_name()


@pytest.mark.postgresql
def test_postgres_create_from_template_and_drop(postgres_server: PostgresServer) -> None:
    assert postgres_server.admin_url.startswith("postgresql+psycopg://")
    source = unique_name("wk_selfcheck")
    copy = unique_name("wk_selfcheck")
    source_url = postgres_server.create_database(source)
    engine = create_engine(source_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE partner (name TEXT)"))
            conn.execute(text("INSERT INTO partner VALUES ('Müller & Söhne')"))
        # a connection still open to the template must not stop the copy
        lingering = postgres_server.connect(source)
        try:
            copy_url = postgres_server.create_database(copy, template=source)
            assert lingering.closed or lingering.broken or _is_dead(lingering)
        finally:
            lingering.close()
        copy_engine = create_engine(copy_url)
        try:
            with copy_engine.connect() as conn:
                assert conn.execute(text("SELECT name FROM partner")).scalar_one() == (
                    "Müller & Söhne"
                )
        finally:
            copy_engine.dispose()
    finally:
        engine.dispose()
    postgres_server.drop_database(copy)
    postgres_server.drop_database(source)
    assert not postgres_server.database_exists(copy)
    assert not postgres_server.database_exists(source)


def _is_dead(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


@pytest.mark.postgresql
def test_throwaway_cluster_starts_serves_and_goes_away() -> None:
    server = start_throwaway_cluster()
    try:
        assert server.workdir is not None
        assert server.workdir.is_dir()
        url = server.create_database(unique_name("wk_selfcheck"))
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SHOW fsync")).scalar_one() == "off"
        finally:
            engine.dispose()
    finally:
        server.stop()
    assert server.workdir is not None
    assert not server.workdir.exists()


def _hello_body() -> bytes:
    return b"<!doctype html><title>Wertkette Selbsttest</title><h1 id='greeting'>Hallo</h1>"


def _hello_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [_hello_body()]


def _get(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_server_thread_serves_a_wsgi_app() -> None:
    assert 0 < free_port() < 65536
    with ServerThread(_hello_app) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert _get(server.port) == (200, _hello_body())
    with pytest.raises(ConnectionRefusedError):
        _get(server.port)


@pytest.mark.browser
def test_browser_reads_the_title_of_a_served_page(page: Page) -> None:
    with ServerThread(_hello_app) as server:
        page.goto(server.url + "/")
        assert page.title() == "Wertkette Selbsttest"
        assert page.locator("#greeting").inner_text() == "Hallo"


_SAMPLE_TESTS = {
    "pass_and_skip": """
        import pytest
        def test_passes(): pass
        def test_is_skipped(): pytest.skip("policy probe")
    """,
    "pass_and_xfail": """
        import pytest
        def test_passes(): pass
        @pytest.mark.xfail(reason="policy probe", strict=True)
        def test_xfails(): assert False
    """,
    "pass_only": """
        def test_passes(): pass
    """,
    "skip_only": """
        import pytest
        def test_is_skipped(): pytest.skip("policy probe")
    """,
}


@pytest.mark.parametrize(
    ("sample", "ci", "status", "message"),
    [
        ("pass_and_skip", True, 1, "No test may be skipped in CI"),
        ("pass_and_xfail", True, 1, "No test may be skipped in CI"),
        ("pass_and_skip", False, 0, None),
        ("pass_only", True, 0, None),
        ("skip_only", False, 5, "No test ran"),
    ],
    ids=["ci-skip-fails", "ci-xfail-fails", "local-skip-ok", "ci-pass-ok", "nothing-ran-fails"],
)
def test_ci_policy(tmp_path: Path, sample: str, ci: bool, status: int, message: str | None) -> None:
    test_file = tmp_path / "test_sample.py"
    test_file.write_text(textwrap.dedent(_SAMPLE_TESTS[sample]))
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_ADDOPTS"}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if ci:
        env["CI"] = "true"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            "-rs",
            str(test_file),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == status, output
    if message:
        assert message in output, output
        if ci:
            assert "SKIPPED test_sample.py::" in output, output
    else:
        assert "CI policy" not in output, output
