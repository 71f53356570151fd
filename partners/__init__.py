"""Partners domain: organisations (tenants), partnerships along value chains, users and roles."""
