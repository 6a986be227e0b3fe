"""Channels: their types, choice (which channel serves a request, retries), routing rows (abilities), health, tests and balances."""
