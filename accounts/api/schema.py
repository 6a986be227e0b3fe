"""OpenAPI description of our authentication for drf-spectacular (GET /api/schema/)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
