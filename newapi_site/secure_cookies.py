"""HTTPS as the client saw it: X-Forwarded-Proto only from TRUSTED_PROXIES, and Secure cookies then.

Django's SECURE_PROXY_SSL_HEADER believes X-Forwarded-Proto from anyone, and SESSION_COOKIE_SECURE
is one static switch, while the gateway is often reached over plain HTTP on a private port and over
HTTPS through a proxy at the same time. So this middleware, first in the list, drops the header
unless the peer is a trusted proxy; request.is_secure() is then right everywhere (CSRF origin
checks, absolute URLs), and the session and CSRF cookies are marked Secure per request.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from .client_ip import is_trusted

PROTO_META = "HTTP_X_FORWARDED_PROTO"


class SecureCookiesMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> None:
        if PROTO_META in request.META and not is_trusted(request.META.get("REMOTE_ADDR", "") or ""):
            del request.META[PROTO_META]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        names = (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)
        if any(name in response.cookies for name in names) and request.is_secure():
            for name in names:
                if name in response.cookies:
                    response.cookies[name]["secure"] = True
        return response
