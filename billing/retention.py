"""Log retention: rows older than LogRetentionDays (0 = keep forever) are deleted in batches.

Each batch is its own short statement (ids first, then a delete by primary key), so the table is
never locked for long and the writers keep going while a large backlog is pruned. Celery beat runs
it daily; `manage.py prune_logs` runs it by hand.
"""

from __future__ import annotations

import time

from celery import shared_task
from django.db import router

from newapi_site.options import options

from .models import Log

DAY = 86_400
BATCH = 5_000


def retention_days() -> int:
    return max(options.get_int("LogRetentionDays", 0), 0)


def prune_logs(days: int | None = None, batch: int = BATCH, now: float | None = None) -> int:
    """Delete log rows created more than `days` days ago (the option when None); returns how many."""
    days = retention_days() if days is None else days
    if days <= 0:
        return 0
    cutoff = int(now if now is not None else time.time()) - days * DAY
    db = router.db_for_write(Log)
    total = 0
    while True:
        ids = list(
            Log.objects.using(db)
            .filter(created_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return total
        deleted, _ = Log.objects.using(db).filter(id__in=ids).delete()
        total += deleted


@shared_task(name="billing.prune_logs", ignore_result=True)
def prune_logs_task() -> int:
    return prune_logs()
