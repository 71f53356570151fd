"""REST API v1 for the caller's personal API tokens."""

from __future__ import annotations

from typing import Annotated

from flask import Response, jsonify
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, StringConstraints

from auth import service
from auth.models import ApiToken
from auth.scopes import Scope
from portal.api import endpoint
from portal.db import get_session
from portal.errors import NotFound


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    revoked: bool


class TokenCreated(TokenOut):
    token: str


class TokenList(BaseModel):
    items: list[TokenOut]


def _token_json(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked": token.revoked_at is not None,
    }


@endpoint(
    "/me/tokens",
    "GET",
    summary="My API tokens",
    tag="me",
    scope=Scope.ACCOUNT,
    responses={200: TokenList},
)
def list_tokens() -> Response:
    tokens = service.list_api_tokens(get_session(), current_user)
    return jsonify({"items": [_token_json(t) for t in tokens]})


@endpoint(
    "/me/tokens",
    "POST",
    scope=Scope.ACCOUNT,
    summary="Create an API token (its value is shown only in this answer)",
    tag="me",
    body=TokenCreate,
    responses={201: TokenCreated},
)
def create_token(body: TokenCreate) -> Response:
    token, secret = service.create_api_token(get_session(), current_user, body.name)
    response = jsonify({**_token_json(token), "token": secret})
    response.status_code = 201
    return response


@endpoint(
    "/me/tokens/<int:token_id>",
    "DELETE",
    scope=Scope.ACCOUNT,
    summary="Revoke an API token",
    tag="me",
    responses={204: None},
)
def revoke_token(token_id: int) -> Response:
    if not service.revoke_api_token(get_session(), current_user, token_id):
        raise NotFound("Token not found.")
    return Response(status=204)


class NotificationList(BaseModel):
    items: list[dict[str, object]]
    unread: int


@endpoint(
    "/me/notifications",
    "GET",
    summary="My latest notifications (mentions) and the unread count",
    tag="me",
    scope=Scope.ACCOUNT,
    responses={200: NotificationList},
)
def list_notifications() -> Response:
    from shared_records import notifications

    session = get_session()
    items = notifications.latest(session, current_user)
    return jsonify(
        {
            "items": [notifications.notification_json(n) for n in items],
            "unread": notifications.unread_count(session, current_user),
        }
    )


@endpoint(
    "/me/notifications/read",
    "POST",
    summary="Mark all my notifications read",
    tag="me",
    scope=Scope.ACCOUNT,
    responses={204: None},
)
def read_notifications() -> Response:
    from shared_records import notifications

    notifications.mark_all_read(get_session(), current_user)
    return Response(status=204)
