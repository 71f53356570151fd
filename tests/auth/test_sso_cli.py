"""`portal sso configure` / `portal sso show` as an operator runs them (the `portal` command
with the server's PORTAL_* environment, run in-process for speed; tests/portal/test_cli.py
covers the real subprocess), against a real provider (oidc-provider-mock) on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from auth.crypto import decrypt
from auth.models import AuthEvent, IdentityProvider
from portal.cli import main
from portal.db import get_session
from tests.conftest import dispose_app, make_app
from tests.support.oidc import ImpostorProvider, MockProvider

SECRET_KEY = "cli-test"
BASE_URL = "https://portal.example"

pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")


def portal(database_url: str, *args: str, **env: str) -> Result:
    """`portal ARGS` with the environment an operator's shell has (in this process)."""
    environment = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET_KEY,
        "PORTAL_ENV": "development",
        "PORTAL_BASE_URL": BASE_URL,
        "PORTAL_SSO_CLIENT_SECRET": None,
        **env,
    }
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


@pytest.fixture
def idp() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


def stored_provider(database_url: str, slug: str) -> dict[str, object]:
    app = make_app(database_url, SECRET_KEY=SECRET_KEY)
    try:
        with app.app_context():
            db = get_session()
            provider = db.scalars(
                sa.select(IdentityProvider)
                .join(IdentityProvider.organization)
                .where(sa.text("organizations.slug = :s").bindparams(s=slug))
            ).one()
            events = db.scalars(
                sa.select(AuthEvent).where(AuthEvent.kind == "sso_settings").order_by(AuthEvent.id)
            ).all()
            return {
                "secret_stored": provider.client_secret_encrypted,
                "secret": decrypt(provider.client_secret_encrypted),
                "domains": sorted(d.domain for d in provider.domains),
                "role_map": json.loads(provider.role_map),
                "flags": (provider.jit, provider.allow_local_passwords, provider.enabled),
                "events": [(e.user_agent, e.organization_id is not None) for e in events],
            }
    finally:
        dispose_app(app)


def test_configure_and_show(demo_db_url: str, idp: MockProvider) -> None:
    configured = portal(
        demo_db_url,
        "sso",
        "configure",
        "berger",
        "--issuer",
        idp.issuer,
        "--client-id",
        "berger-portal",
        "--client-secret",
        "very-secret-value",
        "--domains",
        "berger.example,Autohaus-Berger.example",
        "--jit",
        "--role-claim",
        "groups",
        "--role-map",
        "portal-admins=admin,sales=agent",
        "--no-local-passwords",
    )
    assert configured.exit_code == 0, configured.output
    assert f"{BASE_URL}/auth/callback/berger" in configured.output
    stored = stored_provider(demo_db_url, "berger")
    assert stored["secret"] == "very-secret-value"
    assert stored["secret_stored"] != "very-secret-value"
    assert stored["domains"] == ["autohaus-berger.example", "berger.example"]
    assert stored["role_map"] == {"portal-admins": "admin", "sales": "agent"}
    assert stored["flags"] == (True, False, True)
    assert stored["events"] == [("cli", True)]

    shown = portal(demo_db_url, "sso", "show", "berger")
    assert shown.exit_code == 0, shown.output
    assert idp.issuer in shown.output
    assert "autohaus-berger.example, berger.example" in shown.output
    assert "portal-admins=admin" in shown.output
    assert "not allowed" in shown.output
    assert "very-secret-value" not in shown.output
    assert f"{BASE_URL}/auth/backchannel-logout/berger" in shown.output

    # Re-configured without a secret: the stored one stays; --disable switches it off.
    again = portal(
        demo_db_url,
        "sso",
        "configure",
        "berger",
        "--issuer",
        idp.issuer,
        "--client-id",
        "berger-portal",
        "--domains",
        "berger.example",
        "--disable",
    )
    assert again.exit_code == 0, again.output
    stored = stored_provider(demo_db_url, "berger")
    assert stored["secret"] == "very-secret-value"
    assert stored["domains"] == ["berger.example"]
    assert stored["flags"] == (False, True, False)
    assert len(stored["events"]) == 2  # type: ignore[arg-type]


def test_configure_refuses_with_clear_messages(demo_db_url: str, idp: MockProvider) -> None:
    base = ["sso", "configure"]
    ok = portal(
        demo_db_url,
        *base,
        "kaya",
        "--issuer",
        idp.issuer,
        "--client-id",
        "kaya-portal",
        "--domains",
        "kaya.example",
        PORTAL_SSO_CLIENT_SECRET="from-the-environment",
    )
    assert ok.exit_code == 0, ok.output
    assert stored_provider(demo_db_url, "kaya")["secret"] == "from-the-environment"

    def berger(*extra: str, issuer: str = idp.issuer) -> Result:
        args = ["--issuer", issuer, "--client-id", "b", "--domains", "berger.example", *extra]
        return portal(demo_db_url, *base, "berger", *args)

    cases = {
        "No organisation 'nowhere'": portal(
            demo_db_url,
            *base,
            "nowhere",
            "--issuer",
            idp.issuer,
            "--client-id",
            "x",
            "--client-secret",
            "s",
            "--domains",
            "x.example",
        ),
        "client secret": berger(),  # first configuration without a secret
        "is not a role": berger("--client-secret", "s", "--role-map", "staff=boss"),
        "belongs to another organisation": portal(
            demo_db_url,
            *base,
            "berger",
            "--issuer",
            idp.issuer,
            "--client-id",
            "b",
            "--client-secret",
            "s",
            "--domains",
            "berger.example,kaya.example",
        ),
        "has no single sign-on provider": portal(demo_db_url, "sso", "show", "berger"),
    }
    with ImpostorProvider(idp.issuer) as impostor:
        cases["names another issuer"] = berger("--client-secret", "s", issuer=impostor.issuer)
    for phrase, result in cases.items():
        assert result.exit_code == 1, (phrase, result.output)
        assert phrase in result.output, (phrase, result.output)
        assert "Traceback" not in result.output
    shown = portal(demo_db_url, "sso", "show", "kaya")
    assert "from-the-environment" not in shown.output
