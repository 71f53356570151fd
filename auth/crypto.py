"""Encryption at rest for secrets the portal must read back (SSO client secrets, TOTP seeds).

Keys come from configuration: PORTAL_ENCRYPTION_KEYS (comma-separated Fernet keys, the first
encrypts, all decrypt, so keys can be rotated); without it a key is derived from the secret key.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


class DecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with the configured keys."""


def _derived_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"wertkette-at-rest-v1")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def _fernet() -> MultiFernet:
    configured = current_app.config.get("ENCRYPTION_KEYS") or ""
    keys = [k.strip() for k in str(configured).split(",") if k.strip()]
    if not keys:
        keys = [_derived_key(str(current_app.config["SECRET_KEY"])).decode()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt(plaintext: str) -> str:
    token: bytes = _fernet().encrypt(plaintext.encode())
    return token.decode()


def decrypt(token: str) -> str:
    try:
        plain: bytes = _fernet().decrypt(token.encode())
        return plain.decode()
    except InvalidToken as exc:
        raise DecryptionError("stored secret cannot be decrypted with the configured keys") from exc
