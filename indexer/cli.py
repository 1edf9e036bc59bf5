"""``indexer build | verify | inspect`` (SPEC §8)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from . import clock, identifiers
from .build import BuildFailed, build
from .records import ROLES
from .snapshot import (
    PUBLICITY_CODES,
    TYPE_CODES,
    CorruptSnapshot,
    KeyMatch,
    Snapshot,
    snapshot_folders,
    verify,
)
from .source import SourceError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="indexer", description="Compile credit-list sources into snapshots.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="compile a source folder into a new snapshot under --out")
    b.add_argument("source", type=Path, help="source folder (SPEC §3)")
    b.add_argument("--out", type=Path, required=True, help="folder that holds snapshots")
    b.add_argument("--max-rejects", type=int, default=0,
                   help="fail when more records than this are rejected (default 0)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser("verify", help="check a snapshot (or the newest under a folder)")
    v.add_argument("dir", type=Path)
    i = sub.add_parser("inspect", help="show what a snapshot holds for an identifier or entry id")
    i.add_argument("dir", type=Path)
    i.add_argument("id", help="identifier (USCC, ID number, alias) or entry id")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "build":
        return _build(args)
    if args.command == "verify":
        return _verify(args.dir)
    return _inspect(args.dir, args.id)


def _build(args: argparse.Namespace) -> int:
    try:
        result = build(args.source, args.out, max_rejects=args.max_rejects,
                       progress=not args.quiet)
    except SourceError as exc:
        print(f"indexer build: {exc}", file=sys.stderr)
        return 2
    except BuildFailed as exc:
        for r in exc.rejects[:20]:
            print(f"{r['file']}:{r['line']}: {r['reason']}: {r['message']}", file=sys.stderr)
        if len(exc.rejects) > 20:
            print(f"... and {len(exc.rejects) - 20} more", file=sys.stderr)
        print(f"indexer build: {exc}", file=sys.stderr)
        if exc.rejects_path:
            print(f"rejects report: {exc.rejects_path}", file=sys.stderr)
        return 1
    c = result.counts
    print(f"built {c['entries']} entries ({c['derived_entries']} derived, {c['purged_entries']} "
          f"purged), {c['subjects']} subjects, {c['relations']} relations in "
          f"{result.seconds:.1f}s ({c['source_entries'] / max(result.seconds, 1e-9):,.0f} entries/s)",
          file=sys.stderr)
    if result.rejects_path:
        print(f"{result.rejects} rejected record(s): {result.rejects_path}", file=sys.stderr)
    print(f"{result.path} {result.version}")
    return 0


def _verify(path: Path) -> int:
    folders = snapshot_folders(path)
    if not folders:
        print(f"indexer verify: {path}: no snapshot found", file=sys.stderr)
        return 1
    try:
        manifest = verify(folders[-1])
        Snapshot(folders[-1], check=False).close()
    except CorruptSnapshot as exc:
        print(f"indexer verify: {exc}", file=sys.stderr)
        return 1
    print(f"{folders[-1]} {manifest['version']} ok")
    return 0


def _entry_view(snap: Snapshot, e: int) -> dict[str, Any]:
    a = snap.arrays
    lists = snap.catalog["lists"]
    until = int(a["entry_until"][e])
    end = int(a["entry_end"][e])
    lo, hi = int(a["entry_pieces_off"][e]), int(a["entry_pieces_off"][e + 1])
    persons_lo, persons_hi = int(a["entry_persons_off"][e]), int(a["entry_persons_off"][e + 1])
    return {
        "entry": snap.string(int(a["entry_id"][e])),
        "list": lists[int(a["entry_list"][e])]["code"],
        "kind": lists[int(a["entry_list"][e])]["kind"],
        "subject": snap.subject_id(int(a["entry_subject"][e])),
        "publicity": PUBLICITY_CODES[int(a["entry_publicity"][e])],
        "scope": snap.catalog["scopes"][int(a["entry_scope"][e])] or "national",
        "valid_from": clock.format_instant(int(a["entry_from"][e])),
        "valid_until": None if until == clock.NEVER else clock.format_instant(until),
        "ends": None if end == clock.NEVER else clock.format_instant(end),
        "in_effect_pieces": ([[clock.format_instant(s), None if t == clock.NEVER else clock.format_instant(t)]
                              for s, t in a["pieces"][lo:hi].tolist()]
                             if a["entry_has_pieces"][e] else None),
        "derived": bool(a["entry_derived"][e]),
        "persons": [{"role": ROLES[int(a["persons_role"][k])],
                     "id": snap.subject_id(int(a["persons_subject"][k]))}
                    for k in range(persons_lo, persons_hi)],
    }


def _inspect(path: Path, raw: str) -> int:
    try:
        snap = Snapshot.open(path)
    except CorruptSnapshot as exc:
        print(f"indexer inspect: {exc}", file=sys.stderr)
        return 1
    a = snap.arrays
    key = identifiers.normalize(raw)
    match = snap.lookup(key)
    if match is None:  # as a check resolves it: a 9-character organisation code, a 15-digit ID
        try:
            ident = identifiers.parse_normalized(key, None)
        except identifiers.IdentifierError:
            ident = None
        if ident is not None and ident.form == "org_code":
            code_row = snap.lookup_org_code(ident.value)
            match = None if code_row is None else KeyMatch(code_row, False)
        elif ident is not None and ident.value != key:
            match = snap.lookup(ident.value)
    if match is None:
        row = snap.entry_row(raw)
        if row is not None:
            print(orjson.dumps(_entry_view(snap, row), option=orjson.OPT_INDENT_2).decode())
            return 0
        print(f"{raw}: not in snapshot {snap.version}", file=sys.stderr)
        return 1
    row = match.subject
    off = a["subject_entries_off"]
    links_off = a["subject_links_off"]
    view = {
        "subject": {"type": TYPE_CODES[int(a["subject_type"][row])], "id": snap.subject_id(row),
                    "name": snap.subject_name_of(row), "matched_alias": match.alias},
        "entries": [_entry_view(snap, e) for e in a["subject_entries"][int(off[row]):int(off[row + 1])].tolist()],
        "relations": [{"id": snap.subject_id(o), "role": ROLES[r]}
                      for o, r in a["subject_links"][int(links_off[row]):int(links_off[row + 1])].tolist()],
        "snapshot": snap.version,
    }
    print(orjson.dumps(view, option=orjson.OPT_INDENT_2).decode())
    return 0
