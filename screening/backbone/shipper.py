"""The shipper: applies spooled batches to the store from the slot files, in its own process.

A serving process opened with ``open_backbone(settings, shipper=True)`` (what ``screening
serve`` does) only builds records and appends them to its spool slot (the acknowledgement
point is still that ``write(2)``); a thread of it cuts a batch every ``interval`` (one short
write and an ``fsync``: the group commit) and makes sure a shipper runs. The shipper is
``python -m screening.backbone ship``: one process per data folder (``<data>/spool/
shipper.lock``), started by the first serving process that finds none, which ships every slot
of the folder — its parsing, store writes, fsyncs and Redis round trips are no longer on
the serving process's interpreter (no GIL contention, no cache pollution of the checks).

Safety is the spool's, unchanged: batches and their ids live in the slot files, so whoever
ships a slot — the shipper, or the owner's ``flush`` (``post_outcome``, shutdown) — produces the
same batches; ``<slot>/ship.lock`` keeps two from applying at once, and a first batch is
treated as a possible replay unless this process wrote the current checkpoint itself. A
shipper killed at any point is replaced within a second by a serving process's watch (or by
the next ``flush``), and its half-applied batch is applied once. A slot whose owner died is
adopted (its tail cut) and drained. With no live owner and nothing pending for ``idle_exit``
seconds, the shipper exits. Its state (store reachable or not) is in ``<data>/spool/
shipper.json`` for the serving processes' ``degraded``/``status``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson

from ..errors import Unavailable
from ..gcpause import paused_gc
from . import courtesy, logfile
from .spool import (
    Batch,
    ShipLock,
    Spool,
    commit,
    has_cut,
    lock_held,
    pending_bytes,
    read_batches,
    read_checkpoint,
    reject,
    slot_alive,
    slot_id,
)

log = logging.getLogger(__name__)

LOCK = "shipper.lock"
STATUS = "shipper.json"
CHUNK = 64  # batches read back at once; a shipper round ships one chunk per slot


# -- applying batches (shared with the in-process flusher) -----------------------------------
def apply_batch(store: Any, folder: Path, batch: Batch) -> None:
    """Apply one batch. A batch the store refuses for another reason than ``Unavailable`` is
    applied record by record (ids ``<batch>/c<i>``, ``<batch>/a<i>``) and the records that
    still fail are set aside in the slot's ``rejected.jsonl``. Raises ``Unavailable``."""
    try:
        if batch.check_routes is not None and batch.audit_days is not None:
            store.apply(batch.id, [], [], replay=batch.replay,
                        raw=(batch.raw_checks, batch.raw_audits),
                        routes=(batch.check_routes, batch.audit_days))
        else:
            store.apply(batch.id, list(batch.checks), list(batch.audits), replay=batch.replay,
                        raw=(batch.raw_checks, batch.raw_audits))
        return
    except Unavailable:
        raise
    except Exception:  # a record the store cannot take: set it aside, go on
        log.exception("backbone_batch_refused batch=%s", batch.id)
    checks, audits = batch.records()
    singles = [("c", i, c, r) for i, (c, r) in enumerate(zip(checks, batch.raw_checks))]
    singles += [("a", i, a, r) for i, (a, r) in enumerate(zip(audits, batch.raw_audits))]
    refused: dict[str, list[dict[str, Any]]] = {"c": [], "a": []}
    for kind, i, record, raw in singles:
        pair = ([record], []) if kind == "c" else ([], [record])
        raws = ([raw], []) if kind == "c" else ([], [raw])
        try:
            store.apply(f"{batch.id}/{kind}{i}", *pair, replay=True, raw=raws)
        except Unavailable:
            raise
        except Exception:
            refused[kind].append(record)
    reject(folder, batch.id, refused["c"], refused["a"])
    log.error("backbone_records_set_aside batch=%s checks=%d audits=%d", batch.id,
              len(refused["c"]), len(refused["a"]))


def ship_files(store: Any, folder: Path, lock: ShipLock, *,
               until: tuple[int, int] | None = None, chunks: int | None = None) -> int:
    """Apply the closed batches of a slot, read from its files, that end at or before
    ``until`` (``(segment, offset)``; None: all), reading at most ``chunks`` chunks of
    ``CHUNK`` batches; the caller holds ``lock``. Returns how many were applied. Raises
    ``Unavailable`` (what is not applied stays in the files)."""
    sid = slot_id(folder)
    if sid is None:
        return 0
    done = 0
    while chunks is None or chunks > 0:
        if chunks is not None:
            chunks -= 1
        # a chunk's records are thousands of acyclic dicts held until it is applied: the
        # cyclic collector would walk them again and again as they pile up (2-3x the cost)
        with paused_gc():
            applied, more = _ship_chunk(store, folder, lock, sid, until)
        done += applied
        if not more:
            return done
    return done


def _ship_chunk(store: Any, folder: Path, lock: ShipLock, sid: str,
                until: tuple[int, int] | None) -> tuple[int, bool]:
    """One chunk of ``ship_files``: (batches applied, whether to read on)."""
    checkpoint = read_checkpoint(folder)
    batches = read_batches(folder, sid, checkpoint, None, checkpoint != lock.mine, CHUNK,
                           records=not getattr(store, "takes_routes", False))
    done = 0
    for batch in batches:
        if until is not None and (batch.segment, batch.end) > until:
            return done, False
        apply_batch(store, folder, batch)
        commit(folder, batch)
        lock.mine = (batch.segment, batch.end)
        done += 1
    return done, bool(batches)


