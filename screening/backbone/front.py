"""The recording front: the request path appends to a local spool, a thread ships batches.

``record`` (and ``record_checks``/``audit``) serialise one JSON line and ``write(2)`` it to this
process's spool slot: that is the acknowledgement point — it survives SIGKILL of the service
as soon as the call returns, and the flusher ``fsync``s it within ``interval`` (group commit).
The flusher thread wakes every ``interval`` seconds, cuts a batch, and applies every closed
batch to the store in order, moving the checkpoint after each. While the store is unreachable
(Redis down) batches wait in the spool on disk, the front reports itself degraded and retries
with backoff; when it comes back they are applied exactly once (batch ids). A batch the store
refuses for any other reason (a malformed record) is set aside in the slot's ``rejected.jsonl``
and logged, so it cannot stall the ones behind it. Slots left by dead processes are adopted
and drained. The spool file itself is the queue between request path
and flusher, so memory stays bounded however long Redis is away.

With ``shipper=`` (a command; ``open_backbone(settings, shipper=True)``, what ``screening
serve`` runs) there is no flusher thread: a light thread ``fsync``s every ``interval``, cuts a
batch every ``batch_every`` and keeps a shipper process running (``screening.backbone.shipper``),
which applies the batches from the slot files; ``flush`` ships this slot from its files here.

Everything else (events, feeds, stats, audit reads, rate limits) goes straight to the store.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from ..errors import NotFound, Unavailable
from . import shipper as shipping
from .events import UNCHECKED, ExportResult
from .ratelimit import Admission
from .records import (
    Page,
    audit_record,
    batch_line,
    check_line,
    check_record,
    now_iso,
    query_item,
)
from .spool import CUT_BYTES, ShipLock, Spool, read_checkpoint

log = logging.getLogger(__name__)
dumps = orjson.dumps


def _records(result: dict[str, Any], meta: dict[str, Any], at: str | None = None
             ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The feedback record (None without hits) and audit record of a decided check, built on
    the request path; ``meta`` as ``Front.record_check``'s keyword arguments; ``at``: the
    time they carry (default now)."""
    made = check_record(result, unit=meta["unit"], scenario=meta["scenario"],
                        region=meta["region"])
    audited = audit_record(unit=meta["unit"], scenario=meta["scenario"], subject=meta["subject"],
                           decision=result.get("decision"), check_id=result.get("check_id"),
                           purpose=meta.get("purpose"), consent=meta.get("consent"))
    if at is not None:
        if made:
            made["at"] = at
        audited["at"] = at
    return made, audited


