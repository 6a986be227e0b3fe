"""A page-size selector for every admin list, remembered per list in the session; the list's title
in the reader's language."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import capfirst
from django.views.decorators.http import require_POST

from .admin_names import MODEL_NAMES

PAGE_SIZES = (20, 50, 100, 200, 500)
SESSION_KEY = "admin_page_size"


class SizedChangeList(ChangeList):
    """ChangeList with the list_per_page the person chose for this model."""

    def __init__(self, request: HttpRequest, model: Any, *args: Any, **kwargs: Any) -> None:
        chosen = request.session.get(SESSION_KEY, {}).get(model._meta.label_lower)
        if chosen in PAGE_SIZES:
            rest = list(args)
            rest[6] = chosen  # list_per_page, after list_display … list_select_related
            args = tuple(rest)
        super().__init__(request, model, *args, **kwargs)
        self.page_sizes = PAGE_SIZES
        # The list's own name, in the reader's language, rather than "Select … to change".
        self.title = str(
            MODEL_NAMES.get(model._meta.label_lower) or capfirst(model._meta.verbose_name_plural)
        )


def install(site: AdminSite) -> None:
    """Every list registered so far gets the selector; call after the apps registered theirs."""
    for model_admin in site._registry.values():
        model_admin.get_changelist = lambda request, **kwargs: SizedChangeList  # type: ignore[method-assign]


@require_POST
def choose(request: HttpRequest) -> HttpResponse:
    """The selector's form: stores the size for one model's list, then back to that list."""
    if not (request.user.is_active and request.user.is_staff):
        return HttpResponseRedirect("/admin/login/")
    try:
        size = int(request.POST.get("page_size", ""))
    except ValueError:
        return HttpResponseBadRequest("page_size")
    label = request.POST.get("model", "")
    if size not in PAGE_SIZES or not label:
        return HttpResponseBadRequest("page_size")
    sizes = dict(request.session.get(SESSION_KEY, {}))
    sizes[label] = size
    request.session[SESSION_KEY] = sizes
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = "/admin/"
    return HttpResponseRedirect(target)
