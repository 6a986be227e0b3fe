"""multipart/form-data parsing for the upload endpoints: what the forms of real clients turn into,
and malformed or oversized forms refused with OpenAI-style errors before anything is charged or sent."""

from __future__ import annotations

import httpx
import pytest

from billing.models import Log
from relay.edge.form_data import MAX_PARTS, parse_form
from relay.edge.wire import ClientRequest
from relay.errors import LocalError
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.modes_upstream import FakeModes

PNG = b"\x89PNG\r\n\x1a\n" + b"fake-image-bytes" * 8


def request(body: bytes, ctype: str) -> ClientRequest:
    return ClientRequest("POST", "/v1/images/edits", "", {"content-type": ctype}, body, "127.0.0.1")


def encoded(data: dict, files: list) -> tuple[bytes, str]:
    """A form as httpx (and so the openai SDK) encodes it."""
    req = httpx.Request("POST", "http://x/", data=data, files=files)
    return req.read(), req.headers["content-type"]


def raw_form(parts: list[bytes], boundary: str = "b0undary", end: bool = True) -> tuple[bytes, str]:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    return body + (b"--" + boundary.encode() + b"--\r\n" if end else b""), f"multipart/form-data; boundary={boundary}"


def refused(body: bytes, ctype: str, code: str = "invalid_image_request") -> LocalError:
    with pytest.raises(LocalError) as exc:
        parse_form(request(body, ctype), code)
    assert (exc.value.status, exc.value.code, exc.value.type) == (400, code, "invalid_request_error")
    return exc.value


# -- units -------------------------------------------------------------------------------------------
def test_a_client_form_is_read_in_order():
    body, ctype = encoded(
        {"model": "dall-e-2", "prompt": "a hat, s'il vous plaît", "n": "2"},
        [
            ("image[]", ("chat.png", PNG, "image/png")),
            ("image[]", ("свет.png", PNG[:9], "image/png")),
            ("mask", ("mask.png", b"m", "image/png")),
        ],
    )
    fields, uploads = parse_form(request(body, ctype), "invalid_image_request")
    assert fields == {"model": "dall-e-2", "prompt": "a hat, s'il vous plaît", "n": "2"}
    assert uploads == [
        ("image[]", "chat.png", PNG, "image/png"),
        ("image[]", "свет.png", PNG[:9], "image/png"),
        ("mask", "mask.png", b"m", "image/png"),
    ]


def test_part_rules_kept():
    body, ctype = raw_form(
        [
            b'Content-Disposition: form-data; name="file"\r\n\r\nRIFF-audio',  # "file" is always an upload
            b'Content-Disposition: form-data; name="size"\r\n\r\n256x256',
            b'Content-Disposition: form-data; name="size"\r\n\r\n512x512',  # a repeated field: the last wins
            b"Content-Disposition: form-data\r\n\r\nno name: skipped",
            b'Content-Disposition: form-data; name="b"\r\nContent-Transfer-Encoding: base64\r\n\r\naG\r\nk=',
            b'Content-Disposition: form-data; name="x"; filename=""\r\n\r\n',
        ]
    )
    fields, uploads = parse_form(request(body, ctype), "invalid_audio_request")
    assert fields == {"size": "512x512", "b": "hi"}
    assert uploads == [("file", "file", b"RIFF-audio", "text/plain"), ("x", "x", b"", "text/plain")]


def test_malformed_forms_are_refused():
    good, ctype = raw_form([b'Content-Disposition: form-data; name="a"\r\n\r\n1'])
    assert refused(good, "application/json").args[0] == "a multipart/form-data body is required"
    assert "boundary" in refused(good, "multipart/form-data").args[0]
    refused(good, "multipart/form-data; boundary=" + "x" * 300)  # longer than RFC 2046 allows
    refused(b"garbage before any boundary", ctype)
    refused(good[: good.rindex(b"--b0undary--")], ctype)  # cut before its closing boundary
    refused(b"", ctype)
    refused(raw_form([b"Content-Disposition form-data\r\n\r\n1"])[0], ctype)  # a header without a colon
    refused(raw_form([b'Content-Disposition: form-data; name="a"\r\n' + b"X-A: 1\r\n" * 20 + b"\r\n1"])[0], ctype)
    refused(raw_form([b'Content-Disposition: form-data; name="a"; x="' + b"y" * 10_000 + b'"\r\n\r\n1'])[0], ctype)
    bad64 = raw_form([b'Content-Disposition: form-data; name="b"\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@'])
    refused(bad64[0], ctype, code="invalid_audio_request")


def test_too_many_parts_are_refused():
    part = b'Content-Disposition: form-data; name="n"\r\n\r\n1'
    body, ctype = raw_form([part] * MAX_PARTS)
    assert parse_form(request(body, ctype), "invalid_image_request")[0] == {"n": "1"}
    body, ctype = raw_form([part] * (MAX_PARTS + 1))
    assert "parts" in refused(body, ctype).args[0]


# -- through the gateway -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake() -> FakeModes:
    return FakeModes().start()


@live
@pytest.mark.relay
def test_gateway_refuses_malformed_and_huge_forms_without_charging(gateway, fake):
    make_channel(fake.base_url, key="form-bad", models="dall-e-2,whisper-1")
    user = make_user("form1", quota=10_000_000)
    auth = {"Authorization": f"Bearer sk-{make_token(user).key}"}
    before = len(fake.requests)
    body, ctype = encoded({"model": "whisper-1"}, [("file", ("a.wav", b"RIFF" + b"\0" * 64, "audio/wav"))])
    cut = body[: len(body) // 2]
    r = httpx.post(f"{gateway.v1}/audio/transcriptions", headers={**auth, "Content-Type": ctype}, content=cut)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_audio_request" and error["type"] == "invalid_request_error"
    assert "closing boundary" in error["message"]
    part = b'Content-Disposition: form-data; name="n"\r\n\r\n1'
    body, ctype = raw_form([b'Content-Disposition: form-data; name="prompt"\r\n\r\nx'] + [part] * 5000)
    r = httpx.post(f"{gateway.v1}/images/edits", headers={**auth, "Content-Type": ctype}, content=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_image_request" and "parts" in r.json()["error"]["message"]
    assert len(fake.requests) == before
    settle()
    user.refresh_from_db()
    assert user.quota == 10_000_000 and not Log.objects.filter(user_id=user.pk).exists()
