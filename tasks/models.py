"""Midjourney tasks (table `midjourneys`) and generic async tasks such as Suno (table `tasks`)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import now_ts


class Midjourney(models.Model):
    code = models.BigIntegerField(default=0)
    user_id = models.BigIntegerField(db_index=True)
    action = models.CharField(max_length=40, db_index=True, default="")
    mj_id = models.CharField(max_length=191, db_index=True, default="")
    prompt = models.TextField(null=True, blank=True, default="")
    prompt_en = models.TextField(null=True, blank=True, default="")
    description = models.TextField(null=True, blank=True, default="")
    state = models.TextField(null=True, blank=True, default="")
    submit_time = models.BigIntegerField(default=0, db_index=True)
    start_time = models.BigIntegerField(default=0, db_index=True)
    finish_time = models.BigIntegerField(default=0, db_index=True)
    image_url = models.TextField(null=True, blank=True, default="")
    status = models.CharField(max_length=20, null=True, blank=True, default="", db_index=True)
    progress = models.CharField(max_length=30, null=True, blank=True, default="", db_index=True)
    fail_reason = models.TextField(null=True, blank=True, default="")
    channel_id = models.BigIntegerField(default=0)
    quota = models.BigIntegerField(default=0)
    # Ours, not New API's: the token charged, so a failed task refunds the token as well as the user.
    token_id = models.BigIntegerField(default=0)
    buttons = models.TextField(null=True, blank=True, default="")
    properties = models.TextField(null=True, blank=True, default="")

    class Meta:
        db_table = "midjourneys"
        verbose_name = _("Midjourney task")
        verbose_name_plural = _("Midjourney tasks")


class Task(models.Model):
    created_at = models.BigIntegerField(default=now_ts, db_index=True)
    updated_at = models.BigIntegerField(default=now_ts)
    task_id = models.CharField(max_length=50, db_index=True, default="")
    platform = models.CharField(max_length=30, db_index=True, default="")
    user_id = models.BigIntegerField(db_index=True)
    channel_id = models.BigIntegerField(default=0, db_index=True)
    quota = models.BigIntegerField(default=0)
    token_id = models.BigIntegerField(default=0)  # ours: refunds reach the token too
    action = models.CharField(max_length=40, db_index=True, default="")
    status = models.CharField(max_length=20, db_index=True, default="")
    fail_reason = models.TextField(null=True, blank=True, default="")
    submit_time = models.BigIntegerField(default=0, db_index=True)
    start_time = models.BigIntegerField(default=0, db_index=True)
    finish_time = models.BigIntegerField(default=0, db_index=True)
    progress = models.CharField(max_length=20, db_index=True, default="")
    properties = models.JSONField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "tasks"
        verbose_name = _("Suno task")
        verbose_name_plural = _("Suno tasks")
