"""Case and customer pages (stub)."""

from flask import Blueprint

bp = Blueprint("records", __name__)
