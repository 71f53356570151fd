"""Real OpenID Connect providers on loopback for the single sign-on tests.

- :class:`MockProvider`: ``oidc-provider-mock`` (PyPI) served in a thread on 127.0.0.1. Fast;
  accepts any client id and secret, signs ID tokens with its own RSA key and lets a test pick
  the signed-in subject (``authorize``). Test switches: ``rotate_key`` (a new signing key, as
  a provider rotating its keys) and ``publish_foreign_keys`` (the JWKS no longer holds the
  signing key: its tokens can no longer be verified).
- :class:`NodeProvider`: the certified npm package ``oidc-provider`` run by Node from
  ``node_modules`` (installed by ``npm ci`` from package.json) with
  ``tests/support/oidc_provider.mjs``: static clients, test accounts, development login form,
  RFC 9207 ``iss`` in responses, RP-initiated and back-channel logout.
- :class:`ImpostorProvider`: serves another provider's discovery document under its own URL,
  so its ``issuer`` differs from the URL it was fetched from.

``follow_to_portal`` drives a provider's pages with ``requests`` (a browser without
JavaScript) until the provider redirects back to the portal, and returns that URL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask, Response, jsonify

from tests.support.servers import ServerThread

ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPT = ROOT / "tests" / "support" / "oidc_provider.mjs"
NODE_PACKAGE = ROOT / "node_modules" / "oidc-provider" / "package.json"
START_TIMEOUT = 20.0


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL (first value of each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- oidc-provider-mock ----------------------------------------------------------------------


def _mock_module() -> Any:
    # oidc-provider-mock still imports authlib.jose, which warns about its deprecation.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import oidc_provider_mock

    return oidc_provider_mock


class MockProvider:
    """``oidc-provider-mock`` on ``127.0.0.1:<free port>``; ``issuer`` is its base URL.

    ``users`` maps a subject to its claims (email, email_verified, name, groups, ...)."""

    def __init__(self, users: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        mock = _mock_module()
        self.app: Flask = mock.app(
            require_nonce=True,
            user_claims=[mock.User(sub=sub, claims=dict(c)) for sub, c in (users or {}).items()],
        )
        self.foreign_keys: dict[str, Any] | None = None
        self._storage: Any = None
        self.app.before_request(self._hooks)
        self.server = ServerThread(self.app)
        self.issuer = self.server.url

    def _hooks(self) -> Response | None:
        from flask import g, request

        self._storage = g.oidc_provider_mock_storage
        if request.path == "/jwks" and self.foreign_keys is not None:
            return jsonify(self.foreign_keys)
        return None

    def __enter__(self) -> Self:
        self.server.start()
        requests.get(self.issuer + "/jwks", timeout=5).raise_for_status()  # storage known
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.stop()

    def set_user(self, sub: str, claims: Mapping[str, Any]) -> None:
        """Create or replace a person at the provider (their claims at the next sign-in)."""
        response = requests.put(f"{self.issuer}/users/{sub}", json=dict(claims), timeout=5)
        assert response.status_code == 204, response.text

    def authorize(self, authorization_url: str, sub: str) -> str:
        """Sign in as ``sub`` on the provider's page; returns the redirect back to the portal."""
        assert authorization_url.startswith(self.issuer + "/"), authorization_url
        response = requests.post(
            authorization_url, data={"sub": sub}, allow_redirects=False, timeout=5
        )
        assert response.status_code in (302, 303), response.text[:500]
        return str(response.headers["Location"])

    def deny(self, authorization_url: str) -> str:
        """Press "Deny" on the provider's page; returns the redirect back to the portal."""
        response = requests.post(
            authorization_url, data={"action": "deny"}, allow_redirects=False, timeout=5
        )
        assert response.status_code in (302, 303), response.text[:500]
        return str(response.headers["Location"])

    def rotate_key(self) -> None:
        """Sign with a new key from now on (and publish only that one)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from authlib import jose

            self._storage.jwk = jose.RSAKey.generate_key(is_private=True)

    def publish_foreign_keys(self) -> None:
        """Publish a key set that does not hold the signing key."""
        from joserfc.jwk import KeySet, RSAKey

        key = RSAKey.generate_key(2048, parameters={"kid": "foreign", "use": "sig"})
        self.foreign_keys = KeySet([key]).as_dict(private=False)


# --- the certified provider (Node) -----------------------------------------------------------


def node_missing_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs)"
    if not NODE_PACKAGE.exists():
        return "node_modules/oidc-provider is missing: run `npm ci` (or `make test`)"
    return None


class NodeProvider:
    """``oidc-provider`` in a Node subprocess on ``127.0.0.1:<free port>``.

    ``clients``: static client metadata (client_id, client_secret, redirect_uris,
    post_logout_redirect_uris, backchannel_logout_uri, ...); ``accounts``: login -> claims.
    Skips the calling test when Node or the npm package is missing (CI fails on skips)."""

    def __init__(
        self, clients: Sequence[Mapping[str, Any]], accounts: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self.config = {"clients": [dict(c) for c in clients], "accounts": dict(accounts)}
        self.issuer = ""
        self.process: subprocess.Popen[str] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            mode="w+", prefix="oidc-provider-", suffix=".log", delete=False
        )
        self.browser = requests.Session()  # the provider's cookies (its own session)

    def start(self) -> Self:
        reason = node_missing_reason()
        if reason is not None:
            pytest.skip(reason)
        self.process = subprocess.Popen(
            ["node", str(NODE_SCRIPT), json.dumps(self.config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, "NODE_ENV": "test"},
        )
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self.process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(START_TIMEOUT)
        if not line or not line[0].startswith("{"):
            self.stop()
            raise RuntimeError(f"oidc-provider did not start: {self.log()}")
        self.issuer = json.loads(line[0])["issuer"]
        return self

    def log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_text()[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.browser.close()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def sign_in(self, authorization_url: str, login: str, password: str = "secret") -> str:
        """Sign in on the development login form; returns the redirect back to the portal."""
        return follow_to_portal(
            self.browser,
            authorization_url,
            self.issuer,
            forms={"/interaction/": {"prompt": "login", "login": login, "password": password}},
        )

    def end_session(self, end_session_url: str) -> str:
        """Confirm "Yes, sign me out" on the provider's logout page; returns the redirect
        back to the portal (the post-logout redirect URI). Back-channel logout calls have
        been made (and answered) by then."""
        page = self.browser.get(end_session_url, allow_redirects=False, timeout=10)
        assert page.status_code == 200, page.text[:500]
        action = re.search(r'<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"', page.text)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text)
        assert action and xsrf, page.text[:1000]
        answer = self.browser.post(
            urljoin(self.issuer, action.group(1)),
            data={"xsrf": xsrf.group(1), "logout": "yes"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code in (302, 303), answer.text[:500]
        return str(answer.headers["Location"])


def follow_to_portal(
    browser: requests.Session,
    url: str,
    issuer: str,
    *,
    forms: Mapping[str, Mapping[str, str]],
    max_steps: int = 12,
) -> str:
    """Follow the provider's redirects; on a page whose path contains a key of ``forms``,
    post that form to the page's URL. Returns the first URL outside the provider."""
    for _step in range(max_steps):
        if not url.startswith(issuer + "/"):
            return url
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code in (302, 303):
            url = urljoin(url, response.headers["Location"])
            continue
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:500]}"
        form = next((data for key, data in forms.items() if key in urlsplit(url).path), None)
        assert form is not None, f"unexpected provider page {url}: {response.text[:500]}"
        answer = browser.post(url, data=dict(form), allow_redirects=False, timeout=10)
        assert answer.status_code in (302, 303), answer.text[:500]
        url = urljoin(url, answer.headers["Location"])
    raise AssertionError(f"the provider did not send the browser back: {url}")


# --- a provider whose discovery document names another issuer --------------------------------


class ImpostorProvider:
    """Serves ``victim``'s discovery document (issuer and all) under its own base URL."""

    def __init__(self, victim_issuer: str) -> None:
        self.victim_issuer = victim_issuer
        app = Flask("impostor")

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Response:
            document = requests.get(
                victim_issuer + "/.well-known/openid-configuration", timeout=5
            ).json()
            return jsonify(document)

        self.server = ServerThread(app)
        self.issuer = self.server.url

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.stop()
