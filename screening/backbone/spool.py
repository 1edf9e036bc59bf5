"""The local write-ahead spool: the acknowledgement point of feedback and audit records.

A spool is a *slot* folder ``<data>/spool/slot-<n>/`` owned by one process through an
exclusive ``flock`` on its ``lock`` file (a process killed with SIGKILL drops the lock; the next
process, or a sibling worker, adopts the slot and ships what is left)::

    slot-0/
      id            random slot id (batch ids are "<slot id>:<segment>:<offset of the cut>")
      lock          flock'ed by the owner
      checkpoint    "<segment> <offset>": everything before it is in the backbone
      00000001.log  segments: one JSON line per ``record`` call, and cut lines

``record`` writes one request's lines with one ``write(2)`` (page cache: survives SIGKILL of
the process once it returns): ``{"c": [checks], "a": [audits]}`` (flusher thread), or one line a
record, ``{"c": {check}}`` / ``{"a": {audit}}`` (shipper mode: the reader takes each record's
bytes from its line instead of encoding it again), or one compact line a check, ``{"q": [...]}``
(``records.query_line``: the reader builds its check and audit records), or one compact line a
batch request, ``{"qb": [...]}`` (``records.batch_line``); readers accept all. ``cut`` appends
``{"cut": <ms>}`` and closes a *batch*: the records since the previous cut. Batch boundaries
live in the file, so a batch replayed after a crash has exactly the same records and id as
the first try, and the backbone applies each id at most once.
The flusher ``fsync``s at each cut (group commit) before shipping, then moves the checkpoint.
The module-level functions (``read_batches``, ``commit``, ``has_cut`` …) work on a slot's files
without owning it, for a shipper process (``screening.backbone.shipper``) under the slot's
``ship.lock``.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
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

from ..errors import Invalid
from . import courtesy, logfile
from .records import (
    CHECK_LINE,
    audit_day,
    check_route,
    expand_batch,
    expand_line,
    expand_query,
    route_line,
    stored_audit,
    stored_check,
)

log = logging.getLogger(__name__)

SEGMENT_BYTES = 64 << 20
# spool bytes a shipper parses at once (~10 kB of Python objects per spooled check: ~80 MB)
READ_BYTES = 8 << 20
# a batch is cut once this many bytes wait uncut, whatever ``batch_every`` says (a batch is
# applied in one piece, so this bounds the memory of applying one)
CUT_BYTES = 4 << 20
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
    # read without records (``read_batches(records=False)``): where each raw record goes —
    # a check's (day, authorities), an audit's day — and ``checks``/``audits`` are empty
    check_routes: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    audit_days: tuple[str, ...] | None = None

    def records(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The check and audit records, decoded again from their bytes if read without."""
        if self.check_routes is None:
            return list(self.checks), list(self.audits)
        return ([stored_check(orjson.loads(r)) for r in self.raw_checks],
                [stored_audit(orjson.loads(r)) for r in self.raw_audits])


