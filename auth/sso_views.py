"""Single sign-on endpoints (stub; being built)."""

from flask import Blueprint

bp = Blueprint("sso", __name__)
