"""Open an existing One API or New API database in place (issue #5).

`adopt_legacy_database(connection)` runs before Django's `migrate` (see
accounts/management/commands/migrate.py). The steps, one module each:

    detect.py      detect_schema: empty | ours | one-api | new-api | foreign (refused)
    columns.py     introspection helpers (column types per backend)
    schema.py      widen_columns, add_missing_schema (tables, columns, indexes)
    convert.py     convert_one_api_rows (users, tokens, logs, channel config)
    channel_types.py remap_channel_types (One API numbering -> New API numbering)
    adopt.py       the orchestration, markers and the django_migrations bookkeeping
"""

from __future__ import annotations

from .adopt import AdoptionRefused, adopt_legacy_database
from .detect import detect_schema

__all__ = ["AdoptionRefused", "adopt_legacy_database", "detect_schema"]
