"""Shared pytest set-up for Wertkette: CI policy, markers, database backends and app fixtures.

CI policy: with ``CI=true`` a run fails (exit status 1) if any test was skipped or xfailed,
and any run in which no test ran at all fails as well.

Database fixtures (each test gets its own database; ``backend`` runs it on SQLite and on
PostgreSQL, the latter marked ``postgresql`` and skipped if no server can be had):

- ``blank_db_url``: a new database without any table;
- ``empty_db_url``: migrated to head, no rows;
- ``demo_db_url``: migrated, with the demo network loaded;
- ``app`` / ``client``: the app (and its test client) on a ``demo_db_url`` database;
- ``empty_app``: the app on an ``empty_db_url`` database.

Migrated databases are copied from templates built lazily, once per session and backend
(SQLite: a file copied per test; PostgreSQL: ``CREATE DATABASE ... TEMPLATE``).

Browser fixtures: ``live_server`` (the ``app`` served on a loopback port), ``browser``
(headless Chromium, once per session) and ``page`` (a fresh browser context per test; a
screenshot lands in ``test-artifacts/`` when the test fails).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # so `tests.support` imports under plain `pytest` too
    sys.path.insert(0, str(ROOT))

from tests.support.browser import launch_browser  # noqa: E402
from tests.support.postgres import (  # noqa: E402
    PostgresServer,
    obtain_postgres,
    unique_name,
    why_unavailable,
)
from tests.support.servers import ServerThread  # noqa: E402

if TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient
    from playwright.sync_api import Browser, Page

Backend = Literal["sqlite", "postgresql"]
Kind = Literal["empty", "demo"]

ARTIFACTS_DIR = ROOT / "test-artifacts"

#: Configuration every test app gets (plus DATABASE_URL). CSRF protection stays on.
TEST_APP_CONFIG: dict[str, Any] = {
    "TESTING": True,
    "SECRET_KEY": "test",
    "PORTAL_ENV": "testing",
    "ARGON2_PROFILE": "fast",
}


def app_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """The test configuration for an app on ``database_url``."""
    return {**TEST_APP_CONFIG, "DATABASE_URL": database_url, **overrides}


def make_app(database_url: str, **overrides: Any) -> Flask:
    """``create_app`` with the test configuration on ``database_url``."""
    from portal import create_app

    return create_app(app_config(database_url, **overrides))


def dispose_app(app: Flask) -> None:
    """Close the app's pooled database connections (so its database can be copied/dropped)."""
    engine = app.extensions.get("portal_db")
    if engine is not None and hasattr(engine, "dispose"):
        engine.dispose()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


# --- markers and CI policy ------------------------------------------------------------------

MARKERS = (
    "postgresql: runs against PostgreSQL (skipped if no server can be found or started)",
    "browser: drives headless Chromium (/usr/bin/chromium) through Playwright",
    "redis: needs a Redis server",
)


