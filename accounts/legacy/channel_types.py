"""remap_channel_types: One API channel type numbers -> New API's (spec management.md §1.14).

Runs once per database, inside the conversion transaction that records it (see adopt.py): the two
numberings overlap (One API 36 DeepSeek is New API 43, and New API 36 is Suno), so a second run
would corrupt the channels.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

Say = Callable[[str], None]
OPENAI, UNKNOWN = 1, 0
CHANNEL_ENABLED, CHANNEL_MANUALLY_DISABLED = 1, 2


@dataclass(frozen=True)
class Remap:
    new_type: int | None  # None: New API has no equivalent, the channel is disabled and kept
    base_url: str = ""  # set when the channel's base_url is empty (One API's default for that type)
    name: str = ""


# Types 0, 1, 3, 6-25 and 31 mean the same in both programs and are not listed.
ONE_API_TYPES: dict[int, Remap] = {
    2: Remap(OPENAI, "https://oa.api2d.net", "API2D"),
    4: Remap(OPENAI, "https://api.closeai-proxy.xyz", "CloseAI"),
    5: Remap(OPENAI, "https://api.openai-sb.com", "OpenAISB"),
    26: Remap(OPENAI, "https://api.baichuan-ai.com", "Baichuan"),
    27: Remap(35, name="Minimax"),
    28: Remap(42, name="Mistral"),
    29: Remap(OPENAI, "https://api.groq.com/openai", "Groq"),
    30: Remap(4, name="Ollama"),
    32: Remap(OPENAI, "https://api.stepfun.com", "StepFun"),
    33: Remap(33, name="AwsClaude"),
    34: Remap(None, name="Coze"),
    35: Remap(34, name="Cohere"),
    36: Remap(43, name="DeepSeek"),
    37: Remap(39, name="Cloudflare"),
    38: Remap(None, name="DeepL"),
    39: Remap(OPENAI, "https://api.together.xyz", "TogetherAI"),
    40: Remap(45, name="Doubao"),
    41: Remap(OPENAI, "https://api.novita.ai/v3/openai", "Novita"),
    42: Remap(41, name="VertexAI"),
    43: Remap(None, name="Proxy"),
    44: Remap(40, name="SiliconFlow"),
    45: Remap(48, name="XAI"),
    46: Remap(None, name="Replicate"),
    47: Remap(46, name="BaiduV2"),
    48: Remap(OPENAI, "https://spark-api-open.xf-yun.com", "XunfeiV2"),
    49: Remap(OPENAI, "https://dashscope.aliyuncs.com/compatible-mode", "AliBailian"),
    50: Remap(OPENAI, name="OpenAICompatible"),
    51: Remap(OPENAI, "https://generativelanguage.googleapis.com/v1beta/openai", "GeminiOpenAICompatible"),
}


def remap_channel_types(connection: BaseDatabaseWrapper, say: Say) -> int:
    """Renumber every channel; returns how many rows changed. Call exactly once per database."""
    qn = connection.ops.quote_name
    changed = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, type, base_url, status, other_info FROM channels")
        rows = cursor.fetchall()
    for channel_id, old_type, base_url, status, other_info in rows:
        remap = ONE_API_TYPES.get(int(old_type or 0))
        if remap is None:
            continue
        sets: dict[str, Any] = {}
        if remap.new_type is None:
            sets["type"] = UNKNOWN
            if status == CHANNEL_ENABLED:
                sets["status"] = CHANNEL_MANUALLY_DISABLED
            sets["other_info"] = _note(other_info, old_type, remap.name)
            say(
                f"  channel {channel_id}: One API type {old_type} {remap.name} has no New API equivalent: disabled, kept"
            )
        else:
            sets["type"] = remap.new_type
            if remap.base_url and not (base_url or "").strip():
                sets["base_url"] = remap.base_url
            say(f"  channel {channel_id}: type {old_type} ({remap.name}) -> {remap.new_type}")
        assignments = ", ".join(f"{qn(col)} = %s" for col in sets)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE channels SET {assignments} WHERE id = %s", [*sets.values(), channel_id])
        changed += 1
    return changed


def _note(other_info: str | None, old_type: int, name: str) -> str:
    try:
        info = json.loads(other_info or "{}")
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    info.update(
        status_reason=f"One API channel type {old_type} ({name}) is not supported; disabled during import",
        status_time=int(time.time()),
        one_api_type=old_type,
    )
    return json.dumps(info, ensure_ascii=False)
