"""The audit trail on disk: one file per CST day under ``<data>/audit/``, shared by both backbones.

* ``<day>.jsonl`` — a day still being written (embedded backbone only);
* ``<day>.jsonl.gz`` — a closed day. gzip members concatenate, so records that reach a day after
  it was archived (a spool replayed late) are added as one more member and the uncompressed
  bytes of the day never change: a byte offset into a day is a stable cursor whether the day
  is plain, archived or both (the ``.gz`` content comes first, then the ``.jsonl``).

Retention (福建省公共信用信息管理暂行办法 第二十七条: authorized queries ≥ 3 years): a day is
deleted only when it ended more than ``keep_days`` ago; ``keep_days`` may not be less than
three years, so every query — authorized or not — is kept at least that long. Nothing of the
trail is held in memory (or, with Redis, in Redis) for longer than the day it is written.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import gzip
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import Invalid
from . import logfile
from .records import stored_audit

log = logging.getLogger(__name__)

MIN_KEEP_DAYS = 3 * 365 + 1
DEFAULT_KEEP_DAYS = 3 * 366 + 31


def days_before(day: str, n: int) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=n)).isoformat()


class AuditFiles:
    def __init__(self, folder: Path, *, keep_days: int = DEFAULT_KEEP_DAYS) -> None:
        if keep_days < MIN_KEEP_DAYS:
            raise ValueError(f"audit keep_days must be at least {MIN_KEEP_DAYS} (3 years)")
        self.folder = folder  # made by the first write (a reader creates nothing)
        self.keep_days = keep_days
        self._gz_sizes: dict[Path, tuple[float, int, int]] = {}

    def plain(self, day: str) -> Path:
        return self.folder / f"{day}.jsonl"

    def archived(self, day: str) -> Path:
        return self.folder / f"{day}.jsonl.gz"

    def days(self) -> list[str]:
        try:
            names = {p.name.split(".", 1)[0] for p in self.folder.iterdir()
                     if p.name.endswith((".jsonl", ".jsonl.gz")) and not p.name.startswith(".")}
        except FileNotFoundError:
            return []
        return sorted(names)

    def is_archived(self, day: str) -> bool:
        return self.archived(day).exists()

    def _gz_length(self, path: Path) -> int:
        value = logfile.cached(self._gz_sizes, path, _uncompressed_length)  # type: ignore[arg-type]
        return 0 if value is None else int(value)

    def scan(self, day: str, offset: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
        """Records of ``day`` from a logical byte offset, each with the offset after it."""
        gz = self.archived(day)
        gz_len = self._gz_length(gz) if gz.exists() else 0
        if offset < gz_len:
            with gzip.open(gz, "rb") as f:
                f.seek(offset)
                for line in f:
                    offset += len(line)
                    yield from _record(line, offset)
        pos = offset - gz_len
        while True:
            lines, end = logfile.read_lines(self.plain(day), pos, 1000)
            if not lines:
                return
            for line in lines:
                pos += len(line) + 1
                yield from _record(line, pos + gz_len)
            pos = end

    def position_ok(self, day: str, pos: int, days: list[str]) -> bool:
        """Could a reader have returned ``(day, pos)`` as a cursor (``days``: ``days()``)? A
        day of the trail: a position within it, at a line's start where the day is a plain
        file. A day the trail does not hold: one pruned since, older than every day it does."""
        if day not in days:
            return not days or day < days[0]
        gz = self.archived(day)
        gz_len = self._gz_length(gz) if gz.exists() else 0
        if pos <= gz_len:
            return True  # (inside the archive: not checked line by line)
        return logfile.at_line_start(self.plain(day), pos - gz_len)

    def read(self, day: str, offset: int, limit: int, unit: str | None, *, budget: int
             ) -> tuple[list[dict[str, Any]], int, int]:
        """Up to ``limit`` records of ``unit`` (any when None), scanning at most ``budget``;
        returns (records, next offset, scanned)."""
        out: list[dict[str, Any]] = []
        scanned = 0
        for record, end in self.scan(day, offset):
            scanned += 1
            offset = end
            if unit is None or record.get("unit") == unit:
                out.append(record)
            if len(out) >= limit or scanned >= budget:
                break
        return out, offset, scanned

    def write_day(self, day: str, data: bytes) -> None:
        """Write a whole closed day at once (Redis backbone: a day leaves Redis complete)."""
        logfile.write_atomic(self.archived(day), gzip.compress(data, compresslevel=6, mtime=0))

    def close_day(self, day: str) -> bool:
        """Move a plain day into its archive (embedded backbone), as one more gzip member when
        the day was archived before; False if another process holds the day or it is gone."""
        plain = self.plain(day)
        try:
            fd = os.open(plain, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if not os.fstat(fd).st_nlink:  # archived by another process meanwhile
                return False
            data = os.pread(fd, os.fstat(fd).st_size, 0)
            if data and not data.endswith(b"\n"):
                data += b"\n"  # a torn last line stays a (skipped) line of its own
            gz = self.archived(day)
            old = gz.read_bytes() if gz.exists() else b""
            if not old or not gzip.decompress(old).endswith(data):  # else: done before a crash
                logfile.write_atomic(gz, old + gzip.compress(data, compresslevel=6, mtime=0))
            plain.unlink()
            logfile.sync_dir(self.folder)
            return True
        finally:
            os.close(fd)

    def prune(self, today: str) -> list[str]:
        """Delete archived days older than ``keep_days``; return them."""
        horizon = days_before(today, self.keep_days)
        gone = []
        for day in self.days():
            if day < horizon and not self.plain(day).exists():
                self.archived(day).unlink(missing_ok=True)
                gone.append(day)
        return gone


def _record(line: bytes, end: int) -> Iterator[tuple[dict[str, Any], int]]:
    if line.strip():
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        if isinstance(value, dict) and not (len(value) == 1 and "b" in value):
            try:
                yield stored_audit(value), end  # a record, or a check's compact line
            except (ValueError, TypeError, KeyError, AttributeError, Invalid) as exc:
                log.error("audit.unreadable_line %r: %.200r", exc, value)


def _uncompressed_length(path: Path) -> int:
    n = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += len(chunk)
    return n
