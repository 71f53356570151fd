"""The `portal` command as an operator uses it, in a separate process with the same
environment as the server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import dispose_app, make_app

ROOT = Path(__file__).resolve().parents[2]


def portal(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_ARGON2_PROFILE": "fast",
        "PORTAL_SECRET_KEY": "cli-test",
        "PORTAL_ENV": "development",
    }
    return subprocess.run(
        [sys.executable, "-m", "portal", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_operator_workflow(blank_db_url: str) -> None:
    """upgrade, demo load, users create and users token work together; the token printed
    alone on the last line authenticates against the API."""
    behind = portal(blank_db_url, "users", "token", "agent@nordwerk.example")
    assert behind.returncode != 0
    assert "portal db upgrade" in behind.stderr

    assert portal(blank_db_url, "db", "upgrade").returncode == 0
    loaded = portal(blank_db_url, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    again = portal(blank_db_url, "demo", "load")
    assert again.returncode != 0
    assert "not empty" in again.stderr
    assert portal(blank_db_url, "demo", "load", "--if-empty").returncode == 0

    created = portal(
        blank_db_url,
        "users",
        "create",
        "--email",
        "Neu@Berger.example",
        "--name",
        "Neue Kollegin",
        "--org",
        "berger",
        "--role",
        "viewer",
        "--password",
        "lang-genug-123",
    )
    assert created.returncode == 0, created.stderr
    duplicate = portal(
        blank_db_url,
        "users",
        "create",
        "--email",
        "neu@berger.example",
        "--name",
        "X",
        "--org",
        "berger",
        "--password",
        "lang-genug-123",
    )
    assert duplicate.returncode != 0
    short = portal(
        blank_db_url,
        "users",
        "create",
        "--email",
        "kurz@berger.example",
        "--name",
        "X",
        "--org",
        "berger",
        "--password",
        "kurz",
    )
    assert short.returncode != 0
    assert "password" in short.stderr

    issued = portal(blank_db_url, "users", "token", "neu@berger.example")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("wk_")
    assert portal(blank_db_url, "users", "token", "nobody@x.example").returncode != 0

    app = make_app(blank_db_url)
    try:
        client = app.test_client()
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        assert me.get_json()["email"] == "neu@berger.example"
        assert me.get_json()["role"] == "viewer"
        assert portal(blank_db_url, "users", "deactivate", "neu@berger.example").returncode == 0
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    finally:
        dispose_app(app)


def test_orgs_commands(empty_db_url: str) -> None:
    assert (
        portal(
            empty_db_url,
            "orgs",
            "create",
            "--name",
            "Werk",
            "--slug",
            "werk",
            "--kind",
            "manufacturer",
        ).returncode
        == 0
    )
    assert (
        portal(
            empty_db_url,
            "orgs",
            "create",
            "--name",
            "Händler",
            "--slug",
            "haendler",
            "--kind",
            "dealer",
        ).returncode
        == 0
    )
    bad = portal(
        empty_db_url, "orgs", "create", "--name", "X", "--slug", "werk", "--kind", "dealer"
    )
    assert bad.returncode != 0
    assert (
        portal(empty_db_url, "orgs", "partner", "werk", "haendler", "--role", "dealer").returncode
        == 0
    )
    wrong = portal(empty_db_url, "orgs", "partner", "haendler", "werk", "--role", "dealer")
    assert wrong.returncode != 0
    listed = portal(empty_db_url, "orgs", "list")
    assert "werk" in listed.stdout and "haendler" in listed.stdout


def test_search_rebuild_repairs_documents_written_around_the_app(demo_db_url: str) -> None:
    """A name changed with plain SQL (a restore, a bulk load) is found after the rebuild."""
    import sqlalchemy as sa

    engine = sa.create_engine(demo_db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE customers SET name = 'Zacharias Brandtner' WHERE name = :n"),
            {"n": "Jürgen Müller"},
        )
    query = sa.text("SELECT count(*) FROM search_documents WHERE names = 'zacharias brandtner'")
    with engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 0
    result = portal(demo_db_url, "search", "rebuild")
    assert result.returncode == 0, result.stderr
    assert "Search index rebuilt" in result.stdout
    with engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 1
        key = sa.text("SELECT name_key FROM customers WHERE name = 'Zacharias Brandtner'")
        assert conn.execute(key).scalar_one() == "zacharias brandtner"
    engine.dispose()
