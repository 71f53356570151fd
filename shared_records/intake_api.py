"""REST API of customer intake: duplicate check, vCard capture and consents."""

from __future__ import annotations
