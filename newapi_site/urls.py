from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from billing.api import dashboard

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("accounts.api_urls")),
    # Key-authenticated billing endpoints (management.md §4); the relay router falls back to Django here.
    path("v1/dashboard/billing/subscription", dashboard.subscription),
    path("v1/dashboard/billing/usage", dashboard.usage),
    path("dashboard/billing/subscription", dashboard.subscription),
    path("dashboard/billing/usage", dashboard.usage),
]
