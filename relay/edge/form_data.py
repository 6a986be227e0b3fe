"""multipart/form-data request bodies (speech to text, image edits and variations), parsed by
python-multipart: the streaming parser Starlette uses.

The body has already passed the request size limit (request_body.py); the parse adds its own
bounds: at most MAX_PARTS parts, at most MAX_HEADERS header lines of at most MAX_HEADER_BYTES per
part, and the parser never reads past the body it was given. A body that does not end with its
closing boundary, or that the parser rejects, is a 400 in OpenAI's error shape rather than a guess
at what the client meant.
"""

from __future__ import annotations

import base64
import binascii

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from relay.edge.request_body import max_body_bytes
from relay.edge.wire import ClientRequest
from relay.errors import LocalError

# An image edit sends up to 16 images and a dozen fields; an audio upload, one file and a few fields.
MAX_PARTS = 100
MAX_HEADERS = 8
MAX_HEADER_BYTES = 4096

Upload = tuple[str, str, bytes, str]  # (form field, filename, bytes, content type)


def _refused(message: str, code: str) -> LocalError:
    return LocalError(message, status=400, type="invalid_request_error", code=code)


def _decode(payload: bytes, encoding: bytes | None) -> bytes:
    """Undo a Content-Transfer-Encoding: forbidden in form data (RFC 7578) but still sent by
    some mail-derived clients."""
    cte = (encoding or b"").strip().lower()
    if cte == b"base64":
        return base64.b64decode(b"".join(payload.split()), validate=True)  # MIME wraps its lines
    if cte == b"quoted-printable":
        return binascii.a2b_qp(payload)
    return payload


class _Form:
    """The parser's callbacks: collect each part's headers and bytes, file it when it ends."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.fields: dict[str, str] = {}
        self.uploads: list[Upload] = []
        self.parts = 0
        self.headers: dict[bytes, bytes] = {}
        self.name = bytearray()
        self.value = bytearray()
        self.data = bytearray()

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise _refused(f"multipart body has more than {MAX_PARTS} parts", self.code)
        self.headers, self.data = {}, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.name).strip().lower()] = bytes(self.value).strip()
        self.name, self.value = bytearray(), bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.data += data[start:end]

    def on_part_end(self) -> None:
        # header parameters come back as their raw bytes (latin-1 round trip); clients send UTF-8
        _kind, params = parse_options_header(self.headers.get(b"content-disposition"))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if not name:
            return  # not a form field: nothing reads it
        try:
            payload = _decode(bytes(self.data), self.headers.get(b"content-transfer-encoding"))
        except (binascii.Error, ValueError):
            raise _refused(f"form part {name!r} is not valid base64", self.code) from None
        raw_filename = params.get(b"filename")
        if raw_filename is not None or name == "file":
            filename = (raw_filename or b"").decode("utf-8", "replace") or name
            ctype = parse_options_header(self.headers.get(b"content-type"))[0].decode("latin-1")
            self.uploads.append((name, filename, payload, ctype if "/" in ctype else "text/plain"))
        else:
            self.fields[name] = payload.decode("utf-8", "replace")  # a repeated field: the last wins


def parse_form(req: ClientRequest, code: str) -> tuple[dict[str, str], list[Upload]]:
    """multipart/form-data → (text fields, uploaded files in form order); code names the
    endpoint's error code for a body that is not a well-formed form."""
    ctype = req.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise _refused("a multipart/form-data body is required", code)
    boundary = parse_options_header(ctype)[1].get(b"boundary")
    if not boundary:
        raise _refused("multipart/form-data without a boundary", code)
    form = _Form(code)
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": form.on_part_begin,
                "on_part_data": form.on_part_data,
                "on_part_end": form.on_part_end,
                "on_header_field": form.on_header_field,
                "on_header_value": form.on_header_value,
                "on_header_end": form.on_header_end,
            },
            max_size=max_body_bytes(),
            max_header_count=MAX_HEADERS,
            max_header_size=MAX_HEADER_BYTES,
        )
        parser.write(req.body)
        parser.finalize()
    except FormParserError as exc:
        raise _refused(f"malformed multipart/form-data body: {exc}", code) from None
    if parser.state != MultipartState.END:
        raise _refused("malformed multipart/form-data body: it ends before its closing boundary", code)
    return form.fields, form.uploads
