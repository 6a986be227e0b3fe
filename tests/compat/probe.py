"""Run inside a gateway-configured process (SQL_DSN / SQLITE_PATH in the environment): print what the
migrated database looks like through our models, as JSON. Used by test_adopt.py as a subprocess so it
reads the database exactly as an operator's gateway would.

    python -m tests.compat.probe '{"root": "123456", ...}'
"""

from __future__ import annotations

import hashlib
import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newapi_site.settings")
    import django

    django.setup()
    from django.db import connection

    from accounts.legacy.columns import columns_of, table_names
    from accounts.models import Option, Setup, Token, User
    from billing.models import Log
    from relay.models import Ability, Channel

    passwords = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    tables = sorted(table_names(connection))
    out: dict = {"tables": tables, "counts": {}, "columns": {}}
    with connection.cursor() as cursor:
        digest = hashlib.sha256()
        for table in tables:
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = sorted(repr(tuple(str(v) for v in row)) for row in cursor.fetchall())
            out["counts"][table] = len(rows)
            digest.update(
                table.encode() + repr(sorted(columns_of(connection, table))).encode() + repr(rows).encode()
            )
        out["fingerprint"] = digest.hexdigest()
    for table, column in [
        ("users", "quota"),
        ("users", "used_quota"),
        ("tokens", "remain_quota"),
        ("users", "group"),
        ("abilities", "model"),
        ("channels", "model_mapping"),
    ]:
        col = columns_of(connection, table)[column]
        out["columns"][f"{table}.{column}"] = [col.data_type, col.length]
    out["users"] = {
        u.username: {
            "id": u.pk,
            "status": u.status,
            "role": u.role,
            "quota": u.quota,
            "used_quota": u.used_quota,
            "deleted": u.deleted_at is not None,
            "is_active": u.is_active,
            "group": u.group,
            "login": u.check_password(passwords.get(u.username, passwords.get(str(u.pk), ""))),
            "live": User.live.filter(pk=u.pk).exists(),
        }
        for u in User.objects.all()
    }
    out["tokens"] = {
        t.key: {
            "id": t.pk,
            "user_id": t.user_id,
            "status": t.status,
            "remain_quota": t.remain_quota,
            "unlimited_quota": t.unlimited_quota,
            "expired_time": t.expired_time,
            "used_quota": t.used_quota,
            "model_limits_enabled": t.model_limits_enabled,
            "model_limits": t.model_limits or "",
            "allow_ips": t.allow_ips or "",
            "group": t.group or "",
            "live": t.deleted_at is None,
        }
        for t in Token.objects.all()
    }
    out["channels"] = {
        str(c.pk): {
            "type": c.type,
            "status": c.status,
            "base_url": c.base_url or "",
            "other": c.other or "",
            "key": c.key,
            "weight": c.weight,
            "balance_is_float": isinstance(c.balance, (float, type(None))),
        }
        for c in Channel.objects.all()
    }
    out["abilities_enabled"] = Ability.objects.filter(enabled=True).count()
    out["abilities_weight"] = sorted({(a.channel_id, a.weight) for a in Ability.objects.all()})
    out["log_types"] = {str(t): Log.objects.filter(type=t).count() for t in range(6)}
    out["use_times"] = sorted(Log.objects.filter(type=2).values_list("id", "use_time"))
    if "elapsed_time" in columns_of(connection, "logs"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, elapsed_time FROM logs WHERE type = 2")
            out["elapsed"] = sorted(cursor.fetchall())
    out["options"] = {o.key: o.value for o in Option.objects.filter(key__startswith="Legacy")}
    out["setups"] = Setup.objects.count()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
