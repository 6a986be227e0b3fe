"""Every `/api/*` route: the schema, then each app's own list (a composition root, like urls.py).

Patterns are anchored, so the order of the lists does not decide which view answers.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from accounts.api.urls import urlpatterns as accounts_urls
from billing.api.urls import urlpatterns as billing_urls
from relay.api.urls import urlpatterns as relay_urls
from tasks.api_urls import urlpatterns as tasks_urls

from .schema import SchemaView

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^schema/?$", SchemaView.as_view(), name="api-schema"),
    *accounts_urls,
    *billing_urls,
    *relay_urls,
    *tasks_urls,
]
