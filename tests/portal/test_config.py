"""Configuration from the environment."""

from __future__ import annotations

import pytest

from portal.config import ConfigError, load_config


def test_production_requires_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)
    monkeypatch.setenv("PORTAL_ENV", "production")
    with pytest.raises(ConfigError, match="PORTAL_SECRET_KEY"):
        load_config({"DATABASE_URL": "sqlite://"})
    monkeypatch.setenv("PORTAL_SECRET_KEY", "s3cret-value")
    config = load_config({"DATABASE_URL": "sqlite://"})
    assert config["SECRET_KEY"] == "s3cret-value"
    assert config["DEMO_MODE"] is False


def test_environment_decides_database_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql+psycopg://u@db.example/portal")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example")
    monkeypatch.setenv("PORTAL_ENV", "development")
    config = load_config({"SECRET_KEY": "x"})
    assert config["DATABASE_URL"] == "postgresql+psycopg://u@db.example/portal"
    assert config["SESSION_COOKIE_SECURE"] is True


def test_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_ENV", "staging-ish")
    with pytest.raises(ConfigError):
        load_config({"SECRET_KEY": "x", "DATABASE_URL": "sqlite://"})
