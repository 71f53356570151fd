"""OAuth 2.0 token endpoint for API clients: POST /oauth/token with
`grant_type=client_credentials` (RFC 6749 section 4.4), built on authlib's authorization server.

Clients authenticate with HTTP Basic (client_secret_basic) or with `client_id` and
`client_secret` in the form body (client_secret_post). The answer is a short-lived bearer
token (config TOKEN_LIFETIME_SECONDS, default 3600) carrying the requested scopes, which must
be a subset of the client's (none requested: all of them). Errors are RFC 6749 JSON:
invalid_client (401), invalid_scope, unsupported_grant_type, invalid_request (400).

The endpoint reads no cookie and sets none; it is exempt from CSRF protection, since a
request without the client's secret achieves nothing. The rules live in auth/clients.py.
"""

from __future__ import annotations

import binascii
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from flask import Blueprint, Response, current_app
from flask import request as flask_request

from auth import clients
from auth.models import ApiClient
from portal.db import get_session
from portal.extensions import csrf

bp = Blueprint("oauth", __name__)

AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class ClientAdapter(ClientMixin):  # type: ignore[misc]
    """authlib's view of an ApiClient: confidential, client credentials only, no redirects."""

    def __init__(self, row: ApiClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = scope_to_list(scope) if scope else None
        granted = clients.granted_scopes(self.row, requested)
        if granted is None:
            raise InvalidScopeError()
        return " ".join(granted)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return clients.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == clients.GRANT_TYPE


def _claimed_client_id(request: OAuth2Request) -> str | None:
    """The client id the request names (Basic header first, then the form)."""
    try:
        client_id, _secret = extract_basic_authorization(request.headers)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        client_id = None
    if client_id:
        return str(client_id)
    form_id = flask_request.form.get("client_id")
    return form_id or None


class PortalClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def authenticate_token_endpoint_client(self) -> ClientAdapter:
        try:
            client: ClientAdapter = super().authenticate_token_endpoint_client()
        except InvalidClientError as error:
            # Always 401 with a WWW-Authenticate challenge (authlib answers 400 for a bad
            # client_secret_post); every refusal is recorded.
            error.status_code = 401
            clients.record_refusal(get_session(), _claimed_client_id(self.request), error.error)
            raise
        return client

    def validate_requested_scope(self) -> None:
        scope = self.request.payload.scope
        requested = scope_to_list(scope) if scope else None
        client: ClientAdapter = self.request.client
        if clients.granted_scopes(client.row, requested) is None:
            clients.record_refusal(
                get_session(),
                client.row.client_id,
                f"invalid_scope (asked for {' '.join(requested or [])[:200]})",
            )
            raise InvalidScopeError(
                description="The requested scope exceeds the scopes of this client."
            )


class _FormPayload(FlaskOAuth2Payload):  # type: ignore[misc]
    """Parameters from the form body only: never from the query string."""

    @property
    def data(self) -> Any:
        return self._request.form


class _FormRequest(FlaskOAuth2Request):  # type: ignore[misc]
    def __init__(self, request: Any) -> None:
        super().__init__(request)
        self.payload = _FormPayload(request)


def _safe_basic(query_client: Any, request: OAuth2Request) -> Any:
    """client_secret_basic, with a header that is not valid base64/UTF-8 simply failing."""
    from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic

    try:
        return authenticate_client_secret_basic(query_client, request)
    except (UnicodeDecodeError, binascii.Error):
        return None


class PortalAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return _FormRequest(flask_request)


def _query_client(client_id: str) -> ClientAdapter | None:
    if not isinstance(client_id, str):
        return None
    row = clients.live_client(get_session(), client_id)
    return ClientAdapter(row) if row is not None else None


def _save_token(token: dict[str, Any], request: OAuth2Request) -> None:
    client: ClientAdapter = request.client
    clients.store_token(
        get_session(),
        client.row,
        token["access_token"],
        scope_to_list(token.get("scope")) or [],
        int(token["expires_in"]),
    )


def _lifetime(client: Any, grant_type: str) -> int:
    return int(current_app.config.get("TOKEN_LIFETIME_SECONDS", clients.DEFAULT_TOKEN_LIFETIME))


def _access_token(**_kwargs: Any) -> str:
    return clients.new_access_token()


server = PortalAuthorizationServer(query_client=_query_client, save_token=_save_token)
server.register_token_generator(
    "default", BearerTokenGenerator(_access_token, None, expires_generator=_lifetime)
)
server.register_grant(PortalClientCredentialsGrant)
server.register_client_auth_method("client_secret_basic", _safe_basic)


@bp.post("/oauth/token")
def token() -> Response:
    try:
        response: Response = server.create_token_response()
    except OAuth2Error as error:  # raised before authlib's own handling (insecure transport)
        response = server.handle_error_response(None, error)
    return response


csrf.exempt(token)  # no cookie is read: the client's credentials are in the request
