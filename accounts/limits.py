"""Input bounds the database and bcrypt impose, checked before they turn into a 500.

Quotas, expiry times and ids are 64-bit columns; bcrypt refuses passwords over 72 bytes. A value
past either limit is the client's mistake, so it is a 400 with a message.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from newapi_site.api.base import ApiError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PASSWORD_MAX_BYTES = 72


def check_int64(value: int, name: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ApiError(f"无效的参数: {name} 超出范围 (out of range)", status=400)
    return value


def check_password_bytes(raw: str | None) -> None:
    if raw and len(raw.encode("utf-8", "surrogatepass")) > PASSWORD_MAX_BYTES:
        raise ApiError(
            f"密码不能超过 {PASSWORD_MAX_BYTES} 字节 (password longer than {PASSWORD_MAX_BYTES} bytes)",
            status=400,
        )


class Int64Field(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        value = super().to_internal_value(data)
        return check_int64(value, self.field_name or "value")


class PasswordBytesMixin:
    """For CharField subclasses: the 72-byte bcrypt limit, on top of the character limits."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)  # type: ignore[misc]
        check_password_bytes(value)
        return value
