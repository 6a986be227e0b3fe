"""Mark the session and CSRF cookies Secure when the client reached us over HTTPS.

Django's SESSION_COOKIE_SECURE is one static switch; the gateway is often served over plain HTTP
on a private port and over HTTPS through a proxy at the same time, so decide per request (a proxy's
X-Forwarded-Proto counts only from TRUSTED_PROXIES).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from .client_ip import request_is_secure


class SecureCookiesMiddleware(MiddlewareMixin):
    """Listed before SessionMiddleware, so it sees the cookies that middleware set."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        names = (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)
        if any(name in response.cookies for name in names) and request_is_secure(request):
            for name in names:
                if name in response.cookies:
                    response.cookies[name]["secure"] = True
        return response