class Spool:
    """One slot. Not for use by two threads at once except ``record`` (internally locked)."""

    def __init__(self, folder: Path, fd_lock: int, *, segment_bytes: int = SEGMENT_BYTES,
                 keep: bool = True) -> None:
        self.folder = folder
        self._fd_lock = fd_lock
        self.segment_bytes = segment_bytes
        # keep=False: records are not kept as objects for an in-process flusher (a shipper
        # process reads them back from the file), so the request path only writes
        self.keep = keep
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
        self._start: int | None = None if self._uncut or not keep else self._end
        self._open: list[tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]],
                               Sequence[bytes], Sequence[bytes]]] = []
        self._queue: deque[Batch] = deque()
        self._replay_next = self.pending_bytes() > 0  # left by a process that died
        self.records = 0  # recorded by this process
        self.uncut_bytes = 0  # written by this process since its last cut
        self.last_cut = (self.segment, 0) if self._uncut else (self.segment, self._end)
        self._unsynced = False

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
        return read_checkpoint(self.folder)

    def _has_uncut(self) -> bool:
        """Are there records after the last cut of the current segment?"""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return False
        tail = os.pread(self._fd, min(size, 1 << 16), max(0, size - (1 << 16)))
        last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return not last.startswith(_CUT_PREFIX)

    def reload(self) -> None:
        """Read the checkpoint again (someone else may have shipped this slot meanwhile)."""
        with self._lock:
            self._queue.clear()
            self.checkpoint = self._read_checkpoint()
            self._replay_next = self.pending_bytes() > 0

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
            self.uncut_bytes += len(data)
            self._uncut = self._unsynced = True
            self.records += 1
            if self._start is not None:
                self._open.append((checks, audits, raw_checks, raw_audits))

    # -- the flusher ------------------------------------------------------------------------
    def cut(self, sync: bool = True) -> bool:
        """Close a batch of the records written since the last cut; fsync (group commit)."""
        with self._lock:
            if not self._uncut:
                return False
            cut_ms = time.time_ns() // 1_000_000
            line = b'{"cut":%d}\n' % cut_ms
            logfile.write_all(self._fd, line)
            at, self._end = self._end, self._end + len(line)
            self.last_cut = (self.segment, self._end)  # (segment, offset after the cut line)
            if self._start is not None and len(self._queue) < QUEUED_BATCHES:
                o = self._open
                self._queue.append(Batch(
                    f"{self.slot_id}:{self.segment}:{at}",
                    tuple(c for r in o for c in r[0]), tuple(a for r in o for a in r[1]),
                    self.segment, self._end, cut_ms, False, self._start,
                    tuple(c for r in o for c in r[2]), tuple(a for r in o for a in r[3])))
            self._open = []
            self._start = self._end if self.keep else None
            self._uncut = self._unsynced = False
            self.uncut_bytes = 0
            fd = self._fd
            if self._end >= self.segment_bytes:
                self.segment += 1
                self._fd = self._open_segment(self.segment)
                self._end = os.fstat(self._fd).st_size
                self._start = self._end if self.keep else None
        if sync or fd != self._fd:
            os.fsync(fd)
        if fd != self._fd:
            os.close(fd)
        return True

    def sync(self) -> bool:
        """fsync what was written since the last cut or sync (group commit without a cut)."""
        with self._lock:
            if not self._unsynced:
                return False
            self._unsynced = False
            fd = self._fd
        os.fsync(fd)
        return True

    def batches(self, limit: int = 16) -> list[Batch]:
        """Closed batches after the checkpoint, oldest first."""
        seg, off = self.checkpoint
        seg = max(seg, 1)
        with self._lock:
            while self._queue and (self._queue[0].segment, self._queue[0].end) <= (seg, off):
                self._queue.popleft()
            if self._queue and (self._queue[0].segment, self._queue[0].start) == (seg, off) \
                    and not self._replay_next:
                return list(itertools.islice(self._queue, limit))
        return read_batches(self.folder, self.slot_id, (seg, off), self.segment,
                            self._replay_next, limit)

    def commit(self, batch: Batch) -> None:
        """Everything up to ``batch`` is in the backbone: move the checkpoint, drop segments."""
        self.checkpoint = (batch.segment, batch.end)
        self._replay_next = False
        commit(self.folder, batch)

    def reject(self, batch_id: str, checks: Sequence[dict[str, Any]],
               audits: Sequence[dict[str, Any]]) -> None:
        """Keep records the store refused in ``rejected.jsonl`` (for an operator to look at)."""
        reject(self.folder, batch_id, checks, audits)

    def pending_bytes(self) -> int:
        """Bytes after the checkpoint (read from the file: a shipper process may move it)."""
        if not self.keep:
            self.checkpoint = read_checkpoint(self.folder)
        return pending_bytes(self.folder, self.checkpoint)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._fd_lock)


# -- a slot's files, for whoever ships them (the owner's flusher, or a shipper process) ------
def _segment_path(folder: Path, segment: int) -> Path:
    return folder / f"{segment:08d}.log"


def segments(folder: Path) -> list[int]:
    return sorted(int(p.stem) for p in folder.glob("*.log") if p.stem.isdigit())


def read_checkpoint(folder: Path) -> tuple[int, int]:
    try:
        seg, off = (folder / "checkpoint").read_text().split()
        return int(seg), int(off)
    except (FileNotFoundError, ValueError):
        return 0, 0


