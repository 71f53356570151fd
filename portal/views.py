"""Inbox and dashboard pages (stub)."""

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("portal", __name__)


@bp.get("/")
@login_required
def inbox() -> str:
    return "inbox"
