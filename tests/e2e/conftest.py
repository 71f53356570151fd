"""Fixtures shared by the browser tests (defined with the first browser test module)."""

from tests.e2e.test_ui_flows import contexts, csp  # noqa: F401 - fixtures, used by name
