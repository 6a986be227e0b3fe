"""convert_one_api_rows: rewrite One API's rows into New API's meaning (spec management.md §1.14, §1.15).

All of it is idempotent on its own (every value is derived from a One API column that we never
change), but adopt.py still runs it once, inside the transaction that records the import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from .columns import columns_of, table_names

Say = Callable[[str], None]
ONE_API_USER_DELETED = 3
USER_DISABLED = 2


def convert_one_api_rows(connection: BaseDatabaseWrapper, say: Say) -> None:
    convert_deleted_users(connection, say)
    convert_token_limits(connection, say)
    convert_log_times(connection, say)
    convert_channel_config(connection, say)


def convert_deleted_users(connection: BaseDatabaseWrapper, say: Say) -> int:
    # One API "deletes" by status 3 + a deleted_<uuid> name; New API soft-deletes with deleted_at.
    # The status becomes "disabled" so the row stays locked even if someone clears deleted_at.
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE users SET deleted_at = %s, status = %s WHERE status = %s AND deleted_at IS NULL",
            [now, USER_DISABLED, ONE_API_USER_DELETED],
        )
        count = cursor.rowcount
    say(f"  users: {count} One API deleted user(s) (status 3) soft-deleted")
    return count


def convert_token_limits(connection: BaseDatabaseWrapper, say: Say) -> int:
    cols = columns_of(connection, "tokens")
    has_models, has_subnet = "models" in cols, "subnet" in cols
    if not (has_models or has_subnet):
        return 0
    select = ", ".join(["id", "models" if has_models else "NULL", "subnet" if has_subnet else "NULL"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM tokens")
        rows = cursor.fetchall()
    changed = 0
    for token_id, models_csv, subnet in rows:
        sets: dict[str, Any] = {}
        model_list = _split(models_csv)
        if model_list:
            sets["model_limits"] = ",".join(model_list)
            sets["model_limits_enabled"] = True
        # One API's subnet is a comma list of CIDRs; our relay checks CIDRs, so keep them all.
        ips = _split(subnet)
        if ips:
            sets["allow_ips"] = "\n".join(ips)
        if sets:
            qn = connection.ops.quote_name
            assignments = ", ".join(f"{qn(col)} = %s" for col in sets)
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE tokens SET {assignments} WHERE id = %s", [*sets.values(), token_id])
            changed += 1
    say(f"  tokens: {changed} token(s) got model_limits/allow_ips from One API's models/subnet")
    return changed


def _split(csv: str | None) -> list[str]:
    return [part.strip() for part in (csv or "").split(",") if part.strip()]


def convert_log_times(connection: BaseDatabaseWrapper, say: Say) -> None:
    if "logs" not in table_names(connection):
        return
    cols = columns_of(connection, "logs")
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if "elapsed_time" in cols:
            # milliseconds -> whole seconds, as New API's use_time
            div = "elapsed_time DIV 1000" if connection.vendor == "mysql" else "elapsed_time / 1000"
            cursor.execute(
                f"UPDATE logs SET use_time = {div} WHERE elapsed_time IS NOT NULL AND elapsed_time > 0"
            )
            say(f"  logs: use_time set from elapsed_time on {cursor.rowcount} row(s)")
        if "request_id" in cols:
            # Keep One API's request id in the JSON `other` column (ids are digits, no escaping needed).
            if connection.vendor == "mysql":
                value = "CONCAT('{\"request_id\":\"', request_id, '\"}')"
            else:
                value = "'{\"request_id\":\"' || request_id || '\"}'"
            cursor.execute(
                f"UPDATE logs SET {qn('other')} = {value} WHERE request_id IS NOT NULL AND request_id <> '' "
                f"AND request_id NOT LIKE %s AND ({qn('other')} IS NULL OR {qn('other')} = '')",
                ['%"%'],
            )


def convert_channel_config(connection: BaseDatabaseWrapper, say: Say) -> int:
    """Move settings One API keeps in channels.config to where New API reads them.

    Keyed on One API type numbers, so it runs before remap_channel_types.
    """
    if "config" not in columns_of(connection, "channels"):
        return 0
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, type, {qn('key')}, other, config FROM channels")
        rows = cursor.fetchall()
    changed = 0
    for channel_id, ctype, key, other, config_json in rows:
        sets = _config_updates(int(ctype or 0), key or "", other or "", _json(config_json))
        if not sets:
            continue
        assignments = ", ".join(f"{qn(col)} = %s" for col in sets)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE channels SET {assignments} WHERE id = %s", [*sets.values(), channel_id])
        say(f"  channel {channel_id}: {', '.join(sets)} taken from One API's config")
        changed += 1
    return changed


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _config_updates(ctype: int, key: str, other: str, config: dict) -> dict[str, str]:
    def get(name: str) -> str:
        return str(config.get(name) or "").strip()

    sets: dict[str, str] = {}
    if ctype == 33 and get("ak") and get("sk"):  # AwsClaude: New API's AWS key is ak|sk|region
        sets["key"] = f"{get('ak')}|{get('sk')}|{get('region')}"
    elif ctype == 37 and get("user_id"):  # Cloudflare: the account id goes to `other`
        sets["other"] = get("user_id")
    elif ctype == 42:  # VertexAI: service-account JSON as key, region in `other`
        if get("vertex_ai_adc"):
            sets["key"] = get("vertex_ai_adc")
        if get("region"):
            sets["other"] = get("region")
    elif ctype == 17 and get("plugin") and not other:  # Ali plugin
        sets["other"] = get("plugin")
    elif get("api_version") and get("api_version") != other:
        # One API reads config.api_version first and falls back to `other`; New API reads `other`.
        sets["other"] = get("api_version")
    return sets


def sync_abilities(connection: BaseDatabaseWrapper, say: Say) -> None:
    """abilities.weight and .enabled follow their channel (New API keeps both in the index)."""
    if "abilities" not in table_names(connection):
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE abilities SET weight = COALESCE((SELECT c.weight FROM channels c "
            "WHERE c.id = abilities.channel_id), 0)"
        )
        cursor.execute(
            f"UPDATE abilities SET {qn('enabled')} = %s WHERE channel_id IN "
            f"(SELECT c.id FROM channels c WHERE c.status <> 1)",
            [False],
        )
    say("  abilities: weight and enabled synced from channels")
