"""A small client for the REST API in tests: one bearer token per demo account."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient


@dataclass
class Answer:
    status: int
    body: Any
    text: str

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


@dataclass
class ApiUser:
    client: FlaskClient
    token: str
    email: str

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        if json is not None:
            kwargs["json"] = json
        response = self.client.open("/api/v1" + path, method=method, headers=headers, **kwargs)
        text = response.get_data(as_text=True)
        return Answer(response.status_code, response.get_json(silent=True), text)

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Answer:
        return self.call("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Answer:
        return self.call("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Answer:
        return self.call("DELETE", path, **kwargs)

    def all_pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        separator = "&" if "?" in path else "?"
        answer = self.get(path)
        while True:
            assert answer.status == 200, answer.text
            items.extend(answer.body["items"])
            cursor = answer.body["next_cursor"]
            if not cursor:
                return items
            answer = self.get(f"{path}{separator}cursor={cursor}")


@dataclass
class Api:
    """`api("sales@berger.example")` gives that user's API client (token created once)."""

    app: Flask
    users: dict[str, ApiUser] = field(default_factory=dict)

    def __call__(self, email: str) -> ApiUser:
        if email not in self.users:
            from auth.service import create_api_token
            from partners.models import User
            from portal.db import get_session

            with self.app.app_context():
                session = get_session()
                user = session.scalars(sa.select(User).where(User.email == email)).one()
                _token, secret = create_api_token(session, user, "test")
            self.users[email] = ApiUser(self.app.test_client(), secret, email)
        return self.users[email]

    def case_id(self, subject: str) -> int:
        return int(self._scalar("SELECT id FROM cases WHERE subject = :s ORDER BY id", s=subject))

    def customer_id(self, name: str) -> int:
        return int(self._scalar("SELECT id FROM customers WHERE name = :n ORDER BY id", n=name))

    def org_id(self, slug: str) -> int:
        return int(self._scalar("SELECT id FROM organizations WHERE slug = :s", s=slug))

    def user_id(self, email: str) -> int:
        return int(self._scalar("SELECT id FROM users WHERE email = :e", e=email))

    def _scalar(self, sql: str, **params: Any) -> Any:
        from portal.db import get_session

        with self.app.app_context():
            return get_session().execute(sa.text(sql), params).scalars().first()

    def query(self, sql: str, **params: Any) -> list[Any]:
        from portal.db import get_session

        with self.app.app_context():
            return list(get_session().execute(sa.text(sql), params).all())
