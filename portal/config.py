"""Configuration from the environment (PORTAL_*), shared by the server and every CLI command."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production", "testing")


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says what to set."""


def instance_dir() -> Path:
    return Path(os.environ.get("PORTAL_INSTANCE_DIR") or PROJECT_ROOT / "instance")


def database_url_from_env() -> str:
    url = os.environ.get("PORTAL_DATABASE_URL")
    if url:
        return url
    path = instance_dir() / "portal.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _development_secret() -> str:
    """A random key kept in instance/ so that development sessions survive restarts."""
    path = instance_dir() / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask configuration: environment first, then explicit overrides."""
    overrides = dict(overrides or {})
    env = str(overrides.get("PORTAL_ENV") or os.environ.get("PORTAL_ENV") or "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"PORTAL_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    config: dict[str, Any] = {
        "PORTAL_ENV": env,
        "BASE_URL": os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        "DEMO_MODE": _flag("PORTAL_DEMO_MODE", env != "production"),
        "CHECK_MIGRATIONS": True,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SESSION_LIFETIME_HOURS": int(os.environ.get("PORTAL_SESSION_LIFETIME_HOURS", "12")),
        "ARGON2_PROFILE": os.environ.get("PORTAL_ARGON2_PROFILE", "default"),
        "ENCRYPTION_KEYS": os.environ.get("PORTAL_ENCRYPTION_KEYS", ""),
        "REDIS_URL": os.environ.get("PORTAL_REDIS_URL", ""),
        "SOCKETIO_CHANNEL": os.environ.get("PORTAL_SOCKETIO_CHANNEL", "wertkette"),
        "SESSION_IDLE_MINUTES": int(os.environ.get("PORTAL_SESSION_IDLE_MINUTES", "60")),
        "LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("PORTAL_LOGIN_LIMIT_PER_ACCOUNT", "5/5minutes"),
        "LOGIN_LIMIT_PER_ADDRESS": os.environ.get("PORTAL_LOGIN_LIMIT_PER_ADDRESS", "30/5minutes"),
        "PASSWORD_RESET_HOURS": 2,
        "CLAIM_IDLE_MINUTES": int(os.environ.get("PORTAL_CLAIM_IDLE_MINUTES", "30")),
        "TOKEN_LIFETIME_SECONDS": int(os.environ.get("PORTAL_TOKEN_LIFETIME_SECONDS", "3600")),
        # Number of reverse proxies in front of the portal whose X-Forwarded-* to trust.
        "PROXY_COUNT": int(os.environ.get("PORTAL_PROXY_COUNT", "0")),
        "MAIL_FROM": os.environ.get("PORTAL_MAIL_FROM", "Wertkette <no-reply@wertkette.invalid>"),
        "SMTP_HOST": os.environ.get("PORTAL_SMTP_HOST", ""),
        "SMTP_PORT": os.environ.get("PORTAL_SMTP_PORT", "587"),
        "SMTP_USER": os.environ.get("PORTAL_SMTP_USER", ""),
        "SMTP_PASSWORD": os.environ.get("PORTAL_SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _flag("PORTAL_SMTP_STARTTLS", True),
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "BABEL_DEFAULT_LOCALE": "de",
        "BABEL_DEFAULT_TIMEZONE": os.environ.get("PORTAL_TIMEZONE", "Europe/Berlin"),
        "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent / "translations"),
        "LANGUAGES": ("de", "en"),
    }
    config.update(overrides)
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = database_url_from_env()
    if not config.get("SECRET_KEY"):
        secret = os.environ.get("PORTAL_SECRET_KEY")
        if secret:
            config["SECRET_KEY"] = secret
        elif env == "production":
            raise ConfigError(
                "PORTAL_SECRET_KEY is required in production: set it to a long random value, "
                'e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        else:
            config["SECRET_KEY"] = _development_secret()
    secure = str(config["BASE_URL"]).startswith("https://") or env == "production"
    config["SESSION_COOKIE_SECURE"] = secure
    # __Host- cookies are bound to this host and path, HTTPS only: used whenever secure.
    config.setdefault("SESSION_COOKIE_NAME", "__Host-wk_session" if secure else "wk_session")
    return config
