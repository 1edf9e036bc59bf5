"""Wiring of the shared backbone into the HTTP service (issue 4, SPEC §6).

* ``BackboneRecorder`` — the ``Recorder`` seam of ``screening.service``: each completed check
  becomes one ``bb.record(...)`` call (a feedback record when it hit, always an audit record);
  a batch is one call for all its items.
* ``LiveEvents`` — the overlay of live events over the snapshot being served. Each loaded
  snapshot gets its own ``Overlay``; a tailer (``run``, one task per process) follows the
  backbone's event log with ``bb.wait_events(cursor, 1.0)`` and applies every event, in log
  order, to the current overlay. A new snapshot's overlay is built and replayed from the start
  of the log *before* the swap (``prepare``, called by ``SnapshotHolder.refresh``), so a check
  never sees a snapshot without the events accepted before it; events the snapshot already
  folded are skipped by ``Overlay.apply``.

Every overlay mutation after it is published happens on the event loop thread (the tailer's
coroutine and ``catch_up`` of ``POST /v1/events``), the same thread that decides checks, so a
check never sees a half-applied event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from indexer import identifiers
from indexer.records import RecordError

from .accounts import Account
from .backbone import audit_record, check_record
from .decision import CheckRequest
from .errors import ScreeningError
from .holder import Loaded, SnapshotHolder
from .overlay import Overlay
from .wire import BatchRequest, item_request

log = logging.getLogger(__name__)

_PAGE = 1000


def _subject_id(subject: Any, result: Mapping[str, Any]) -> str | None:
    """The normalised, unmasked identifier of a check (the audit hashes it): the answer's,
    unless it is masked (the public tier); else the requested ``subject`` as a check reads it
    — a 15-digit ID number in its 18-digit form, so that one person has one hash whatever the
    caller's tier."""
    sid = (result.get("subject") or {}).get("id")
    if isinstance(sid, str) and "*" not in sid:
        return sid
    return read_subject(subject, (result.get("subject") or {}).get("type"))


def read_subject(subject: Any, kind: Any = None) -> str | None:
    """A requested identifier as a check reads it — normalised, a 15-digit ID number in its
    18-digit form — for the audit's hash; as typed (normalised) when it reads as no
    identifier (an alias, or a query that failed on it); None for no string."""
    if not isinstance(subject, str):
        return None
    try:
        key = identifiers.normalize(subject)
    except Exception:  # an unusable identifier is still an audited query
        return None
    try:
        return identifiers.parse_normalized(key, kind if kind in ("org", "person") else None).value
    except identifiers.IdentifierError:
        return key or None


