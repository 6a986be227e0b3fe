"""Exactly-once writes of settlements, and keeping one bad row from blocking the others.

- `settlement.claim_ids` (inside the batch's transaction) records each settlement's id in our own
  table `billing_applied_settlements` and drops the ids already there. Recording comes first, so
  two writers racing on the same ids (a crash recovery and a slow owner) serialize on the primary
  key: the second one fails with a unique violation and its retry finds the ids taken.
- `apply_isolated` writes a batch in one transaction and, when the database rejects it, row by
  row: the good rows are billed, the rows the database still rejects are returned to the caller
  (who dead-letters them). When the database itself is unreachable nothing is dropped: the error
  propagates and the caller retries the whole batch later.
- `prune_applied` deletes ids old enough that no batch still in processing can contain them.

Usable by any write-behind (the Redis writer, an embedded journal): give each settlement an id
with `settlement.new_id()` when it is created and call `apply_isolated` on the batches.
"""

from __future__ import annotations

import logging
import time

from django.db import connection, transaction
from django.db.utils import InterfaceError, OperationalError

from .models import AppliedSettlement
from .settlement import Settlement, apply_settlements, is_applied

log = logging.getLogger("newapi.billing")


def _connection_errors() -> tuple[type[BaseException], ...]:
    # psycopg's COPY is not wrapped by Django, so the driver's own classes count too.
    db = connection.Database  # type: ignore[attr-defined]
    return (OperationalError, InterfaceError, db.OperationalError, db.InterfaceError)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # any failure means "not now"
        return False


def log_rejected(s: Settlement, error: Exception) -> None:
    log.error(
        "billing: settlement %s (user %s, channel %s, model %r, quota %s) rejected by the database, "
        "dead-lettered: %s",
        s.id,
        s.user_id,
        s.channel_id,
        s.model_name[:80],
        s.quota,
        error,
    )


def apply_isolated(batch: list[Settlement]) -> list[tuple[Settlement, Exception]]:
    """Apply `batch` once (ids recorded); return the settlements the database rejects, with why.

    Raises when the database cannot be reached, so that nothing is dropped during an outage."""
    try:
        apply_settlements(batch, once=True)
        return []
    except Exception as exc:
        log.warning("billing batch of %d rejected (%s); retrying row by row", len(batch), exc)
    failed: list[tuple[Settlement, Exception]] = []
    for s in batch:
        error = _apply_one(s)
        if error is not None:
            failed.append((s, error))
    return failed


def _apply_one(s: Settlement, attempts: int = 3) -> Exception | None:
    connection_errors = _connection_errors()
    for attempt in range(attempts):
        try:
            apply_settlements([s], once=True)
            return None
        except Exception as exc:
            if is_applied(s.id):  # another writer applied it meanwhile (a lost race on the id)
                return None
            if not isinstance(exc, connection_errors):
                return exc  # the data: trying again cannot help
            if not _database_answers():
                raise
            if attempt == attempts - 1:
                return exc  # a deadlock or lock timeout every time, while other rows go through
            time.sleep(0.05 * (attempt + 1))
    return None


def prune_applied(older_than: float) -> int:
    """Forget ids recorded before `older_than` (unix time); returns how many were deleted."""
    with transaction.atomic():
        return AppliedSettlement.objects.filter(created_at__lt=int(older_than))._raw_delete(
            AppliedSettlement.objects.db
        )
