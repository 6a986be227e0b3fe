"""Admin views for /api/channel/* (thin: parsing here, logic in relay/api/services.py)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from newapi_site.api.base import ADMIN, ApiError, ApiView, body, int_path, ok, page_zero_based
from relay.api import catalog, services
from relay.channels import key_status
from relay.models import CHANNEL_ENABLED, CHANNEL_MANUALLY_DISABLED


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("true", "1")


def _ids(data: dict) -> list[int]:
    ids = data.get("ids")
    if not isinstance(ids, list) or not ids:
        raise ApiError("参数错误")
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError):
        raise ApiError("参数错误") from None


class AdminView(ApiView):
    min_role = ADMIN


class ChannelListView(AdminView):
    def get(self, request: Request) -> Response:
        page, size = page_zero_based(request)
        channels = services.list_channels(page, size, _flag(request, "id_sort"), _flag(request, "tag_mode"))
        return ok([services.render_channel(c) for c in channels])

    def post(self, request: Request) -> Response:
        services.create_channels(body(request))
        return ok()

    def put(self, request: Request) -> Response:
        return ok(services.render_channel(services.update_channel(request.user, body(request))))


class ChannelSearchView(AdminView):
    def get(self, request: Request) -> Response:
        q = request.query_params
        channels = services.search_channels(
            q.get("keyword", "").strip(),
            q.get("group", "").strip(),
            q.get("model", "").strip(),
            _flag(request, "id_sort"),
        )
        return ok([services.render_channel(c) for c in channels])


class ChannelDetailView(AdminView):
    def get(self, request: Request, channel_id: str) -> Response:
        return ok(services.render_channel(services.get_channel(int_path(channel_id))))

    def delete(self, request: Request, channel_id: str) -> Response:
        services.delete_channel(int_path(channel_id))
        return ok()


class MultiKeyManageView(AdminView):
    """New API's multi-key actions: get_key_status (paged, optional status filter), enable_key,
    disable_key, enable_all_keys, disable_all_keys, delete_key, delete_disabled_keys."""

    def post(self, request: Request) -> Response:
        data = body(request)
        try:
            channel_id = int(data.get("channel_id") or 0)
        except (TypeError, ValueError):
            channel_id = 0
        if channel_id <= 0:
            raise ApiError("无效的参数")
        action = str(data.get("action") or "")
        try:
            if action == "get_key_status":
                status = data.get("status")
                return ok(
                    key_status.key_statuses(
                        services.get_channel(channel_id),
                        _int(data.get("page"), 1),
                        _int(data.get("page_size"), 50),
                        None if status is None else _int(status, 0),
                    )
                )
            outcome = key_status.manage(channel_id, action, data.get("key_index"))
        except key_status.KeyActionError as exc:
            raise ApiError(str(exc)) from None
        return ok(outcome.data, outcome.message)


def _int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default


class ChannelDisabledView(AdminView):
    def delete(self, request: Request) -> Response:
        return ok(services.delete_disabled_channels())


class ChannelBatchDeleteView(AdminView):
    def post(self, request: Request) -> Response:
        return ok(services.delete_channels(_ids(body(request))))


class ChannelBatchTagView(AdminView):
    def post(self, request: Request) -> Response:
        data = body(request)
        return ok(services.set_tag_of(_ids(data), data.get("tag")))


class ChannelTagView(AdminView):
    def put(self, request: Request) -> Response:
        services.edit_tag(body(request))
        return ok()


class ChannelTagEnableView(AdminView):
    status = CHANNEL_ENABLED

    def post(self, request: Request) -> Response:
        services.set_tag_status(str(body(request).get("tag") or ""), self.status)
        return ok()


class ChannelTagDisableView(ChannelTagEnableView):
    status = CHANNEL_MANUALLY_DISABLED


class ChannelFixView(AdminView):
    def post(self, request: Request) -> Response:
        return ok(services.repair_abilities())


class FetchModelsByIdView(AdminView):
    def get(self, request: Request, channel_id: str) -> Response:
        channel = services.get_channel(int_path(channel_id))
        return ok(services.fetch_upstream_models(channel.type, channel.base_url, channel.key))


class FetchModelsView(AdminView):
    def post(self, request: Request) -> Response:
        data = body(request)
        try:
            channel_type = int(data.get("type") or 1)
        except (TypeError, ValueError):
            raise ApiError("无效的参数: type") from None
        return ok(
            services.fetch_upstream_models(channel_type, data.get("base_url"), str(data.get("key") or ""))
        )


class ChannelModelsView(AdminView):
    def get(self, request: Request) -> Response:
        return ok(catalog.all_models_as_objects())


class ChannelModelsEnabledView(AdminView):
    def get(self, request: Request) -> Response:
        return ok(catalog.enabled_models())


# -- channel test and balance (tasks-special.md §9.1): top-level `time` / `balance` keys ----------
class ChannelTestView(AdminView):
    def get(self, request: Request, channel_id: str) -> Response:
        from relay.channels.tester import test_channel_sync

        channel = services.get_channel(int_path(channel_id))
        result = test_channel_sync(channel, request.query_params.get("model", "").strip() or None)
        return Response({"success": result.success, "message": result.message, "time": result.seconds})


class ChannelTestAllView(AdminView):
    def get(self, request: Request) -> Response:
        from relay import tasks

        if not tasks.try_lock(tasks.TEST_ALL_LOCK):
            raise ApiError("测试已在运行中 (a test run is already in progress)")
        try:
            tasks.test_all_channels.delay(locked=True)
        except Exception:
            tasks.release(tasks.TEST_ALL_LOCK)
            raise
        return ok()


class ChannelBalanceView(AdminView):
    def get(self, request: Request, channel_id: str) -> Response:
        from relay.channels.balance import update_balance

        result = update_balance(services.get_channel(int_path(channel_id)))
        return Response({"success": result.success, "message": result.message, "balance": result.balance})


class ChannelBalanceAllView(AdminView):
    def get(self, request: Request) -> Response:
        from relay import tasks
        from relay.channels.balance import update_all_balances

        if not tasks.try_lock(tasks.BALANCE_LOCK):
            raise ApiError("余额更新已在运行中 (a balance update is already in progress)")
        try:
            update_all_balances()
        finally:
            tasks.release(tasks.BALANCE_LOCK)
        return ok()