def slot_id(folder: Path) -> str | None:
    try:
        return (folder / "id").read_text().strip() or None
    except FileNotFoundError:
        return None


def _closed_part(data: bytes) -> bytes:
    """``data`` up to the end of its last complete cut line (records after it are no batch
    yet; a cut line still being written does not count)."""
    while True:
        at = data.rfind(b"\n" + _CUT_PREFIX)
        if at >= 0:
            line_start = at + 1
        elif data.startswith(_CUT_PREFIX):
            line_start = 0
        else:
            return b""
        end = data.find(b"\n", line_start)
        if end >= 0:
            return data[:end + 1]
        data = data[:line_start]


_unreadable_logged: set[tuple[str, int, int]] = set()
# slot -> the checkpoint whose very next batch holds a line this version cannot read: spool
# files only grow, so every later read from there stops there too (a stalled shipper would
# otherwise parse up to that line again every round)
_stalled: dict[str, tuple[int, int]] = {}


def _stop(out: list[Batch], slot: str, checkpoint: tuple[int, int], seg: int, start: int,
          why: str) -> list[Batch]:
    """``read_batches`` met a line this version cannot read: log it (once per line) and
    return the batches before its batch, no more."""
    key = (slot, seg, start)
    if key not in _unreadable_logged:
        if len(_unreadable_logged) > 1000:
            _unreadable_logged.clear()
        _unreadable_logged.add(key)
        log.error("spool.unreadable_line slot=%s segment=%d offset=%d reason=%s: its batch "
                  "and the ones after it stay in the spool until a shipper that reads it runs",
                  slot, seg, start, why)
    if not out:
        _stalled[slot] = checkpoint
    return out


