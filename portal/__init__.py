"""Wertkette partner portal: the application package (factory, configuration, plumbing)."""

from portal.app import create_app

__all__ = ["create_app"]
