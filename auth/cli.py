"""`portal sso ...` and `portal clients ...` commands (stub; being built)."""

import click


@click.group()
def sso() -> None:
    """Single sign-on providers of organisations."""


@click.group()
def clients() -> None:
    """API clients (OAuth 2.0 client credentials)."""
