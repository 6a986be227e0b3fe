"""The `/api` platform: the base view and envelope, the global rate limit, the schema and the URL hub."""
