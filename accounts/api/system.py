"""/api/status, /api/setup, site texts, options and groups."""

from __future__ import annotations

from django.db import connection
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import groups, options_admin, system
from newapi_site.api.base import ADMIN, PUBLIC, ROOT, ApiError, ApiView, body, fail, ok
from newapi_site.options import options


class StatusView(ApiView):
    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        return ok(system.status_payload())


class StatusTestView(ApiView):
    min_role = ADMIN

    def get(self, request: Request) -> Response:
        try:
            connection.ensure_connection()
        except Exception:
            return fail("数据库连接失败", 503)
        return ok(message="Server is running")


class SetupView(ApiView):
    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        return ok(system.setup_status())

    def post(self, request: Request) -> Response:
        system.run_setup(body(request))
        return ok(message="系统初始化成功")


def _option_text(key: str):
    class OptionTextView(ApiView):
        min_role = PUBLIC

        def get(self, request: Request) -> Response:
            return ok(options.get(key))

    OptionTextView.__name__ = f"{key}View"
    return OptionTextView


NoticeView = _option_text("Notice")
AboutView = _option_text("About")
HomePageView = _option_text("HomePageContent")


class OptionView(ApiView):
    min_role = ROOT

    def get(self, request: Request) -> Response:
        return ok(options.as_public_list())

    def put(self, request: Request) -> Response:
        data = body(request)
        if "key" not in data:
            raise ApiError("无效的参数", status=400)
        options_admin.set_option(data["key"], data.get("value"))
        return ok()


class ResetModelRatioView(ApiView):
    min_role = ROOT

    def post(self, request: Request) -> Response:
        options_admin.reset_model_ratio()
        return ok()


class GroupListView(ApiView):
    min_role = ADMIN

    def get(self, request: Request) -> Response:
        return ok(list(groups.group_ratios()))
