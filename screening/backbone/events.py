"""Live events into ``indexer build``: export the accepted event log exactly once.

The indexer reads ``SOURCE/events/*.jsonl`` and refuses an event id seen twice, and every
snapshot records the ids of the events it folded (``Snapshot.has_event``). So the export writes
into the source's ``events/`` folder a new ``live-<UTC time>.jsonl`` holding every accepted
event whose id is in none of that folder's files yet — earlier exports included — in log
order. Running it twice writes nothing the second time; a build folds each event once; a
replica serving the new snapshot skips events the snapshot already has and applies the rest.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from . import logfile
from .records import Page


class StaleLog(Exception):
    """``append_events(..., after=cursor)``: events were appended after ``cursor`` (by another
    replica or worker) since the caller judged against the log up to it; nothing was
    appended. Catch up, judge again, retry."""


UNCHECKED = "*"  # ``append_events``' default ``after``: append whatever the log holds


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path | None  # None: nothing new to export
    count: int
    cursor: str        # the event log cursor the export reached


def folder_event_ids(folder: Path) -> set[str]:
    ids: set[str] = set()
    if not folder.is_dir():
        return ids
    for p in folder.iterdir():
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.name.endswith(".jsonl.gz"):
            data = gzip.decompress(p.read_bytes())
        elif p.name.endswith(".jsonl"):
            data = p.read_bytes()
        else:
            continue
        for obj in logfile.decode(data.split(b"\n")):
            if isinstance(obj.get("id"), str):
                ids.add(obj["id"])
    return ids


def export_events(read: Callable[[str | None, int], Page], folder: Path) -> ExportResult:
    """Write the accepted events not yet in ``folder`` to ``folder/live-<time>.jsonl``."""
    have = folder_event_ids(folder)
    new: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = read(cursor, 10_000)
        for event in page.items:
            if event["id"] not in have:
                have.add(event["id"])
                new.append(event)
        if not page.items:
            break
        cursor = page.next
    final = cursor if cursor is not None else "0"
    if not new:
        return ExportResult(None, 0, final)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() % 10**9:09d}Z"
    path = folder / f"live-{stamp}.jsonl"
    logfile.write_atomic(path, b"".join(orjson.dumps(e) + b"\n" for e in new))
    return ExportResult(path, len(new), final)
