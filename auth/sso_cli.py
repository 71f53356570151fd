"""`portal sso ...`: an organisation's single sign-on provider from the command line, for
automated deployments (the same rules as the admin page, auth/sso.py).

    portal sso configure ORG_SLUG --issuer URL --client-id ID --client-secret SECRET \\
        --domains a.example,b.example [--jit] [--role-claim groups \\
        --role-map "portal-admins=admin,sales=agent"] [--default-role agent] \\
        [--no-local-passwords] [--disable] [--skip-discovery-check]
    portal sso show ORG_SLUG

The client secret can also come from PORTAL_SSO_CLIENT_SECRET (keeps it out of the shell
history); it is stored encrypted and never printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask_babel import force_locale

from portal.errors import Conflict, ValidationFailed


@contextmanager
def _closing(app: Flask) -> Iterator[None]:
    """Close the app's database connections when the command ends."""
    try:
        yield
    finally:
        app.extensions["portal_db"].dispose()


def _problem(exc: ValidationFailed | Conflict) -> str:
    details = "; ".join(f"{name}: {text}" for name, text in exc.fields.items())
    if not details or details == exc.message:
        return exc.message
    return f"{exc.message} {details}"


@click.group()
def sso() -> None:
    """Single sign-on providers of organisations."""


@sso.command("configure")
@click.argument("org_slug")
@click.option("--issuer", required=True, help="Issuer URL, exactly as the provider states it.")
@click.option("--client-id", required=True)
@click.option(
    "--client-secret",
    envvar="PORTAL_SSO_CLIENT_SECRET",
    help="Required the first time; omitted later keeps the stored secret.",
)
@click.option("--domains", required=True, help="Comma-separated email domains.")
@click.option("--jit/--no-jit", default=False, help="Create accounts at first sign-in.")
@click.option("--role-claim", default=None, help="Claim with groups/roles, e.g. groups.")
@click.option("--role-map", default="", help='e.g. "portal-admins=admin,sales=agent".')
@click.option(
    "--default-role",
    default="agent",
    show_default=True,
    type=click.Choice(["admin", "agent", "viewer"]),
)
@click.option("--no-local-passwords", is_flag=True, help="Sign-in through the provider only.")
@click.option("--disable", is_flag=True, help="Store the settings switched off.")
@click.option(
    "--skip-discovery-check",
    is_flag=True,
    help="Do not fetch the discovery document now (provider not reachable from here).",
)
def configure(
    org_slug: str,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    domains: str,
    jit: bool,
    role_claim: str | None,
    role_map: str,
    default_role: str,
    no_local_passwords: bool,
    disable: bool,
    skip_discovery_check: bool,
) -> None:
    """Set ORG_SLUG's OpenID Connect provider (replaces all its settings)."""
    from auth import sso as service
    from portal.cli import _app, _session

    app = _app()
    with _closing(app), _session(app) as session, force_locale("en"):
        org = service.organization_by_slug(session, org_slug)
        if org is None:
            raise click.ClickException(f"No organisation {org_slug!r}.")
        try:
            mapping = service.parse_role_map(role_map)
        except ValueError as exc:
            raise click.ClickException(f"--role-map: {exc}") from None
        settings = service.Settings(
            issuer=issuer.strip(),
            client_id=client_id.strip(),
            client_secret=(client_secret or "").strip() or None,
            domains=service.parse_domains(domains),
            role_claim=(role_claim or "").strip() or None,
            role_map=mapping,
            default_role=default_role,
            jit=jit,
            allow_local_passwords=not no_local_passwords,
            enabled=not disable,
        )
        try:
            service.validate(settings, secret_required=service.provider_of(session, org) is None)
            if not skip_discovery_check:
                service.check_discovery(settings.issuer)
            provider = service.save_settings(session, org, settings)
        except (ValidationFailed, Conflict) as exc:
            raise click.ClickException(_problem(exc)) from None
        state = "enabled" if provider.enabled else "disabled"
        click.echo(f"Single sign-on for {org.slug} saved ({state}): {provider.issuer}")
        click.echo(f"Register this redirect URI at the provider: {service.redirect_uri(org.slug)}")


@sso.command("show")
@click.argument("org_slug")
def show(org_slug: str) -> None:
    """Print ORG_SLUG's single sign-on settings (never the client secret)."""
    from auth import sso as service
    from portal.cli import _app, _session

    app = _app()
    with _closing(app), _session(app) as session, force_locale("en"):
        org = service.organization_by_slug(session, org_slug)
        if org is None:
            raise click.ClickException(f"No organisation {org_slug!r}.")
        provider = service.provider_of(session, org)
        if provider is None:
            raise click.ClickException(f"{org_slug} has no single sign-on provider.")
        mapping = service.role_map_of(provider)
        lines = [
            ("organisation", f"{org.slug} ({org.name})"),
            ("enabled", "yes" if provider.enabled else "no"),
            ("issuer", provider.issuer),
            ("client id", provider.client_id),
            ("client secret", "(stored encrypted, not shown)"),
            ("domains", ", ".join(d.domain for d in provider.domains)),
            ("role claim", provider.role_claim or "(none: roles managed in the portal)"),
            ("role map", ", ".join(f"{k}={v}" for k, v in mapping.items()) or "(none)"),
            ("default role", provider.default_role),
            ("just in time", "yes" if provider.jit else "no"),
            ("local passwords", "allowed" if provider.allow_local_passwords else "not allowed"),
            ("redirect uri", service.redirect_uri(org.slug)),
            ("back-channel logout uri", service.backchannel_logout_uri(org.slug)),
            ("post-logout redirect uri", service.post_logout_uri()),
        ]
        for name, value in lines:
            click.echo(f"{name + ':':<26}{value}")
