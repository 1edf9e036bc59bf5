"""Append-only JSON Lines files shared by processes on one machine.

* ``append`` takes an exclusive ``flock``, writes whole lines with ``O_APPEND`` and ``fsync``s
  before returning: what it returned survives SIGKILL and power loss. A line left torn by a
  crash (no final newline) is closed off first, and readers skip lines that do not parse.
* ``read_lines`` returns complete lines from a byte offset — the offset is the cursor.
* ``contains`` looks for a marker (a batch id) anywhere in a plain or gzipped file.
* ``write_atomic`` writes a whole file by temporary file, fsync and rename.
"""

from __future__ import annotations

import fcntl
import gzip
import mmap
import os
import secrets
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar

import orjson

T = TypeVar("T")
_CHUNK = 1 << 20


@contextmanager
def locked(path: Path) -> Iterator[int]:
    """An fd of ``path`` opened for appending, held under an exclusive flock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            break
        os.close(fd)  # archived (unlinked) while we waited for the lock: open it anew
    try:
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def append_locked(fd: int, data: bytes, *, sync: bool = True) -> int:
    """Append under a lock already held; return the offset the data starts at."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        write_all(fd, b"\n")
        size += 1
    write_all(fd, data)
    if sync:
        os.fsync(fd)
    return size


def append(path: Path, data: bytes, *, sync: bool = True) -> int:
    with locked(path) as fd:
        return append_locked(fd, data, sync=sync)


def read_lines(path: Path, offset: int, limit: int, *, max_bytes: int = 8 * _CHUNK
               ) -> tuple[list[bytes], int]:
    """Up to ``limit`` complete lines from ``offset``; the offset after the last one."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return [], offset
    out: list[bytes] = []
    with f:
        f.seek(offset)
        pending = b""
        while len(out) < limit:
            chunk = f.read(min(_CHUNK, max_bytes))
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if len(out) == limit:
                    return out, offset
                offset += len(line) + 1
                out.append(line)
            max_bytes -= len(chunk)
            if max_bytes <= 0:
                break
    return out, offset


def at_line_start(path: Path, offset: int) -> bool:
    """Is ``offset`` a cursor ``read_lines`` could have returned: 0, or just after a newline
    of ``path`` (a line's start, or the end of the file after a complete line)?"""
    if offset == 0:
        return True
    try:
        with path.open("rb") as f:
            f.seek(offset - 1)
            return f.read(1) == b"\n"
    except FileNotFoundError:
        return False


def decode(lines: list[bytes]) -> list[dict[str, Any]]:
    """Parse lines, skipping blank and torn ones and batch markers."""
    out = []
    for line in lines:
        if line.strip():
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict) and not (len(value) == 1 and "b" in value):
                out.append(value)  # {"b": …} lines only mark where a batch starts
    return out


def contains(path: Path, needle: bytes) -> bool:
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as g:
                return needle in g.read()
        except FileNotFoundError:
            return False
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return False
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                return m.rfind(needle) >= 0
    except FileNotFoundError:
        return False


def write_atomic(path: Path, data: bytes, *, sync: bool = True, mode: int = 0o644,
                 exclusive: bool = False) -> bool:
    """Write a whole file by temporary file, fsync and rename (``mode``: its permissions).
    ``exclusive``: only if ``path`` does not exist yet — the first of several processes
    wins, the others leave it as it is; returns whether this call wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    written = True
    if exclusive:
        try:
            os.link(tmp, path)
        except FileExistsError:
            written = False
        finally:
            tmp.unlink(missing_ok=True)
    else:
        os.replace(tmp, path)
    if sync:
        sync_dir(path.parent)
    return written


def shared_secret(path: Path) -> str:
    """A random secret kept in ``path`` (mode 0600): made by the first caller, read by every
    other (several worker processes may ask at once)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        write_atomic(path, secrets.token_hex(32).encode(), mode=0o600, exclusive=True)
    return path.read_text().strip()


def sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cached(cache: dict[Path, tuple[float, int, T]], path: Path, load: Callable[[Path], T]
           ) -> T | None:
    """``load(path)`` memoised on the file's (mtime, size); None when it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        cache.pop(path, None)
        return None
    hit = cache.get(path)
    if hit is not None and hit[0] == st.st_mtime and hit[1] == st.st_size:
        return hit[2]
    value = load(path)
    cache[path] = (st.st_mtime, st.st_size, value)
    return value


def find_line(path: Path, needle: bytes,
              match: Callable[[bytes], bool] | None = None) -> bytes | None:
    """The last line of a plain file that contains ``needle`` (and that ``match`` accepts)."""
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                end_at = len(m)
                while (at := m.rfind(needle, 0, end_at)) >= 0:
                    start = m.rfind(b"\n", 0, at) + 1
                    end = m.find(b"\n", at)
                    line = bytes(m[start:end if end >= 0 else len(m)])
                    if match is None or match(line):
                        return line
                    end_at = start
                return None
    except FileNotFoundError:
        return None
