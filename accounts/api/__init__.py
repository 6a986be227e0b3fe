"""The `/api/*` JSON views that belong to accounts (users, tokens, options, status)."""
