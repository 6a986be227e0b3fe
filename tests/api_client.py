"""The /api test client: a persona calling in-process with an access token + New-Api-User."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.test import APIClient

from accounts.models import User


class Api:
    """A thin wrapper over APIClient that returns the decoded JSON (and keeps the response)."""

    def __init__(self, user: User | None = None, session: bool = False) -> None:
        self.client = APIClient()
        self.user = user
        self.response = None
        if user is not None and not session:
            user.access_token = uuid.uuid4().hex
            user.save(update_fields=["access_token"])
            self.client.credentials(HTTP_AUTHORIZATION=user.access_token, HTTP_NEW_API_USER=str(user.pk))

    def call(self, method: str, path: str, data: Any = None, **extra: Any) -> dict:
        fn = getattr(self.client, method)
        if method in ("get", "delete") and data is not None and method == "get":
            self.response = fn(path, data, **extra)
        else:
            self.response = fn(path, data, format="json", **extra)
        try:
            return self.response.json()
        except ValueError:
            return {}

    def get(self, path: str, params: dict | None = None, **extra: Any) -> dict:
        return self.call("get", path, params, **extra)

    def post(self, path: str, data: Any = None, **extra: Any) -> dict:
        return self.call("post", path, data, **extra)

    def put(self, path: str, data: Any = None, **extra: Any) -> dict:
        return self.call("put", path, data, **extra)

    def delete(self, path: str, data: Any = None, **extra: Any) -> dict:
        return self.call("delete", path, data, **extra)

    @property
    def status(self) -> int:
        return self.response.status_code
