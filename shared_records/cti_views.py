"""Interaction center pages: the screen pop panel and call logging."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("calls", __name__)
