"""What every check endpoint does, once: authenticate, parse, call the core, record, encode.

The HTTP layers (``screening.fastpath`` for ``POST /v1/check``, the FastAPI routes in
``screening.app``) only move bytes in and out; both call ``Service``, so the lean path and the
documented route answer byte for byte the same.

Every completed check — single or batch item — is handed to the ``Recorder`` given to
``create_app`` as ``(account, request, result)``; issue 4's feedback and audit plug in there.
A recorder runs inline and must be quick; if it raises, the failure is logged and counted
(``screening_recorder_errors_total``) and the caller still gets its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter as Tally
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import orjson

from indexer import clock

from .accounts import Account, Accounts
from .decision import CheckRequest, check, check_batch
from .errors import RateLimited, ScreeningError, Unauthorized
from .gcpause import paused_gc
from .holder import SnapshotHolder
from .metrics import Metrics
from .settings import Settings
from .wire import (
    BatchRequest,
    batch_item,
    batch_request,
    check_request,
    decode,
    item_request,
)

log = logging.getLogger(__name__)

CHECK_ROUTE = "/v1/check"
BATCH_ROUTE = "/v1/check/batch"
BATCH_CHUNK = 250  # subjects decided between two yields to the event loop (~5-10 ms)


class Recorder(Protocol):
    """Takes every completed check (feedback, statistics, audit: issue 4)."""

    def record(self, account: Account, request: CheckRequest,
               result: Mapping[str, Any]) -> None: ...


DEGRADED_HEADERS = ((b"x-screening-backbone", b"degraded"),)


class Answer(NamedTuple):
    """An encoded response: status, JSON payload, the decision label for metrics."""

    status: int
    payload: bytes
    decision: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    checks: int = 1  # subjects decided as ``decision`` (metrics)
    tally: dict[str, int] | None = None  # a batch's subjects by decision (metrics)


def error_answer(exc: ScreeningError, checks: int = 0) -> Answer:
    headers: tuple[tuple[bytes, bytes], ...] = ()
    if isinstance(exc, RateLimited):
        headers = ((b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode()),)
    elif isinstance(exc, Unauthorized):
        headers = ((b"www-authenticate", b'Bearer realm="screening"'),)
    return Answer(exc.status, orjson.dumps(exc.body()), "error", headers, checks)


class Service:
    """The check endpoints' work over one holder, one set of accounts and one recorder."""

    def __init__(self, settings: Settings, holder: SnapshotHolder, accounts: Accounts,
                 metrics: Metrics, recorder: Recorder | None = None) -> None:
        self.settings = settings
        self.holder = holder
        self.accounts = accounts
        self.metrics = metrics
        self.recorder = recorder
        self.live: Any = None  # screening.live.LiveEvents once the backbone is wired

    def overlay(self, loaded: Any) -> Any:
        live = self.live
        return live.overlay_for(loaded) if live is not None else None

    def authenticate(self, authorization: str | bytes | None) -> Account:
        return self.accounts.authenticate(authorization)

    def _health_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """``x-screening-backbone: degraded`` on answers while the backbone is down."""
        degraded = getattr(self.recorder, "degraded", None)
        return DEGRADED_HEADERS if degraded is not None and degraded() else ()

    def grouped_recording(self) -> contextlib.AbstractContextManager[None]:
        """A block whose checks' records the recorder may write together at its end."""
        grouped = getattr(self.recorder, "grouped", None)
        return grouped() if grouped is not None else contextlib.nullcontext()

    def _record(self, account: Account, request: CheckRequest,
                result: Mapping[str, Any]) -> None:
        if self.recorder is None:
            return
        try:
            self.recorder.record(account, request, result)
        except Exception:
            self.metrics.recorder_errors += 1
            log.exception("recorder.failed check_id=%s unit=%s", result.get("check_id"),
                          account.unit)

    def _record_failed(self, account: Account, request: CheckRequest) -> None:
        """A parsed check that failed (bad identifier, scenario, region): audited with no
        decision by recorders that can (``record_failed``); it counts for coverage."""
        failed = getattr(self.recorder, "record_failed", None)
        if failed is None:
            return
        try:
            failed(account, request)
        except Exception:
            self.metrics.recorder_errors += 1
            log.exception("recorder.failed unit=%s", account.unit)

    def check(self, account: Account, body: bytes) -> Answer:
        """``POST /v1/check``: one SPEC §8 response or one error."""
        request = None
        try:
            request = check_request(decode(body))
            loaded = self.holder.require()
            result = check(loaded.snapshot, request, account.caller,
                           overlay=self.overlay(loaded))
        except ScreeningError as exc:
            if request is not None:
                self._record_failed(account, request)
            # a subject read and refused counts as one answered (``error``); a request
            # refused before that (a bad body) counts none
            return error_answer(exc, 1 if request is not None else 0)
        self._record(account, request, result)
        return Answer(200, orjson.dumps(result), result["decision"], self._health_headers())

    async def batch(self, account: Account, body: bytes) -> Answer:
        """``POST /v1/check/batch``: ``{"results": [...]}``, one result or error per item.

        Items are checked for shape and types here (strictly, like a single check), then the
        valid ones are decided by ``decision.check_batch`` in chunks of ``BATCH_CHUNK``, on
        one snapshot and at one instant, yielding to the event loop between chunks so that
        single checks are not held up behind a 10,000-subject batch.

        The cyclic collector is paused over the whole request, across those yields, and
        restarted once the request's objects are freed: tens of thousands of acyclic dicts
        that reference counting frees, which the collector would otherwise walk again at
        every chunk (``gcpause``).
        """
        with paused_gc():
            return await self._batch(account, body)

    async def _batch(self, account: Account, body: bytes) -> Answer:
        batch: BatchRequest | None = None
        try:
            results: list[dict[str, Any] | None] = []
            valid: list[dict[str, Any]] = []
            batch = batch_request(decode(body), self.settings.max_batch)
            loaded = self.holder.require()
            for i, item in enumerate(batch.items):
                try:
                    valid.append(batch_item(item, i))
                    results.append(None)
                except ScreeningError as exc:
                    results.append(exc.body())
            as_of = batch.as_of or clock.format_instant(clock.now())
            overlay = self.overlay(loaded)
            decided: list[dict[str, Any]] = []
            for start in range(0, max(1, len(valid)), BATCH_CHUNK):
                if start:
                    await asyncio.sleep(0)
                decided.extend(check_batch(loaded.snapshot, batch.scenario,
                                           valid[start:start + BATCH_CHUNK],
                                           account.caller, region=batch.region,
                                           as_of=as_of, overlay=overlay))
        except ScreeningError as exc:
            if batch is not None and self.recorder is not None:
                # refused whole after it was parsed (unknown scenario, region, as_of, no
                # snapshot): each item is a query that failed, audited as a single check's is
                self._record_batch(account, batch, [_refused_item(i) for i in batch.items],
                                   [exc.body()] * len(batch.items))
            return error_answer(exc)
        if len(valid) == len(results):
            merged = decided
        else:
            it = iter(decided)
            merged = [next(it) if r is None else r for r in results]
        tally = Tally(r.get("decision", "error") for r in merged)
        if self.recorder is not None:
            self._record_batch(account, batch, valid, decided)
        payload = orjson.dumps({"results": merged})
        return Answer(200, payload, "batch", self._health_headers(), checks=0, tally=dict(tally))

    def _record_batch(self, account: Account, batch: BatchRequest,
                      valid: list[dict[str, Any]], decided: list[dict[str, Any]]) -> None:
        many = getattr(self.recorder, "record_batch", None)
        if many is not None:  # one recorder call for the whole batch
            try:
                many(account, batch, valid, decided)
            except Exception:
                self.metrics.recorder_errors += 1
                log.exception("recorder.failed batch unit=%s", account.unit)
            return
        for item, result in zip(valid, decided):
            if "check_id" in result:
                self._record(account, item_request(batch, item), result)


def _refused_item(item: Any) -> dict[str, Any]:
    """A raw batch item as the recorder audits a failed one: its subject and consent when
    they are strings."""
    if not isinstance(item, dict):
        return {"subject": None}
    subject, consent = item.get("subject"), item.get("consent")
    return {"subject": subject if isinstance(subject, str) else None,
            "consent": consent if isinstance(consent, str) else None}
