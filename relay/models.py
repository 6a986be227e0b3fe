"""Channels (upstream providers) and abilities (the routing index derived from them)."""

from __future__ import annotations

import json
from typing import Any

from django.db import models as dj
from django.utils.translation import gettext_lazy as _

from accounts.models import now_ts
from relay.channels.multi_key import dump_info, empty_info, parse_info
from relay.channels.types import ChannelStatus, ChannelType

CHANNEL_ENABLED = ChannelStatus.ENABLED
CHANNEL_MANUALLY_DISABLED = ChannelStatus.MANUALLY_DISABLED
CHANNEL_AUTO_DISABLED = ChannelStatus.AUTO_DISABLED


class ChannelInfoField(dj.TextField):
    """New API's `channel_info` column: a JSON document in a column of type json on every
    database (as New API creates it), read as a dict whatever the driver hands back (text, bytes,
    or already decoded), written as JSON text. No JSON check constraint: New API writes bytes."""

    def db_type(self, connection) -> str:
        return "json"

    def from_db_value(self, value, expression, connection):
        return None if value is None else parse_info(value)

    def to_python(self, value):
        return value if value is None or isinstance(value, dict) else parse_info(value)

    def get_prep_value(self, value):
        if value is None or isinstance(value, str):
            return value
        return json.dumps(dump_info(value), ensure_ascii=False, separators=(",", ":"))


class Channel(dj.Model):
    type = dj.BigIntegerField(_("type"), default=ChannelType.OPENAI)
    key = dj.TextField(_("key"))
    openai_organization = dj.TextField(_("OpenAI organization"), null=True, blank=True)
    test_model = dj.TextField(_("test model"), null=True, blank=True)
    status = dj.BigIntegerField(_("status"), default=CHANNEL_ENABLED)
    name = dj.CharField(_("name"), max_length=191, null=True, blank=True, default="", db_index=True)
    weight = dj.BigIntegerField(_("weight"), null=True, blank=True, default=0)
    created_time = dj.BigIntegerField(_("created"), null=True, blank=True, default=now_ts)
    test_time = dj.BigIntegerField(_("last test"), null=True, blank=True, default=0)
    response_time = dj.BigIntegerField(_("response time (ms)"), null=True, blank=True, default=0)
    base_url = dj.TextField(_("base URL"), null=True, blank=True, default="")
    other = dj.TextField(_("extra parameter"), null=True, blank=True, default="")
    balance = dj.FloatField(_("balance"), null=True, blank=True, default=0)
    balance_updated_time = dj.BigIntegerField(_("balance updated"), null=True, blank=True, default=0)
    models = dj.TextField(_("models"), null=True, blank=True, default="")
    group = dj.CharField(_("group"), max_length=64, null=True, blank=True, default="default")
    used_quota = dj.BigIntegerField(_("used quota"), default=0)
    model_mapping = dj.TextField(_("model mapping"), null=True, blank=True, default="")
    status_code_mapping = dj.CharField(
        _("status code mapping"), max_length=1024, null=True, blank=True, default=""
    )
    priority = dj.BigIntegerField(_("priority"), null=True, blank=True, default=0)
    auto_ban = dj.BigIntegerField(_("auto-disable"), null=True, blank=True, default=1)
    other_info = dj.TextField(_("other info"), null=True, blank=True, default="")
    tag = dj.CharField(_("tag"), max_length=191, null=True, blank=True, db_index=True)
    setting = dj.TextField(_("extra settings"), null=True, blank=True, default="")
    param_override = dj.TextField(_("parameter override"), null=True, blank=True, default="")
    channel_info: Any = ChannelInfoField(  # a dict (or None), not the text underneath
        _("multi-key info"), null=True, blank=True, default=empty_info
    )

    class Meta:
        db_table = "channels"
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return f"#{self.pk} {self.name or ''}".strip()

    def model_list(self) -> list[str]:
        return [m.strip() for m in (self.models or "").split(",") if m.strip()]

    def group_list(self) -> list[str]:
        return [g.strip() for g in (self.group or "").split(",") if g.strip()]


class Ability(dj.Model):
    pk = dj.CompositePrimaryKey("group", "model", "channel_id")
    group = dj.CharField(_("group"), max_length=64)
    model = dj.CharField(_("model"), max_length=255)
    channel_id = dj.BigIntegerField(_("channel ID"), db_index=True)
    enabled = dj.BooleanField(_("enabled"), default=True)
    priority = dj.BigIntegerField(_("priority"), null=True, blank=True, default=0, db_index=True)
    weight = dj.BigIntegerField(_("weight"), default=0, db_index=True)
    tag = dj.CharField(_("tag"), max_length=191, null=True, blank=True, db_index=True)

    class Meta:
        db_table = "abilities"
        verbose_name = _("ability")
        verbose_name_plural = _("abilities")


class StoredResponse(dj.Model):
    """A /v1/responses answer's channel (so follow-ups reach the account that holds it) and, for
    answers converted from chat, the items a `previous_response_id` continues from."""

    id = dj.CharField(_("response ID"), max_length=191, primary_key=True)
    user_id = dj.BigIntegerField(_("user ID"), db_index=True)
    channel_id = dj.BigIntegerField(_("channel ID"))
    key_index = dj.IntegerField(_("key index"), default=-1)  # the key of a multi-key channel that made it
    created_at = dj.BigIntegerField(_("created"), db_index=True)
    native = dj.BooleanField(_("native"), default=True)
    input_items = dj.TextField(_("input items"), blank=True, default="")  # JSON list; converted answers only
    response = dj.TextField(
        _("response"), blank=True, default=""
    )  # the Response object; converted answers only

    class Meta:
        db_table = "stored_responses"
        verbose_name = _("stored response")
        verbose_name_plural = _("stored responses")
