"""Helpers every app's console pages share: columns, filters, partial saves and the role rule.

New API's tables link rows by plain integer ids (`tokens.user_id`, `logs.channel_id`), not foreign
keys, so user columns are rendered from an annotated username. The user model is Django's
AUTH_USER_MODEL (get_user_model), so this floor module never imports the accounts app.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .options import options


# -- the role rule (the same as /api) ---------------------------------------------------------
def may_act_on(actor: Any, role: int | None, user_id: int | None = None) -> bool:
    """Root acts on everyone; an admin on users of a lower role (and on their own rows when
    `user_id` is theirs and the caller allows it)."""
    if actor.is_superuser:
        return True
    if user_id is not None and user_id == actor.pk:
        return True
    return role is not None and role < actor.role


def with_owner_role(queryset: QuerySet, field: str = "user_id") -> QuerySet:
    """Annotate `owner_role` (the role of the user a row belongs to): one query, filterable."""
    roles = get_user_model().objects.filter(pk=OuterRef(field)).values("role")[:1]
    return queryset.annotate(owner_role=Subquery(roles))


def owner_role(obj: Any, field: str = "user_id") -> int | None:
    if hasattr(obj, "owner_role"):
        return obj.owner_role
    return get_user_model().objects.filter(pk=getattr(obj, field)).values_list("role", flat=True).first()


# -- shared helpers (also used by relay, billing and tasks admin modules) --------------------
def format_ts(ts: int | None, millis: bool = False) -> str:
    """Unix seconds (or milliseconds, for Midjourney) as a local datetime; 0/None as a dash."""
    if not ts:
        return "-"
    seconds = ts / 1000 if millis else ts
    try:
        moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return str(ts)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def quota_in_usd(quota: int | None) -> str:
    per_unit = options.get_float("QuotaPerUnit", 500000.0) or 500000.0
    return f"${(quota or 0) / per_unit:,.2f}"


def label_of(choices: Iterable[tuple[Any, Any]], value: Any) -> str:
    return str(dict(choices).get(value, gettext("unknown (%(value)s)") % {"value": value}))


def with_username(queryset: QuerySet, field: str = "user_id") -> QuerySet:
    """Annotate `username_` from users by a plain id column: one query, sortable."""
    names = get_user_model().objects.filter(pk=OuterRef(field)).values("username")[:1]
    return queryset.annotate(username_=Subquery(names))


def user_link(user_id: int | None, username: str | None) -> str:
    if not user_id:
        return "-"
    meta = get_user_model()._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[user_id])
    missing = gettext("#%(id)s (missing)") % {"id": user_id}
    return format_html('<a href="{}">{}</a>', url, username or missing)


def choices_filter(field: str, title: Any, choices: list[tuple[Any, Any]]) -> type[admin.SimpleListFilter]:
    """A list filter that shows labels for an integer code column without model choices."""

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
            return [(str(value), label) for value, label in choices]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            if value is None:
                return queryset
            try:
                return queryset.filter(**{field: int(value)})
            except ValueError:
                return queryset.none()

    ChoicesFilter.title = title
    ChoicesFilter.__name__ = f"{field.title()}Filter"
    return ChoicesFilter


_TIME_RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def time_range_filter(field: str, title: Any = None, millis: bool = False) -> type[admin.SimpleListFilter]:
    """date_hierarchy needs a date column; New API stores Unix integers, so filter by recent windows."""

    class TimeRangeFilter(admin.SimpleListFilter):
        parameter_name = f"{field}_range"

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
            return [
                ("1h", _("Last hour")),
                ("24h", _("Last 24 hours")),
                ("7d", _("Last 7 days")),
                ("30d", _("Last 30 days")),
                ("older", _("Older than 30 days")),
            ]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            value = self.value()
            scale = 1000 if millis else 1
            if value in _TIME_RANGES:
                return queryset.filter(**{f"{field}__gte": (int(time.time()) - _TIME_RANGES[value]) * scale})
            if value == "older":
                return queryset.filter(**{f"{field}__lt": (int(time.time()) - _TIME_RANGES["30d"]) * scale})
            return queryset

    TimeRangeFilter.title = title if title is not None else _("time")
    return TimeRangeFilter


class DeletedFilter(admin.SimpleListFilter):
    """Soft-deleted rows (deleted_at set) are kept by New API; show them on request."""

    title = _("deleted")
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return [("no", _("No")), ("yes", _("Yes"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("no", "yes"):
            return queryset.filter(deleted_at__isnull=self.value() == "no")
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the gateway itself (logs, usage, tasks): browse and search, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def save_changed_fields(obj: models.Model, form: forms.ModelForm, skip: Iterable[str] = ()) -> None:
    """Write only the columns the form changed.

    The gateway keeps updating counters (used_quota, request_count, balances, response_time) while
    a form is open; a full-row save would write the stale values back. Model.save() still runs,
    so post_save signals (cache invalidation, abilities) fire.
    """
    columns = {f.name for f in obj._meta.concrete_fields}
    names = [n for n in form.changed_data if n in columns and n not in set(skip)]
    if names:
        obj.save(update_fields=names)


def value_seen(form: forms.ModelForm, name: str) -> int:
    """The value the admin saw when the form was rendered (a field with show_hidden_initial)."""
    raw: Any = form.data.get(form.add_initial_prefix(name))
    try:
        return int(raw)
    except (TypeError, ValueError):
        return int(form.initial.get(name) or 0)


def save_each(request: HttpRequest, modeladmin: admin.ModelAdmin, queryset: QuerySet, **changes: Any) -> int:
    """Bulk actions save row by row so post_save signals (cache invalidation, abilities) fire."""
    count = 0
    for obj in queryset:
        for name, value in changes.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(changes))
        count += 1
    text = ngettext("Updated %(count)d row.", "Updated %(count)d rows.", count) % {"count": count}
    modeladmin.message_user(request, text, messages.SUCCESS)
    return count


def compare_with_seen(form: forms.ModelForm, skip: Iterable[str] = ()) -> None:
    """Make `changed_data` compare each field with the value the page showed (a hidden input),
    not with the row as it is at submit time: a column the gateway or another admin changed while
    the form was open (an auto-disable, a ban, a balance) is then not written back."""
    for name, field in form.fields.items():
        if name not in skip and not field.disabled:
            field.show_hidden_initial = True
