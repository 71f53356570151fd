"""OpenID Connect relying-party protocol: discovery, the authorization request (PKCE S256,
state, nonce), the code exchange and the verification of ID and logout tokens.

Nothing here touches the database or the web session; auth/sso.py decides what a verified
answer means for the portal. Every failure is an `OidcError` with a machine-readable reason.

What is checked on top of authlib (which checks none of it for us):
- the discovery document's `issuer` equals the configured issuer exactly;
- endpoints use HTTPS (plain HTTP only on loopback, for development and tests);
- the ID token signature against the provider's JWKS (re-fetched once when a token names an
  unknown `kid`, so rotated keys are picked up), with asymmetric algorithms only;
- `iss`, `aud` (and `azp` with several audiences), `exp`, `iat` and `nonce` of the ID token;
- for logout tokens: `iss`, `aud`, `iat`, the back-channel logout `events` member, no
  `nonce`, and a `sub` or `sid`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.common.security import is_secure_transport
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

HTTP_TIMEOUT = 5.0  # seconds for every call to a provider
SCOPE = "openid email profile"
DISCOVERY_TTL = 300.0  # seconds a discovery document is reused
JWKS_TTL = 3600.0  # seconds a key set is reused (unknown kids trigger a refresh earlier)
JWKS_REFRESH_INTERVAL = 5.0  # at most one refresh for unknown kids per issuer and interval
LEEWAY = 60  # seconds of clock skew tolerated for exp / iat
LOGOUT_TOKEN_MAX_AGE = 600  # seconds: older logout tokens are refused
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Asymmetric signatures only: "none" and HMAC with the client secret are never accepted.
ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)


class OidcError(Exception):
    """A protocol step failed; `reason` is a stable code for logs and the audit trail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- HTTP ----------------------------------------------------------------------------------


def secure_url(url: str) -> bool:
    """HTTPS, or plain HTTP to a loopback address (development and tests)."""
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and is_secure_transport(url)


