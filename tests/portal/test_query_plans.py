"""Regression guards on PostgreSQL with benchmark profile S (100,000 cases and customers):
the inbox (first page and deep pages) and the phone lookup are index scans, never a
sequential scan over cases or customers, and each is one statement; a deep page's cursor
bounds the index scan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bench.profiles import seed_profile
from tests.conftest import dispose_app, make_app

PG = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", id="pg", marks=pytest.mark.postgresql)]
)
BIG_TABLES = ("cases", "customers", "case_shares", "phone_numbers", "case_visibility")


@pytest.fixture
def profile_s(empty_db_url: str) -> Iterator[tuple[Flask, dict[str, Any]]]:
    facts = seed_profile(empty_db_url, "S", argon2_profile="fast")
    app = make_app(empty_db_url)
    yield app, facts
    dispose_app(app)


def _captured(app: Flask, action: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    engine = app.extensions["portal_db"].engine

    def listen(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    return seen


def _plan(app: Flask, statement: str, params: Any) -> str:
    engine = app.extensions["portal_db"].engine
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("EXPLAIN " + statement, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _assert_no_seq_scan(plan: str) -> None:
    for table in BIG_TABLES:
        assert f"Seq Scan on {table}" not in plan, plan


def _user(session: Any, email: str) -> Any:
    from partners.models import User

    return session.scalars(sa.select(User).where(User.email == email)).one()


@PG
def test_inbox_and_phone_lookup_are_index_scans(profile_s: tuple[Flask, dict[str, Any]]) -> None:
    from portal.db import get_session
    from shared_records import policy, queries

    app, facts = profile_s
    dealer = facts["largest_dealer"]
    assert dealer["visible_cases"] > 10_000
    with app.app_context():
        session = get_session()
        agent = _user(session, dealer["agent_email"])
        key_at_depth = session.execute(
            sa.text(
                "SELECT last_activity_at, case_id FROM case_visibility WHERE organization_id = :o"
                " ORDER BY last_activity_at DESC, case_id DESC OFFSET 10000 LIMIT 1"
            ),
            {"o": dealer["id"]},
        ).one()
        for after in (None, (key_at_depth[0], key_at_depth[1])):
            statements = _captured(
                app,
                lambda after=after: queries.case_page(
                    session, agent, queries.CaseFilters(), 50, after
                ),
            )
            assert len(statements) == 1, statements  # one statement per page, no N+1
            plan = _plan(app, *statements[0])
            _assert_no_seq_scan(plan)
            # The page is a backward range of the visibility index: no sort of the
            # organisation's whole inbox (only of the page's own rows, if at all).
            assert "Backward using ix_case_visibility_inbox" in plan, plan
            if after is not None:
                # The cursor starts the index range (a row comparison), rather than filtering
                # the 10,000 newer entries the scan would otherwise walk first.
                lines = plan.splitlines()
                scan = next(i for i, line in enumerate(lines) if "ix_case_visibility_inbox" in line)
                condition = next(line for line in lines[scan:] if "Index Cond" in line)
                assert "last_activity_at" in condition, plan

        caller = facts["callers_of_largest_dealer"][0]
        statements = _captured(
            app,
            lambda: session.execute(
                policy.caller_candidates(agent, caller["e164"]).limit(50)
            ).all(),
        )
        assert len(statements) == 1
        plan = _plan(app, *statements[0])
        _assert_no_seq_scan(plan)
        assert "ix_phone_numbers_e164" in plan, plan
