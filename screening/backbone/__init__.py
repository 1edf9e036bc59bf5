"""The shared backbone (SPEC §6): live events, feedback, statistics, audit and rate limits.

One interface, ``Backbone``, opened by ``open_backbone(settings)``: a recording ``Front``
(local spool + flusher thread) over one of two stores that pass the same contract tests —
``EmbeddedStore`` (append-only files under ``settings.data``; the default, nothing to install)
and ``RedisStore`` (``settings.redis``; streams and counters shared by every replica).
See ``docs/backbone.md`` for the layout on disk and in Redis, cursors and retention::

    bb = open_backbone(settings)
    bb.record(checks=[check_record(result, unit=..., scenario=..., region=...)],
              audits=[audit_record(unit=..., scenario=..., subject=..., decision=...)])
    items, cursor = bb.read_feedback("福州市中级人民法院", since=None, limit=100)
    bb.close()

Errors are ``screening.errors`` classes: ``Invalid`` (bad cursor, month, outcome, event),
``Forbidden`` (someone else's check), ``NotFound`` (unknown check), ``Unavailable`` (Redis
unreachable for a call that cannot be spooled: events, reads, outcomes).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..settings import Settings
from .archive import DEFAULT_KEEP_DAYS, MIN_KEEP_DAYS
from .embedded import OUTCOME_DAYS, EmbeddedStore
from .events import ExportResult
from .front import Front
from .ratelimit import Admission
from .records import (
    OUTCOMES,
    Page,
    audit_record,
    check_record,
    feed_items,
    outcome_record,
    set_audit_salt,
    subject_hash,
)
from .stats import BYS

__all__ = [
    "BYS", "DEFAULT_KEEP_DAYS", "MIN_KEEP_DAYS", "OUTCOMES", "OUTCOME_DAYS", "Admission",
    "Backbone", "EmbeddedStore", "ExportResult", "Front", "Page", "Store", "audit_record",
    "check_record", "feed_items", "open_backbone", "open_store", "outcome_record",
    "shipper_command", "subject_hash",
]


@runtime_checkable
class Store(Protocol):
    """What differs between backends. Cursors are opaque strings of the store that issued
    them; ``None`` means "from the oldest record kept"."""

    backend: str

    def append_events(self, events: list[dict[str, Any]]) -> list[str]: ...
    def read_events(self, after: str | None = None, limit: int = 1000) -> Page: ...
    def wait_events(self, after: str | None, timeout: float, limit: int = 1000) -> Page: ...
    def export_events(self, folder: Path) -> ExportResult: ...
    def audit_secret(self) -> str: ...
    def apply(self, batch_id: str, checks: list[dict[str, Any]],
              audits: list[dict[str, Any]], *, replay: bool = False,
              raw: tuple[Sequence[bytes], Sequence[bytes]] | None = None) -> None: ...
    def read_feedback(self, authority: str, since: str | None = None,
                      limit: int = 100) -> Page: ...
    def post_outcome(self, check_id: str, unit: str, outcome: str,
                     note: str | None = None) -> dict[str, Any]: ...
    def stats(self, month: str, by: str) -> list[dict[str, Any]]: ...
    def read_audit(self, since: str | None = None, limit: int = 100,
                   unit: str | None = None) -> Page: ...
    def maintain(self, now: int | None = None) -> dict[str, Any]: ...
    def take(self, unit: str, rate_per_s: float) -> Admission: ...
    def healthy(self) -> bool: ...
    def status(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


@runtime_checkable
class Backbone(Protocol):
    """What the service calls. ``record``/``record_checks``/``audit`` only append to the
    local spool (the acknowledgement point) and never block on the network."""

    backend: str

    def record(self, checks: Sequence[dict[str, Any]] = (),
               audits: Sequence[dict[str, Any]] = ()) -> None: ...
    def record_checks(self, items: Sequence[dict[str, Any]]) -> None: ...
    def audit(self, items: Sequence[dict[str, Any]]) -> None: ...
    def flush(self, timeout: float = 5.0) -> bool: ...
    def append_events(self, events: list[dict[str, Any]]) -> list[str]: ...
    def read_events(self, after: str | None = None, limit: int = 1000) -> Page: ...
    def wait_events(self, after: str | None, timeout: float = 1.0,
                    limit: int = 1000) -> Page: ...
    def export_events(self, folder: Path) -> ExportResult: ...
    def read_feedback(self, authority: str, since: str | None = None,
                      limit: int = 100) -> Page: ...
    def post_outcome(self, check_id: str, unit: str, outcome: str,
                     note: str | None = None) -> dict[str, Any]: ...
    def stats(self, month: str, by: str) -> list[dict[str, Any]]: ...
    def read_audit(self, since: str | None = None, limit: int = 100,
                   unit: str | None = None) -> Page: ...
    def maintain(self, now: int | None = None) -> dict[str, Any]: ...
    def take(self, unit: str, rate_per_s: float) -> Admission: ...
    def healthy(self) -> bool: ...
    def status(self) -> dict[str, Any]: ...
    def close(self, timeout: float = 2.0) -> None: ...


def open_store(settings: Settings, **options: Any) -> Store:
    """The store ``settings`` name: Redis when ``settings.redis`` is set, else embedded.
    ``options``: ``audit_keep_days``, ``outcome_days`` (and for Redis ``prefix``,
    ``feed_days``, ``timeout``)."""
    if settings.redis:
        from .redis import RedisStore
        return RedisStore(settings.redis, settings.data, **options)
    return EmbeddedStore(settings.data, **options)


def shipper_command(settings: Settings, *, interval: float = 0.05, **options: Any) -> list[str]:
    """``python -m screening.backbone ship …`` for the store of ``settings``."""
    cmd = [sys.executable, "-m", "screening.backbone", "ship", "--data", str(settings.data),
           "--interval", repr(interval)]
    if settings.redis:
        cmd += ["--redis", settings.redis]
    if options:
        import orjson

        cmd += ["--options", orjson.dumps(options).decode()]
    return cmd


def open_backbone(settings: Settings, *, interval: float = 0.05, start: bool = True,
                  shipper: bool = False, **options: Any) -> Front:
    """The backbone of a serving process: a front (spool under ``<data>/spool``) over the
    store of ``settings``. Call ``close()`` at shutdown.

    ``shipper=False``: a flusher thread of this process ships the spool to the store.
    ``shipper=True`` (``screening serve``): this process only appends and cuts; a shipper
    process per data folder (``python -m screening.backbone ship``, started on demand)
    applies the batches (``screening.backbone.shipper``)."""
    cmd = shipper_command(settings, interval=interval, **options) if shipper else None
    store = open_store(settings, **options)
    # the secret the audit trail hashes subjects with (this process's records are hashed on
    # its request path): the setting, else the one the store keeps
    set_audit_salt(settings.audit_salt or store.audit_secret())
    return Front(store, Path(settings.data) / "spool", interval=interval, start=start,
                 shipper=cmd)
