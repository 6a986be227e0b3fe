"""Filters for the console pages: quota shown as New API shows it, timestamps as dates."""

from __future__ import annotations

import datetime

from django import template

from newapi_site.options import options

register = template.Library()


@register.filter
def quota(value: int | None) -> str:
    """In currency ($) when the site displays currency, else in raw quota units."""
    amount = int(value or 0)
    if options.get_bool("DisplayInCurrencyEnabled"):
        per_unit = options.get_float("QuotaPerUnit", 500000) or 500000
        return f"${amount / per_unit:,.6f}".rstrip("0").rstrip(".") if amount else "$0"
    return f"{amount:,}"


@register.filter
def unix_time(value: int | None) -> str:
    if not value or int(value) <= 0:
        return "-"
    return datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
