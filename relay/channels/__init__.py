"""Channels: their types, routing rows (abilities), health, tests and balances."""
