"""Database plumbing: the declarative base, shared column types and the per-request session."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC (evaluated per call, never at import)."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no time zone, so values are normalised to naive UTC before they are stored
    there and marked as UTC when they are read back.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC timestamp is required")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> Any:
        # PostgreSQL sessions of `Database` run with TimeZone=UTC, so psycopg already returns
        # aware UTC timestamps: no per-value conversion (a case list reads about 300).
        if dialect.name == "postgresql":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stamp: dt.datetime = value
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Base of every typed model; constraint names follow one convention for Alembic."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


intpk = Annotated[int, mapped_column(primary_key=True)]
created_at_col = Annotated[dt.datetime, mapped_column(default=utcnow, nullable=False)]


class Database:
    """One engine and session factory per application."""

    def __init__(self, url: str) -> None:
        self.url = sa.engine.make_url(url)
        kwargs: dict[str, Any] = {"future": True}
        if self.url.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            # Timestamps come back in UTC (UTCDateTime relies on it).
            kwargs["connect_args"] = {"options": "-c TimeZone=UTC"}
        self.engine: Engine = sa.create_engine(self.url, **kwargs)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            event.listen(self.engine, "checkin", _remember_checkin)
            event.listen(self.engine, "checkout", _ping_if_idle)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # SQL text of the statements `read_rows` ran (built once, module-level statements).
        self.compiled: dict[sa.Select[*tuple[Any, ...]], tuple[str, dict[str, Any]]] = {}

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy issues BEGIN itself (see _sqlite_on_begin): BEGIN IMMEDIATE takes the write
    # lock when a transaction starts, so a read followed by a write can never fail half-way
    # with SQLITE_BUSY_SNAPSHOT; the embedded default trades write concurrency for that.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# A pooled connection idle for longer than this is checked (`SELECT 1`) before it is handed
# out; the server or a proxy may have dropped it meanwhile. pool_pre_ping would check every
# checkout: one more round trip on every request, a third of a phone lookup's time.
IDLE_PING_SECONDS = 10.0


def _remember_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    checked_in = record.info.get("checked_in_at")
    if checked_in is None or time.monotonic() - checked_in < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:
        # The pool discards this connection and retries the checkout with a new one.
        raise sa.exc.DisconnectionError(str(exc)) from exc


def get_database() -> Database:
    database: Database = current_app.extensions["portal_db"]
    return database


def get_session() -> Session:
    """The session of the current request or app context; closed when the context ends."""
    if "db_session" not in g:
        g.db_session = get_database().sessionmaker()
    session: Session = g.db_session
    return session


def read_rows(stmt: sa.Select[*tuple[Any, ...]], params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of one read-only statement for a hot path (the phone lookup), with as little
    between the application and the database as the server allows: on PostgreSQL the SQL is
    compiled once per statement and sent on a pooled driver connection outside any
    transaction (no BEGIN/ROLLBACK round trips, no result processing). Only for statements
    whose columns and parameters need no type conversion (integers, text)."""
    database = get_database()
    if database.dialect == "sqlite":
        with database.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(stmt, params)]
    known = database.compiled.get(stmt)
    if known is None:
        compiled = stmt.compile(dialect=database.engine.dialect)
        known = database.compiled[stmt] = (str(compiled), dict(compiled.params))
    sql, defaults = known
    pooled = database.engine.raw_connection()
    try:
        driver = pooled.driver_connection
        assert driver is not None
        driver.autocommit = True
        try:
            with driver.cursor() as cursor:
                cursor.execute(sql, {**defaults, **params})
                return list(cursor.fetchall())
        finally:
            driver.autocommit = False
    finally:
        pooled.close()


def close_session(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
