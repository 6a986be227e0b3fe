"""LOG_SQL_DSN: consume and error logs in their own database.

With a "logs" database configured, the logs table is read, written and migrated there alone;
everything else stays on the default database. Without one this router has no opinion.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

LOGS_DB = "logs"
_LOG_MODEL = ("billing", "log")


def _is_log(model: Any) -> bool:
    return (model._meta.app_label, model._meta.model_name) == _LOG_MODEL


class LogsRouter:
    def _split(self) -> bool:
        return LOGS_DB in settings.DATABASES

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return LOGS_DB if self._split() and _is_log(model) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return LOGS_DB if self._split() and _is_log(model) else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if not self._split():
            return None
        is_log = (app_label, model_name) == _LOG_MODEL
        if db == LOGS_DB:
            return is_log
        return False if is_log else None
