"""Shared records: customers, contacts, cases, timelines, shares and the visibility policy."""
