"""The embedded ledger's crash-safe write-behind: an append-only journal of settlements, applied
to the database in batches, the journal position advanced once a batch is written.

The ledger owner appends one settlement per line (its JSON) with a single write() before it
answers the commit, so a kill -9 of any process loses nothing that was answered (the page cache
outlives the process). `Applier.apply_available` reads past the recorded position and applies
what it finds; after a crash the next owner replays from that position, so every line reaches
the database exactly once: each line's id is its place in the journal ("j<segment>:<offset>"),
recorded with its charge (billing/idempotent.py), so a batch replayed after a crash skips what
was written. A line the database refuses even alone is dead-lettered (billing_dead_settlements,
in the transaction that moves the position past it) instead of stopping billing for everyone.
The journal is cut into numbered segments; a segment is deleted once
the position has moved past it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from django.db import connection, transaction

from .idempotent import apply_isolated, log_rejected
from .settlement import Settlement

log = logging.getLogger("newapi.billing")

BATCH = 500
SEGMENT_BYTES = 64 << 20
READ_BYTES = 4 << 20
MARK_TABLE = "billing_journal_mark"  # billing.models.JournalMark


def _segment(directory: Path, number: int) -> Path:
    return directory / f"{number:012d}.jsonl"


def _segments(directory: Path) -> list[int]:
    return sorted(int(p.stem) for p in directory.glob("*.jsonl") if p.stem.isdigit())


class Journal:
    """The append side, used by the ledger owner's thread only."""

    def __init__(self, directory: Path, first_segment: int) -> None:
        self.directory = directory
        numbers = _segments(directory)
        self.number = max(numbers[-1] if numbers else first_segment, first_segment)
        path = _segment(directory, self.number)
        if path.exists():
            _cut_torn_tail(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.size = os.fstat(self.fd).st_size

    def append(self, lines: list[bytes]) -> None:
        """One write() for everything answered in this round; a new segment once this one is big."""
        data = b"".join(lines)
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)
        if self.size >= SEGMENT_BYTES:
            os.close(self.fd)
            self.number += 1
            self.fd = os.open(
                _segment(self.directory, self.number), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
            )
            self.size = 0

    def close(self) -> None:
        os.close(self.fd)


def _cut_torn_tail(path: Path) -> None:
    """A line without its newline was never answered (the write did not complete): drop it."""
    with open(path, "rb+") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            fh.truncate(end)


def read_mark() -> tuple[int, int] | None:
    """(segment, position) applied so far, or None when this database has never had a journal."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT segment, position FROM {MARK_TABLE} WHERE id = 1")
        row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else None


def _write_mark(segment: int, position: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {MARK_TABLE} SET segment = %s, position = %s WHERE id = 1", [segment, position]
        )


class Applier:
    """Applies journal lines past the recorded mark; thread-safe (one round at a time)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        mark = read_mark()
        if mark is None:
            stale = _segments(directory)
            if stale:  # a journal left by another database file at this path: never replay it here
                log.warning("ledger journal in %s belongs to no database mark; moved aside", directory)
                aside = directory.with_name(directory.name + ".stale")
                aside.mkdir(exist_ok=True)
                for number in stale:
                    _segment(directory, number).rename(_segment(aside, number))
            mark = (0, 0)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {MARK_TABLE} (id, segment, position) VALUES (1, 0, 0)")
        self.segment, self.position = mark

    def apply_available(self) -> int:
        """Apply every complete line written so far; returns how many settlements were written."""
        with self.lock:
            total = 0
            while True:
                path = _segment(self.directory, self.segment)
                # Checked before reading: once the next segment exists, this one is complete.
                sealed = _segment(self.directory, self.segment + 1).exists()
                data = b""
                if path.exists():
                    with open(path, "rb") as fh:
                        fh.seek(self.position)
                        data = fh.read(READ_BYTES)
                end = data.rfind(b"\n") + 1
                if end:
                    total += self._apply(data[:end])
                    continue
                if not sealed:
                    return total
                with transaction.atomic():
                    _write_mark(self.segment + 1, 0)
                self.segment, self.position = self.segment + 1, 0
                path.unlink(missing_ok=True)

    def _apply(self, data: bytes) -> int:
        lines = data.splitlines(keepends=True)
        for start in range(0, len(lines), BATCH):
            position = self._apply_chunk(lines[start : start + BATCH])
            self.position = position
        return len(lines)

    def _apply_chunk(self, chunk: list[bytes]) -> int:
        """Write one chunk (rows the database refuses are dead-lettered); returns the new position."""
        from .models import AppliedSettlement, DeadSettlement

        position = self.position
        batch: list[Settlement] = []
        raw: dict[str, bytes] = {}
        dead: list[tuple[str, bytes, str]] = []
        for line in chunk:
            sid = f"j{self.segment}:{position}"
            position += len(line)
            try:
                s = Settlement.from_json(line)
            except Exception as exc:
                dead.append((sid, line, f"unreadable: {exc}"))
                continue
            s.id = sid  # the same on every replay of this line
            raw[sid] = line
            batch.append(s)
        for s, err in apply_isolated(batch):  # raises while the database is unreachable
            dead.append((s.id, raw[s.id], str(err)))
            log_rejected(s, err)
        now = int(time.time())
        with transaction.atomic():
            if dead:
                DeadSettlement.objects.bulk_create(
                    [
                        DeadSettlement(
                            id=sid,
                            payload=line.decode("utf-8", "replace").rstrip("\n"),
                            error=error[:2000],
                            created_at=now,
                        )
                        for sid, line, error in dead
                    ],
                    ignore_conflicts=True,
                )
            # Past the mark the ids protect nothing: forget them with the move, not by age.
            AppliedSettlement.objects.filter(pk__in=list(raw))._raw_delete(AppliedSettlement.objects.db)
            _write_mark(self.segment, position)
        return position
