"""``indexer build``: source folder (SPEC §3) → validated, compiled, versioned snapshot.

Every bad record becomes a reject naming file, line and reason; the rejects report is
written as JSON Lines beside the snapshots (``<out>/rejects-<stamp>.jsonl``) and the build
fails when there are more than ``max_rejects``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import snapshot
from .compiler import Compiler
from .ingest import EntryIngest
from .records import (
    Entry,
    Event,
    ListDef,
    Measure,
    RecordError,
    Scenario,
    parse_entry,
    parse_event,
    parse_list,
    parse_measure,
    parse_scenario,
)
from .relations import RelationIngest
from .source import (
    Progress,
    Reject,
    Rejects,
    catalogue_file,
    chunks,
    decode,
    describe,
    folder_files,
    line_groups,
    parsed,
    source_files,
)


class BuildFailed(Exception):
    """More rejects than allowed; ``rejects`` lists them, ``rejects_path`` is the report."""

    def __init__(self, message: str, rejects: list[dict[str, Any]],
                 rejects_path: Path | None) -> None:
        super().__init__(message)
        self.rejects = rejects
        self.rejects_path = rejects_path


@dataclass(frozen=True, slots=True)
class BuildResult:
    path: Path
    version: str
    rejects: int
    rejects_path: Path | None
    counts: dict[str, int]
    seconds: float


def _catalogues(root: Path, rejects: Rejects, bar: Progress
                ) -> tuple[dict[str, ListDef], dict[str, Scenario], dict[str, Measure]]:
    lists: dict[str, ListDef] = {}
    where: dict[str, tuple[str, int]] = {}
    for rel, line, value in parsed(root, catalogue_file(root, "lists"), rejects, parse_list, bar):
        if value.code in lists:
            rejects.add(rel, line, "duplicate_id", f"list {value.code!r} appears more than once")
            continue
        lists[value.code] = value
        where[value.code] = (rel, line)
    for code, value in list(lists.items()):
        watch = value.exit_watch_list
        if watch is not None and (watch not in lists or lists[watch].kind != "watch"):
            rel, line = where[code]
            rejects.add(rel, line, "unknown_list",
                        f"exit_watch_list {watch!r} is not a watch list of the catalogue")
            del lists[code]
    scenarios: dict[str, Scenario] = {}
    for rel, line, sc in parsed(root, catalogue_file(root, "scenarios"), rejects,
                                parse_scenario, bar):
        if sc.code in scenarios:
            rejects.add(rel, line, "duplicate_id", f"scenario {sc.code!r} appears more than once")
            continue
        scenarios[sc.code] = sc
    measures: dict[str, Measure] = {}
    for rel, line, m in parsed(root, catalogue_file(root, "measures"), rejects,
                               lambda o: parse_measure(o, lists, scenarios), bar):
        if m.id in measures:
            rejects.add(rel, line, "duplicate_id", f"measure {m.id!r} appears more than once")
            continue
        measures[m.id] = m
    return lists, scenarios, measures


def build(source: Path | str, out: Path | str, *, max_rejects: int = 0,
          progress: bool = False) -> BuildResult:
    started = time.monotonic()
    root, out = Path(source), Path(out)
    files = source_files(root)
    bar = Progress(sum(p.stat().st_size for p in files), progress)
    rejects = Rejects()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the build makes millions of short-lived objects and no reference cycles
    try:
        with _progress(bar):
            lists, scenarios, measures = _catalogues(root, rejects, bar)
            compiler = Compiler(lists, measures, scenarios)
            events: list[tuple[str, int, Event]] = []
            for path in folder_files(root, "events"):
                events.extend(parsed(root, path, rejects, parse_event, bar))
            ordered, names = _ingest_entries(root, compiler, lists, events, bar)
            relation_rejects = _ingest_relations(root, compiler, bar)
        ordered.extend(compiler.dedupe())
        ordered.sort(key=lambda r: (r[0], r[1]))
        for file_no, line, reason, message in ordered:
            rejects.add(names[file_no], line, reason, message)
        _add_events(compiler, events, rejects)
        rejects.items.extend(relation_rejects)
        report = _write_rejects(out, rejects) if len(rejects) else None
        if len(rejects) > max_rejects:
            first = rejects.items[0]
            raise BuildFailed(
                f"{len(rejects)} rejected record(s), more than --max-rejects {max_rejects}; "
                f"first: {first.file}:{first.line}: {first.reason}: {first.message}",
                [r.as_dict() for r in rejects.items], report)
        arrays, catalog, counts = compiler.compile()
        del compiler
    finally:
        if gc_was_enabled:
            gc.enable()
    counts["rejects"] = len(rejects)
    folder, version = snapshot.write(out, arrays=arrays, catalog=catalog, counts=counts,
                                     source=describe(root, files))
    return BuildResult(folder, version, len(rejects), report, counts,
                       time.monotonic() - started)


@contextmanager
def _progress(bar: Progress) -> Iterator[None]:
    try:
        yield
    finally:
        bar.close()


def _ingest_entries(root: Path, compiler: Compiler, lists: dict[str, ListDef],
                    events: list[tuple[str, int, Event]], bar: Progress
                    ) -> tuple[list[tuple[int, int, str, str]], list[str]]:
    """Read entry files, then ``listed`` events' records; return their rejects keyed by
    (file number, line) — entry files first, then event files, in build order — and the
    file names by number."""
    referenced: set[str] = set()
    for _, _, ev in events:
        target = ev.record.get("id") if ev.type == "listed" and ev.record is not None else ev.entry
        if isinstance(target, str):
            referenced.add(target)
    ingest = compiler.entries = EntryIngest(lists, compiler.store, referenced)
    out: list[tuple[int, int, str, str]] = []
    paths = folder_files(root, "entries")
    names = [str(path.relative_to(root)) for path in paths]
    for file_no, path in enumerate(paths):
        for objs, lines, bad in chunks(path, bar):
            found = ingest.chunk(objs, lines, file_no) if objs else []
            out.extend((file_no, line, reason, message)
                       for line, reason, message in sorted(bad + found, key=lambda r: r[0]))
    event_files: dict[str, int] = {}
    listed: list[Entry] = []
    where: list[tuple[int, int]] = []
    for rel, line, ev in events:
        if ev.type != "listed":
            continue
        file_no = event_files.setdefault(rel, len(paths) + len(event_files))
        if file_no == len(names):
            names.append(rel)
        try:
            listed.append(parse_entry(ev.record, lists))
        except RecordError as exc:
            out.append((file_no, line, exc.reason, exc.message))
            continue
        where.append((file_no, line))
    if listed:
        ingest.entries(listed, np.array([line for _, line in where], dtype=np.int64),
                       np.array([file_no for file_no, _ in where], dtype=np.int32))
    return out, names


def _ingest_relations(root: Path, compiler: Compiler, bar: Progress) -> list[Reject]:
    ingest = compiler.relations = RelationIngest(compiler.store)
    out: list[Reject] = []
    for path in folder_files(root, "relations"):
        rel = str(path.relative_to(root))
        for group, first, newline in line_groups(path, bar):
            found = ingest.raw_chunk(group, first, newline=newline)
            if found is None:
                objs, lines, bad = decode(group, first, newline=newline)
                found = bad + (ingest.chunk(objs, lines) if objs else [])
            out.extend(Reject(rel, line, reason, message)
                       for line, reason, message in sorted(found, key=lambda r: r[0]))
    return out


def _add_events(compiler: Compiler, events: list[tuple[str, int, Event]],
                rejects: Rejects) -> None:
    seen: set[str] = set()
    for seq, (rel, line, ev) in enumerate(events):
        if ev.id in seen:
            rejects.add(rel, line, "duplicate_id", f"event {ev.id!r} appears more than once")
            continue
        seen.add(ev.id)
        if ev.type == "listed":
            if ev.record is not None and compiler.entry_row(ev.record.get("id")) is not None:
                compiler.add_event(ev.id, None, ev.at, seq, ev.type, None)
            continue
        row = compiler.entry_row(ev.entry or "")
        if row is None:
            rejects.add(rel, line, "unknown_entry", f"event names unknown entry {ev.entry!r}")
            continue
        compiler.add_event(ev.id, row, ev.at, seq, ev.type, ev.result)


def _write_rejects(out: Path, rejects: Rejects) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"rejects-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{time.time_ns() % 10**6:06d}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r.as_dict()) + b"\n" for r in rejects.items))
    return path
