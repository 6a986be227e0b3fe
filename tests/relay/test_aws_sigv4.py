"""relay.upstream.aws.sign against AWS's published Signature Version 4 test suite.

Each vector is the suite's request.txt, the session token from its context.json (if any), whether
it signs the body (then the harness sends x-amz-content-sha256), and header-signature.txt, from
awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<name>/ (credentials AKIDEXAMPLE /
wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 2015-08-30T12:36:00Z, us-east-1, service "service").
Left out: the suite's path-normalising cases (dot segments, "//": the relay never sends such
paths), folded multi-line header values, repeated header names (the signer takes a dict), and a
session token added after signing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from relay.upstream import aws

pytestmark = [pytest.mark.relay]

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)

VECTORS = [
    (
        "get-vanilla",
        "GET / HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    (
        "get-vanilla-query-order-key-case",
        "GET /?Param2=value2&Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    (
        "get-vanilla-query-order-encoded",
        "GET /?Param-3=Value3&Param=Value2&%E1%88%B4=Value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
    ),
    (
        "get-vanilla-query-unreserved",
        "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    (
        "get-vanilla-utf8-query",
        "GET /?ሴ=bar HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    (
        "get-vanilla-empty-query-key",
        "GET /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    ),
    (
        "get-unreserved",
        "GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    (
        "get-utf8",
        "GET /ሴ HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    (
        "get-space-unnormalized",
        "GET /example space/ HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    (
        "get-slashes-unnormalized",
        "GET //example// HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
    ),
    (
        "get-header-value-trim",
        'GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1: value1\nMy-Header2: "a   b   c"\n',
        "",
        False,
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    (
        "get-vanilla-with-session-token",
        "GET / HTTP/1.1\nHost:example.amazonaws.com\n",
        "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
        False,
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    ),
    (
        "post-vanilla",
        "POST / HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    (
        "post-vanilla-query",
        "POST /?Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\n",
        "",
        False,
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    ),
    (
        "post-header-key-sort",
        "POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value1\n",
        "",
        False,
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    (
        "post-header-value-case",
        "POST / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:VALUE1\n",
        "",
        False,
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    (
        "post-x-www-form-urlencoded",
        "POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\nHost:example.amazonaws.com\nContent-Length:13\n\nParam1=value1",
        "",
        True,
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    ),
]


def _sign(request: str, token: str, sign_body: bool) -> dict[str, str]:
    head, _, body = request.partition("\n\n")
    request_line, *lines = head.rstrip("\n").split("\n")
    method, rest = request_line.split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name.lower() != "host":  # the signer takes the host from the URL
            headers[name] = value
    if sign_body:
        headers["X-Amz-Content-Sha256"] = hashlib.sha256(body.encode()).hexdigest()
    return aws.sign(
        method,
        "https://example.amazonaws.com" + target,
        headers,
        body.encode(),
        ACCESS_KEY,
        SECRET_KEY,
        "us-east-1",
        "service",
        now=WHEN,
        session_token=token,
    )


@pytest.mark.parametrize(
    ("name", "request_text", "token", "sign_body", "signature"), VECTORS, ids=[v[0] for v in VECTORS]
)
def test_signature_matches_the_aws_test_suite(name, request_text, token, sign_body, signature) -> None:
    signed = _sign(request_text, token, sign_body)
    assert signed["Authorization"].endswith(f", Signature={signature}")


def _vector(name: str) -> tuple:
    return next(v for v in VECTORS if v[0] == name)


def test_get_vanilla_authorization_header_whole() -> None:
    signed = _sign(_vector("get-vanilla")[1], "", False)
    assert signed["X-Amz-Date"] == "20150830T123600Z"
    assert signed["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_a_session_token_is_sent_and_signed() -> None:
    _, request_text, token, _, _ = _vector("get-vanilla-with-session-token")
    signed = _sign(request_text, token, False)
    assert signed["X-Amz-Security-Token"] == token
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in signed["Authorization"]
