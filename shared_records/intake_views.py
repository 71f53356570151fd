"""Customer intake pages: duplicate warnings, capture on the phone (vCard or short form)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("intake", __name__)
