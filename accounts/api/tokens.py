"""/api/token/*: the caller's own API keys (0-based `p`, `size`, plain list)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from accounts import serializers as s
from accounts.services import tokens
from newapi_site.api.base import ApiView, body, int_path, ok, page_zero_based


class TokenListView(ApiView):
    def get(self, request: Request) -> Response:
        page, size = page_zero_based(request, "size")
        qs = tokens.tokens_of(request.user).order_by("-id")[page * size : (page + 1) * size]
        return ok([s.render_token(t) for t in qs])

    def post(self, request: Request) -> Response:
        token = tokens.create_token(request.user, s.validated(s.TokenBody, body(request)))
        return ok(s.render_token(token))

    def put(self, request: Request) -> Response:
        data = body(request)
        if request.query_params.get("status_only"):
            clean = s.validated(s.TokenStatusBody, data)
            token = tokens.set_token_status(request.user, clean["id"], clean["status"])
        else:
            clean = s.validated(s.TokenUpdateBody, data)
            token = tokens.update_token(request.user, clean.pop("id"), clean)
        return ok(s.render_token(token))


class TokenSearchView(ApiView):
    def get(self, request: Request) -> Response:
        qs = tokens.search_tokens(
            request.user,
            request.query_params.get("keyword", "").strip(),
            request.query_params.get("token", ""),
        )
        return ok([s.render_token(t) for t in qs])


class TokenDetailView(ApiView):
    def get(self, request: Request, token_id: str) -> Response:
        return ok(s.render_token(tokens.get_own_token(request.user, int_path(token_id))))

    def delete(self, request: Request, token_id: str) -> Response:
        tokens.delete_token(request.user, int_path(token_id))
        return ok()
