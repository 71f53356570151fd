"""A share written while its organisation leaves a value chain is never lost between the two
(PostgreSQL, where they can run at once): recalculating an organisation's shares holds an
advisory lock on it exclusively, and the visibility triggers take it shared for every
organisation whose suspended pairs they read (migration 0009). Whichever commits first, the
other sees it, and the partner that left never sees the case."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from partners import service
from partners.models import Partnership
from portal.db import get_database, get_session
from tests.shared_records.test_visibility_index import _compare
from tests.support.api import Api

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", id="pg", marks=pytest.mark.postgresql)]
)


def _conninfo(app: Flask) -> str:
    with app.app_context():
        url = get_database().engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _unshared_case(api: Api, owner: str, partner: str) -> int:
    """A case of `owner` that `partner` neither handles nor has a share of."""
    rows = api.query(
        "SELECT c.id FROM cases c WHERE c.owner_organization_id = :o "
        "AND c.handling_organization_id <> :p AND NOT EXISTS (SELECT 1 FROM case_shares s "
        "WHERE s.case_id = c.id AND s.organization_id = :p) ORDER BY c.id LIMIT 1",
        o=api.org_id(owner),
        p=api.org_id(partner),
    )
    return int(rows[0].id)


def _insert_share(conninfo: str, case_id: int, org_id: int) -> psycopg.Connection:
    """A share inserted in an open transaction (the caller commits)."""
    conn = psycopg.connect(conninfo)
    conn.execute(
        "INSERT INTO case_shares (case_id, organization_id, access, include_contact_details, "
        "created_at, updated_at) VALUES (%s, %s, 'read', false, now(), now())",
        (case_id, org_id),
    )
    return conn


def _in_thread(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def _waits(thread: threading.Thread) -> bool:
    """Whether the thread is still blocked after a moment."""
    time.sleep(0.5)
    return thread.is_alive()


def _leave(app: Flask, manufacturer: str, partner: str) -> Callable[[], None]:
    """Ending the partnership, as the service does it, up to (not including) the commit;
    the returned function commits."""
    ctx = app.app_context()
    ctx.push()
    session = get_session()
    link = session.scalars(
        sa.select(Partnership)
        .where(Partnership.manufacturer.has(slug=manufacturer))
        .where(Partnership.partner.has(slug=partner))
    ).one()
    link.active = False
    session.flush()
    service.recalculate_shares(session, link.partner_id, resume=False)

    def commit() -> None:
        session.commit()
        ctx.pop()

    return commit


def _sees(app: Flask, api: Api, org: str, case_id: int) -> bool:
    rows = api.query(
        "SELECT 1 FROM case_visibility WHERE organization_id = :o AND case_id = :c",
        o=api.org_id(org),
        c=case_id,
    )
    return bool(rows)


def test_a_share_written_during_the_leave_waits_and_then_grants_nothing(
    app: Flask, api: Api
) -> None:
    case_id = _unshared_case(api, "nordwerk", "berger")
    commit_leave = _leave(app, "nordwerk", "berger")
    done: list[psycopg.Connection] = []

    def share() -> None:
        conn = _insert_share(_conninfo(app), case_id, api.org_id("berger"))
        conn.commit()
        done.append(conn)

    writer = _in_thread(share)
    assert _waits(writer), "the share's trigger waits for the leave's lock"
    commit_leave()
    writer.join(timeout=30)
    assert done, "the share was written after the leave committed"
    done[0].close()
    assert not _sees(app, api, "berger", case_id)
    assert api("sales@berger.example").get(f"/cases/{case_id}").status == 404
    _compare(app)


def test_a_leave_waits_for_a_share_written_before_and_suspends_it(app: Flask, api: Api) -> None:
    case_id = _unshared_case(api, "nordwerk", "berger")
    writer = _insert_share(_conninfo(app), case_id, api.org_id("berger"))  # not committed
    committed: list[bool] = []

    def leave() -> None:
        _leave(app, "nordwerk", "berger")()
        committed.append(True)

    leaver = _in_thread(leave)
    try:
        assert _waits(leaver), "the leave waits for the share's transaction"
    finally:
        writer.commit()
        writer.close()
    leaver.join(timeout=30)
    assert committed, "the leave went ahead once the share was committed"
    assert not _sees(app, api, "berger", case_id)
    assert api("sales@berger.example").get(f"/cases/{case_id}").status == 404
    _compare(app)