# -- the status file -------------------------------------------------------------------------
def write_status(root: Path, *, degraded: bool, reason: str | None, since: float | None) -> None:
    logfile.write_atomic(root / STATUS, orjson.dumps(
        {"pid": os.getpid(), "degraded": degraded, "reason": reason, "since": since}),
        sync=False)


def read_status(root: Path) -> dict[str, Any] | None:
    try:
        value = orjson.loads((root / STATUS).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def running(root: Path) -> bool:
    """Does a shipper hold ``<root>/shipper.lock``?"""
    root.mkdir(parents=True, exist_ok=True)
    return lock_held(root / LOCK, exclusive=True)


# -- the process -----------------------------------------------------------------------------
class Shipper:
    def __init__(self, store: Any, root: Path, *, interval: float = 0.05,
                 maintain_every: float = 3600.0, idle_exit: float = 2.0) -> None:
        self.store = store
        self.root = Path(root)
        self.interval = interval
        self.maintain_every = maintain_every
        self.idle_exit = idle_exit
        self.locks: dict[Path, ShipLock] = {}
        self.seen: dict[Path, dict[str, Any]] = {}  # how far each slot was scanned for cuts
        self.stop = False
        self.backlog = False  # a full chunk was shipped: go again without waiting
        self._down_since: float | None = None
        self._backoff = interval

    def _round(self) -> bool:
        """Ship every slot once; True if some slot has a live owner or is still pending."""
        busy = False
        for folder in Spool.slots(self.root):
            alive = slot_alive(folder)
            busy = busy or alive
            if alive and not has_cut(folder, read_checkpoint(folder),
                                     self.seen.setdefault(folder, {})):
                continue  # nothing closed yet: its owner cuts a batch every second
            if not pending_bytes(folder):
                continue
            lock = self.locks.setdefault(folder, ShipLock(folder))
            if not lock.acquire():
                busy = True  # its owner is flushing it
                continue
            try:
                if alive:  # one chunk, then the lock is free for the owner's flush
                    if ship_files(self.store, folder, lock, chunks=1) >= CHUNK:
                        busy = self.backlog = True
                    continue
                orphan = Spool.adopt(folder, keep=False)  # its owner died: cut its tail
                if orphan is None:
                    busy = True
                    continue
                try:
                    orphan.cut()
                    ship_files(self.store, folder, lock)
                    log.info("backbone_spool_adopted slot=%s", folder.name)
                finally:
                    orphan.close()
            finally:
                lock.release()
            busy = busy or bool(pending_bytes(folder))
        return busy

    def run(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return 0  # another shipper serves this folder
        write_status(self.root, degraded=False, reason=None, since=None)
        next_maintain = time.monotonic() + min(self.maintain_every, 5.0)
        idle_since: float | None = None
        try:
            while not self.stop:
                started = time.monotonic()
                self.backlog = False
                try:
                    busy = self._round()
                    self._up()
                    if started >= next_maintain:
                        next_maintain = started + self.maintain_every
                        self.store.maintain()
                except Unavailable as exc:
                    self._down(exc.message)
                    busy = True
                except Exception:  # never die on a surprise; the spool keeps everything
                    log.exception("backbone_shipper_error")
                    busy = True
                if busy:
                    idle_since = None
                elif idle_since is None:
                    idle_since = started
                elif started - idle_since >= self.idle_exit:
                    return 0
                wait = self._backoff if self._down_since is not None else \
                    0.0 if self.backlog else self.interval
                time.sleep(max(0.0, started + wait - time.monotonic()))
            return 0
        finally:
            os.close(fd)

    def _up(self) -> None:
        if self._down_since is not None:
            log.info("backbone_recovered down_s=%.3f", time.monotonic() - self._down_since)
            self._down_since = None
            self._backoff = self.interval
            write_status(self.root, degraded=False, reason=None, since=None)

    def _down(self, reason: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("backbone_degraded reason=%r", reason)
            write_status(self.root, degraded=True, reason=reason, since=time.time())
        self._backoff = min(self._backoff * 2, 1.0)


NICENESS = 10  # the shipper yields the CPU to the serving processes it works for
# ... and gives it up every this many spool lines read or records filed (``courtesy``): a few
# hundred µs of work, far less than a scheduler slice
COURTESY_STEPS = 64


# glibc's malloc gives the top of its heap back to the system once 128 kB lie free there: a
# shipper that builds a batch's thousands of records (their bytes, above obmalloc's 512-byte
# limit) and frees them at once then faults the same pages in again for the next batch, ~1.8
# page faults and ~4.5 µs of system CPU per record on this VM. Keeping up to this much free
# heap (what one bounded chunk takes, ``spool.READ_BYTES``) makes the next batch reuse it.
KEEP_HEAP = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt(3) parameters (glibc)


def keep_heap(size: int = KEEP_HEAP) -> bool:
    """Tell glibc's malloc to keep up to ``size`` bytes of free heap, and to serve blocks
    under 32 MiB from the heap; False where there is no glibc (nothing changes)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, size)) and bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20))


def main(store: Any, root: Path, *, interval: float = 0.05, idle_exit: float = 2.0) -> int:
    shipper = Shipper(store, root, interval=interval, idle_exit=idle_exit)
    try:  # background work: a second's batch must not delay the checks sharing its core
        os.nice(NICENESS)
    except OSError:
        pass
    keep_heap()
    courtesy.courteous(COURTESY_STEPS)

    def stop(signum: int, frame: Any) -> None:
        shipper.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return shipper.run()
    finally:
        store.close()
