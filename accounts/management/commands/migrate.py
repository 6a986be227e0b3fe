"""`migrate` that first adopts an existing One API / New API database (accounts/legacy/).

On an empty database or one this gateway already migrated it is Django's migrate unchanged.
"""

from __future__ import annotations

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from accounts.legacy import adopt_legacy_database


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Adopts an existing One API / New API database first."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--legacy-source",
            choices=["one-api", "new-api"],
            help="Treat the database as One API's / New API's when the columns cannot tell.",
        )

    def handle(self, *args, **options):
        if not (options.get("plan") or options.get("check_unapplied")):
            connection = connections[options["database"]]
            adopt_legacy_database(connection, self._say, options.get("legacy_source"))
        return super().handle(*args, **options)

    def _say(self, line: str) -> None:
        self.stdout.write(line)
