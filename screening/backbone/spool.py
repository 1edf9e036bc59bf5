"""The local write-ahead spool: the acknowledgement point of feedback and audit records.

A spool is a *slot* folder ``<data>/spool/slot-<n>/`` owned by one process through an
exclusive ``flock`` on its ``lock`` file (a process killed with SIGKILL drops the lock; the next
process, or a sibling worker, adopts the slot and ships what is left)::

    slot-0/
      id            random slot id (batch ids are "<slot id>:<segment>:<offset of the cut>")
      lock          flock'ed by the owner
      checkpoint    "<segment> <offset>": everything before it is in the backbone
      00000001.log  segments: one JSON line per ``record`` call, and cut lines

``record`` writes one line with ``write(2)`` (page cache: survives SIGKILL of the process once
it returns). ``cut`` appends ``{"cut": <ms>}`` and closes a *batch*: the records since the
previous cut. Batch boundaries live in the file, so a batch replayed after a crash has exactly
the same records and id as the first try, and the backbone applies each id at most once.
The flusher ``fsync``s at each cut (group commit) before shipping, then moves the checkpoint.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from . import logfile

SEGMENT_BYTES = 64 << 20
QUEUED_BATCHES = 256
_CUT_PREFIX = b'{"cut":'


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    checks: tuple[dict[str, Any], ...]
    audits: tuple[dict[str, Any], ...]
    segment: int
    end: int          # offset just after the cut line
    cut_ms: int       # when the batch was cut
    replay: bool      # the first batch after a (re)start: it may already be applied
    start: int        # offset of its first record line
    raw_checks: tuple[bytes, ...] = ()   # the records as serialised on the request path
    raw_audits: tuple[bytes, ...] = ()


class Spool:
    """One slot. Not for use by two threads at once except ``record`` (internally locked)."""

    def __init__(self, folder: Path, fd_lock: int, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self._fd_lock = fd_lock
        self.segment_bytes = segment_bytes
        id_file = folder / "id"
        if not id_file.exists():
            logfile.write_atomic(id_file, uuid.uuid4().hex.encode())
        self.slot_id = id_file.read_text().strip()
        self.checkpoint = self._read_checkpoint()
        segments = self.segments()
        self.segment = max(segments[-1] if segments else 0, self.checkpoint[0], 1)
        self._lock = threading.Lock()
        self._fd = self._open_segment(self.segment)
        self._uncut = self._has_uncut()
        # the in-process queue: batches cut here, kept as objects so the flusher need not
        # parse them back (bounded; the file stays the truth and is used when this is empty)
        self._end = os.fstat(self._fd).st_size
        self._start: int | None = None if self._uncut else self._end
        self._open: list[tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]],
                               Sequence[bytes], Sequence[bytes]]] = []
        self._queue: deque[Batch] = deque()
        self._replay_next = self.pending_bytes() > 0  # left by a process that died
        self.records = 0  # recorded by this process

    @classmethod
    def claim(cls, root: Path, **kw: Any) -> Spool:
        """The first slot under ``root`` that no live process holds (a new one if none)."""
        root.mkdir(parents=True, exist_ok=True)
        n = 0
        while True:
            spool = cls.adopt(root / f"slot-{n}", create=True, **kw)
            if spool is not None:
                return spool
            n += 1

    @classmethod
    def adopt(cls, folder: Path, *, create: bool = False, **kw: Any) -> Spool | None:
        if not create and not folder.is_dir():
            return None
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(folder, fd, **kw)

    @staticmethod
    def slots(root: Path) -> list[Path]:
        return sorted(p for p in root.glob("slot-*") if p.is_dir()) if root.is_dir() else []

    def segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self.folder.glob("*.log") if p.stem.isdigit())

    def _path(self, segment: int) -> Path:
        return self.folder / f"{segment:08d}.log"

    def _open_segment(self, segment: int) -> int:
        fd = os.open(self._path(segment), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            logfile.write_all(fd, b"\n")  # a torn line (power loss) stays a skipped line
        return fd

    def _read_checkpoint(self) -> tuple[int, int]:
        try:
            seg, off = (self.folder / "checkpoint").read_text().split()
            return int(seg), int(off)
        except (FileNotFoundError, ValueError):
            return 0, 0

    def _has_uncut(self) -> bool:
        """Are there records after the last cut of the current segment?"""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return False
        tail = os.pread(self._fd, min(size, 1 << 16), max(0, size - (1 << 16)))
        last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return not last.startswith(_CUT_PREFIX)

    # -- the request path -------------------------------------------------------------------
    def record(self, data: bytes, checks: Sequence[dict[str, Any]] = (),
               audits: Sequence[dict[str, Any]] = (), raw_checks: Sequence[bytes] = (),
               raw_audits: Sequence[bytes] = ()) -> None:
        """Append one record line (``data``: ``{"c": [checks], "a": [audits]}`` and a newline,
        ``raw_*`` each record serialised). The objects are kept for the flusher: do not change
        them afterwards."""
        with self._lock:
            written = os.write(self._fd, data)
            if written != len(data):  # a short write (rare): finish it
                logfile.write_all(self._fd, data[written:])
            self._end += len(data)
            self._uncut = True
            self.records += 1
            if self._start is not None:
                self._open.append((checks, audits, raw_checks, raw_audits))

    # -- the flusher ------------------------------------------------------------------------
    def cut(self) -> bool:
        """Close a batch of the records written since the last cut; fsync (group commit)."""
        with self._lock:
            if not self._uncut:
                return False
            cut_ms = time.time_ns() // 1_000_000
            line = b'{"cut":%d}\n' % cut_ms
            logfile.write_all(self._fd, line)
            at, self._end = self._end, self._end + len(line)
            if self._start is not None and len(self._queue) < QUEUED_BATCHES:
                o = self._open
                self._queue.append(Batch(
                    f"{self.slot_id}:{self.segment}:{at}",
                    tuple(c for r in o for c in r[0]), tuple(a for r in o for a in r[1]),
                    self.segment, self._end, cut_ms, False, self._start,
                    tuple(c for r in o for c in r[2]), tuple(a for r in o for a in r[3])))
            self._open = []
            self._start = self._end
            self._uncut = False
            fd = self._fd
            if self._end >= self.segment_bytes:
                self.segment += 1
                self._fd = self._open_segment(self.segment)
                self._end = self._start = os.fstat(self._fd).st_size
        os.fsync(fd)
        if fd != self._fd:
            os.close(fd)
        return True

    def sync(self) -> None:
        os.fsync(self._fd)

    def batches(self, limit: int = 16) -> list[Batch]:
        """Closed batches after the checkpoint, oldest first."""
        out: list[Batch] = []
        seg, off = self.checkpoint
        seg = max(seg, 1)
        with self._lock:
            while self._queue and (self._queue[0].segment, self._queue[0].end) <= (seg, off):
                self._queue.popleft()
            if self._queue and (self._queue[0].segment, self._queue[0].start) == (seg, off) \
                    and not self._replay_next:
                return list(itertools.islice(self._queue, limit))
        last = self.segment
        checks: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        while seg <= last and len(out) < limit:
            path = self._path(seg)
            lines, _ = logfile.read_lines(path, off, 1 << 30)
            begin = off
            for line in lines:
                start = off
                off += len(line) + 1
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if "cut" in obj:
                    out.append(Batch(f"{self.slot_id}:{seg}:{start}", tuple(checks),
                                     tuple(audits), seg, off, int(obj["cut"]),
                                     self._replay_next and not out, begin,
                                     tuple(map(orjson.dumps, checks)),
                                     tuple(map(orjson.dumps, audits))))
                    begin = off
                    checks, audits = [], []
                    if len(out) >= limit:
                        break
                else:
                    checks.extend(obj.get("c", ()))
                    audits.extend(obj.get("a", ()))
            else:
                if seg == last:
                    break
                seg, off = seg + 1, 0
                checks, audits = [], []  # records after a segment's last cut: none (cut rotates)
        return out

    def commit(self, batch: Batch) -> None:
        """Everything up to ``batch`` is in the backbone: move the checkpoint, drop segments."""
        self.checkpoint = (batch.segment, batch.end)
        self._replay_next = False
        logfile.write_atomic(self.folder / "checkpoint", b"%d %d\n" % self.checkpoint, sync=False)
        for seg in self.segments():
            if seg < batch.segment:
                self._path(seg).unlink(missing_ok=True)

    def reject(self, batch_id: str, checks: Sequence[dict[str, Any]],
               audits: Sequence[dict[str, Any]]) -> None:
        """Keep records the store refused in ``rejected.jsonl`` (for an operator to look at)."""
        logfile.append(self.folder / "rejected.jsonl", orjson.dumps(
            {"batch": batch_id, "checks": checks, "audits": audits}) + b"\n")

    def pending_bytes(self) -> int:
        seg, off = self.checkpoint
        total = 0
        for s in self.segments():
            if s >= seg:
                size = self._path(s).stat().st_size
                total += size - off if s == seg else size
        return max(total, 0)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._fd_lock)