def _get_json(url: str, what: str) -> dict[str, Any]:
    if not secure_url(url):
        raise OidcError(f"{what}_insecure", f"{url} is neither HTTPS nor loopback")
    try:
        response = requests.get(
            url,
            timeout=HTTP_TIMEOUT,
            allow_redirects=False,
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as exc:
        raise OidcError(f"{what}_unreachable", f"{url}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise OidcError(f"{what}_unreachable", f"{url} answered {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise OidcError(f"{what}_invalid", f"{url} did not answer JSON") from exc
    if not isinstance(body, dict):
        raise OidcError(f"{what}_invalid", f"{url} did not answer a JSON object")
    return body


# --- discovery and keys --------------------------------------------------------------------


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def fetch_discovery(issuer: str) -> dict[str, Any]:
    """The provider's discovery document, checked: same issuer, the endpoints we need, all on
    secure transport. Raises OidcError."""
    metadata = _get_json(discovery_url(issuer), "discovery")
    if metadata.get("issuer") != issuer:
        raise OidcError(
            "discovery_issuer_mismatch",
            f"the document names issuer {metadata.get('issuer')!r}, configured is {issuer!r}",
        )
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = metadata.get(name)
        if not isinstance(value, str) or not secure_url(value):
            raise OidcError("discovery_invalid", f"{name} missing or not HTTPS")
    end_session = metadata.get("end_session_endpoint")
    if end_session is not None and not (isinstance(end_session, str) and secure_url(end_session)):
        metadata.pop("end_session_endpoint")
    return metadata


def fetch_jwks(jwks_uri: str) -> KeySet:
    body = _get_json(jwks_uri, "jwks")
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise OidcError("jwks_invalid", "no keys member")
    # Keys for encryption, and keys of types we cannot use, are left out.
    usable = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    try:
        return KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as exc:
        raise OidcError("jwks_invalid", str(exc)) from exc


@dataclass
class _Entry:
    value: Any
    fetched_at: float


@dataclass
class MetadataCache:
    """Discovery documents and key sets per issuer, for one app (process).

    `refresh_keys` re-fetches a key set when a token names a kid it does not hold, at most
    once per JWKS_REFRESH_INTERVAL per issuer, so that forged kids cannot make us hammer the
    provider."""

    clock: Callable[[], float] = time.monotonic
    _discovery: dict[str, _Entry] = field(default_factory=dict)
    _jwks: dict[str, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def discovery(self, issuer: str) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            entry = self._discovery.get(issuer)
        if entry is not None and now - entry.fetched_at < DISCOVERY_TTL:
            return dict(entry.value)
        metadata = fetch_discovery(issuer)
        with self._lock:
            self._discovery[issuer] = _Entry(metadata, now)
        return dict(metadata)

    def keys(self, issuer: str, jwks_uri: str) -> KeySet:
        now = self.clock()
        key = f"{issuer} {jwks_uri}"
        with self._lock:
            entry = self._jwks.get(key)
        if entry is not None and now - entry.fetched_at < JWKS_TTL:
            return entry.value  # type: ignore[no-any-return]
        return self._fetch_keys(key, jwks_uri, now)

    def refresh_keys(self, issuer: str, jwks_uri: str) -> KeySet | None:
        """A freshly fetched key set, or None when one was fetched very recently."""
        now = self.clock()
        key = f"{issuer} {jwks_uri}"
        with self._lock:
            entry = self._jwks.get(key)
        if entry is not None and now - entry.fetched_at < JWKS_REFRESH_INTERVAL:
            return None
        return self._fetch_keys(key, jwks_uri, now)

    def _fetch_keys(self, key: str, jwks_uri: str, now: float) -> KeySet:
        key_set = fetch_jwks(jwks_uri)
        with self._lock:
            self._jwks[key] = _Entry(key_set, now)
        return key_set

    def forget(self, issuer: str) -> None:
        with self._lock:
            self._discovery.pop(issuer, None)
            for key in [k for k in self._jwks if k.startswith(issuer + " ")]:
                self._jwks.pop(key, None)


# --- the authorization request -------------------------------------------------------------


@dataclass(frozen=True)
class PendingFlow:
    """What the portal keeps between the redirect to the provider and the callback."""

    state: str
    nonce: str
    code_verifier: str

    @classmethod
    def new(cls) -> PendingFlow:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),  # 86 characters (43..128 allowed)
        )


def s256_challenge(code_verifier: str) -> str:
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _client(
    metadata: Mapping[str, Any], client_id: str, client_secret: str | None, redirect_uri: str
) -> OAuth2Session:
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    return OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    )


def authorization_url(
    metadata: Mapping[str, Any],
    *,
    client_id: str,
    redirect_uri: str,
    flow: PendingFlow,
    login_hint: str | None = None,
) -> str:
    extra: dict[str, str] = {"nonce": flow.nonce}
    if login_hint:
        extra["login_hint"] = login_hint
    with _client(metadata, client_id, None, redirect_uri) as client:
        url, _state = client.create_authorization_url(
            metadata["authorization_endpoint"],
            state=flow.state,
            code_verifier=flow.code_verifier,
            **extra,
        )
    return str(url)


def exchange_code(
    metadata: Mapping[str, Any],
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    code_verifier: str,
) -> dict[str, Any]:
    """Redeem the authorization code at the token endpoint; returns the token response."""
    try:
        with _client(metadata, client_id, client_secret, redirect_uri) as client:
            token = client.fetch_token(
                metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=redirect_uri,
                timeout=HTTP_TIMEOUT,
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        raise OidcError("token_unreachable", type(exc).__name__) from exc
    except Exception as exc:  # authlib's OAuthError and malformed answers
        raise OidcError("token_refused", str(exc)[:300]) from exc
    if not isinstance(token, Mapping) or not isinstance(token.get("id_token"), str):
        raise OidcError("token_refused", "no id_token in the token response")
    return dict(token)


def end_session_url(
    metadata: Mapping[str, Any],
    *,
    client_id: str,
    id_token_hint: str | None,
    post_logout_redirect_uri: str,
) -> str | None:
    """The RP-initiated logout URL, if the provider advertises an end_session_endpoint."""
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str):
        return None
    params = {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token_hint:
        params["id_token_hint"] = id_token_hint
    separator = "&" if "?" in endpoint else "?"
    return endpoint + separator + urlencode(params)


# --- token verification --------------------------------------------------------------------


def _algorithms(metadata: Mapping[str, Any]) -> list[str]:
    advertised = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    allowed = [alg for alg in advertised if alg in ALLOWED_ALGORITHMS]
    if not allowed:
        raise OidcError("alg_unsupported", f"provider signs with {advertised!r}")
    return allowed


def _verified_token(
    raw: str, *, issuer: str, metadata: Mapping[str, Any], cache: MetadataCache
) -> jwt.Token:
    """The token, its signature checked against the provider's keys."""
    try:
        compact = jws.extract_compact(raw.encode("ascii"))
    except (JoseError, ValueError, UnicodeError) as exc:
        raise OidcError("token_malformed", str(exc)) from exc
    header = compact.headers()
    algorithms = _algorithms(metadata)
    if header.get("alg") not in algorithms:
        raise OidcError("alg_refused", f"token signed with {header.get('alg')!r}")
    jwks_uri = str(metadata["jwks_uri"])
    key_set = cache.keys(issuer, jwks_uri)
    kid = header.get("kid")
    if kid is not None and not _holds(key_set, kid):
        # A key we have not seen: the provider may have rotated its keys.
        fresh = cache.refresh_keys(issuer, jwks_uri)
        if fresh is None or not _holds(fresh, kid):
            raise OidcError("key_unknown", f"no key {kid!r} in the provider's key set")
        key_set = fresh
    token = _decode(raw, key_set, kid, algorithms)
    if token is None and kid is None:
        # Without a kid a rotation shows only as a failed signature: retry once with
        # freshly fetched keys.
        fresh = cache.refresh_keys(issuer, jwks_uri)
        if fresh is not None:
            token = _decode(raw, fresh, kid, algorithms)
    if token is None:
        raise OidcError("signature_invalid", "no key of the provider verifies the signature")
    return token


def _holds(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set.keys)


def _decode(raw: str, key_set: KeySet, kid: str | None, algorithms: list[str]) -> jwt.Token | None:
    """The token verified with the key named by kid, or (no kid) with any key that fits."""
    candidates = [k for k in key_set.keys if k.kid == kid] if kid is not None else key_set.keys
    for key in candidates:
        try:
            return jwt.decode(raw, key, algorithms=algorithms)
        except (JoseError, ValueError, TypeError):
            continue
    return None


def _check_audience(claims: Mapping[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or client_id not in audiences:
        raise OidcError("aud_mismatch", f"token is for {aud!r}")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcError("azp_mismatch", "several audiences and azp is not this client")


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OidcError(f"{name}_invalid", f"{name} is not a number")
    return float(value)


def verify_id_token(
    raw: str,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    metadata: Mapping[str, Any],
    cache: MetadataCache,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of an ID token after checking signature, iss, aud/azp, exp, iat, nonce."""
    token = _verified_token(raw, issuer=issuer, metadata=metadata, cache=cache)
    claims = dict(token.claims)
    current = time.time() if now is None else now
    if claims.get("iss") != issuer:
        raise OidcError("iss_mismatch", f"token issued by {claims.get('iss')!r}")
    _check_audience(claims, client_id)
    exp = _numeric(claims, "exp")
    if exp is None or exp <= current - LEEWAY:
        raise OidcError("token_expired", "exp missing or past")
    iat = _numeric(claims, "iat")
    if iat is None or iat > current + LEEWAY:
        raise OidcError("iat_invalid", "iat missing or in the future")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not secrets.compare_digest(token_nonce, nonce):
        raise OidcError("nonce_mismatch", "the token's nonce is not the one we sent")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise OidcError("sub_invalid", "sub missing or too long")
    return claims


def verify_logout_token(
    raw: str,
    *,
    issuer: str,
    client_id: str,
    metadata: Mapping[str, Any],
    cache: MetadataCache,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of a back-channel logout token (OpenID Connect Back-Channel Logout 1.0,
    section 2.6): signature, iss, aud, iat, events, no nonce, sub and/or sid."""
    token = _verified_token(raw, issuer=issuer, metadata=metadata, cache=cache)
    typ = token.header.get("typ")
    if typ is not None and str(typ).lower() not in {"logout+jwt", "application/logout+jwt", "jwt"}:
        raise OidcError("typ_invalid", f"typ {typ!r}")
    claims = dict(token.claims)
    current = time.time() if now is None else now
    if claims.get("iss") != issuer:
        raise OidcError("iss_mismatch", f"token issued by {claims.get('iss')!r}")
    _check_audience(claims, client_id)
    iat = _numeric(claims, "iat")
    if iat is None or iat > current + LEEWAY or iat < current - LOGOUT_TOKEN_MAX_AGE:
        raise OidcError("iat_invalid", "iat missing, in the future or too old")
    exp = _numeric(claims, "exp")
    if exp is not None and exp <= current - LEEWAY:
        raise OidcError("token_expired", "exp past")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise OidcError("events_invalid", "not a back-channel logout token")
    if "nonce" in claims:
        raise OidcError("nonce_present", "a logout token carries no nonce")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not (isinstance(sub, str) and sub) and not (isinstance(sid, str) and sid):
        raise OidcError("sub_sid_missing", "neither sub nor sid")
    return claims
