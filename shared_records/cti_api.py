"""REST API of the telephone systems (CTI): POST /api/v1/cti/events and call logging."""

from __future__ import annotations
