"""Which channel created a response, shared by every worker through the database.

A response lives at the provider account that produced it, so GET/DELETE/input_items/cancel and a
request that continues it (`previous_response_id`) must reach that channel. Answers converted from
chat completions are ours alone: their conversation items are kept here (bounded in size and kept
for RETENTION_SECONDS, like every record) so that they can be retrieved and continued.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import orjson
from asgiref.sync import sync_to_async

from relay.models import StoredResponse

RETENTION_SECONDS = 7 * 24 * 3600
MAX_STORED_BYTES = 1 << 20  # a converted conversation larger than this is not kept for continuing
PURGE_CHANCE = 0.01  # expired records are removed now and then, by whoever writes


@dataclass(slots=True)
class Stored:
    id: str
    channel_id: int
    key_index: int  # the key of a multi-key channel that made it; -1 for a single-key channel
    native: bool
    items: list[dict[str, Any]] | None  # None: not kept (too large, or a native answer)
    response: dict[str, Any] | None


def _remember(
    response_id: str,
    user_id: int,
    channel_id: int,
    key_index: int,
    native: bool,
    items: list[dict[str, Any]] | None,
    response: dict[str, Any] | None,
) -> None:
    now = int(time.time())
    items_json = orjson.dumps(items).decode() if items is not None else ""
    response_json = orjson.dumps(response).decode() if response is not None else ""
    if len(items_json) + len(response_json) > MAX_STORED_BYTES:
        items_json = ""
    StoredResponse.objects.update_or_create(
        id=response_id,
        defaults={
            "user_id": user_id,
            "channel_id": channel_id,
            "key_index": key_index,
            "created_at": now,
            "native": native,
            "input_items": items_json,
            "response": response_json,
        },
    )
    if random.random() < PURGE_CHANCE:
        StoredResponse.objects.filter(created_at__lt=now - RETENTION_SECONDS).delete()


async def remember(
    response_id: str,
    user_id: int,
    channel_id: int,
    key_index: int,
    native: bool,
    items: list[dict[str, Any]] | None = None,
    response: dict[str, Any] | None = None,
) -> None:
    await sync_to_async(_remember)(response_id, user_id, channel_id, key_index, native, items, response)


def _recall(response_id: str, user_id: int) -> Stored | None:
    row = (
        StoredResponse.objects.filter(
            id=response_id, user_id=user_id, created_at__gte=int(time.time()) - RETENTION_SECONDS
        )
        .only("id", "channel_id", "key_index", "native", "input_items", "response")
        .first()
    )
    if row is None:
        return None
    items = orjson.loads(row.input_items) if row.input_items else None
    response = orjson.loads(row.response) if row.response else None
    return Stored(row.id, row.channel_id, row.key_index, row.native, items, response)


async def recall(response_id: str, user_id: int) -> Stored | None:
    """The caller's own record of `response_id`, while it is kept; None otherwise."""
    return await sync_to_async(_recall)(response_id, user_id)


def _forget(response_id: str, user_id: int) -> bool:
    deleted, _ = StoredResponse.objects.filter(id=response_id, user_id=user_id).delete()
    return deleted > 0


async def forget(response_id: str, user_id: int) -> bool:
    return await sync_to_async(_forget)(response_id, user_id)
