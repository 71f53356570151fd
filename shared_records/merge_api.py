"""REST API of customer merges and the CSV import of customers."""

from __future__ import annotations
