"""Midjourney tasks (table `midjourneys`) and generic async tasks such as Suno (table `tasks`)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import now_ts


class Midjourney(models.Model):
    code = models.BigIntegerField(_("result code"), default=0)
    user_id = models.BigIntegerField(_("user ID"), db_index=True)
    action = models.CharField(_("action"), max_length=40, db_index=True, default="")
    mj_id = models.CharField(_("task ID"), max_length=191, db_index=True, default="")
    prompt = models.TextField(_("prompt"), null=True, blank=True, default="")
    prompt_en = models.TextField(_("prompt (English)"), null=True, blank=True, default="")
    description = models.TextField(_("description"), null=True, blank=True, default="")
    state = models.TextField(_("custom state"), null=True, blank=True, default="")
    submit_time = models.BigIntegerField(_("submitted"), default=0, db_index=True)
    start_time = models.BigIntegerField(_("started"), default=0, db_index=True)
    finish_time = models.BigIntegerField(_("finished"), default=0, db_index=True)
    image_url = models.TextField(_("image URL"), null=True, blank=True, default="")
    status = models.CharField(_("status"), max_length=20, null=True, blank=True, default="", db_index=True)
    progress = models.CharField(
        _("progress"), max_length=30, null=True, blank=True, default="", db_index=True
    )
    fail_reason = models.TextField(_("fail reason"), null=True, blank=True, default="")
    channel_id = models.BigIntegerField(_("channel ID"), default=0)
    quota = models.BigIntegerField(_("quota"), default=0)
    # Ours, not New API's: the token charged, so a failed task refunds the token as well as the user.
    token_id = models.BigIntegerField(_("token ID"), default=0)
    buttons = models.TextField(_("buttons"), null=True, blank=True, default="")
    properties = models.TextField(_("properties"), null=True, blank=True, default="")

    class Meta:
        db_table = "midjourneys"
        verbose_name = _("Midjourney task")
        verbose_name_plural = _("Midjourney tasks")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class Task(models.Model):
    created_at = models.BigIntegerField(_("created"), default=now_ts, db_index=True)
    updated_at = models.BigIntegerField(_("updated"), default=now_ts)
    task_id = models.CharField(_("task ID"), max_length=50, db_index=True, default="")
    platform = models.CharField(_("platform"), max_length=30, db_index=True, default="")
    user_id = models.BigIntegerField(_("user ID"), db_index=True)
    channel_id = models.BigIntegerField(_("channel ID"), default=0, db_index=True)
    quota = models.BigIntegerField(_("quota"), default=0)
    token_id = models.BigIntegerField(_("token ID"), default=0)  # ours: refunds reach the token too
    action = models.CharField(_("action"), max_length=40, db_index=True, default="")
    status = models.CharField(_("status"), max_length=20, db_index=True, default="")
    fail_reason = models.TextField(_("fail reason"), null=True, blank=True, default="")
    submit_time = models.BigIntegerField(_("submitted"), default=0, db_index=True)
    start_time = models.BigIntegerField(_("started"), default=0, db_index=True)
    finish_time = models.BigIntegerField(_("finished"), default=0, db_index=True)
    progress = models.CharField(_("progress"), max_length=20, db_index=True, default="")
    properties = models.JSONField(_("properties"), null=True, blank=True)
    data = models.JSONField(_("data"), null=True, blank=True)

    class Meta:
        db_table = "tasks"
        verbose_name = _("Suno task")
        verbose_name_plural = _("Suno tasks")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"
