from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from accounts import admin_login
from accounts.pages import chats, entry, setting, tokens
from billing.api import dashboard
from billing.pages import views as billing_pages
from newapi_site import admin_names, admin_page_size, audit
from relay.metrics import metrics_view
from relay.modes import playground
from relay.pages import admin_dashboard, channel_tools
from relay.pages import views as relay_pages
from tasks.pages import views as task_pages

from . import health

admin_login.install(admin.site)  # login limit and default-password warning, before the URLs are built
admin_dashboard.install(admin.site)  # the index's charts
admin_page_size.install(admin.site)  # a page-size selector on every list
audit.install(admin.site)  # bulk actions audited; the trail browsable
admin_names.install(admin.site)  # app and model names in the reader's language


def page(route: str, view, name: str | None = None):
    """A console page at New API's path, with or without the trailing slash."""
    return re_path(rf"^{route}/?$", view, name=name)


urlpatterns = [
    path("admin-page-size", admin_page_size.choose),
    path("admin-channel/models", channel_tools.fetch_models),
    path("admin-channel/<int:channel_id>/test", channel_tools.test_channel),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz),  # readiness: database and Redis answer
    path("metrics", metrics_view),  # Prometheus; 404 unless METRICS_ENABLED
    path("api/", include("newapi_site.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),  # the language switcher (set_language)
    # Key-authenticated billing endpoints (management.md §4); the relay router falls back to Django here.
    path("v1/dashboard/billing/subscription", dashboard.subscription),
    path("v1/dashboard/billing/usage", dashboard.usage),
    path("dashboard/billing/subscription", dashboard.subscription),
    path("dashboard/billing/usage", dashboard.usage),
    # The playground: dashboard session, not an API key (tasks-special.md §7.1).
    re_path(r"^pg/chat/completions/?$", playground.chat_completions),
    # The console for people, at New API's paths.
    path("favicon.ico", RedirectView.as_view(url="/static/console/favicon.svg")),
    re_path(r"^$", entry.home, name="home"),
    page("about", entry.about),
    page("login", entry.login, "login"),
    page("logout", entry.logout),
    page("register", entry.register),
    page("reset", entry.reset),
    page("user/reset", entry.user_reset),
    page("oauth/github", entry.oauth_github),
    page("oauth/oidc", entry.oauth_oidc),
    page("oauth/linuxdo", entry.oauth_linuxdo),
    page("oauth/wechat", entry.oauth_wechat),
    page("oauth/telegram/login", entry.oauth_telegram),
    re_path(r"^oauth/start/(?P<provider>github|oidc|linuxdo)/?$", entry.oauth_start),
    page("token", tokens.token_page),
    page("setting", setting.setting_page),
    page("chat2link", chats.chat2link),
    page("detail", billing_pages.detail),
    page("log", billing_pages.log_page),
    page("topup", billing_pages.topup),
    page("pricing", relay_pages.pricing),
    page("playground", relay_pages.playground),
    page("midjourney", task_pages.midjourney),
    page("task", task_pages.task),
]