class BackboneRecorder:
    """Feedback and audit of every check, through the backbone's local spool (no network)."""

    def __init__(self, backbone: Any) -> None:
        self.backbone = backbone

    def degraded(self) -> bool:
        """Is the backbone down (feedback and audit waiting in the local spool)?"""
        return bool(self.backbone.degraded())

    def grouped(self) -> contextlib.AbstractContextManager[None]:
        """Checks recorded inside the block are spooled with one write at its end."""
        grouped = getattr(self.backbone, "grouped", None)
        return grouped() if grouped is not None else contextlib.nullcontext()

    @staticmethod
    def _records(account: Account, request: CheckRequest, result: Mapping[str, Any],
                 checks: list[dict[str, Any]], audits: list[dict[str, Any]]) -> None:
        if "check_id" not in result:  # a batch item that failed: audited, no decision
            audits.append(BackboneRecorder._failed(account, request))
            return
        rec = check_record(dict(result), unit=account.unit, scenario=request.scenario,
                           region=request.region)
        if rec is not None:
            checks.append(rec)
        audits.append(audit_record(unit=account.unit, scenario=request.scenario,
                                   subject=_subject_id(request.subject, result),
                                   decision=result.get("decision"),
                                   check_id=result.get("check_id"),
                                   purpose=getattr(request, "purpose", None),
                                   consent=request.consent))

    @staticmethod
    def _failed(account: Account, request: CheckRequest) -> dict[str, Any]:
        subject = read_subject(request.subject, request.type)
        return audit_record(unit=account.unit, scenario=request.scenario, subject=subject,
                            decision=None, purpose=getattr(request, "purpose", None),
                            consent=request.consent)

    def record_failed(self, account: Account, request: CheckRequest) -> None:
        self.backbone.record(audits=[self._failed(account, request)])

    def record(self, account: Account, request: CheckRequest,
               result: Mapping[str, Any]) -> None:
        quick = getattr(self.backbone, "record_check", None)
        if quick is not None and "check_id" in result:  # the records are built by the backbone
            # the time of the check: the instant it was decided at, unless it asked for another
            quick(result, unit=account.unit, scenario=request.scenario, region=request.region,
                  subject=_subject_id(request.subject, result),
                  purpose=getattr(request, "purpose", None), consent=request.consent,
                  at=result.get("as_of") if getattr(request, "as_of", None) is None else None)
            return
        checks: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        self._records(account, request, result, checks, audits)
        self.backbone.record(checks=checks, audits=audits)

    def record_batch(self, account: Account, batch: BatchRequest,
                     items: Sequence[dict[str, Any]], results: Sequence[Mapping[str, Any]]
                     ) -> None:
        """The valid items of one batch request and their results (a decision, or the error
        of an item the core refused), in order: one backbone call."""
        fast = getattr(self.backbone, "record_batch", None)
        if fast is not None:  # one write; one compact line in shipper mode
            out: list[tuple[Any, Any, str | None]] = []
            for item, result in zip(items, results):
                if "check_id" in result:
                    out.append((result, _subject_id(item["subject"], result),
                                item.get("consent")))
                else:
                    out.append((None, self._failed(account, item_request(batch, item)), None))
            fast(out, unit=account.unit, scenario=batch.scenario, region=batch.region,
                 purpose=batch.purpose)
            return
        checks: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        for item, result in zip(items, results):
            self._records(account, item_request(batch, item), result, checks, audits)
        if audits:
            self.backbone.record(checks=checks, audits=audits)


def apply_events(overlay: Overlay, events: Sequence[dict[str, Any]], *,
                 upto: int | None = None,
                 on_error: Callable[[Any, Exception], None] | None = None) -> bool:
    """Apply logged events to ``overlay`` in order. An event that cannot apply (an entry
    unknown here, a second listing …) is skipped, as on every replica, and given to
    ``on_error``. True once ``upto`` events have applied (it stops there)."""
    for event in events:
        try:
            overlay.apply(event)
        except (RecordError, ScreeningError, KeyError, TypeError, ValueError) as exc:
            if on_error is not None:
                on_error(event, exc)
            continue
        if upto is not None and len(overlay.applied) >= upto:
            return True
    return False


def replay(backbone: Any, overlay: Overlay, *, upto: int | None = None,
           on_error: Callable[[Any, Exception], None] | None = None) -> str | None:
    """Apply the backbone's event log from its start (``apply_events``), all of it or until
    ``upto`` events have applied; the cursor after the last page read (None when it stopped
    inside a page). Raises what ``read_events`` raises (``Unavailable``)."""
    cursor: str | None = None
    while True:
        page = backbone.read_events(cursor, _PAGE)
        if apply_events(overlay, page.items, upto=upto, on_error=on_error):
            return None
        cursor = page.next
        if len(page.items) < _PAGE:
            return cursor


