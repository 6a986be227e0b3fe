"""What may go from a client's request or a channel into an upstream URL or header.

The ASGI path arrives percent-decoded, so `%3F`, `%23` and `%2e%2e` reach us as `?`, `#` and `..`:
pasted into an upstream URL they would add a query (e.g. a different key or API version), cut it
short, or climb out of the provider path the channel was meant for. Header values with CR/LF would
split the request itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from relay.errors import LocalError

_UNSAFE_PATH = re.compile(r"[?#\\\x00-\x1f\x7f]|(?:^|/)\.\.?(?:/|$)")
# A name pasted into a URL path (a model, a deployment): no query, fragment, escapes or dot segments.
_UNSAFE_SEGMENT = re.compile(r"[?#%\\\s\x00-\x1f\x7f]|(?:^|/)\.\.?(?:/|$)")


def check_client_path(path: str) -> None:
    if _UNSAFE_PATH.search(path):
        raise LocalError(
            "Invalid URL: the path may not contain '?', '#', '\\', control characters or '.'/'..' segments",
            status=400,
            type="invalid_request_error",
            code="invalid_path",
        )


def check_url_segment(value: str, what: str = "model") -> str:
    if _UNSAFE_SEGMENT.search(value):
        raise LocalError(
            f"invalid {what} name for this channel: {value!r}",
            status=400,
            type="invalid_request_error",
            code="invalid_model",
        )
    return value


def check_header_values(headers: Iterable[tuple[str, str]]) -> None:
    """For clients that write header values as given (the realtime websocket dial)."""
    for name, value in headers:
        if "\r" in value or "\n" in value:
            # Name the header, never its value: it may be a key.
            raise LocalError(
                f"refused to send the upstream request: header {name} contains a line break "
                "(check the channel's key and header settings)",
                status=500,
                type="new_api_error",
                code="invalid_upstream_header",
            )
