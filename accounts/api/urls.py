"""accounts' `/api` routes: status and setup, site texts, options, groups, email, logins, users, tokens."""

from __future__ import annotations

from django.urls import URLPattern

from newapi_site.api.base import route

from . import oauth, system, tokens, users

urlpatterns: list[URLPattern] = [
    # system
    route("status", system.StatusView, "api-status"),
    route("status/test", system.StatusTestView),
    route("setup", system.SetupView, "api-setup"),
    route("notice", system.NoticeView),
    route("about", system.AboutView),
    route("home_page_content", system.HomePageView),
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
    route("user/token", users.AccessTokenView),
    route("user/aff", users.AffCodeView),
    route("user/aff_transfer", users.AffTransferView),
    route("user/search", users.UserSearchView),
    route("user/manage", users.ManageUserView),
    route("user", users.UserListView),
    route(r"user/(?P<user_id>-?\d+)", users.UserDetailView),
    # tokens
    route("token", tokens.TokenListView),
    route("token/search", tokens.TokenSearchView),
    route(r"token/(?P<token_id>-?\d+)", tokens.TokenDetailView),
]
