"""relay's `/api` routes: channels, the model catalogue, the price list and a user's models."""

from __future__ import annotations

from django.urls import URLPattern

from newapi_site.api.base import route

from . import model_views
from . import views as channels

urlpatterns: list[URLPattern] = [
    # models and prices
    route("models", model_views.ChannelTypeModelsView),
    route("pricing", model_views.PricingView),
    route("user/models", model_views.UserModelsView),
    # channels
    route("channel", channels.ChannelListView),
    route("channel/search", channels.ChannelSearchView),
    route("channel/models", channels.ChannelModelsView),
    route("channel/models_enabled", channels.ChannelModelsEnabledView),
    route("channel/disabled", channels.ChannelDisabledView),
    route("channel/batch", channels.ChannelBatchDeleteView),
    route("channel/batch/tag", channels.ChannelBatchTagView),
    route("channel/tag", channels.ChannelTagView),
    route("channel/tag/enabled", channels.ChannelTagEnableView),
    route("channel/tag/disabled", channels.ChannelTagDisableView),
    route("channel/fix", channels.ChannelFixView),
    route("channel/multi_key/manage", channels.MultiKeyManageView),
    route("channel/fetch_models", channels.FetchModelsView),
    route(r"channel/fetch_models/(?P<channel_id>\d+)", channels.FetchModelsByIdView),
    route("channel/test", channels.ChannelTestAllView),
    route(r"channel/test/(?P<channel_id>-?\d+)", channels.ChannelTestView),
    route("channel/update_balance", channels.ChannelBalanceAllView),
    route(r"channel/update_balance/(?P<channel_id>-?\d+)", channels.ChannelBalanceView),
    route(r"channel/(?P<channel_id>-?\d+)", channels.ChannelDetailView),
]