@dataclass(eq=False)  # a plugin must stay hashable
class CiPolicy:
    """Records skips and executed tests; fails the session as the CI policy demands."""

    config: pytest.Config
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ran: int = 0
    verdicts: list[str] = field(default_factory=list)

    @property
    def in_ci(self) -> bool:
        return os.environ.get("CI") == "true"

    @staticmethod
    def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
        if hasattr(report, "wasxfail"):
            return f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            return str(longrepr[2]).removeprefix("Skipped: ")
        return str(longrepr)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped:
            self.skipped.append((report.nodeid, self._reason(report)))
        elif report.when == "call":
            self.ran += 1

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.skipped.append((report.nodeid, self._reason(report)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.config.option.collectonly or session.exitstatus not in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            return
        if self.ran == 0:
            self.verdicts.append("No test ran.")
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
        if self.in_ci and self.skipped:
            self.verdicts.append(
                f"No test may be skipped in CI: {len(self.skipped)} skipped or xfailed."
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.verdicts:
            return
        terminalreporter.section("CI policy", sep="=", red=True, bold=True)
        if self.in_ci:
            for nodeid, reason in self.skipped:
                terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
        for verdict in self.verdicts:
            terminalreporter.line(verdict, red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    if not config.pluginmanager.has_plugin("wertkette-ci-policy"):
        config.pluginmanager.register(CiPolicy(config), "wertkette-ci-policy")


_PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_PHASE_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_PHASE_REPORTS, {})
    return any(r.failed for r in reports.values())


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server for this session (see tests/support/postgres.py); else skip."""
    server = obtain_postgres()
    if server is None:
        pytest.skip("PostgreSQL unavailable: " + "; ".join(why_unavailable))
    try:
        yield server
    finally:
        server.stop()


# --- databases ------------------------------------------------------------------------------


@dataclass
class _Template:
    url: str
    ref: str  # SQLite: file path; PostgreSQL: database name


class DatabaseFactory:
    """Makes per-test databases; builds the migrated templates lazily, once per backend."""

    def __init__(self, template_dir: Path) -> None:
        self._template_dir = template_dir
        self._templates: dict[tuple[Backend, Kind], _Template] = {}
        self._failures: dict[tuple[Backend, Kind], BaseException] = {}
        self._n = 0

    def _next(self, stem: str) -> str:
        self._n += 1
        return f"{stem}-{self._n}.db"

    def blank(
        self, backend: Backend, tmp_dir: Path, pg: PostgresServer | None
    ) -> tuple[str, Callable[[], None]]:
        """A new database without tables: (URL, cleanup)."""
        if backend == "sqlite":
            path = tmp_dir / self._next("blank")
            sqlite3.connect(path).close()
            return sqlite_url(path), lambda: None
        assert pg is not None
        name = unique_name()
        url = pg.create_database(name)
        return url, lambda: pg.drop_database(name)

    def copy(
        self, backend: Backend, kind: Kind, tmp_dir: Path, pg: PostgresServer | None
    ) -> tuple[str, Callable[[], None]]:
        """A new database copied from the ``kind`` template: (URL, cleanup)."""
        template = self.template(backend, kind, pg)
        if backend == "sqlite":
            path = tmp_dir / self._next(kind)
            shutil.copy(template.ref, path)
            return sqlite_url(path), lambda: None
        assert pg is not None
        name = unique_name()
        url = pg.create_database(name, template=template.ref)
        return url, lambda: pg.drop_database(name)

    def template(self, backend: Backend, kind: Kind, pg: PostgresServer | None) -> _Template:
        key = (backend, kind)
        if key in self._templates:
            return self._templates[key]
        if key in self._failures:
            failure = self._failures[key]
            raise RuntimeError(
                f"building the {kind} {backend} template failed earlier in this session: "
                f"{type(failure).__name__}: {failure}"
            ) from failure
        try:
            template = self._build(backend, kind, pg)
        except BaseException as exc:
            self._failures[key] = exc
            raise
        self._templates[key] = template
        return template

    def _build(self, backend: Backend, kind: Kind, pg: PostgresServer | None) -> _Template:
        if kind == "empty":
            template = self._new_template(backend, kind, pg, source=None)
            from portal.migrate import upgrade

            upgrade(template.url)
        else:
            empty = self.template(backend, "empty", pg)
            template = self._new_template(backend, kind, pg, source=empty)
            from portal.demo import load_demo_network

            app = make_app(template.url)
            try:
                with app.app_context():
                    load_demo_network(app)
            finally:
                dispose_app(app)
        if backend == "sqlite":
            _checkpoint_sqlite(Path(template.ref))
        return template

    def _new_template(
        self, backend: Backend, kind: Kind, pg: PostgresServer | None, source: _Template | None
    ) -> _Template:
        if backend == "sqlite":
            path = self._template_dir / f"template-{kind}.db"
            if source is None:
                sqlite3.connect(path).close()
            else:
                shutil.copy(source.ref, path)
            return _Template(sqlite_url(path), str(path))
        assert pg is not None
        name = unique_name(f"wk_tpl_{kind}")
        url = pg.create_database(name, template=source.ref if source else None)
        return _Template(url, name)


def _checkpoint_sqlite(path: Path) -> None:
    """Move any WAL content into the main file, so that copying that file copies everything."""
    con = sqlite3.connect(path)
    try:
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        con.close()
    if busy:
        raise RuntimeError(f"SQLite template {path} is still in use (connections not disposed)")


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> DatabaseFactory:
    return DatabaseFactory(tmp_path_factory.mktemp("db-templates"))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="pg", marks=pytest.mark.postgresql),
    ]
)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The database backend: ``"sqlite"`` or ``"postgresql"`` (test ids ``sqlite``/``pg``)."""
    value: Backend = request.param
    return value


def _pg_for(request: pytest.FixtureRequest, backend: Backend) -> PostgresServer | None:
    if backend != "postgresql":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server


@pytest.fixture
def blank_db_url(
    backend: Backend,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_factory: DatabaseFactory,
) -> Iterator[str]:
    """URL of a brand-new database without tables (dropped after the test)."""
    url, cleanup = database_factory.blank(backend, tmp_path, _pg_for(request, backend))
    yield url
    cleanup()


@pytest.fixture
def empty_db_url(
    backend: Backend,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_factory: DatabaseFactory,
) -> Iterator[str]:
    """URL of a new database migrated to head, without rows (dropped after the test)."""
    url, cleanup = database_factory.copy(backend, "empty", tmp_path, _pg_for(request, backend))
    yield url
    cleanup()


@pytest.fixture
def demo_db_url(
    backend: Backend,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_factory: DatabaseFactory,
) -> Iterator[str]:
    """URL of a new migrated database holding the demo network (dropped after the test)."""
    url, cleanup = database_factory.copy(backend, "demo", tmp_path, _pg_for(request, backend))
    yield url
    cleanup()


# --- the app --------------------------------------------------------------------------------


@pytest.fixture
def app(demo_db_url: str) -> Iterator[Flask]:
    """The portal app (test configuration) on its own demo-network database."""
    application = make_app(demo_db_url)
    yield application
    dispose_app(application)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def empty_app(empty_db_url: str) -> Iterator[Flask]:
    """The portal app (test configuration) on its own migrated but empty database."""
    application = make_app(empty_db_url)
    yield application
    dispose_app(application)


# --- browser --------------------------------------------------------------------------------


@pytest.fixture
def live_server(app: Flask) -> Iterator[ServerThread]:
    """``app`` served on ``127.0.0.1:<free port>``; use ``live_server.url``."""
    with ServerThread(app) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the session (skips if /usr/bin/chromium is missing)."""
    with launch_browser() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context; screenshot to test-artifacts/ if the test fails."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        if _failed(request):
            ARTIFACTS_DIR.mkdir(exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
            try:
                page.screenshot(path=str(ARTIFACTS_DIR / f"{stem}.png"), full_page=True)
            except Exception as exc:  # the page may be gone; never mask the real failure
                print(f"screenshot failed: {exc}")
        context.close()


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def api(app: Flask) -> Any:
    """Bearer-token API clients for the demo accounts: ``api("sales@berger.example").get(...)``."""
    from tests.support.api import Api

    return Api(app)


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis server URL (PORTAL_TEST_REDIS_URL, the local one, or a throwaway); else skip."""
    from tests.support.redis_server import obtain_redis, why_unavailable

    url = obtain_redis()
    if url is None:
        pytest.skip("Redis unavailable: " + "; ".join(why_unavailable))
    return url
