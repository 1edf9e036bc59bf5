"""Write a SPEC §3 source folder from plain Python records (test fixtures)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

Record = Mapping[str, Any]


def write_jsonl(path: Path, records: Iterable[Record], *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_source(root: Path, *, lists: Iterable[Record], measures: Iterable[Record] = (),
                 scenarios: Iterable[Record] = (), entries: Iterable[Record] = (),
                 relations: Iterable[Record] = (), events: Iterable[Record] = ()) -> Path:
    """Write ``root`` as a source folder and return it. Empty relations/events are omitted."""
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "lists.jsonl", lists)
    write_jsonl(root / "measures.jsonl", measures)
    write_jsonl(root / "scenarios.jsonl", scenarios)
    write_jsonl(root / "entries" / "entries.jsonl", entries)
    relations = list(relations)
    if relations:
        write_jsonl(root / "relations" / "relations.jsonl", relations)
    events = list(events)
    if events:
        write_jsonl(root / "events" / "events.jsonl", events)
    return root
