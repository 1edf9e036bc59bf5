"""``indexer build``: source folder (SPEC §3) → validated, compiled, versioned snapshot.

Every bad record becomes a reject naming file, line and reason; the rejects report is
written as JSON Lines beside the snapshots (``<out>/rejects-<stamp>.jsonl``) and the build
fails when there are more than ``max_rejects``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from . import snapshot
from .compiler import Compiler, DuplicateId
from .records import (Event, ListDef, Measure, RecordError, Scenario, parse_entry, parse_event,
                      parse_list, parse_measure, parse_relation, parse_scenario)
from .source import (Progress, Rejects, catalogue_file, describe, folder_files, parsed, records,
                     source_files)


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
    try:
        lists, scenarios, measures = _catalogues(root, rejects, bar)
        compiler = Compiler(lists, measures, scenarios)
        events: list[tuple[str, int, Event]] = []
        for path in folder_files(root, "events"):
            events.extend(parsed(root, path, rejects, parse_event, bar))
        for path in folder_files(root, "entries"):
            for rel, line, obj in records(root, path, rejects, bar):
                _add_entry(compiler, lists, obj, rel, line, rejects)
        for rel, line, ev in events:
            if ev.type == "listed":
                _add_entry(compiler, lists, ev.record, rel, line, rejects)
        _add_events(compiler, events, rejects)
        for path in folder_files(root, "relations"):
            for rel, line, (org, person, role, name) in parsed(root, path, rejects,
                                                               parse_relation, bar):
                compiler.add_relation(org, person, role, name)
    finally:
        bar.close()
    report = _write_rejects(out, rejects) if len(rejects) else None
    if len(rejects) > max_rejects:
        first = rejects.items[0]
        raise BuildFailed(
            f"{len(rejects)} rejected record(s), more than --max-rejects {max_rejects}; first: "
            f"{first.file}:{first.line}: {first.reason}: {first.message}",
            [r.as_dict() for r in rejects.items], report)
    arrays, catalog, counts = compiler.compile()
    counts["rejects"] = len(rejects)
    folder, version = snapshot.write(out, arrays=arrays, catalog=catalog, counts=counts,
                                     source=describe(root, files))
    return BuildResult(folder, version, len(rejects), report, counts,
                       time.monotonic() - started)


def _add_entry(compiler: Compiler, lists: dict[str, ListDef], obj: Any, rel: str, line: int,
               rejects: Rejects) -> None:
    try:
        compiler.add_entry(parse_entry(obj, lists))
    except RecordError as exc:
        rejects.add(rel, line, exc.reason, exc.message)
    except DuplicateId as exc:
        rejects.add(rel, line, "duplicate_id", str(exc))


def _add_events(compiler: Compiler, events: list[tuple[str, int, Event]],
                rejects: Rejects) -> None:
    seen: set[str] = set()
    for seq, (rel, line, ev) in enumerate(events):
        if ev.id in seen:
            rejects.add(rel, line, "duplicate_id", f"event {ev.id!r} appears more than once")
            continue
        seen.add(ev.id)
        if ev.type == "listed":
            if ev.record is not None and ev.record.get("id") in compiler.entry_index:
                compiler.add_event(ev.id, None, ev.at, seq, ev.type, None)
            continue
        row = compiler.entry_index.get(ev.entry or "")
        if row is None:
            rejects.add(rel, line, "unknown_entry", f"event names unknown entry {ev.entry!r}")
            continue
        compiler.add_event(ev.id, row, ev.at, seq, ev.type, ev.result)


def _write_rejects(out: Path, rejects: Rejects) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"rejects-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{time.time_ns() % 10**6:06d}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r.as_dict()) + b"\n" for r in rejects.items))
    return path