class Front:
    def __init__(self, store: Any, spool_root: Path, *, interval: float = 0.05,
                 maintain_every: float = 3600.0, adopt_every: float = 5.0,
                 start: bool = True, shipper: list[str] | None = None,
                 batch_every: float = 1.0) -> None:
        """``shipper``: the command of a shipper process (``screening.backbone.shipper``); with
        it, this process only appends, ``fsync``s every ``interval`` (group commit) and cuts a
        batch every ``batch_every`` seconds, and the shipper applies the batches."""
        self.store = store
        # a store that knows its last call failed (Redis), asked by every answer's ``degraded``
        self._known_down = getattr(store, "known_down", None)
        self.backend: str = store.backend
        self.spool_root = Path(spool_root)
        self.shipper_cmd = shipper
        self.batch_every = batch_every
        self.spool = Spool.claim(self.spool_root, keep=shipper is None)
        self._shiplock = ShipLock(self.spool.folder)
        if shipper is None:
            # the flusher ships this slot itself: hold its ship.lock for good, so that a shipper
            # process serving the same data folder never ships it too
            if not self._shiplock.acquire(10.0):
                log.warning("backbone_ship_lock_busy slot=%s", self.spool.folder.name)
            self.spool.reload()  # a shipper may have moved the checkpoint meanwhile
        self._children: list[subprocess.Popen[bytes]] = []
        self._status_mtime = 0
        self._closed = False
        self.interval = interval
        self.maintain_every = maintain_every
        self.adopt_every = adopt_every
        self._ship = threading.Lock()
        self._stop = threading.Event()
        self._group = threading.local()  # grouped(): lines waiting for one write
        self._wake = threading.Event()
        self._down_since: float | None = None
        self._reason: str | None = None
        self._retry_at = 0.0
        self._backoff = interval
        self._thread: threading.Thread | None = None
        if start:
            if shipper is not None:
                self._thread = threading.Thread(target=self._run_cutter, name="backbone-cutter",
                                                daemon=True)
            else:
                self._thread = threading.Thread(target=self._run, name="backbone-flusher",
                                                daemon=True)
            self._thread.start()

    # -- the request path -------------------------------------------------------------------
    def _append(self, data: bytes) -> None:
        """Shipper mode: write spool lines now, or at the end of this thread's ``grouped()``."""
        pending = getattr(self._group, "lines", None)
        if pending is None:
            self.spool.record(data)
        else:
            pending.append(data)

    @contextlib.contextmanager
    def grouped(self) -> Iterator[None]:
        """Spool the records of every check decided inside the block with one ``write(2)`` at
        its end (shipper mode; otherwise each is written at once). For the fast path's
        ``Coalescer``, which decides the checks ready in one loop turn together and answers
        none of them before the block has ended — so every answer still follows its write."""
        if self.spool.keep or getattr(self._group, "lines", None) is not None:
            yield
            return
        self._group.lines = []
        try:
            yield
        finally:
            lines, self._group.lines = self._group.lines, None
            if lines:
                self.spool.record(b"".join(lines))

    def record(self, checks: Sequence[dict[str, Any]] = (),
               audits: Sequence[dict[str, Any]] = ()) -> None:
        """Spool one request's check records (with hits) and audit records: one write."""
        if checks or audits:
            if not self.spool.keep:  # a shipper reads them back: one line a record, one write
                self._append(b"".join([b'{"c":%s}\n' % dumps(c) for c in checks]
                                           + [b'{"a":%s}\n' % dumps(a) for a in audits]))
                return
            raw_checks = [dumps(c) for c in checks]
            raw_audits = [dumps(a) for a in audits]
            line = b'{"c":[%s],"a":[%s]}\n' % (b",".join(raw_checks), b",".join(raw_audits))
            self.spool.record(line, checks, audits, raw_checks, raw_audits)

    def record_check(self, result: dict[str, Any], *, unit: str, scenario: str,
                     region: str | None, subject: str | None, purpose: str | None = None,
                     consent: str | None = None, at: str | None = None) -> None:
        """One completed check (``result`` has a ``check_id``): its feedback record when it
        hit and its audit record, as ``record(checks=[check_record(...)], audits=[audit_record(
        ...)])`` would spool them; ``at``: the time of the check in +08:00 (default now). In
        shipper mode the request path writes one routed line (``records.check_line``): the
        hits packed as arrays, and where the records are filed; the embedded store's shipper
        files it as it is."""
        if not self.spool.keep:
            self._append(check_line(result, unit=unit, scenario=scenario, region=region,
                                    subject=subject, purpose=purpose, consent=consent, at=at))
            return
        made, audited = _records(result, {"unit": unit, "scenario": scenario, "region": region,
                                          "subject": subject, "purpose": purpose,
                                          "consent": consent}, at)
        self.record(checks=[made] if made else [], audits=[audited])

    def record_batch(self, items: Sequence[tuple[dict[str, Any] | None, Any, str | None]], *,
                     unit: str, scenario: str, region: str | None,
                     purpose: str | None = None) -> None:
        """The items of one batch request, in order, with one write, all stamped with one
        time: ``(result, subject, consent)`` for a decided item (``subject``: its normalised
        identifier, as ``record_check`` takes it) and ``(None, audit, None)`` for an item that
        failed (its audit record). In shipper mode the batch is one compact line
        (``records.batch_line``) that the shipper expands."""
        at = now_iso()
        meta = {"unit": unit, "scenario": scenario, "region": region, "purpose": purpose}
        if self.spool.keep:  # a flusher thread ships them: build the records here
            checks: list[dict[str, Any]] = []
            audits: list[dict[str, Any]] = []
            for result, subject, consent in items:
                if result is None:
                    audits.append(subject)
                    continue
                made, audited = _records(result, {**meta, "subject": subject,
                                                  "consent": consent}, at)
                if made:
                    checks.append(made)
                audits.append(audited)
            self.record(checks=checks, audits=audits)
            return
        compact: list[Any] = []
        for result, subject, consent in items:
            if result is None:
                compact.append({"a": subject})
            else:
                compact.append(query_item(result, subject=subject, consent=consent))
        if compact:
            self._append(batch_line(compact, at=at, unit=unit, scenario=scenario, region=region,
                                    purpose=purpose))

    def record_checks(self, items: Sequence[dict[str, Any]]) -> None:
        self.record(checks=items)

    def audit(self, items: Sequence[dict[str, Any]]) -> None:
        self.record(audits=items)

    # -- shipping ---------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Ship everything spooled so far now; False if the store stayed unreachable."""
        deadline = time.monotonic() + timeout
        if not self.spool.keep:
            return self._flush_files(deadline)
        while True:
            if self._ship_once(self.spool, force=True):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _ship_once(self, spool: Spool, *, force: bool = False) -> bool:
        """Cut and apply closed batches; True when the spool is drained."""
        with self._ship:
            if not force and time.monotonic() < self._retry_at:
                return False
            spool.cut()
            while True:
                batches = spool.batches()
                if not batches:
                    self._up()
                    return True
                for batch in batches:
                    try:  # records the store refuses are set aside, one by one
                        shipping.apply_batch(self.store, spool.folder, batch)
                    except Unavailable as exc:
                        self._down(exc.message)
                        return False
                    spool.commit(batch)

    def _flush_files(self, deadline: float) -> bool:
        """Shipper mode: cut, then ship this slot from its files here (under the slot's ship
        lock, which the shipper takes for its rounds too)."""
        self.spool.cut()
        target = self.spool.last_cut  # everything recorded before this call is cut by here
        folder = self.spool.folder
        while True:
            if read_checkpoint(folder) >= target:
                return True
            if self._shiplock.acquire(max(0.0, deadline - time.monotonic())):
                try:
                    shipping.ship_files(self.store, folder, self._shiplock, until=target)
                    self._up()
                    return True  # every closed batch up to the target is applied
                except Unavailable as exc:
                    self._down(exc.message)
                finally:
                    self._shiplock.release()
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _run_cutter(self) -> None:
        """Shipper mode: ``fsync`` the spool every ``interval`` (group commit), cut a batch every
        ``batch_every`` or once ``CUT_BYTES`` wait uncut, mirror the shipper's state, and start
        a shipper when none runs (checked every second)."""
        next_check = next_cut = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                now = time.monotonic()
                if now >= next_cut or self.spool.uncut_bytes >= CUT_BYTES:
                    next_cut = now + self.batch_every
                    self.spool.cut()
                else:
                    self.spool.sync()
                self._read_shipper_status()
                if now >= next_check:
                    next_check = now + 1.0
                    self._ensure_shipper()
            except Exception:  # never let the cutter die; the spool keeps everything
                log.exception("backbone_cutter_error backend=%s", self.backend)
                time.sleep(self.interval)

    def _ensure_shipper(self) -> None:
        self._children = [c for c in self._children if c.poll() is None]
        if self.shipper_cmd is None or shipping.running(self.spool_root):
            return
        self._children.append(subprocess.Popen(self.shipper_cmd, stdin=subprocess.DEVNULL,
                                               close_fds=True))
        log.info("backbone_shipper_started pid=%d", self._children[-1].pid)

    def _read_shipper_status(self) -> None:
        path = self.spool_root / shipping.STATUS
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._status_mtime:
            return
        self._status_mtime = mtime
        status = shipping.read_status(self.spool_root)
        if status is None:
            return
        if status.get("degraded"):
            if self._down_since is None:
                since = status.get("since")
                ago = max(0.0, time.time() - since) if isinstance(since, (int, float)) else 0.0
                self._down_since = time.monotonic() - ago
            self._reason = status.get("reason") or "backbone unreachable"
        else:
            self._down_since = self._reason = None

    def _up(self) -> None:
        if self._down_since is not None:
            log.info("backbone_recovered backend=%s down_s=%.3f", self.backend,
                     time.monotonic() - self._down_since)
        self._down_since = self._reason = None
        self._backoff = self.interval

    def _down(self, reason: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("backbone_degraded backend=%s reason=%r", self.backend, reason)
        self._reason = reason
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, 1.0)

    def _run(self) -> None:
        next_adopt = time.monotonic()
        next_maintain = time.monotonic() + min(self.maintain_every, 5.0)
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self._ship_once(self.spool)
                now = time.monotonic()
                if now >= next_adopt and self._down_since is None:
                    next_adopt = now + self.adopt_every
                    self._adopt_orphans()
                if now >= next_maintain and self._down_since is None:
                    next_maintain = now + self.maintain_every
                    self.store.maintain()
            except Unavailable as exc:
                self._down(exc.message)
            except Exception:  # never let the flusher die; the spool keeps everything
                log.exception("backbone_flusher_error backend=%s", self.backend)
                time.sleep(self.interval)

    def _adopt_orphans(self) -> None:
        for folder in Spool.slots(self.spool_root):
            if folder == self.spool.folder:
                continue
            orphan = Spool.adopt(folder)
            if orphan is None:
                continue
            lock = ShipLock(folder)
            try:
                if not lock.acquire():  # a shipper process is on it
                    continue
                orphan.reload()
                if orphan.pending_bytes() and self._ship_once(orphan, force=True):
                    log.info("backbone_spool_adopted slot=%s", folder.name)
            finally:
                lock.release()
                orphan.close()

    # -- everything else goes to the store --------------------------------------------------
    def append_events(self, events: list[dict[str, Any]], after: str | None = UNCHECKED
                      ) -> list[str]:
        return self.store.append_events(events, after)  # type: ignore[no-any-return]

    def read_events(self, after: str | None = None, limit: int = 1000) -> Page:
        return self.store.read_events(after, limit)  # type: ignore[no-any-return]

    def wait_events(self, after: str | None, timeout: float = 1.0, limit: int = 1000) -> Page:
        return self.store.wait_events(after, timeout, limit)  # type: ignore[no-any-return]

    def export_events(self, folder: Path) -> ExportResult:
        return self.store.export_events(folder)  # type: ignore[no-any-return]

    def read_feedback(self, authority: str, since: str | None = None, limit: int = 100) -> Page:
        return self.store.read_feedback(authority, since, limit)  # type: ignore[no-any-return]

    def post_outcome(self, check_id: str, unit: str, outcome: str, note: str | None = None
                     ) -> dict[str, Any]:
        try:
            return self.store.post_outcome(check_id, unit, outcome, note)  # type: ignore[no-any-return]
        except NotFound:
            # the check may still be in the spool (an outcome posted right after the check)
            self.flush(timeout=2.0)
            return self.store.post_outcome(check_id, unit, outcome, note)  # type: ignore[no-any-return]

    def stats(self, month: str, by: str) -> list[dict[str, Any]]:
        return self.store.stats(month, by)  # type: ignore[no-any-return]

    def read_audit(self, since: str | None = None, limit: int = 100, unit: str | None = None
                   ) -> Page:
        return self.store.read_audit(since, limit, unit)  # type: ignore[no-any-return]

    def maintain(self, now: int | None = None) -> dict[str, Any]:
        return self.store.maintain(now)  # type: ignore[no-any-return]

    def take(self, unit: str, rate_per_s: float) -> Admission:
        return self.store.take(unit, rate_per_s)  # type: ignore[no-any-return]

    # -- health -----------------------------------------------------------------------------
    def healthy(self) -> bool:
        return self._down_since is None and bool(self.store.healthy())

    def degraded(self) -> bool:
        """Cheap (no I/O): is the store known to be down — records waiting in the spool, or
        the store's last call failed (Redis away before a record was there to ship)?"""
        known_down = self._known_down
        return self._down_since is not None or (known_down is not None and known_down())

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` and responses: degraded, why, what waits in the spool, and how
        long ago live events were last read from the store (how stale they may be)."""
        read_at = getattr(self.store, "events_read_at", None)
        reachable = bool(self.store.healthy())
        degraded = self._down_since is not None or not reachable
        return {
            "backend": self.backend,
            "degraded": degraded,
            "reason": self._reason or (None if reachable else "backbone unreachable"),
            "down_s": None if self._down_since is None
            else round(time.monotonic() - self._down_since, 3),
            "spool_bytes": self.spool.pending_bytes(),
            "events_age_s": None if read_at is None else round(time.monotonic() - read_at, 3),
        }

    def close(self, timeout: float = 2.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush(timeout=timeout if self._down_since is None else 0.0)
        self._shiplock.release()
        self.spool.close()
        self.store.close()
        for child in self._children:  # the shipper this process started (others restart one)
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._children = []
