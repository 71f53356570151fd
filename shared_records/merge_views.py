"""Merge tool and CSV import pages for organisation admins."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("merge", __name__)
