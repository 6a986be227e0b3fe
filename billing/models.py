"""Logs, hourly usage rollups, redemption codes and top-up orders (New API tables)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import now_ts

LOG_UNKNOWN, LOG_TOPUP, LOG_CONSUME, LOG_MANAGE, LOG_SYSTEM = 0, 1, 2, 3, 4
REDEMPTION_ENABLED, REDEMPTION_DISABLED, REDEMPTION_USED = 1, 2, 3


class Log(models.Model):
    user_id = models.BigIntegerField(_("user ID"), null=True, db_index=True)
    created_at = models.BigIntegerField(_("time"), default=now_ts)
    type = models.BigIntegerField(_("type"), default=LOG_UNKNOWN)
    content = models.TextField(_("content"), null=True, blank=True, default="")
    username = models.CharField(
        _("username"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    token_name = models.CharField(
        _("token name"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    model_name = models.CharField(
        _("model"), max_length=191, null=True, blank=True, default="", db_index=True
    )
    quota = models.BigIntegerField(_("quota"), default=0)
    prompt_tokens = models.BigIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.BigIntegerField(_("completion tokens"), default=0)
    use_time = models.BigIntegerField(_("time taken (s)"), default=0)
    is_stream = models.BooleanField(_("stream"), default=False)
    channel_id = models.BigIntegerField(_("channel ID"), null=True, blank=True, db_index=True)
    channel_name = models.TextField(_("channel name"), null=True, blank=True)
    token_id = models.BigIntegerField(_("token ID"), default=0, db_index=True)
    group = models.CharField(_("group"), max_length=191, null=True, blank=True, default="", db_index=True)
    other = models.TextField(_("details"), null=True, blank=True, default="")

    class Meta:
        db_table = "logs"
        verbose_name = _("log")
        verbose_name_plural = _("logs")
        indexes = [
            models.Index(fields=["id", "created_at"], name="idx_created_at_id"),
            models.Index(fields=["created_at", "type"], name="idx_created_at_type"),
            models.Index(fields=["model_name", "username"], name="index_username_model_name"),
            # A user's newest page, an admin search by token and model, a user's stats over a time range;
            # the stats index carries the summed columns so PostgreSQL answers from the index alone.
            models.Index(fields=["user_id", "id"], name="idx_logs_user_id_id"),
            models.Index(fields=["token_name", "model_name", "id"], name="idx_logs_token_model_id"),
            models.Index(
                fields=["user_id", "type", "created_at", "quota", "prompt_tokens", "completion_tokens"],
                name="idx_logs_user_type_usage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class QuotaData(models.Model):
    user_id = models.BigIntegerField(_("user ID"), db_index=True)
    username = models.CharField(_("username"), max_length=64, default="")
    model_name = models.CharField(_("model"), max_length=64, default="")
    created_at = models.BigIntegerField(_("hour"), db_index=True)
    token_used = models.BigIntegerField(_("tokens used"), default=0)
    count = models.BigIntegerField(_("request count"), default=0)
    quota = models.BigIntegerField(_("quota"), default=0)

    class Meta:
        db_table = "quota_data"
        verbose_name = _("hourly usage")
        verbose_name_plural = _("usage by hour")
        indexes = [models.Index(fields=["model_name", "username"], name="idx_qdt_model_user_name")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class Redemption(models.Model):
    user_id = models.BigIntegerField(_("creator ID"), default=0)
    key = models.CharField(_("redemption code"), max_length=32, unique=True)
    status = models.BigIntegerField(_("status"), default=REDEMPTION_ENABLED)
    name = models.CharField(_("name"), max_length=191, null=True, blank=True, default="", db_index=True)
    quota = models.BigIntegerField(_("quota"), default=100)
    created_time = models.BigIntegerField(_("created"), default=now_ts)
    redeemed_time = models.BigIntegerField(_("redeemed at"), default=0)
    used_user_id = models.BigIntegerField(_("redeemed by"), default=0)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, db_index=True)

    class Meta:
        db_table = "redemptions"
        verbose_name = _("redemption code")
        verbose_name_plural = _("redemption codes")

    def __str__(self) -> str:
        return self.name or self.key


class TopUp(models.Model):
    user_id = models.BigIntegerField(_("user ID"), db_index=True)
    amount = models.BigIntegerField(_("amount"), default=0)
    money = models.FloatField(_("paid"), default=0)
    trade_no = models.CharField(_("order number"), max_length=191, default="")
    create_time = models.BigIntegerField(_("created"), default=now_ts)
    status = models.CharField(_("status"), max_length=32, default="pending")

    class Meta:
        db_table = "top_ups"
        verbose_name = _("top-up")
        verbose_name_plural = _("top-ups")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class AppliedSettlement(models.Model):
    """Ids of settlements already written to the database (our table, not New API's): a batch
    re-applied after a crash skips them. Kept only as long as a batch may wait in processing."""

    id = models.CharField(_("settlement ID"), primary_key=True, max_length=64)
    created_at = models.BigIntegerField(_("created"), db_index=True)

    class Meta:
        db_table = "billing_applied_settlements"
        verbose_name = _("applied settlement")
        verbose_name_plural = _("applied settlements")


class JournalMark(models.Model):
    """How far the embedded ledger's journal has been written to the database (one row, id 1);
    advanced in the same transaction as what it covers."""

    id = models.IntegerField(_("mark ID"), primary_key=True)
    segment = models.BigIntegerField(_("segment"))
    position = models.BigIntegerField(_("position"))

    class Meta:
        db_table = "billing_journal_mark"
        verbose_name = _("journal mark")
        verbose_name_plural = _("journal marks")


class DeadSettlement(models.Model):
    """Settlements of the embedded journal the database refused even alone (with Redis they go to
    a Redis list): kept for an operator, counted on the admin index, never retried by us."""

    id = models.CharField(_("settlement ID"), primary_key=True, max_length=64)
    payload = models.TextField(
        _("journal line")
    )  # the journal line as written (JSON, or whatever could not be read)
    error = models.TextField(_("error"))
    created_at = models.BigIntegerField(_("created"), db_index=True)

    class Meta:
        db_table = "billing_dead_settlements"
        verbose_name = _("refused settlement")
        verbose_name_plural = _("refused settlements")


class ChannelUsage(models.Model):
    """The two columns of relay's `channels` table billing touches: the name admin logs show and
    the quota settlement adds to `used_quota`. Unmanaged (relay owns and migrates the table), so
    billing reads and writes them without importing relay."""

    name = models.CharField(_("name"), max_length=191, null=True, blank=True, default="")
    used_quota = models.BigIntegerField(_("used quota"), default=0)

    class Meta:
        managed = False
        db_table = "channels"
        verbose_name = _("channel usage")
        verbose_name_plural = _("channel usage")


class WindowCounter(models.Model):
    """A count per key within a fixed time window, shared by every process through the database:
    notification limits (and other per-window caps) when there is no Redis."""

    key = models.CharField(_("counter key"), max_length=191, unique=True)
    count = models.BigIntegerField(_("count"), default=0)
    expires_at = models.BigIntegerField(_("expires"), db_index=True)

    class Meta:
        db_table = "window_counters"
        verbose_name = _("window counter")
        verbose_name_plural = _("window counters")
