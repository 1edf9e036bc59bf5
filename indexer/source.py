"""Reading a source folder (SPEC §3): discover files, stream JSON Lines, collect rejects."""

from __future__ import annotations

import gzip
import hashlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import orjson

from .records import RecordError

T = TypeVar("T")
CATALOGUES = ("lists", "measures", "scenarios")
FOLDERS = ("entries", "relations", "events")


class SourceError(Exception):
    """The source folder itself is unusable (a catalogue file is missing, …)."""


@dataclass(frozen=True, slots=True)
class Reject:
    file: str
    line: int
    reason: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason,
                "message": self.message}


@dataclass
class Rejects:
    items: list[Reject] = field(default_factory=list)

    def add(self, file: str, line: int, reason: str, message: str) -> None:
        self.items.append(Reject(file, line, reason, message))

    def __len__(self) -> int:
        return len(self.items)


def _is_jsonl(p: Path) -> bool:
    return p.is_file() and (p.name.endswith(".jsonl") or p.name.endswith(".jsonl.gz"))


def catalogue_file(root: Path, name: str) -> Path:
    for candidate in (root / f"{name}.jsonl", root / f"{name}.jsonl.gz"):
        if candidate.is_file():
            return candidate
    raise SourceError(f"{root}: {name}.jsonl (or {name}.jsonl.gz) is missing")


def folder_files(root: Path, name: str) -> list[Path]:
    folder = root / name
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _is_jsonl(p)), key=lambda p: p.name)


def source_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder")
    files = [catalogue_file(root, name) for name in CATALOGUES]
    for name in FOLDERS:
        files.extend(folder_files(root, name))
    return files


def describe(root: Path, files: list[Path]) -> dict[str, Any]:
    """Source checksums for the manifest (sha256 of each file's bytes)."""
    out = []
    for p in files:
        h = hashlib.sha256()
        with p.open("rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        out.append({"path": str(p.relative_to(root)), "bytes": p.stat().st_size,
                    "sha256": h.hexdigest()})
    return {"root": str(root.resolve()), "files": out}


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile is IO[bytes]
    return path.open("rb")


def records(root: Path, path: Path, rejects: Rejects,
            progress: Callable[[int], None] | None = None) -> Iterator[tuple[str, int, Any]]:
    """Yield (relative file, line number, decoded object); bad JSON becomes a reject."""
    rel = str(path.relative_to(root))
    with _open(path) as f:
        for number, raw in enumerate(f, 1):
            if progress is not None:
                progress(len(raw))
            if number == 1:  # a file saved "UTF-8 with BOM"
                raw = raw.removeprefix(_BOM)
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                rejects.add(rel, number, "bad_json", f"not valid JSON: {exc}")
                continue
            yield rel, number, obj


CHUNK_LINES = 4096
_BLOCK = 1 << 23
_BOM = b"\xef\xbb\xbf"


def line_groups(path: Path, progress: Callable[[int], None] | None = None,
                size: int = CHUNK_LINES) -> Iterator[tuple[list[bytes], int, bool]]:
    """Yield (raw lines without their newline, number of the first, whether they had one)
    for runs of up to ``size`` lines."""
    with _open(path) as f:
        number = 0
        tail = b""
        first = True
        while True:
            block = f.read(_BLOCK)
            if progress is not None and block:
                progress(len(block))
            if not block:
                break
            if first:  # a file saved "UTF-8 with BOM"
                first = False
                block = block.removeprefix(_BOM)
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for start in range(0, len(lines), size):
                group = lines[start:start + size]
                yield group, number + 1, True
                number += len(group)
        if tail:
            yield [tail], number + 1, False


def chunks(path: Path, progress: Callable[[int], None] | None = None,
           size: int = CHUNK_LINES) -> Iterator[tuple[list[Any], np.ndarray, list[tuple[int, str, str]]]]:
    """Yield (decoded objects, their line numbers, bad-JSON rejects as (line, reason, message))
    for runs of up to ``size`` lines; blank lines are skipped, as ``records`` does."""
    for group, first, newline in line_groups(path, progress, size):
        yield decode(group, first, newline=newline)


def decode(lines: list[bytes], first: int, *, newline: bool
            ) -> tuple[list[Any], np.ndarray, list[tuple[int, str, str]]]:
    try:
        return (list(map(orjson.loads, lines)),
                np.arange(first, first + len(lines), dtype=np.int64), [])
    except orjson.JSONDecodeError:
        pass
    objs: list[Any] = []
    numbers: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for number, raw in enumerate(lines, first):
        if not raw.strip():
            continue
        try:
            objs.append(orjson.loads(raw + b"\n" if newline else raw))
        except orjson.JSONDecodeError as exc:
            bad.append((number, "bad_json", f"not valid JSON: {exc}"))
            continue
        numbers.append(number)
    return objs, np.asarray(numbers, dtype=np.int64), bad


def parsed(root: Path, path: Path, rejects: Rejects, parse: Callable[[Any], T],
           progress: Callable[[int], None] | None = None) -> Iterator[tuple[str, int, T]]:
    """Like ``records`` but through ``parse``; a ``RecordError`` becomes a reject."""
    for rel, number, obj in records(root, path, rejects, progress):
        try:
            value = parse(obj)
        except RecordError as exc:
            rejects.add(rel, number, exc.reason, exc.message)
            continue
        yield rel, number, value


class Progress:
    """A byte-count progress bar on stderr when it is a terminal, else silent."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm
            self._bar = tqdm(total=total, unit="B", unit_scale=True, desc="indexer build",
                             file=sys.stderr)

    def __call__(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
