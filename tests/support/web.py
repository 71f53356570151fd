"""Browser-less sign-in helpers for tests: read the CSRF token from a page and post forms."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = _META.search(page.get_data(as_text=True))
    assert match, f"no csrf-token meta tag on {path}"
    return match.group(1)


def login(client: FlaskClient, email: str, password: str = "demo") -> TestResponse:
    token = csrf_token(client)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})
