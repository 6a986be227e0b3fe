"""`manage.py prune_logs [--days N]`: delete log rows older than LogRetentionDays (or N) days."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.retention import BATCH, prune_logs, retention_days


class Command(BaseCommand):
    help = "Delete log rows older than the LogRetentionDays option (0 keeps them forever), in batches."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=None, help="override LogRetentionDays")
        parser.add_argument("--batch-size", type=int, default=BATCH)

    def handle(self, *args, **opts) -> None:
        days = retention_days() if opts["days"] is None else opts["days"]
        if days < 0 or opts["batch_size"] <= 0:
            raise CommandError("--days must be 0 or more and --batch-size more than 0")
        if days == 0:
            self.stdout.write("LogRetentionDays is 0: logs are kept forever, nothing deleted")
            return
        deleted = prune_logs(days, batch=opts["batch_size"])
        self.stdout.write(f"deleted {deleted} log rows older than {days} days")
