from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from accounts import admin_login
from billing.api import dashboard
from relay.metrics import metrics_view
from relay.modes import playground

from . import health

admin_login.install(admin.site)  # login limit and default-password warning, before the URLs are built

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz),  # readiness: database and Redis answer
    path("metrics", metrics_view),  # Prometheus; 404 unless METRICS_ENABLED
    path("api/", include("newapi_site.api.urls")),
    # Key-authenticated billing endpoints (management.md §4); the relay router falls back to Django here.
    path("v1/dashboard/billing/subscription", dashboard.subscription),
    path("v1/dashboard/billing/usage", dashboard.usage),
    path("dashboard/billing/subscription", dashboard.subscription),
    path("dashboard/billing/usage", dashboard.usage),
    # The playground: dashboard session, not an API key (tasks-special.md §7.1).
    re_path(r"^pg/chat/completions/?$", playground.chat_completions),
]
