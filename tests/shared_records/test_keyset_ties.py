"""Keyset paging of case lists when many cases share one last-activity time: the cursor is
(last activity, case id), so pages continue by id among equal times, never skipping or
repeating a case (the row comparison in policy.inbox_after)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from portal.db import get_session
from tests.support.api import Api


def test_pages_over_equal_activity_times_list_every_case_once(app: Flask, api: Api) -> None:
    with app.app_context():
        session = get_session()
        session.execute(
            sa.text("UPDATE cases SET last_activity_at = (SELECT max(last_activity_at) FROM cases)")
        )
        session.commit()
    agent = api("agent@nordwerk.example")
    whole = agent.get("/cases?limit=100")
    assert whole.status == 200, whole.text
    assert whole.body["next_cursor"] is None, "the demo fits one page of 100"
    expected = [item["id"] for item in whole.body["items"]]
    assert len(expected) > 4
    assert expected == sorted(expected, reverse=True), "equal times: newest id first"

    paged = [item["id"] for item in agent.all_pages("/cases?limit=2")]
    assert paged == expected
