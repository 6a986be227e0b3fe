"""Every `/api/*` route. The management API lives in accounts/, billing/ and relay/ views.

New API's paths are matched with or without a trailing slash (scripts use both; a redirect
would lose a POST body).
"""

from __future__ import annotations

from django.urls import URLPattern, re_path
from django.views import View

from accounts.api import oauth, schema, system, tokens, users
from billing.api import topup
from billing.api import views as billing
from relay.api import views as channels
from tasks import api as async_tasks


def route(pattern: str, view: type[View], name: str | None = None) -> URLPattern:
    """`pattern` is a regex body without anchors; the trailing slash is optional."""
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)


urlpatterns: list = [
    re_path(r"^schema/?$", schema.SchemaView.as_view(), name="api-schema"),
    # system
    route("status", system.StatusView, "api-status"),
    route("status/test", system.StatusTestView),
    route("setup", system.SetupView, "api-setup"),
    route("notice", system.NoticeView),
    route("about", system.AboutView),
    route("home_page_content", system.HomePageView),
    route("models", system.ChannelTypeModelsView),
    route("pricing", system.PricingView),
    route("option", system.OptionView),
    route("option/rest_model_ratio", system.ResetModelRatioView),
    route("group", system.GroupListView),
    # email
    route("verification", users.VerificationView),
    route("reset_password", users.ResetPasswordMailView),
    route("user/reset", users.ResetPasswordView),
    route("oauth/email/bind", users.EmailBindView),
    # third-party login
    route("oauth/state", oauth.StateView),
    route("oauth/github", oauth.GitHubView),
    route("oauth/oidc", oauth.OidcView),
    route("oauth/linuxdo", oauth.LinuxDoView),
    route("oauth/wechat", oauth.WeChatView),
    route("oauth/wechat/bind", oauth.WeChatBindView),
    route("oauth/telegram/login", oauth.TelegramLoginView),
    route("oauth/telegram/bind", oauth.TelegramBindView),
    # users
    route("user/register", users.RegisterView, "api-register"),
    route("user/login", users.LoginView, "api-login"),
    route("user/logout", users.LogoutView),
    route("user/groups", users.GroupsView),
    route("user/self/groups", users.SelfGroupsView),
    route("user/self", users.SelfView),
    route("user/setting", users.NotificationSettingView),
    route("user/models", users.UserModelsView),
    route("user/token", users.AccessTokenView),
    route("user/aff", users.AffCodeView),
    route("user/aff_transfer", users.AffTransferView),
    route("user/topup", users.TopUpView),
    route("user/amount", topup.AmountView),
    route("user/pay", topup.PayView),
    re_path(r"^user/epay/notify/?$", topup.epay_notify),
    route("user/search", users.UserSearchView),
    route("user/manage", users.ManageUserView),
    route("user", users.UserListView),
    route(r"user/(?P<user_id>-?\d+)", users.UserDetailView),
    # tokens
    route("token", tokens.TokenListView),
    route("token/search", tokens.TokenSearchView),
    route(r"token/(?P<token_id>-?\d+)", tokens.TokenDetailView),
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
    route("channel/fetch_models", channels.FetchModelsView),
    route(r"channel/fetch_models/(?P<channel_id>\d+)", channels.FetchModelsByIdView),
    route("channel/test", channels.ChannelTestAllView),
    route(r"channel/test/(?P<channel_id>-?\d+)", channels.ChannelTestView),
    route("channel/update_balance", channels.ChannelBalanceAllView),
    route(r"channel/update_balance/(?P<channel_id>-?\d+)", channels.ChannelBalanceView),
    route(r"channel/(?P<channel_id>-?\d+)", channels.ChannelDetailView),
    # redemption codes
    route("redemption", billing.RedemptionListView),
    route("redemption/search", billing.RedemptionSearchView),
    route(r"redemption/(?P<redemption_id>-?\d+)", billing.RedemptionDetailView),
    # logs and usage data
    route("log", billing.LogListView),
    route("log/stat", billing.LogStatView),
    route("log/search", billing.LogSearchView),
    route("log/self", billing.SelfLogListView),
    route("log/self/stat", billing.SelfLogStatView),
    route("log/self/search", billing.SelfLogSearchView),
    route("log/token", billing.TokenLogView),
    route("data", billing.DataView),
    route("data/self", billing.SelfDataView),
    # Midjourney and async task lists
    route("mj/self", async_tasks.MidjourneySelfView),
    route("mj", async_tasks.MidjourneyAllView),
    route("task/self", async_tasks.TaskSelfView),
    route("task", async_tasks.TaskAllView),
]
