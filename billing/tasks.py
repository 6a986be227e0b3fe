"""Celery tasks of billing: delivering notifications off the request path."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from billing import budgets
from billing.notify_send import Undeliverable, deliver

log = logging.getLogger("newapi.notify")


@shared_task(
    name="billing.send_notification",
    ignore_result=True,
    bind=True,
    max_retries=5,
)
def send_notification(self: Any, user_id: int, notice: dict[str, Any]) -> None:
    try:
        outcome = deliver(user_id, notice)
    except Undeliverable as exc:
        log.warning("notification %s for user %s not sent: %s", notice.get("type"), user_id, exc)
        return
    except Exception as exc:
        # Back-off 10 s, 20 s, 40 s…; the API client never sees this.
        log.warning("notification %s for user %s failed: %s", notice.get("type"), user_id, exc)
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from None
    log.info("notification %s for user %s: %s", notice.get("type"), user_id, outcome)


@shared_task(name="billing.reset_budgets", ignore_result=True)
def reset_budgets() -> int:
    return budgets.reset_due()
