"""The relay's error vocabulary. Every relay error leaves as OpenAI's body with a fitting status:

RelayError                      {"error": {"message", "type", "code", "param"}}
├── LocalError                  our own decision (auth, validation, quota): never retried
└── UpstreamError               the provider failed (status or network): may be retried
"""

from __future__ import annotations

from typing import Any

import orjson


class RelayError(Exception):
    def __init__(
        self,
        message: str,
        status: int = 500,
        type: str = "new_api_error",
        code: str | int | None = None,
        param: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class LocalError(RelayError):
    """Raised for requests we refuse ourselves; no retry, no channel penalty."""


class UpstreamError(RelayError):
    """The upstream answered with an error status, or could not be reached."""

    def __init__(self, *args: Any, upstream_body: bytes = b"", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.upstream_body = upstream_body


def invalid_request(message: str, code: str = "invalid_request", status: int = 400) -> LocalError:
    return LocalError(message, status=status, type="invalid_request_error", code=code)


def upstream_error_from_response(status: int, body: bytes) -> UpstreamError:
    """Wrap an upstream non-2xx answer; never pass a non-JSON body through raw."""
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return UpstreamError(
                str(err.get("message")),
                status=status,
                type=str(err.get("type") or "upstream_error"),
                code=err.get("code"),
                param=str(err.get("param") or ""),
                upstream_body=body,
            )
        for key in ("message", "msg", "err", "error_msg"):
            if isinstance(data.get(key), str) and data[key]:
                return UpstreamError(
                    data[key],
                    status=status,
                    type="upstream_error",
                    code="bad_response_status_code",
                    param=str(status),
                    upstream_body=body,
                )
        if isinstance(err, str) and err:
            return UpstreamError(
                err,
                status=status,
                type="upstream_error",
                code="bad_response_status_code",
                param=str(status),
                upstream_body=body,
            )
    return UpstreamError(
        f"bad response status code {status}",
        status=status,
        type="upstream_error",
        code="bad_response_status_code",
        param=str(status),
        upstream_body=body,
    )
