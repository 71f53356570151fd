"""OAuth 2.0 token endpoint for API clients (stub; being built)."""

from flask import Blueprint

bp = Blueprint("oauth", __name__)