class LiveEvents:
    """The live-event overlay of the served snapshot, fed from the backbone's event log."""

    def __init__(self, backbone: Any, holder: SnapshotHolder) -> None:
        self.backbone = backbone
        self.holder = holder
        self._current: tuple[Loaded, Overlay] | None = None
        self._prepared: tuple[Loaded, Overlay, str | None] | None = None
        self.cursor: str | None = None
        self.applied_total = 0
        self.errors = 0
        self.last_read = 0.0  # time.time() of the last successful read of the log
        self._stop = False

    # -- read side (checks) ----------------------------------------------------------
    def overlay_for(self, loaded: Loaded) -> Overlay | None:
        cur = self._current
        if cur is not None and cur[0] is loaded:
            return cur[1]
        prepared = self._prepared
        if prepared is not None and prepared[0] is loaded:
            return prepared[1]
        return None

    def applied(self, loaded: Loaded) -> list[dict[str, Any]]:
        overlay = self.overlay_for(loaded)
        return list(overlay.applied) if overlay is not None else list(loaded.applied_events)

    # -- building ----------------------------------------------------------------------
    def _not_applied(self, event: Any, exc: Exception) -> None:
        self.errors += 1
        log.warning("live.event_not_applied id=%s reason=%s",
                    event.get("id") if isinstance(event, dict) else None, exc)

    def _apply(self, overlay: Overlay, events: Sequence[dict[str, Any]]) -> None:
        before = len(overlay.applied)
        apply_events(overlay, events, on_error=self._not_applied)
        self.applied_total += len(overlay.applied) - before

    def prepare(self, loaded: Loaded) -> None:
        """Build ``loaded``'s overlay and replay the whole log into it (before the swap; runs
        in the refresh thread, on an overlay no check can see yet)."""
        overlay = Overlay(loaded.snapshot)
        try:
            cursor = replay(self.backbone, overlay, on_error=self._not_applied)
        except Exception as exc:  # the tailer replays it after the swap instead
            log.warning("live.prepare_failed version=%s reason=%s", loaded.version, exc)
            return
        self.applied_total += len(overlay.applied)
        self.last_read = time.time()
        self._prepared = (loaded, overlay, cursor)

    def _adopt(self, loaded: Loaded) -> Overlay:
        """Make ``loaded``'s overlay the current one (on the loop thread)."""
        prepared = self._prepared
        if prepared is not None and prepared[0] is loaded:
            overlay, self.cursor = prepared[1], prepared[2]
        else:
            overlay, self.cursor = Overlay(loaded.snapshot), None
        self._prepared = None
        self._current = (loaded, overlay)
        return overlay

    def current(self) -> tuple[Loaded, Overlay] | None:
        loaded = self.holder.current
        if loaded is None:
            return None
        cur = self._current
        if cur is None or cur[0] is not loaded:
            return loaded, self._adopt(loaded)
        return cur

    # -- following the log -----------------------------------------------------------------
    async def catch_up(self) -> Overlay | None:
        """Apply everything in the log now (after accepting events: read your writes)."""
        cur = self.current()
        if cur is None:
            return None
        loaded, overlay = cur
        while True:
            cursor = self.cursor
            page = await asyncio.to_thread(self.backbone.read_events, cursor, _PAGE)
            if self._current is None or self._current[1] is not overlay:
                return self.overlay_for(loaded)
            self._apply(overlay, page.items)
            self.cursor = page.next
            self.last_read = time.time()
            if len(page.items) < _PAGE:
                return overlay

    async def run(self, timeout: float = 1.0) -> None:
        """The tailer: until ``stop()``, wait for new events and apply them."""
        while not self._stop:
            cur = self.current()
            if cur is None:
                await asyncio.sleep(0.2)
                continue
            _, overlay = cur
            cursor = self.cursor
            try:
                page = await asyncio.to_thread(self.backbone.wait_events, cursor, timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Unavailable, or anything else: keep serving, retry
                log.warning("live.tail_failed reason=%s", exc)
                await asyncio.sleep(0.5)
                continue
            self.last_read = time.time()
            if self._current is None or self._current[1] is not overlay:
                continue  # swapped meanwhile: the new overlay has its own cursor
            self._apply(overlay, page.items)
            if self.cursor == cursor:
                self.cursor = page.next

    def stop(self) -> None:
        self._stop = True
