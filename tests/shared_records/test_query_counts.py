"""List endpoints cost a fixed number of SQL statements, whatever the page size (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from tests.support.api import Api


@contextmanager
def count_statements(app: Flask) -> Iterator[list[str]]:
    engine = app.extensions["portal_db"].engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    ("path", "email"),
    [
        ("/cases?limit={n}", "agent@nordwerk.example"),
        ("/cases?limit={n}&scope=shared", "sales@berger.example"),
        ("/customers?limit={n}", "agent@nordwerk.example"),
        ("/customers?limit={n}", "quality@schulz.example"),
    ],
)
def test_list_statement_count_does_not_grow_with_page_size(
    app: Flask, api: Api, path: str, email: str
) -> None:
    """A page of 40 rows takes (almost) no more SQL statements than a page of 2."""
    user = api(email)
    user.get(path.format(n=1))  # warm up: token last-used bookkeeping
    counts = []
    for size in (2, 40):
        with count_statements(app) as statements:
            answer = user.get(path.format(n=size))
        assert answer.status == 200
        counts.append(len(statements))
    # Nested eager loads (a company's contacts' phones) add at most two statements, once.
    assert counts[0] <= counts[1] <= counts[0] + 2, counts
    assert counts[1] <= 10, counts


def test_timeline_statement_count_is_bounded(app: Flask, api: Api) -> None:
    case_id = api.case_id("Bremsgeräusche an der Vorderachse")
    user = api("agent@nordwerk.example")
    user.get("/me")
    with count_statements(app) as statements:
        assert user.get(f"/cases/{case_id}/timeline").status == 200
    assert len(statements) <= 8, statements


# Statement budgets per request, measured on the demo network; a change that adds a round
# trip per row (N+1) or per request shows up here first.
PAGE_BUDGETS = [
    ("/", "agent@nordwerk.example", 8),
    ("/?scope=shared", "sales@berger.example", 8),
    ("/cases/{brakes}", "agent@nordwerk.example", 16),
    ("/cases/{brakes}", "quality@schulz.example", 13),
    ("/customers/{mueller}", "agent@nordwerk.example", 19),
    ("/api/v1/feed?after=0&limit=100", "agent@nordwerk.example", 5),
    ("/api/v1/feed?after=0&limit=100", "sales@berger.example", 5),
]


@pytest.mark.parametrize(("path", "email", "budget"), PAGE_BUDGETS)
def test_page_statement_budgets(app: Flask, api: Api, path: str, email: str, budget: int) -> None:
    from tests.support.web import login

    target = path.format(
        brakes=api.case_id("Bremsgeräusche an der Vorderachse"),
        mueller=api.customer_id("Jürgen Müller"),
    )
    browser = app.test_client()
    login(browser, email)
    browser.get(target)  # warm up: session bookkeeping, caches
    with count_statements(app) as statements:
        response = browser.get(target)
    assert response.status_code == 200
    assert len(statements) <= budget, (len(statements), statements)
