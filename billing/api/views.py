"""/api/user/topup, /api/redemption/*, /api/log/*, /api/data/*: thin views over billing services."""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from billing import redemption
from billing.services import logs, usage
from newapi_site import cors
from newapi_site.api.base import (
    ADMIN,
    PUBLIC,
    ROOT,
    USER,
    ApiError,
    ApiView,
    body,
    int_param,
    int_path,
    ok,
    page_one_based,
    paged_envelope,
)


class AdminView(ApiView):
    min_role = ADMIN


# -- redemption codes -----------------------------------------------------------------------
class RedeemView(ApiView):
    """POST /api/user/topup: redeem a code; data = quota added."""

    def post(self, request: Request) -> Response:
        key = str(body(request).get("key") or "").strip()
        return ok(redemption.redeem_code(request.user, key))


class RedemptionListView(AdminView):
    def get(self, request: Request) -> Response:
        page, size = page_one_based(request)
        return ok(paged_envelope(redemption.live_redemptions(), page, size, redemption.render_redemption))

    def post(self, request: Request) -> Response:
        return ok(redemption.create_redemptions(request.user, body(request)))

    def put(self, request: Request) -> Response:
        status_only = bool(request.query_params.get("status_only"))
        code = redemption.update_redemption(body(request), status_only=status_only)
        return ok(redemption.render_redemption(code))


class RedemptionSearchView(AdminView):
    def get(self, request: Request) -> Response:
        page, size = page_one_based(request)
        qs = redemption.search_redemptions(request.query_params.get("keyword", "").strip())
        return ok(paged_envelope(qs, page, size, redemption.render_redemption))


class RedemptionDetailView(AdminView):
    def get(self, request: Request, redemption_id: str) -> Response:
        return ok(redemption.render_redemption(redemption.get_redemption(int_path(redemption_id))))

    def delete(self, request: Request, redemption_id: str) -> Response:
        redemption.delete_redemption(int_path(redemption_id))
        return ok()


# -- logs ---------------------------------------------------------------------------------------
class LogListView(AdminView):
    roles = {"DELETE": ROOT}  # logs are the audit trail of admins too: only root may erase them

    def get(self, request: Request) -> Response:
        page, size = page_one_based(request)
        qs = logs.all_logs(logs.LogFilter.from_query(request.query_params))
        start = (page - 1) * size
        rows = logs.render_admin_logs(list(qs[start : start + size]))
        return ok({"items": rows, "total": qs.count(), "page": page, "page_size": size})

    def delete(self, request: Request) -> Response:
        target = int_param(request, "target_timestamp", 0)
        if target <= 0:
            raise ApiError("target timestamp is required")
        return ok(logs.delete_logs_before(target))


class SelfLogListView(ApiView):
    min_role = USER

    def get(self, request: Request) -> Response:
        page, size = page_one_based(request)
        qs = logs.logs_of(request.user.pk, logs.LogFilter.from_query(request.query_params))
        return ok(paged_envelope(qs, page, size, logs.render_user_log))


class LogStatView(AdminView):
    def get(self, request: Request) -> Response:
        f = logs.LogFilter.from_query(request.query_params)
        return ok(logs.stat_logs(logs.Log.objects.all(), f))


class SelfLogStatView(ApiView):
    min_role = USER

    def get(self, request: Request) -> Response:
        f = logs.LogFilter.from_query(request.query_params)
        f.username = ""
        return ok(logs.stat_logs(logs.Log.objects.filter(user_id=request.user.pk), f))


class LogSearchView(AdminView):
    def get(self, request: Request) -> Response:
        rows = logs.search_logs(logs.Log.objects.all(), request.query_params.get("keyword", ""), content=True)
        return ok(logs.render_admin_logs(list(rows)))


class SelfLogSearchView(ApiView):
    min_role = USER

    def get(self, request: Request) -> Response:
        qs = logs.Log.objects.filter(user_id=request.user.pk)
        rows = logs.search_logs(qs, request.query_params.get("keyword", ""), content=False)
        return ok([logs.render_user_log(r) for r in rows])


class TokenLogView(ApiView):
    """Public and CORS-enabled: third-party key tools read a key's own logs with the key itself."""

    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        key = request.query_params.get("key", "").strip().removeprefix("sk-")
        if not key:
            raise ApiError("未提供令牌")
        return cors.add_headers(ok([logs.render_user_log(r) for r in logs.logs_of_token_key(key)]))

    def options(self, request: Request, *args: object, **kwargs: object) -> HttpResponse:
        return cors.preflight()


# -- usage data -------------------------------------------------------------------------------
class DataView(AdminView):
    def get(self, request: Request) -> Response:
        return ok(
            usage.usage_for_admin(
                int_param(request, "start_timestamp"),
                int_param(request, "end_timestamp"),
                request.query_params.get("username", "").strip(),
            )
        )


class SelfDataView(ApiView):
    min_role = USER

    def get(self, request: Request) -> Response:
        return ok(
            usage.usage_for_user(
                request.user.pk, int_param(request, "start_timestamp"), int_param(request, "end_timestamp")
            )
        )
