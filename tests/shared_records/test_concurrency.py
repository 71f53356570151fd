"""Real concurrency on SQLite and PostgreSQL: threads with their own test clients (and so their
own database sessions) start requests together at a barrier.

SQLite serialises writers (BEGIN IMMEDIATE, busy_timeout); PostgreSQL lets them run side by
side and the version column turns a lost race into 409. Either way every answer must say what
happened (a winner, and a 409 that tells the loser why, or a 404 when nothing is left to do):
no 500, no lost update, no duplicate number and no change recorded twice.
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from auth.service import create_api_token
from partners import service as partners_service
from partners.models import User
from portal.db import get_session, utcnow
from shared_records.models import CaseNumberCounter

BRAKES = "Bremsgeräusche an der Vorderachse"
OWNER_AGENT = "agent@nordwerk.example"
PARTNER_AGENT = "sales@berger.example"
ROUNDS = 5

Request = Callable[[FlaskClient], TestResponse]
Answer = tuple[int, Any]


def tokens_for(app: Flask, emails: list[str]) -> dict[str, str]:
    """A bearer token per user (no CSRF token needed with bearer authentication)."""
    with app.app_context():
        session = get_session()
        users = session.scalars(sa.select(User).where(User.email.in_(emails))).all()
        assert len(users) == len(emails)
        return {user.email: create_api_token(session, user, "concurrency")[1] for user in users}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sending(method: str, url: str, token: str, body: Any = None) -> Request:
    """A request (for `race`) with a bearer token and an optional JSON body."""

    def send(client: FlaskClient) -> TestResponse:
        return client.open(url, method=method, json=body, headers=auth(token))

    return send


def race(app: Flask, requests: list[Request]) -> list[Answer]:
    """Run the requests in parallel threads released together by a barrier; each thread has
    its own client. An exception in a thread (an unhandled error in the app) fails the test
    with its traceback."""
    barrier = threading.Barrier(len(requests))
    answers: list[Answer | None] = [None] * len(requests)
    failures: list[str] = []

    def run(index: int) -> None:
        client = app.test_client()
        try:
            barrier.wait(timeout=30)
            response = requests[index](client)
            answers[index] = (response.status_code, response.get_json(silent=True))
        except BaseException:
            failures.append(f"thread {index}:\n{traceback.format_exc()}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert not failures, "\n".join(failures)
    for status, body in (a for a in answers if a is not None):
        assert status < 500, body
    return [a for a in answers if a is not None]


def brakes_case(client: FlaskClient, token: str) -> dict[str, Any]:
    response = client.get("/api/v1/cases", query_string={"q": BRAKES}, headers=auth(token))
    (case,) = response.get_json()["items"]
    return dict(case)


def get_case(client: FlaskClient, token: str, case_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/cases/{case_id}", headers=auth(token))
    assert response.status_code == 200
    return dict(response.get_json())


def timeline(client: FlaskClient, token: str, case_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/cases/{case_id}/timeline", headers=auth(token))
    assert response.status_code == 200
    return list(response.get_json()["items"])


def me(client: FlaskClient, token: str) -> dict[str, Any]:
    response = client.get("/api/v1/me", headers=auth(token))
    assert response.status_code == 200
    return dict(response.get_json())


def test_parallel_patches_with_the_same_version_one_wins_one_conflicts(app: Flask) -> None:
    """Two PATCHes of one case with the same version: exactly one 200 and one 409 whose
    `error.current` is the record as the winner left it; the winner's value is stored and
    the timeline records exactly one change."""
    tokens = tokens_for(app, [OWNER_AGENT, PARTNER_AGENT])
    client = app.test_client()
    case = brakes_case(client, tokens[OWNER_AGENT])
    for round_no in range(ROUNDS):
        before = get_case(client, tokens[OWNER_AGENT], case["id"])
        version = before["version"]
        subjects = {email: f"Runde {round_no}: {email}" for email in tokens}

        url = f"/api/v1/cases/{case['id']}"
        emails = list(tokens)
        patches = [
            sending("PATCH", url, tokens[e], {"version": version, "subject": subjects[e]})
            for e in emails
        ]
        answers = dict(zip(emails, race(app, patches), strict=True))
        statuses = sorted(status for status, _ in answers.values())
        assert statuses == [200, 409], answers
        winner = next(e for e, (status, _) in answers.items() if status == 200)
        loser = next(e for e in emails if e != winner)
        won, lost = answers[winner][1], answers[loser][1]
        assert won["subject"] == subjects[winner]
        assert won["version"] == version + 1
        assert lost["error"]["code"] == "stale_version"
        current = lost["error"]["current"]
        assert current["id"] == case["id"]
        assert current["version"] == version + 1
        assert current["subject"] == subjects[winner]

        after = get_case(client, tokens[OWNER_AGENT], case["id"])
        assert after["subject"] == subjects[winner]  # nothing lost, nothing overwritten
        assert after["version"] == version + 1
        changes = [
            e
            for e in timeline(client, tokens[OWNER_AGENT], case["id"])
            if e["kind"] == "change" and e["field"] == "subject"
        ]
        this_round = [e for e in changes if e["new_value"] in subjects.values()]
        assert len(this_round) == 1, this_round
        assert this_round[0]["new_value"] == subjects[winner]
        assert this_round[0]["old_value"] == before["subject"]


def test_claim_race_has_one_holder_and_the_loser_is_told_who(app: Flask) -> None:
    """Agents of two organisations with edit access claim the same case at once: exactly one
    200, the other 409 naming the holder (`error.holder`), the case's handling user is the
    winner and the timeline records one claim."""
    tokens = tokens_for(app, [OWNER_AGENT, PARTNER_AGENT])
    client = app.test_client()
    people = {email: me(client, token) for email, token in tokens.items()}
    case = brakes_case(client, tokens[OWNER_AGENT])
    for email in tokens:  # both organisations may edit (owner; share with edit access)
        detail = client.get(f"/api/v1/cases/{case['id']}", headers=auth(tokens[email]))
        assert detail.get_json()["access"] == "edit"
    assert case["handling_user_id"] is None

    for _round in range(ROUNDS):
        seen_before = {e["id"] for e in timeline(client, tokens[OWNER_AGENT], case["id"])}

        url = f"/api/v1/cases/{case['id']}/claim"
        emails = list(tokens)
        claims = [sending("POST", url, tokens[e]) for e in emails]
        answers = dict(zip(emails, race(app, claims), strict=True))
        assert sorted(status for status, _ in answers.values()) == [200, 409], answers
        winner = next(e for e, (status, _) in answers.items() if status == 200)
        loser = next(e for e in emails if e != winner)
        won, lost = answers[winner][1], answers[loser][1]
        assert won["handling_user_id"] == people[winner]["id"]
        assert lost["error"]["code"] == "claimed"
        holder = lost["error"]["holder"]
        assert holder["name"] == people[winner]["name"]
        assert holder["user_id"] == people[winner]["id"]
        assert holder["organization_id"] == people[winner]["organization"]["id"]

        after = get_case(client, tokens[OWNER_AGENT], case["id"])
        assert after["handling_user_id"] == people[winner]["id"]
        assert after["handling_organization_id"] == people[winner]["organization"]["id"]
        claims = [
            e
            for e in timeline(client, tokens[OWNER_AGENT], case["id"])
            if e["id"] not in seen_before and e["field"] == "handling_user"
        ]
        assert [(e["old_value"], e["new_value"]) for e in claims] == [
            (None, people[winner]["name"])
        ]
        # The winner lets go, so that the next round starts unclaimed.
        release = client.post(f"/api/v1/cases/{case['id']}/release", headers=auth(tokens[winner]))
        assert release.status_code == 200, release.get_json()
        assert release.get_json()["handling_user_id"] is None


def _workers_in_a_new_network(app: Flask, count: int) -> list[str]:
    with app.app_context():
        session = get_session()
        org = partners_service.create_organization(
            session, name="Nebenläufig GmbH", slug="nebenlaeufig", kind="dealer"
        )
        emails = [f"agent{i}@nebenlaeufig.example" for i in range(count)]
        for i, email in enumerate(emails):
            role = "admin" if i == 0 else "agent"
            partners_service.create_user(
                session, org, email=email, name=f"Agent {i}", role=role, password=None
            )
        session.commit()
    return emails


def _counter_value(app: Flask, year: int) -> int:
    with app.app_context():
        value = get_session().scalar(
            sa.select(CaseNumberCounter.last_value).where(CaseNumberCounter.year == year)
        )
    return int(value or 0)


@pytest.mark.parametrize("start", ["demo", "empty"])
def test_parallel_case_creation_yields_unique_consecutive_numbers(
    start: str, backend: str, request: pytest.FixtureRequest
) -> None:
    """Several threads open cases at once: every request answers 201 (no 500) and the case
    numbers (C-YYYY-nnnnnn) are unique and consecutive, continuing the year's counter (also
    when the counter for the year does not exist yet)."""
    threads, per_thread = 6, 4
    if start == "demo":
        app: Flask = request.getfixturevalue("app")
        emails = [
            "agent@nordwerk.example",
            "admin@nordwerk.example",
            "sales@berger.example",
            "service@kaya.example",
            "agent@suedstern.example",
            "quality@schulz.example",
        ]
    else:
        app = request.getfixturevalue("empty_app")
        emails = _workers_in_a_new_network(app, threads)
    tokens = tokens_for(app, emails)
    client = app.test_client()
    customers = {}
    for email in emails:  # each worker opens cases for a customer of its own
        response = client.post(
            "/api/v1/customers", json={"name": f"Kunde von {email}"}, headers=auth(tokens[email])
        )
        assert response.status_code == 201, response.get_json()
        customers[email] = response.get_json()["id"]
        me(client, tokens[email])  # the token's first use is recorded before the race
    year = utcnow().year
    before = _counter_value(app, year)
    if start == "empty":
        assert before == 0  # the race also creates the year's counter

    def create_many(email: str) -> Request:
        def run(c: FlaskClient) -> TestResponse:
            last = None
            for n in range(per_thread):
                last = c.post(
                    "/api/v1/cases",
                    json={"customer_id": customers[email], "subject": f"Parallel {n}"},
                    headers=auth(tokens[email]),
                )
                if last.status_code != 201:
                    return last
                numbers.append(last.get_json()["number"])
            assert last is not None
            return last

        return run

    numbers: list[str] = []  # list.append is atomic
    answers = race(app, [create_many(e) for e in emails])
    assert all(status == 201 for status, _ in answers), answers
    assert len(numbers) == threads * per_thread
    assert all(re.fullmatch(rf"C-{year}-\d{{6}}", n) for n in numbers), numbers
    assert len(set(numbers)) == len(numbers), sorted(numbers)
    values = sorted(int(n[-6:]) for n in numbers)
    assert values == list(range(before + 1, before + 1 + len(numbers))), values
    assert _counter_value(app, year) == before + len(numbers)


def _kaya_and_share_url(client: FlaskClient, token: str, case_id: int) -> tuple[int, str]:
    orgs = client.get("/api/v1/organizations", headers=auth(token)).get_json()["items"]
    kaya = next(o["id"] for o in orgs if o["slug"] == "kaya")  # in Nordwerk's chain, no share
    return kaya, f"/api/v1/cases/{case_id}/shares"


def _share_changes(client: FlaskClient, token: str, case_id: int, seen: set[int]) -> list[Any]:
    return [
        (e["old_value"], e["new_value"])
        for e in timeline(client, token, case_id)
        if e["id"] not in seen and e["field"] == "share"
    ]


def test_parallel_shares_with_the_same_organisation_end_in_one_share(app: Flask) -> None:
    """Two agents of the owner share a case with the same organisation at once: no 500, the
    case ends with exactly one share for it (with a level one of the successful requests
    asked for) and the timeline records one change per successful request."""
    tokens = tokens_for(app, [OWNER_AGENT, "admin@nordwerk.example"])
    client = app.test_client()
    case = brakes_case(client, tokens[OWNER_AGENT])
    kaya, url = _kaya_and_share_url(client, tokens[OWNER_AGENT], case["id"])
    for _round in range(ROUNDS):
        seen = {e["id"] for e in timeline(client, tokens[OWNER_AGENT], case["id"])}
        levels = dict(zip(tokens, ["read", "comment"], strict=True))
        shares = [
            sending("POST", url, tokens[e], {"organization_id": kaya, "access": levels[e]})
            for e in tokens
        ]
        answers = dict(zip(tokens, race(app, shares), strict=True))
        granted = {levels[e] for e, (status, _) in answers.items() if status == 200}
        assert granted, answers
        assert all(status in (200, 409) for status, _ in answers.values()), answers
        listed = client.get(url, headers=auth(tokens[OWNER_AGENT])).get_json()["items"]
        kaya_shares = [s for s in listed if s["organization_id"] == kaya]
        assert len(kaya_shares) == 1, listed
        assert kaya_shares[0]["access"] in granted
        changes = _share_changes(client, tokens[OWNER_AGENT], case["id"], seen)
        assert len(changes) == len(granted), changes
        revoke = client.delete(f"{url}/{kaya}", headers=auth(tokens[OWNER_AGENT]))
        assert revoke.status_code == 204


def test_parallel_unshares_revoke_once(app: Flask) -> None:
    """Two agents of the owner revoke the same share at once: one 204, one 404 (nothing left
    to revoke), no 500, and the timeline records the revocation once."""
    tokens = tokens_for(app, [OWNER_AGENT, "admin@nordwerk.example"])
    client = app.test_client()
    case = brakes_case(client, tokens[OWNER_AGENT])
    kaya, url = _kaya_and_share_url(client, tokens[OWNER_AGENT], case["id"])
    for _round in range(ROUNDS):
        grant = sending("POST", url, tokens[OWNER_AGENT], {"organization_id": kaya})(client)
        assert grant.status_code == 200
        seen = {e["id"] for e in timeline(client, tokens[OWNER_AGENT], case["id"])}
        answers = race(app, [sending("DELETE", f"{url}/{kaya}", t) for t in tokens.values()])
        assert sorted(status for status, _ in answers) == [204, 404], answers
        revocations = [
            c for c in _share_changes(client, tokens[OWNER_AGENT], case["id"], seen) if c[1] is None
        ]
        assert len(revocations) == 1, revocations
