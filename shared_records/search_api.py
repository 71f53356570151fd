"""REST API of the search: GET /api/v1/search (see shared_records/search.py)."""

from __future__ import annotations
