"""The `portal sso ...` and `portal clients ...` command groups, re-exported for portal.cli."""

from auth.clients_cli import clients as clients  # re-exported for portal.cli
from auth.sso_cli import sso as sso  # re-exported for portal.cli
