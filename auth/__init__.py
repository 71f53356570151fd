"""Authentication domain: sign-in, server-side sessions and personal API tokens."""
