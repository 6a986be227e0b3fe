"""Upstream I/O: the shared HTTP client and its transport, URL safety, and provider request signing."""
