"""The runtime settings store: the `options` table over the code defaults (option_defaults.py).

Values are strings in the table (bools "true"/"false", numbers in decimal, maps as JSON).
Every process keeps a parsed copy in memory; `update_option` writes the row and publishes
an invalidation so every process reloads (see newapi_site/bus.py).

The table's model belongs to accounts, which migrates it and binds it here from its
AppConfig.ready: the platform floor reads and writes the rows without importing an app.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from django.db import models

from newapi_site import bus

from .option_defaults import DEFAULT_OPTIONS

_table: type[models.Model] | None = None


def bind_table(model: type[models.Model]) -> None:
    """Name the model over the `options` table (key, value); accounts calls it at start-up."""
    global _table
    _table = model


def _model() -> Any:
    if _table is None:
        raise RuntimeError("the options table is not bound: is accounts in INSTALLED_APPS?")
    return _table


# Case-insensitive: oidc.client_secret is as secret as GitHubClientSecret.
_SECRET_SUFFIXES = ("token", "secret", "key")


class OptionStore:
    def __init__(self) -> None:
        self._values: dict[str, str] | None = None
        self._stale = False
        self._generation = 0
        self._parsed: dict[str, Any] = {}
        self._lock = threading.Lock()
        bus.subscribe("options", lambda _event: self.invalidate())

    # -- loading ---------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """False when never loaded or marked stale; the relay then reloads off the event loop."""
        return self._values is not None and not self._stale

    def load(self) -> None:
        generation = self._generation
        values = dict(DEFAULT_OPTIONS)
        values.update({row.key: row.value or "" for row in _model().objects.all()})
        with self._lock:
            self._values = values
            self._parsed = {}
            # A change announced while we read may not be in what we read: load again next time.
            self._stale = generation != self._generation

    def invalidate(self) -> None:
        # Keep serving the old values until the next load: an invalidation arriving from the
        # listener thread must never force a synchronous DB read inside the event loop.
        self._generation += 1
        self._stale = True

    def _all(self) -> dict[str, str]:
        values = self._values
        if values is None or (self._stale and not _in_event_loop()):
            self.load()
            values = self._values
        assert values is not None
        return values

    # -- typed getters -----------------------------------------------------------
    def get(self, key: str, default: str = "") -> str:
        return self._all().get(key, default)

    def get_bool(self, key: str) -> bool:
        return self.get(key) == "true"

    def get_int(self, key: str, default: int = 0) -> int:
        try:
            return int(float(self.get(key, str(default))))
        except ValueError:
            return default

    def get_float(self, key: str, default: float = 0.0) -> float:
        try:
            return float(self.get(key, str(default)))
        except ValueError:
            return default

    def get_json(self, key: str, default: Any = None) -> Any:
        parsed = self._parsed.get(key, _MISSING)
        if parsed is _MISSING:
            raw = self.get(key)
            try:
                parsed = json.loads(raw) if raw else default
            except ValueError:
                parsed = default
            self._parsed[key] = parsed
        return parsed

    def as_public_list(self) -> list[dict[str, str]]:
        """All options for GET /api/option/: keys ending in token/secret/key (any case) are hidden."""
        return [
            {"key": k, "value": v}
            for k, v in sorted(self._all().items())
            if not k.lower().endswith(_SECRET_SUFFIXES)
        ]


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_MISSING = object()
options = OptionStore()


def update_option(key: str, value: str) -> None:
    _model().objects.update_or_create(key=key, defaults={"value": value})
    bus.publish("options")
