"""PostgreSQL for the test suite: find a server, create and drop uniquely named test databases.

:func:`obtain_postgres` picks the first server that works:

a. the server named by ``PORTAL_TEST_DATABASE_URL`` (any database on it; test databases are
   created next to it) -- if that is set but unusable, no fallback is tried;
b. the local server on ``127.0.0.1:5432`` as user ``postgres``;
c. a throwaway cluster made with ``initdb`` in a temporary directory (run as the ``postgres``
   user when we are root), tuned for speed (no fsync), removed again at exit;
d. none: ``None``, and :data:`why_unavailable` says why (tests then skip).

``PORTAL_TEST_FORCE_THROWAWAY_PG=1`` skips (a) and (b); ``PORTAL_TEST_DISABLE_PG=1`` yields
``None`` (to try the skip path).

Database names are unique per run (``wk_test_<pid>_<token>_<n>``); every database created
through a :class:`PostgresServer` is dropped by :meth:`PostgresServer.stop`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    import psycopg

ENV_URL = "PORTAL_TEST_DATABASE_URL"
ENV_FORCE_THROWAWAY = "PORTAL_TEST_FORCE_THROWAWAY_PG"
ENV_DISABLE = "PORTAL_TEST_DISABLE_PG"

LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432
LOCAL_USER = "postgres"
MAINTENANCE_DB = "postgres"
DRIVER = "postgresql+psycopg"

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TRUE = {"1", "true", "yes", "on"}

#: Why the last :func:`obtain_postgres` call returned ``None`` (one line per option tried).
why_unavailable: list[str] = []

_RUN_TOKEN = secrets.token_hex(2)
_counter = itertools.count(1)


def unique_name(prefix: str = "wk_test") -> str:
    """A database name unique to this process and run, e.g. ``wk_test_1234_a1b2_7``."""
    return f"{prefix}_{os.getpid()}_{_RUN_TOKEN}_{next(_counter)}"


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"unsafe database name {name!r}: use lower-case letters, digits, _")
    return name


class PostgresServer:
    """A PostgreSQL server the tests may create databases on.

    ``url`` is a SQLAlchemy URL of any database on the server with a role that may create
    databases; admin statements run over psycopg (v3) in autocommit mode.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        description: str = "",
        on_stop: Callable[[], None] | None = None,
        workdir: Path | None = None,
    ) -> None:
        parsed = make_url(url) if isinstance(url, str) else url
        self._url: URL = parsed.set(drivername=DRIVER)
        self.description = description or self._url.render_as_string(hide_password=True)
        self._on_stop = on_stop
        #: Directory of a throwaway cluster (removed by :meth:`stop`), else ``None``.
        self.workdir = workdir
        self._created: list[str] = []
        self._stopped = False

    # --- URLs -------------------------------------------------------------------------------

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL (``postgresql+psycopg://``) of the maintenance database."""
        return self.url_for(self._url.database or MAINTENANCE_DB)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return self._url.set(database=database).render_as_string(hide_password=False)

    def connect_kwargs(self, database: str | None = None) -> dict[str, Any]:
        """Keyword arguments for :func:`psycopg.connect`."""
        url = self._url
        kwargs: dict[str, Any] = {
            "host": url.host or url.query.get("host") or LOCAL_HOST,
            "port": url.port or LOCAL_PORT,
            "dbname": database or url.database or MAINTENANCE_DB,
            "connect_timeout": 5,
        }
        if url.username:
            kwargs["user"] = url.username
        if url.password:
            kwargs["password"] = url.password
        return kwargs

    def connect(self, database: str | None = None) -> psycopg.Connection[Any]:
        """An autocommit psycopg connection (to the maintenance database by default)."""
        import psycopg

        return psycopg.connect(**self.connect_kwargs(database), autocommit=True)

    # --- databases --------------------------------------------------------------------------

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` if given); return its URL.

        Connections still open to ``template`` are terminated first, since PostgreSQL
        refuses to copy a database that is in use.
        """
        from psycopg import errors, sql

        _check_name(name)
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            stmt = sql.SQL("{} TEMPLATE {}").format(stmt, sql.Identifier(_check_name(template)))
        with self.connect() as conn:
            for attempt in range(20):
                if template is not None:
                    self._terminate(conn, template)
                try:
                    conn.execute(stmt)
                    break
                except errors.ObjectInUse:
                    # a backend was still exiting, or connected again meanwhile
                    if attempt == 19:
                        raise
                    time.sleep(0.05 * (attempt + 1))
        self._created.append(name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its sessions (``WITH (FORCE)``)."""
        from psycopg import sql

        _check_name(name)
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        with contextlib.suppress(ValueError):
            self._created.remove(name)

    def database_exists(self, name: str) -> bool:
        with self.connect() as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None

    @staticmethod
    def _terminate(conn: psycopg.Connection[Any], database: str) -> None:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )

    def drop_created(self) -> None:
        """Drop every database created through this object that still exists."""
        errors: list[str] = []
        for name in reversed(list(self._created)):
            try:
                self.drop_database(name)
            except Exception as exc:  # keep dropping the others
                errors.append(f"{name}: {exc}")
        if errors:
            raise RuntimeError("could not drop test databases: " + "; ".join(errors))

    def stop(self) -> None:
        """Drop the databases created here; shut the server down if we started it."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.drop_created()
        finally:
            if self._on_stop is not None:
                self._on_stop()

    def __repr__(self) -> str:
        return f"PostgresServer({self.description})"


# --- finding a server -----------------------------------------------------------------------


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _probe(server: PostgresServer) -> str | None:
    """``None`` if we can connect and create databases there, else the reason."""
    try:
        with server.connect() as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
    except Exception as exc:
        return f"cannot connect: {str(exc).strip() or type(exc).__name__}"
    if not row or not row[0]:
        return "the role may not create databases (needs CREATEDB)"
    return None


def obtain_postgres() -> PostgresServer | None:
    """Find or start a PostgreSQL server for tests (see the module docstring)."""
    why_unavailable.clear()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        why_unavailable.append("psycopg is not installed: pip install -e '.[test]'")
        return None
    if _flag(ENV_DISABLE):
        why_unavailable.append(f"{ENV_DISABLE} is set")
        return None

    if not _flag(ENV_FORCE_THROWAWAY):
        env_url = os.environ.get(ENV_URL, "").strip()
        if env_url:
            try:
                server = PostgresServer(env_url)
            except Exception as exc:
                why_unavailable.append(f"{ENV_URL} is not a valid URL: {exc}")
                return None
            reason = _probe(server)
            if reason is None:
                return server
            why_unavailable.append(f"{ENV_URL} ({server.description}): {reason}")
            return None

        local = PostgresServer(
            URL.create(
                DRIVER,
                username=LOCAL_USER,
                host=LOCAL_HOST,
                port=LOCAL_PORT,
                database=MAINTENANCE_DB,
            ),
            description=f"local server {LOCAL_HOST}:{LOCAL_PORT}",
        )
        reason = _probe(local)
        if reason is None:
            return local
        why_unavailable.append(f"{local.description}: {reason}")

    try:
        return start_throwaway_cluster()
    except Exception as exc:
        why_unavailable.append(f"throwaway cluster: {exc}")
        return None


# --- throwaway cluster ----------------------------------------------------------------------


def find_pg_bindir() -> Path | None:
    """Directory holding ``initdb`` and ``pg_ctl``: from PATH, else /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
        candidates.append(Path(on_path).parent)

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/", path)
        return tuple(int(p) for p in match.group(1).split(".")) if match else ()

    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        candidates.append(Path(found))
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def start_throwaway_cluster(timeout: float = 60.0) -> PostgresServer:
    """``initdb`` a new cluster in a temporary directory and start it on a free port."""
    from .servers import free_port

    bindir = find_pg_bindir()
    if bindir is None:
        raise RuntimeError("initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin)")

    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError("running as root and there is no 'postgres' user") from exc
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running as root and runuser is missing")
        prefix = [runuser, "-u", owner.pw_name, "--"]

    base = Path(tempfile.mkdtemp(prefix="wk-test-pg-"))
    datadir, sockdir, logfile = base / "data", base / "sock", base / "server.log"
    sockdir.mkdir()
    if owner is not None:
        for path in (base, sockdir):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def run(args: list[str], what: str, check_timeout: float) -> None:
        proc = subprocess.run(
            [*prefix, *args],
            capture_output=True,
            text=True,
            timeout=check_timeout,
            cwd=base,
            check=False,
        )
        if proc.returncode != 0:
            log = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise RuntimeError(
                f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}\n{log}"
            )

    pg_ctl = str(bindir / "pg_ctl")
    started = False

    def stop_cluster() -> None:
        if started:
            with contextlib.suppress(Exception):
                subprocess.run(
                    [*prefix, pg_ctl, "-D", str(datadir), "-m", "immediate", "-w", "stop"],
                    capture_output=True,
                    timeout=60,
                    cwd=base,
                    check=False,
                )
        shutil.rmtree(base, ignore_errors=True)

    try:
        run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                LOCAL_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
            120,
        )
        port = 0
        for attempt in range(3):  # the port could be taken between picking and binding
            port = free_port()
            options = " ".join(
                [
                    f"-p {port}",
                    f"-k {sockdir}",
                    f"-c listen_addresses={LOCAL_HOST}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=100",
                ]
            )
            try:
                run(
                    [
                        pg_ctl,
                        "-D",
                        str(datadir),
                        "-l",
                        str(logfile),
                        "-w",
                        "-t",
                        str(int(timeout)),
                        "-o",
                        options,
                        "start",
                    ],
                    "pg_ctl start",
                    timeout + 10,
                )
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            started = True
            break

        server = PostgresServer(
            URL.create(
                DRIVER, username=LOCAL_USER, host=LOCAL_HOST, port=port, database=MAINTENANCE_DB
            ),
            description=f"throwaway cluster {LOCAL_HOST}:{port} in {base}",
            on_stop=stop_cluster,
            workdir=base,
        )
        deadline = time.monotonic() + timeout
        while (reason := _probe(server)) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"throwaway cluster not ready: {reason}")
            time.sleep(0.1)
    except BaseException:
        stop_cluster()
        raise

    atexit.register(server.stop)
    return server
