"""GET /api/schema/: the OpenAPI description of /api, built once per process.

The schema only changes with the code, and building and rendering it costs tens to hundreds of
milliseconds of CPU, so an anonymous caller must not be able to make the server redo it: each
format is rendered once and served from memory with an ETag, under the same rate limit as /api.
"""

from __future__ import annotations

import hashlib
import threading

from django.http import HttpResponse, HttpResponseNotModified
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions

from .ratelimit import GlobalApiThrottle

_lock = threading.Lock()
_schema: dict | None = None
_rendered: dict[type, tuple[bytes, str]] = {}  # renderer class -> (body, ETag)
_builds = 0


def builds() -> int:
    """How many times this process has generated the schema (once, however often it is asked)."""
    return _builds


class SchemaView(SpectacularAPIView):
    throttle_classes = [GlobalApiThrottle]

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs) -> HttpResponse:
        renderer = request.accepted_renderer
        body, etag = self._cached_body(request, renderer)
        if request.headers.get("If-None-Match") == etag:
            return HttpResponseNotModified(headers={"ETag": etag})
        content_type = renderer.media_type + (f"; charset={renderer.charset}" if renderer.charset else "")
        filename = f"{spectacular_settings.TITLE or 'schema'}.{renderer.format}"
        return HttpResponse(
            body,
            content_type=content_type,
            headers={"ETag": etag, "Content-Disposition": f'inline; filename="{filename}"'},
        )

    def _cached_body(self, request, renderer) -> tuple[bytes, str]:
        global _schema, _builds
        cached = _rendered.get(type(renderer))
        if cached is not None:
            return cached
        with _lock:
            if _schema is None:
                # No per-request version or language: one schema, so callers cannot multiply the work.
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=None, patterns=self.patterns
                )
                _schema = generator.get_schema(request=request, public=True)
                _builds += 1
            if type(renderer) not in _rendered:
                body = renderer.render(_schema, renderer.media_type, {})
                _rendered[type(renderer)] = (body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
            return _rendered[type(renderer)]

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, exceptions.Throttled):
            return HttpResponse(status=429)  # as every /api view answers it
        return super().handle_exception(exc)


class NewApiAuthScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.NewApiAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An access token from GET /api/user/token (or the `session` cookie set by login). "
            "Every authenticated call must also send `New-Api-User: <user id>`.",
        }