def read_batches(folder: Path, slot: str, checkpoint: tuple[int, int], last: int | None,
                 replay_first: bool, limit: int = 16, budget: int = READ_BYTES, *,
                 records: bool = True) -> list[Batch]:
    """Closed batches after ``checkpoint`` read back from the slot's segment files, oldest
    first (up to segment ``last``; None: the newest), at most ``limit`` of them and no more
    than about ``budget`` bytes of spool (at least one batch): what a lagging shipper holds
    parsed at once stays bounded however far behind it is. Records after the last cut of the
    newest segment are not a batch yet (and are not parsed).

    ``records=False`` (a store that files records by day and authority, the embedded one):
    each record is kept as its bytes and where it goes (``Batch.check_routes``,
    ``Batch.audit_days``), its parsed form dropped at once — a chunk's thousands of records
    then never live as objects together, and the interpreter reuses the same memory for each
    instead of mapping fresh pages for a whole chunk (page faults cost ~3 µs each here).

    A torn line (power loss: not JSON) is skipped. A line that is JSON but not a record this
    version can read — written by a newer version, say, during a rolling restart — stops the
    reading before its batch: that batch and the ones after it stay in the spool (logged
    ``spool.unreadable_line``; ``spool_bytes`` grows) instead of being shipped without it."""
    out: list[Batch] = []
    if _stalled.get(slot) == checkpoint:
        return out
    seg, off = checkpoint
    seg = max(seg, 1)
    if last is None:
        segs = segments(folder)
        last = segs[-1] if segs else seg
    taken = 0  # bytes of the batches read so far
    beyond = 0  # read on past this many bytes: the last cut line before them is broken
    while seg <= last and len(out) < limit and taken < budget:
        data = _read_closed(_segment_path(folder, seg), off, budget - taken, beyond)
        beyond = 0
        if not data:  # no closed batch after ``off`` in this segment
            if seg >= last:
                break
            seg, off = seg + 1, 0  # records after a segment's last cut: none (cut rotates)
            continue
        got = _Records(records)
        begin = read_from = off
        for line in data.split(b"\n")[:-1] if data else ():
            courtesy.step()
            start = off
            off += len(line) + 1
            if line.startswith(_CUT_PREFIX):
                try:
                    cut_ms = int(orjson.loads(line)["cut"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
                out.append(got.batch(f"{slot}:{seg}:{start}", seg, off, cut_ms,
                                     replay_first and not out, begin))
                taken += off - begin
                begin = off
                got = _Records(records)
                if len(out) >= limit or taken >= budget:
                    break
                continue
            if not line.strip():
                continue
            if not records and line.startswith(CHECK_LINE):  # routed: filed as it is
                routed = route_line(line)
                if routed is not None:
                    got.add_line(line, *routed)
                    continue
                # its route does not read: parsed below (a torn line is skipped, a whole line
                # is expanded into its records, one that does not expand stops the reading)
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a torn line (power loss) stays a skipped line
            if not isinstance(obj, dict):
                return _stop(out, slot, checkpoint, seg, start, "not a JSON object")
            c, a = obj.get("c"), obj.get("a")
            q = obj.get("q")
            if "q2" in obj:  # a routed check line, read with its records (the Redis store)
                try:
                    got.add(*expand_line(obj))
                except (ValueError, TypeError, KeyError, Invalid) as exc:
                    return _stop(out, slot, checkpoint, seg, start, f"check line: {exc!r}")
            elif isinstance(q, list):  # a compact check line: the records are built here
                try:
                    got.add(*expand_query(q))
                except (ValueError, TypeError, KeyError, Invalid) as exc:
                    return _stop(out, slot, checkpoint, seg, start, f"query line: {exc!r}")
            elif isinstance(qb := obj.get("qb"), list):  # a batch request's checks, in order
                try:
                    expanded = list(expand_batch(qb))
                    for check, audit in expanded:
                        got.add(check, audit)
                except (ValueError, TypeError, KeyError, AttributeError, Invalid) as exc:
                    return _stop(out, slot, checkpoint, seg, start, f"batch line: {exc!r}")
            elif isinstance(c, dict):  # one record a line: its bytes as the request path made them
                got.add(c, None, line[5:-1])
            elif isinstance(a, dict):
                got.add(None, a, None, line[5:-1])
            elif not (isinstance(c, list) or isinstance(a, list)) or set(obj) - {"c", "a"}:
                return _stop(out, slot, checkpoint, seg, start,
                             f"unknown record kind {sorted(obj)[:3]}")
            else:  # {"c": [...], "a": [...]}: one line a request
                for rec in c or ():
                    got.add(rec, None)
                for rec in a or ():
                    got.add(None, rec)
        else:
            # all of it read, and its last cut line was not JSON: the records after the last
            # good one are no batch yet. Read on from there, past the broken line
            if begin == read_from:
                beyond = off - read_from
            off = begin
    return out


class _Records:
    """The records of one batch as ``read_batches`` reads them: bytes, and the parsed records
    (``records``) or only where each goes."""

    __slots__ = ("audits", "checks", "days", "raw_audits", "raw_checks", "records", "routes")

    def __init__(self, records: bool) -> None:
        self.records = records
        self.checks: list[dict[str, Any]] = []
        self.audits: list[dict[str, Any]] = []
        self.raw_checks: list[bytes] = []
        self.raw_audits: list[bytes] = []
        self.routes: list[tuple[str, tuple[str, ...]]] = []
        self.days: list[str] = []

    def add(self, check: dict[str, Any] | None, audit: dict[str, Any] | None,
            raw_check: bytes | None = None, raw_audit: bytes | None = None) -> None:
        if check is not None:
            self.raw_checks.append(orjson.dumps(check) if raw_check is None else raw_check)
            if self.records:
                self.checks.append(check)
            else:
                self.routes.append(check_route(check))
        if audit is not None:
            self.raw_audits.append(orjson.dumps(audit) if raw_audit is None else raw_audit)
            if self.records:
                self.audits.append(audit)
            else:
                self.days.append(audit_day(audit))

    def add_line(self, line: bytes, day: str, authorities: list[str] | None,
                 audit: bytes) -> None:
        """A routed check line (``records.check_line``): filed as it is under its day and
        authorities if it hit, its audit part under its day."""
        if authorities is not None:
            self.raw_checks.append(line)
            self.routes.append((day, tuple(authorities)))
        self.raw_audits.append(audit)
        self.days.append(day)

    def batch(self, batch_id: str, segment: int, end: int, cut_ms: int, replay: bool,
              start: int) -> Batch:
        return Batch(batch_id, tuple(self.checks), tuple(self.audits), segment, end, cut_ms,
                     replay, start, tuple(self.raw_checks), tuple(self.raw_audits),
                     None if self.records else tuple(self.routes),
                     None if self.records else tuple(self.days))


def _read_closed(path: Path, offset: int, want: int, beyond: int = 0) -> bytes:
    """The bytes of ``path`` from ``offset`` to the end of a complete cut line: about ``want``
    bytes' worth of whole batches, or the first batch after ``offset`` whatever its size,
    and more than ``beyond`` bytes; ``b""`` if there is none (yet)."""
    size = max(want, beyond + 1, 1 << 20)
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(size)
            while True:
                closed = _closed_part(data)
                if len(closed) > beyond:
                    return closed
                more = f.read(max(len(data), size))
                if not more:
                    return b""
                data += more
    except FileNotFoundError:
        return b""


def has_cut(folder: Path, after: tuple[int, int], seen: dict[str, Any]) -> bool:
    """Is there a closed batch after ``after`` (a checkpoint)? Scans only the bytes of the
    newest segment not scanned before (``seen`` keeps the position between calls)."""
    segs = segments(folder)
    if not segs:
        return False
    seg, off = after
    newest = segs[-1]
    if max(seg, 1) < newest:
        return True  # an older segment always ends with a cut
    try:
        size = _segment_path(folder, newest).stat().st_size
    except FileNotFoundError:
        return False
    start = off
    if seen.get("segment") == newest:
        start = max(start, seen.get("offset", 0))
    if size <= start:
        return False
    with _segment_path(folder, newest).open("rb") as f:
        f.seek(max(0, start - 1))
        data = f.read(size - max(0, start - 1))
    found = (b"\n" + _CUT_PREFIX) in data or (start == 0 and data.startswith(_CUT_PREFIX))
    if not found:
        # everything up to the last newline was scanned (a line may still be half written)
        seen["segment"], seen["offset"] = newest, max(0, start - 1) + data.rfind(b"\n") + 1
    return found


def commit(folder: Path, batch: Batch) -> None:
    """Everything up to ``batch`` is in the backbone: move the checkpoint, drop segments."""
    logfile.write_atomic(folder / "checkpoint", b"%d %d\n" % (batch.segment, batch.end),
                         sync=False)
    for seg in segments(folder):
        if seg < batch.segment:
            _segment_path(folder, seg).unlink(missing_ok=True)


def reject(folder: Path, batch_id: str, checks: Sequence[dict[str, Any]],
           audits: Sequence[dict[str, Any]]) -> None:
    """Keep records the store refused in ``rejected.jsonl`` (for an operator to look at)."""
    logfile.append(folder / "rejected.jsonl", orjson.dumps(
        {"batch": batch_id, "checks": checks, "audits": audits}) + b"\n")


def pending_bytes(folder: Path, checkpoint: tuple[int, int] | None = None) -> int:
    seg, off = read_checkpoint(folder) if checkpoint is None else checkpoint
    total = 0
    for s in segments(folder):
        if s >= seg:
            try:
                size = _segment_path(folder, s).stat().st_size
            except FileNotFoundError:
                continue
            total += size - off if s == seg else size
    return max(total, 0)


def lock_held(path: Path, *, exclusive: bool = False) -> bool:
    """Does a live process hold an ``flock`` on ``path`` (that a shared, or with
    ``exclusive`` an exclusive, lock of ours would conflict with)? False if its folder is gone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def slot_alive(folder: Path) -> bool:
    """Does a live process own the slot (holds its ``lock``)?"""
    return lock_held(folder / "lock")


class ShipLock:
    """``<slot>/ship.lock``: whoever ships a slot (the owner's ``flush``, a shipper process)
    holds it, so a batch is never applied by two at once. Also remembers the checkpoint this
    process committed last: a first batch is a possible replay only if someone else shipped
    (and may have died between apply and checkpoint) since."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mine: tuple[int, int] | None = None  # the checkpoint this process wrote last
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0) -> bool:
        fd = os.open(self.folder / "ship.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.005)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
