"""The durable activity log: every change writes an activity in its transaction; the feed
replays what a user may see, in id order, with no gaps even under concurrent writers."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.api import Api

BRAKES = "Bremsgeräusche an der Vorderachse"
NORDWERK = "agent@nordwerk.example"
DEALER = "sales@berger.example"
SUPPLIER = "quality@schulz.example"


def _feed(api: Api, email: str, after: int = 0) -> list[dict]:
    items: list[dict] = []
    while True:
        answer = api(email).get(f"/feed?after={after}&limit=50")
        assert answer.status == 200, answer.text
        items.extend(answer.body["items"])
        if not answer.body["items"]:
            return items
        after = answer.body["last_id"]


def test_every_change_writes_an_activity(api: Api) -> None:
    """Create, update, note, share, unshare, claim, release and hand-over each leave one
    activity with the documented fields."""
    nordwerk = api(NORDWERK)
    start = max([a["id"] for a in _feed(api, NORDWERK)] or [0])
    customer_id = api.customer_id("Jürgen Müller")
    case = nordwerk.post("/cases", {"customer_id": customer_id, "subject": "Feed-Test"}).body
    case_id = case["id"]
    nordwerk.patch(f"/cases/{case_id}", {"version": case["version"], "status": "open"})
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "Hallo", "audience": "shared"})
    nordwerk.post(f"/cases/{case_id}/shares", {"organization_id": api.org_id("berger")})
    nordwerk.post(f"/cases/{case_id}/claim")
    nordwerk.post(f"/cases/{case_id}/release")
    nordwerk.post(f"/cases/{case_id}/handover", {"organization_id": api.org_id("kaya")})
    nordwerk.delete(f"/cases/{case_id}/shares/{api.org_id('berger')}")
    mine = [a for a in _feed(api, NORDWERK, start) if a["case_id"] == case_id]
    assert [a["type"] for a in mine] == [
        "case.created",
        "case.updated",
        "timeline.added",
        "case.shared",
        "case.claimed",
        "case.released",
        "case.handed_over",
        "case.unshared",
    ]
    for activity in mine:
        assert set(activity) >= {
            "id",
            "type",
            "case_id",
            "organization_id",
            "actor_user_id",
            "at",
            "summary",
        }
        assert activity["actor_user_id"] == api.user_id(NORDWERK)
    assert [a["id"] for a in mine] == sorted(a["id"] for a in mine)
    assert mine[1]["data"]["fields"] == {"status": ["new", "open"]}


def test_feed_respects_audiences_and_revoked_shares(api: Api) -> None:
    """The supplier never gets an internal or a restricted entry; after unsharing, replay
    gives the former partner nothing more about that case."""
    case_id = api.case_id(BRAKES)
    start = max([a["id"] for a in _feed(api, NORDWERK)] or [0])
    nordwerk = api(NORDWERK)
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "intern", "audience": "internal"})
    nordwerk.post(
        f"/cases/{case_id}/timeline",
        {"body": "nur Händler", "audience": [api.org_id("berger")]},
    )
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "für alle", "audience": "shared"})
    supplier = [a for a in _feed(api, SUPPLIER, start) if a["case_id"] == case_id]
    dealer = [a for a in _feed(api, DEALER, start) if a["case_id"] == case_id]
    owner = [a for a in _feed(api, NORDWERK, start) if a["case_id"] == case_id]
    assert len(owner) == 3
    assert len(dealer) == 2
    assert len(supplier) == 1
    entry_ids = {a["data"]["entry_id"] for a in supplier}
    timeline = api(SUPPLIER).get(f"/cases/{case_id}/timeline").body["items"]
    assert entry_ids <= {e["id"] for e in timeline}
    nordwerk.delete(f"/cases/{case_id}/shares/{api.org_id('schulz')}")
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "danach", "audience": "shared"})
    assert [a for a in _feed(api, SUPPLIER, 0) if a["case_id"] == case_id] == []


def test_share_activity_reaches_only_owner_and_target(api: Api) -> None:
    """Who else a case is shared with is not told to other partners."""
    case_id = api.case_id(BRAKES)
    start = max([a["id"] for a in _feed(api, NORDWERK)] or [0])
    api(NORDWERK).post(f"/cases/{case_id}/shares", {"organization_id": api.org_id("kaya")})
    assert [a["type"] for a in _feed(api, "service@kaya.example", start)] == ["case.shared"]
    assert [a for a in _feed(api, DEALER, start) if a["type"] == "case.shared"] == []


@pytest.mark.parametrize("query", ["after=-1", "after=x", "limit=0", "limit=501", "foo=1"])
def test_bad_feed_queries_are_400(api: Api, query: str) -> None:
    assert api(NORDWERK).get(f"/feed?{query}").status == 400


def test_concurrent_writers_leave_no_gap_for_a_polling_reader(api: Api) -> None:
    """Writers commit concurrently while a reader keeps asking for everything after the last
    id it saw: at the end it has seen every activity exactly once."""
    case_id = api.case_id(BRAKES)
    writers = [NORDWERK, "admin@nordwerk.example", DEALER, "admin@berger.example"]
    per_writer = 12
    start = max([a["id"] for a in _feed(api, NORDWERK)] or [0])
    seen: list[int] = []
    done = threading.Event()
    reader = api("viewer@nordwerk.example")
    errors: list[str] = []

    def read() -> None:
        last = start
        while True:
            finished = done.is_set()
            answer = reader.get(f"/feed?after={last}&limit=500")
            if answer.status != 200:
                errors.append(answer.text)
                return
            for item in answer.body["items"]:
                seen.append(item["id"])
            last = answer.body["last_id"]
            if finished:
                return
            time.sleep(0.002)

    def write(email: str) -> None:
        user = api(email)
        for index in range(per_writer):
            answer = user.post(
                f"/cases/{case_id}/timeline",
                {"body": f"{email} {index}", "audience": "shared"},
            )
            if answer.status != 201:
                errors.append(answer.text)

    for email in [*writers, "viewer@nordwerk.example"]:
        api(email)  # create tokens before the race
    threads = [threading.Thread(target=write, args=(e,)) for e in writers]
    reading = threading.Thread(target=read)
    reading.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reading.join()
    assert errors == []
    everything = [a["id"] for a in _feed(api, "viewer@nordwerk.example", start)]
    assert len(everything) == len(writers) * per_writer
    assert seen == everything, "the polling reader missed or repeated activities"


def test_a_later_id_never_becomes_visible_before_an_earlier_one(api: Api) -> None:
    """Transaction A takes id N and has not committed; transaction B, started later, must not
    make id N+1 visible before N, or a reader asking "after N-1" would skip N for ever."""
    from partners.models import User
    from shared_records import events, feed
    from shared_records.models import Case

    app = api.app
    database = app.extensions["portal_db"]
    case_id = api.case_id(BRAKES)
    user_id = api.user_id(NORDWERK)
    start = api.query("SELECT coalesce(max(id), 0) FROM activities")[0][0]
    a_recorded = threading.Event()
    release_a = threading.Event()
    b_done = threading.Event()
    ids: dict[str, int] = {}

    def transaction(name: str, wait_for: threading.Event | None) -> None:
        with app.app_context(), database.sessionmaker() as session:
            actor = session.get(User, user_id)
            case = session.get(Case, case_id)
            assert actor is not None and case is not None
            activity = events.build(
                events.ActivityType.TIMELINE_ADDED, case, actor, case.created_at
            )
            ids[name] = feed.record(session, activity).id
            if wait_for is not None:
                a_recorded.set()
                wait_for.wait(10)
            session.commit()

    first = threading.Thread(target=transaction, args=("a", release_a))
    first.start()
    assert a_recorded.wait(10)
    second = threading.Thread(target=lambda: (transaction("b", None), b_done.set()))
    second.start()
    second.join(0.5)  # B runs (or waits for A's lock) meanwhile
    # A plain connection outside the app's transactions (on SQLite no BEGIN IMMEDIATE).
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"SELECT id FROM activities WHERE id > {int(start)}")  # noqa: S608
        visible = [row[0] for row in cursor.fetchall()]
        cursor.close()
    finally:
        raw.close()
    release_a.set()
    first.join(10)
    second.join(10)
    assert b_done.is_set()
    assert visible == [], f"ids {visible} visible while {ids.get('a')} was not committed"
    assert ids["a"] < ids["b"]
