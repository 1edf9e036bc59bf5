"""``screening bulk FILE --scenario S --out FILE``: screen a CSV or JSON Lines file (SPEC §6).

The file is read in byte chunks (``tabular.plan``), so memory is bounded by one chunk
whatever the file's size; each chunk is screened by a ``Screener`` (``check`` is the single
source of truth) and written out in input order. Every input row gives one output row: the
input as read, then these cells (CSV) or fields (JSON Lines):

| CSV column | JSON field | value |
|---|---|---|
| decision | decision | block / review / alert / green / pass; empty (null) on an error |
| subject_type, subject_id | same | the normalised subject (ID numbers masked for the public tier) |
| hit_entries, hit_lists, hit_paths | hits | per hit: entry id, list, path (``linked:r(via id)``) |
| measures | measures | ``id=action`` of each applied measure (JSON: per hit; top: clean_years) |
| suppressed | suppressed | ``entry=reason`` (objection_pending, red_conflict) |
| name_mismatch | name_mismatch | true/false when a name was given and the subject is listed |
| error, error_message | error | SPEC §2 reason and message (JSON ``{code, message, expected?}``) |

Lists in a CSV cell are joined with ``;``. A CSV output is UTF-8; it starts with a BOM when
the input had one or was GBK (so spreadsheet programs read it right). The result is written
to a temporary file beside ``--out`` and renamed into place when complete.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from . import tabular
from .errors import ScreeningError
from .gcpause import paused_gc
from .screener import (
    CHECKED,
    EMPTY_MESSAGE,
    ERROR,
    KIND_SPECIAL,
    TYPES,
    Batch,
    Screener,
)
from .tabular import Layout

CHUNK_BYTES = 4 << 20
CSV_COLUMNS = ("decision", "subject_type", "subject_id", "hit_entries", "hit_lists",
               "hit_paths", "measures", "suppressed", "name_mismatch", "error", "error_message")
JSON_FIELDS = ("decision", "subject_type", "subject_id", "hits", "measures", "suppressed",
               "name_mismatch", "error")
BAD_ROW = "bad_row"


RESERVED = {"csv": CSV_COLUMNS, "jsonl": JSON_FIELDS}  # output names an input must not have


@dataclass(slots=True)
class Counts:
    """Rows by decision and by error code; ``empty`` rows are also among ``bad_length``."""

    rows: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    empty: int = 0
    fallback_lines: int = 0
    replaced_lines: int = 0

    def add(self, other: Counts) -> None:
        self.rows += other.rows
        self.decisions.update(other.decisions)
        self.errors.update(other.errors)
        self.empty += other.empty
        self.fallback_lines += other.fallback_lines
        self.replaced_lines += other.replaced_lines

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "decisions": dict(self.decisions), "errors": dict(self.errors),
                "empty": self.empty, "fallback_lines": self.fallback_lines,
                "replaced_lines": self.replaced_lines}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        return cls(data["rows"], Counter(data["decisions"]), Counter(data["errors"]),
                   data["empty"], data["fallback_lines"], data["replaced_lines"])


def _quote(value: str, delimiter: str) -> str:
    if delimiter in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _measures(response: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for h in response["hits"]:
        for m in h["measures"]:
            seen[f"{m['id']}={m['action']}"] = None
    for m in response["measures"]:
        seen[f"{m['id']}={m['action']}"] = None
    return list(seen)


def _path(hit: dict[str, Any]) -> str:
    via = hit["via"]
    return f"{hit['path']}({via['id']})" if via else hit["path"]


def _mismatch(value: bool | None) -> str:
    return "" if value is None else "true" if value else "false"


class Renderer:
    """Turns screened rows into output bytes for one layout; the unlisted rows' cells are
    worked out once."""

    def __init__(self, layout: Layout, screener: Screener) -> None:
        self.layout = layout
        self.screener = screener
        d = layout.delimiter
        self.head: dict[str, str] = {}
        self.tail: dict[str, str] = {}
        self.fields: dict[str, dict[str, Any]] = {}
        for t in TYPES:
            r = screener.unlisted[t].response
            self.head[t] = d + d.join([r["decision"], t]) + d
            cells = self._cells(r)[3:]
            self.tail[t] = d + d.join(_quote(c, d) for c in cells) + layout.newline
            self.fields[t] = self._fields(r)

    def header(self) -> bytes:
        return self.header_of(self.layout)

    @staticmethod
    def header_of(lay: Layout) -> bytes:
        """The first bytes of the output: the CSV header with the result columns."""
        if lay.format != "csv":
            return b""
        bom = "\ufeff" if lay.bom or lay.encoding == "gbk" else ""
        names = lay.delimiter.join(CSV_COLUMNS)
        return f"{bom}{lay.header_line}{lay.delimiter}{names}{lay.newline}".encode()

    @staticmethod
    def _cells(r: dict[str, Any]) -> list[str]:
        hits = r["hits"]
        return [r["decision"], r["subject"]["type"], r["subject"]["id"],
                ";".join(h["entry"] for h in hits), ";".join(h["list"] for h in hits),
                ";".join(_path(h) for h in hits), ";".join(_measures(r)),
                ";".join(f"{s['entry']}={s['reason']}" for s in r["suppressed"]),
                _mismatch(r["subject"]["name_mismatch"]), "", ""]

    @staticmethod
    def _fields(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "decision": r["decision"], "subject_type": r["subject"]["type"],
            "subject_id": r["subject"]["id"],
            "hits": [{"entry": h["entry"], "list": h["list"], "kind": h["kind"],
                      "path": h["path"], "via": h["via"]["id"] if h["via"] else None,
                      "measures": [{"id": m["id"], "action": m["action"]}
                                   for m in h["measures"]]} for h in r["hits"]],
            "measures": [{"id": m["id"], "action": m["action"]} for m in r["measures"]],
            "suppressed": [{"entry": s["entry"], "reason": s["reason"]}
                           for s in r["suppressed"]],
            "name_mismatch": r["subject"]["name_mismatch"], "error": None}

    def csv(self, chunk: tabular.Chunk, batch: Batch) -> bytes:
        d, nl = self.layout.delimiter, self.layout.newline
        width = len(self.layout.header)
        records = chunk.records
        ragged = [i for i, n in enumerate(chunk.widths) if n != width]
        if ragged:  # so that the result cells line up under their header:
            records = list(records)
            for i in ragged:
                if chunk.widths[i] < width:  # a short record is padded
                    records[i] += d * (width - chunk.widths[i])
                else:  # a long one has its extra fields joined into its last column
                    fields = next(csv.reader(io.StringIO(records[i]), delimiter=d))
                    fields[width - 1:] = [d.join(fields[width - 1:])]
                    records[i] = d.join(_quote(f, d) for f in fields)
        heads = (self.head["org"], self.head["person"], "")
        tails = (self.tail["org"], self.tail["person"], "")
        out = [r + heads[k] + s + tails[k]
               for r, k, s in zip(records, batch.kinds.tolist(), batch.ids)]
        for i, row in batch.special.items():
            cells = self._cells(row[1]) if row[0] == CHECKED else [""] * 9 + [row[1], row[2]]
            out[i] = records[i] + d + d.join(_quote(c, d) for c in cells) + nl
        return "".join(out).encode()

    def jsonl(self, chunk: tabular.Chunk, batch: Batch) -> bytes:
        dumps = orjson.dumps
        out: list[bytes] = []
        bad = set(chunk.bad)
        kinds = batch.kinds.tolist()
        for i, record in enumerate(chunk.records):
            obj = {"raw": record} if i in bad else record
            kind = kinds[i]
            if kind != KIND_SPECIAL:
                t = TYPES[kind]
                obj.update(self.fields[t])
                obj["subject_id"] = batch.ids[i]
            elif (row := batch.special[i])[0] == CHECKED:
                obj.update(self._fields(row[1]))
            else:
                error = {"code": row[1], "message": row[2]}
                if row[3] is not None:
                    error["expected"] = row[3]
                obj.update({k: None for k in JSON_FIELDS})
                obj.update(hits=[], measures=[], suppressed=[], error=error)
            out.append(dumps(obj))
            out.append(b"\n")
        return b"".join(out)


def screen_chunk(path: Path, renderer: Renderer, start: int, end: int, *,
                 on_rows: Callable[[tabular.Chunk, Batch], None] | None = None
                 ) -> tuple[bytes, Counts]:
    """Read, screen and render one byte range of the input; ``on_rows`` is given the rows
    and their results before they are rendered (a job records them there)."""
    layout = renderer.layout
    chunk = tabular.read_chunk(path, layout, start, end)
    batch = renderer.screener.screen(chunk.ids, chunk.types, chunk.names)
    for i in chunk.bad:
        batch.kinds[i] = KIND_SPECIAL
        batch.special[i] = (ERROR, BAD_ROW, "the line is not a JSON object", None)
    if on_rows is not None:
        on_rows(chunk, batch)
    counts = Counts(rows=len(chunk.records), fallback_lines=chunk.fallback_lines,
                    replaced_lines=chunk.replaced_lines)
    for kind, n in enumerate(np.bincount(batch.kinds, minlength=3)[:2].tolist()):
        if n:
            counts.decisions[renderer.screener.unlisted[TYPES[kind]].response["decision"]] += n
    for row in batch.special.values():
        if row[0] == CHECKED:
            counts.decisions[row[1]["decision"]] += 1
        else:
            counts.errors[row[1]] += 1
            counts.empty += row[2] == EMPTY_MESSAGE
    body = renderer.csv(chunk, batch) if layout.format == "csv" else renderer.jsonl(chunk, batch)
    return body, counts


def screen_file(path: Path, out: Path, layout: Layout, screener: Screener, *,
                chunk_bytes: int = CHUNK_BYTES,
                on_chunk: Callable[[int, Counts], None] | None = None) -> Counts:
    """Screen ``path`` into ``out`` (written beside it, then renamed); return the counts."""
    renderer = Renderer(layout, screener)
    total = Counts()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(renderer.header())
            for start, end in tabular.plan(path, layout, chunk_bytes):
                body, counts = screen_chunk(path, renderer, start, end)
                f.write(body)
                total.add(counts)
                if on_chunk is not None:
                    on_chunk(end, counts)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return total


DECISION_ORDER = ("block", "review", "alert", "green", "pass")


def summary(counts: Counts, seconds: float) -> str:
    rate = counts.rows / seconds if seconds > 0 else 0.0
    lines = [f"screened {counts.rows:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s)"]
    lines.append("  decisions: " + "  ".join(f"{d} {counts.decisions.get(d, 0):,}"
                                             for d in DECISION_ORDER))
    n_errors = sum(counts.errors.values())
    parts = [f"{code} {n:,}" for code, n in sorted(counts.errors.items(), key=lambda kv: -kv[1])]
    if counts.empty:
        parts.append(f"(of which empty {counts.empty:,})")
    lines.append(f"  errors: {n_errors:,}" + ("  " + "  ".join(parts) if parts else ""))
    if counts.fallback_lines or counts.replaced_lines:
        lines.append(f"  encoding: {counts.fallback_lines:,} lines decoded in the other "
                     f"encoding, {counts.replaced_lines:,} with undecodable bytes replaced")
    return "\n".join(lines)


def _progress(layout: Layout, enabled: bool) -> tuple[Callable[[int, Counts], None],
                                                      Callable[[], None]]:
    if not enabled:
        return (lambda end, counts: None), (lambda: None)
    from tqdm import tqdm

    width = shutil.get_terminal_size((100, 24)).columns
    bar = tqdm(total=0, unit=" rows", unit_scale=True, file=sys.stderr,
               ncols=width if width > 0 else 100,
               bar_format="{l_bar}{bar}| {n_fmt}/~{total_fmt} [{elapsed}<{remaining}, "
                          "{rate_fmt}{postfix}]")
    span = max(layout.size - layout.data_start, 1)
    state = {"hits": 0, "errors": 0}

    def update(end: int, counts: Counts) -> None:
        done = end - layout.data_start
        rows = bar.n + counts.rows
        bar.total = max(rows, round(rows * span / max(done, 1)))
        state["hits"] += sum(n for d, n in counts.decisions.items() if d != "pass")
        state["errors"] += sum(counts.errors.values())
        bar.set_postfix(state, refresh=False)
        bar.update(counts.rows)

    return update, bar.close


def run_cli(args: argparse.Namespace) -> int:
    from .cli import caller_from, live_overlay, open_snapshot

    path: Path = args.file
    out: Path = args.out
    if out.exists() and path.exists() and out.resolve() == path.resolve():
        print("screening bulk: --out must not be the input file", file=sys.stderr)
        return 2
    if not out.parent.is_dir():
        print(f"screening bulk: the folder of --out ({out.parent}) does not exist",
              file=sys.stderr)
        return 2
    try:
        layout = tabular.inspect(path, format=args.format, column=args.column,
                                 reserved=RESERVED)
        snap = open_snapshot(args.snapshot)
        screener = Screener(snap, scenario=args.scenario, caller=caller_from(args),
                            as_of=args.as_of, consent=args.consent,
                            overlay=live_overlay(snap, args))
    except ScreeningError as exc:
        print(f"screening bulk: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    update, close = _progress(layout, sys.stderr.isatty())
    started = time.perf_counter()
    try:
        with paused_gc():
            counts = screen_file(path, out, layout, screener, on_chunk=update)
    except OSError as exc:  # the disk is full …
        print(f"screening bulk: {exc}", file=sys.stderr)
        return 1
    finally:
        close()
    print(summary(counts, time.perf_counter() - started), file=sys.stderr)
    column = f"column {layout.id_column!r}" + (f", type {layout.type_column!r}"
                                               if layout.type_column else "") + \
        (f", name {layout.name_column!r}" if layout.name_column else "")
    print(f"  input: {layout.format} {layout.encoding}{' (BOM)' if layout.bom else ''}, "
          f"{column}; snapshot {snap.version}; as of {screener.as_of}; output {out}",
          file=sys.stderr)
    return 0
