"""The console's view of a multi-key channel's keys (relay/channels/multi_key.py).

The change page lists every key by index with a short preview (never the key), its status, and
why and when it was disabled; a disabled key has an "enable" button. The list page has an action
that enables every key of the selected channels. Both go through relay/channels/key_status.py, as
POST /api/channel/multi_key/manage does, so the channel's own status follows its keys.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from newapi_site import audit
from newapi_site.admin_common import format_ts
from relay.channels import key_status, multi_key
from relay.models import Channel

KEY_STATUS_NAMES = {
    multi_key.KEY_ENABLED: _("enabled"),
    multi_key.KEY_MANUALLY_DISABLED: _("disabled (manually)"),
    multi_key.KEY_AUTO_DISABLED: _("disabled (automatically)"),
}


def is_multi_key(channel: Channel | None) -> bool:
    return channel is not None and bool(multi_key.parse_info(channel.channel_info)["is_multi_key"])


def rekeyed(channel: Channel) -> list[str]:
    """After the admin typed new keys into a multi-key channel: one key per line, the key count
    updated and every status started over (the old indices named other keys). The extra columns to save."""
    info = multi_key.parse_info(channel.channel_info)
    if not info["is_multi_key"]:
        return []
    keys = multi_key.clean_keys(channel.key)
    channel.key = "\n".join(keys)
    for name in ("multi_key_status_list", "multi_key_disabled_reason", "multi_key_disabled_time"):
        info[name] = {}
    info.update(multi_key_size=len(keys), multi_key_polling_index=0)
    channel.channel_info = info
    return ["channel_info"]


class MultiKeyAdminMixin(admin.ModelAdmin):
    @admin.display(description=_("keys (multi-key channel)"))
    def key_statuses(self, obj: Channel) -> str:
        info = multi_key.parse_info(obj.channel_info)
        keys = multi_key.split_keys(obj.key)
        reasons = info.get("multi_key_disabled_reason", {})
        times = info.get("multi_key_disabled_time", {})
        rows = []
        for i, key in enumerate(keys):
            status = multi_key.key_status(info, i)
            button = ""
            if status != multi_key.KEY_ENABLED:
                url = reverse("admin:relay_channel_enable_key", args=[obj.pk, i])
                # the change form's own submit, sent elsewhere: its CSRF token comes along
                button = format_html(
                    '<button type="submit" formaction="{}" formmethod="post" formnovalidate>{}</button>',
                    url,
                    gettext("enable"),
                )
            rows.append(
                (
                    i,
                    multi_key.preview(key),
                    KEY_STATUS_NAMES.get(status, str(status)),
                    reasons.get(i, "") if status != multi_key.KEY_ENABLED else "",
                    format_ts(times.get(i, 0)) if status != multi_key.KEY_ENABLED else "",
                    button,
                )
            )
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        polling = info["multi_key_mode"] == multi_key.MODE_POLLING
        summary = (
            gettext("%(n)d keys, chosen in turn per request.")
            if polling
            else gettext("%(n)d keys, chosen at random per request.")
        ) % {"n": len(keys)}
        head = format_html_join(
            "", "<th>{}</th>", ((name,) for name in (_("key"), _("status"), _("reason"), _("disabled at")))
        )
        return format_html(
            "<p>{}</p><table><thead><tr><th>#</th>{}<th></th></tr></thead><tbody>{}</tbody></table>",
            summary,
            head,
            body,
        )

    @admin.action(description=_("Enable every key of the selected multi-key channels"))
    def enable_all_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            if not is_multi_key(channel):
                continue
            outcome = key_status.manage(channel.pk, "enable_all_keys")
            self.message_user(request, f"{channel}: {outcome.message}", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:object_id>/keys/<int:index>/enable/",
                self.admin_site.admin_view(self.enable_key_view),
                name="relay_channel_enable_key",
            )
        ]
        return own + super().get_urls()

    def enable_key_view(self, request: HttpRequest, object_id: int, index: int) -> HttpResponse:
        channel = Channel.objects.filter(pk=object_id).first()
        if request.method != "POST" or not self.has_change_permission(request, channel):
            raise PermissionDenied
        try:
            outcome = key_status.manage(object_id, "enable_key", index)
        except key_status.KeyActionError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            audit.record(request, channel or Channel, "enable_key", index=index)
            self.message_user(
                request,
                gettext("key #%(index)d: %(message)s") % {"index": index, "message": outcome.message},
                messages.SUCCESS,
            )
        return redirect(reverse("admin:relay_channel_change", args=[object_id]))

    def key_fieldsets(self, obj: Any) -> list:
        return [(_("Keys"), {"fields": ["key_statuses"]})] if is_multi_key(obj) else []
