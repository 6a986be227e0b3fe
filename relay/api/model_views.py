"""/api views over the models the channels serve: the catalogue, the price list, a user's models."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.services import groups
from newapi_site.api.base import PUBLIC, ApiView, ok
from newapi_site.roles import USER_ENABLED

from .catalog import models_by_channel_type
from .pricing import models_for_user_group, pricing_list


class ChannelTypeModelsView(ApiView):
    """GET /api/models: channel type → the models the UI's channel editor suggests."""

    def get(self, request: Request) -> Response:
        return ok(models_by_channel_type())


class PricingView(ApiView):
    """Public; a logged-in session (cookie only, like New API's TryUserAuth) sees its own groups."""

    min_role = PUBLIC

    def get(self, request: Request) -> Response:
        user_id = request.session.get("id") if hasattr(request, "session") else None
        user = User.live.filter(pk=user_id, status=USER_ENABLED).first() if user_id else None
        usable = groups.usable_groups(user.group if user else "")
        ratios = groups.group_ratios()
        return Response(
            {
                "success": True,
                "data": pricing_list(),
                "group_ratio": {name: ratios[name] for name in usable if name in ratios},
                "usable_group": usable,
            }
        )


class UserModelsView(ApiView):
    """GET /api/user/models: the models enabled in the groups the caller may use."""

    def get(self, request: Request) -> Response:
        return ok(models_for_user_group(request.user.group))
