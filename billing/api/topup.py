"""EPay top-up: price preview, order creation and the gateway's notify callback."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.response import Response

from billing.services import epay
from newapi_site.api.base import ApiError, ApiView, body


def _amount(data: dict) -> int:
    try:
        raw: Any = data.get("amount")  # None: TypeError below
        return int(raw)
    except (TypeError, ValueError):
        raise ApiError("参数错误") from None


class TopUpFormatView(ApiView):
    """These two answer `{"message": "success" | "error", "data": …}` (no `success`), like New API."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return Response({"message": "error", "data": exc.message})
        return super().handle_exception(exc)


class AmountView(TopUpFormatView):
    def post(self, request: Request) -> Response:
        money = epay.price_of(request.user, _amount(body(request)))
        return Response({"message": "success", "data": f"{money:.2f}"})


class PayView(TopUpFormatView):
    def post(self, request: Request) -> Response:
        data = body(request)
        params, url = epay.create_order(
            request.user,
            _amount(data),
            str(data.get("payment_method") or ""),
            request.build_absolute_uri("/"),
        )
        return Response({"message": "success", "data": params, "url": url})


@csrf_exempt
def epay_notify(request: HttpRequest) -> HttpResponse:
    params = {k: request.GET.get(k, "") for k in request.GET} or {
        k: request.POST.get(k, "") for k in request.POST
    }
    return HttpResponse("success" if epay.handle_notify(params) else "fail", content_type="text/plain")
