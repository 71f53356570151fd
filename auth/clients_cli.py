"""`portal clients ...`: API clients (OAuth 2.0 client credentials) from the command line.

    portal clients create ORG_SLUG --name NAME --scopes "cti cases:read"
    portal clients list [ORG_SLUG]
    portal clients revoke CLIENT_ID

`create` prints the client id and the secret, separated by one space, alone on its last line
(the secret is stored only as a hash and cannot be shown again).
"""

from __future__ import annotations

import click
import sqlalchemy as sa

from auth.scopes import CLIENT_SCOPES

SCOPE_HELP = "Space- or comma-separated: " + " ".join(s.value for s in CLIENT_SCOPES)


@click.group()
def clients() -> None:
    """API clients (OAuth 2.0 client credentials)."""


@clients.command("create")
@click.argument("org_slug")
@click.option("--name", required=True, help="What the client is, e.g. 'Telefonanlage'.")
@click.option("--scopes", required=True, help=SCOPE_HELP)
def clients_create(org_slug: str, name: str, scopes: str) -> None:
    """Create an API client of ORG_SLUG; prints "CLIENT_ID SECRET" on the last line."""
    from auth.clients import create_client_for
    from partners.models import Organization
    from portal.cli import _app, _session
    from portal.errors import PortalError

    with _session(_app()) as session:
        org = session.scalars(sa.select(Organization).where(Organization.slug == org_slug)).first()
        if org is None:
            raise click.ClickException(f"No organisation {org_slug!r}.")
        if not org.active:
            raise click.ClickException(f"The organisation {org_slug!r} is inactive.")
        try:
            client, secret = create_client_for(session, org, name, scopes)
        except PortalError as exc:
            session.rollback()
            details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
            raise click.ClickException(f"{exc.message} {details}".strip()) from None
        click.echo(
            f"Created API client {client.name!r} of {org.slug} with scopes {client.scopes}. "
            "The secret is shown only now; the client id and secret follow:"
        )
        click.echo(f"{client.client_id} {secret}")


@clients.command("list")
@click.argument("org_slug", required=False)
def clients_list(org_slug: str | None) -> None:
    """List API clients (of ORG_SLUG, or of every organisation)."""
    from auth.clients import list_clients
    from partners.models import Organization
    from portal.cli import _app, _session

    with _session(_app()) as session:
        org_id = None
        if org_slug is not None:
            org = session.scalars(
                sa.select(Organization).where(Organization.slug == org_slug)
            ).first()
            if org is None:
                raise click.ClickException(f"No organisation {org_slug!r}.")
            org_id = org.id
        rows = list_clients(session, org_id)
        if not rows:
            click.echo("No API clients.")
            return
        for client in rows:
            state = "revoked" if client.revoked_at is not None else "active"
            click.echo(
                f"{client.client_id}\t{client.organization.slug}\t{state}\t"
                f"{client.scopes}\t{client.name}"
            )


@clients.command("revoke")
@click.argument("client_id")
def clients_revoke(client_id: str) -> None:
    """Revoke an API client: its tokens stop working at once."""
    from auth.clients import find_client, revoke
    from portal.cli import _app, _session

    with _session(_app()) as session:
        client = find_client(session, client_id.strip())
        if client is None:
            raise click.ClickException(f"No API client {client_id!r}.")
        if not revoke(session, client):
            click.echo(f"{client.client_id} was revoked already.")
            return
        click.echo(f"{client.client_id} revoked; its tokens no longer work.")
