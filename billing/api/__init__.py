"""The `/api/*` views of billing (redemptions, logs, usage data) and the key-based usage endpoints."""
