"""The /api tests use the shared personas and `Api` clients (tests/conftest.py, tests/api_client.py)."""
