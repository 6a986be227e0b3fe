"""CORS as New API sends it on its key-authenticated and public routes (all origins, credentials
allowed, GET/POST/PUT/DELETE/OPTIONS, any header): browser tools such as neko-api-key-tool call
them from their own origin, starting with an OPTIONS preflight."""

from __future__ import annotations

from django.http import HttpResponse

HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Credentials": "true",
}
PREFLIGHT_HEADERS = {
    **HEADERS,
    "Access-Control-Allow-Methods": "GET,POST,PUT,DELETE,OPTIONS",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Max-Age": "43200",
}


def add_headers(response: HttpResponse) -> HttpResponse:
    for name, value in HEADERS.items():
        response[name] = value
    return response


def preflight() -> HttpResponse:
    """The answer to an OPTIONS preflight: 204, no body."""
    response = HttpResponse(status=204)
    for name, value in PREFLIGHT_HEADERS.items():
        response[name] = value
    return response
