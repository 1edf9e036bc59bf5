"""The embedded backbone: append-only JSON Lines files under ``<data>``, nothing to install.

Every write is an ``fsync``'d append under an ``flock`` (``logfile``), so several worker
processes on one machine may share a data folder; every read is a tail from a byte offset::

    <data>/backbone/events.jsonl          accepted live events, one SPEC §3 event a line
    <data>/backbone/feeds/<key>.jsonl     one feed per authority (key = sha256(authority)[:32])
    <data>/backbone/checks/<day>.jsonl    check records with hits, by CST day of the check
    <data>/backbone/outcomes/<day>.jsonl  posted outcomes, by CST day of the check
    <data>/audit/<day>.jsonl[.gz]         the audit trail (``archive``)

A feed holds the check records that hit the authority, as the request path serialised them
(one write, no re-encoding); ``read_feedback`` expands them into one item per hit of that
authority. A batch from the spool is applied once: its chunk in each file starts with a marker
line ``{"b": <batch id>}``, and a batch that may already be applied (the first after a
restart) skips the files that hold its marker. Statistics are folded from the check and audit files on demand and cached
per day and offset (each process folds only what is new).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from indexer import clock

from ..errors import Forbidden, Invalid, NotFound, Unavailable
from . import courtesy, logfile
from .archive import DEFAULT_KEEP_DAYS, AuditFiles, days_before
from .events import UNCHECKED, ExportResult, StaleLog, export_events
from .ratelimit import Admission, LocalLimiter
from .records import (
    Page,
    audit_day,
    check_event,
    check_route,
    day_of,
    feed_items,
    outcome_record,
    stored_check,
)
from .stats import Key, check_by, check_month, count_checks, count_queries, rows

log = logging.getLogger(__name__)

OUTCOME_DAYS = 90
_INTERNAL = ("b", "sid")


MAX_OFFSET = (1 << 63) - 1  # the largest file offset (off_t)


def bad_cursor(field: str, what: str = "a cursor of this backbone") -> Invalid:
    return Invalid("bad_cursor", f"{field} is not {what}", field=field)


def offset_cursor(value: str | None, field: str = "since") -> int:
    """A byte offset cursor: ASCII digits, no larger than a file can be."""
    if value is None or value == "":
        return 0
    text = str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_OFFSET):
        raise bad_cursor(field)
    return int(text)


def day_cursor(value: str | None, field: str = "since") -> tuple[str, str] | None:
    """``<YYYY-MM-DD>:<position>`` (the audit cursor of both backbones), the day a real date."""
    if value is None or value == "":
        return None
    day, sep, pos = str(value).partition(":")
    if not sep or not pos or not _DAY.fullmatch(day):
        raise bad_cursor(field, "an audit cursor")
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise bad_cursor(field, "an audit cursor") from None
    return day, pos


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def public(record: dict[str, Any]) -> dict[str, Any]:
    for k in _INTERNAL:
        record.pop(k, None)
    return record


class EmbeddedStore:
    backend = "embedded"

    def __init__(self, data: Path, *, audit_keep_days: int = DEFAULT_KEEP_DAYS,
                 outcome_days: int = OUTCOME_DAYS) -> None:
        self.data = Path(data)
        self.root = self.data / "backbone"
        for sub in ("feeds", "checks", "outcomes"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.events_path = self.root / "events.jsonl"
        self.audit_files = AuditFiles(self.data / "audit", keep_days=audit_keep_days)
        self.outcome_days = outcome_days
        self.limiter = LocalLimiter()
        self._lock = threading.Lock()
        self._event_ids: set[str] = set()
        self._events_seen = 0
        self._folds: dict[tuple[str, str], tuple[int, Counter[Key]]] = {}
        self._outcomes: dict[Path, tuple[float, int, dict[str, dict[str, Any]]]] = {}
        self._feeds: dict[str, Path] = {}
        self.events_read_at: float | None = None

    # -- live events ------------------------------------------------------------------------
    def append_events(self, events: list[dict[str, Any]], after: str | None = UNCHECKED
                      ) -> list[str]:
        """Append each event whose id the log does not hold yet; return every id. ``after``:
        the cursor of the log as the caller judged the events (None: an empty log) — if an
        event was appended after it, raise ``StaleLog`` and append nothing. The events
        file's ``flock`` makes the check and the append one step for every process."""
        ids = [check_event(e) for e in events]
        with self._lock, logfile.locked(self.events_path) as fd:
            if after != UNCHECKED:
                judged = offset_cursor(after, "after")
                size = os.fstat(fd).st_size
                if size > judged and logfile.decode(
                        os.pread(fd, size - judged, judged).split(b"\n")):
                    raise StaleLog(f"events were appended after {after}")
            self._catch_up(fd)
            fresh, seen = [], set()
            for event_id, event in zip(ids, events):
                if event_id not in self._event_ids and event_id not in seen:
                    seen.add(event_id)
                    fresh.append(orjson.dumps(event) + b"\n")
            if fresh:
                logfile.append_locked(fd, b"".join(fresh))
                self._catch_up(fd)
        return list(dict.fromkeys(ids))

    def _catch_up(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size > self._events_seen:
            chunk = os.pread(fd, size - self._events_seen, self._events_seen)
            complete = chunk[:chunk.rfind(b"\n") + 1]
            for event in logfile.decode(complete.split(b"\n")):
                self._event_ids.add(str(event.get("id")))
            self._events_seen += len(complete)

    def read_events(self, after: str | None = None, limit: int = 1000) -> Page:
        offset = offset_cursor(after, "after")
        lines, end = logfile.read_lines(self.events_path, offset, limit)
        self.events_read_at = time.monotonic()
        return Page(logfile.decode(lines), str(end))

    def wait_events(self, after: str | None, timeout: float, limit: int = 1000) -> Page:
        """New events after ``after``, waiting up to ``timeout`` seconds. Polls every 20 ms,
        with one ``stat`` of the log while it has not grown (what every idle worker does
        50 times a second; reading the file each time cost ~1% of a core)."""
        deadline = time.monotonic() + timeout
        cursor, seen = after, offset_cursor(after, "after")
        while True:
            try:
                size = os.stat(self.events_path).st_size
            except FileNotFoundError:
                size = 0
            if size > seen:
                page = self.read_events(cursor, limit)
                if page.items:
                    return page
                cursor, seen = page.next, offset_cursor(page.next, "after")  # a torn tail
            else:
                self.events_read_at = time.monotonic()
            if time.monotonic() >= deadline:
                return Page([], str(seen))
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def export_events(self, folder: Path) -> ExportResult:
        return export_events(self.read_events, Path(folder))

    # -- feedback and audit, applied in batches from the spool -----------------------------
    takes_routes = True  # the shipper may hand it records as bytes and routes (no objects)

    def apply(self, batch_id: str, checks: list[dict[str, Any]], audits: list[dict[str, Any]],
              *, replay: bool = False,
              raw: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
              routes: tuple[Sequence[tuple[str, Sequence[str]]], Sequence[str]] | None = None
              ) -> None:
        """Append a batch: each check record (as serialised, ``raw``) to its day's file and to
        the feed of every authority it hit, each audit record to its day's file. The chunk
        written to each file starts with a marker line ``{"b": <batch id>}``. With ``routes``
        (``spool.Batch.check_routes``, ``audit_days``) the records are only their bytes in
        ``raw`` and ``checks``/``audits`` are not read."""
        raw_checks, raw_audits = raw if raw is not None else (
            [orjson.dumps(c) for c in checks], [orjson.dumps(a) for a in audits])
        check_routes, audit_days = routes if routes is not None else (
            [check_route(rec) for rec in checks], [audit_day(rec) for rec in audits])
        if "" in audit_days or any(not day for day, _ in check_routes):
            raise ValueError("a record without a time")  # set aside, record by record
        groups: dict[tuple[str, str], list[bytes]] = {}  # (kind, day or authority) -> lines
        for (day, hit), data in zip(check_routes, raw_checks):
            courtesy.step()
            groups.setdefault(("c", day), []).append(data)
            for authority in hit:
                groups.setdefault(("f", authority), []).append(data)
        for day, data in zip(audit_days, raw_audits):
            courtesy.step()
            groups.setdefault(("a", day), []).append(data)
        files = {self._path(kind, name): lines for (kind, name), lines in groups.items()}
        marker = b'{"b":' + orjson.dumps(batch_id) + b"}"
        # every file is written first and fsync'd after: the first fsync commits the journal
        # transaction that holds them all, the others find little left to do (one commit a
        # batch instead of one a file, which also held up the serving processes' spool
        # writes). Each lock is released after its write; fsync goes through a second fd.
        written: list[int] = []
        try:
            for path, lines in files.items():
                if replay and (logfile.contains(path, marker) or
                               logfile.contains(path.with_name(path.name + ".gz"), marker)):
                    continue
                with logfile.locked(path) as fd:
                    logfile.append_locked(fd, marker + b"\n" + b"\n".join(lines) + b"\n",
                                          sync=False)
                    written.append(os.open(path, os.O_RDONLY))
            for fd in written:
                os.fsync(fd)
        except OSError as exc:  # disk full, read-only …: retried (the batch id keeps it once)
            raise Unavailable("backbone_unavailable", f"cannot write {exc.filename}: {exc}"
                              ) from None
        finally:
            for fd in written:
                os.close(fd)

    def _path(self, kind: str, name: str) -> Path:
        if kind == "f":
            return self._feed(name)
        if kind == "c":
            return self.root / "checks" / f"{name}.jsonl"
        return self.audit_files.plain(name)

    def _feed(self, authority: str) -> Path:
        path = self._feeds.get(authority)
        if path is None:
            key = hashlib.sha256(authority.encode()).hexdigest()[:32]
            path = self._feeds[authority] = self.root / "feeds" / f"{key}.jsonl"
        return path

    def read_feedback(self, authority: str, since: str | None = None, limit: int = 100) -> Page:
        """Feed items of ``authority`` after ``since``: all items of the next checks, so a page
        holds at least ``limit`` items unless the feed ends (a cursor never splits a check)."""
        path, offset = self._feed(authority), offset_cursor(since)
        if not logfile.at_line_start(path, offset):  # inside a line, or past the end
            raise bad_cursor("since")
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            lines, _ = logfile.read_lines(path, offset, limit - len(items))
            if not lines:
                break
            for line in lines:
                offset += len(line) + 1
                for rec in checks_of(logfile.decode([line])):
                    items.extend(feed_items(rec).get(authority, ()))
                if len(items) >= limit:
                    break
        for item in items:
            outcomes = logfile.cached(self._outcomes, self._outcome_path(day_of(item["at"])),
                                      _load_outcomes)
            item["outcome"] = None if outcomes is None else outcomes.get(item["check_id"])
        return Page(items, str(offset))

    def _outcome_path(self, day: str) -> Path:
        return self.root / "outcomes" / f"{day}.jsonl"

    def post_outcome(self, check_id: str, unit: str, outcome: str, note: str | None = None
                     ) -> dict[str, Any]:
        rec = outcome_record(check_id, unit, outcome, note)
        quoted = orjson.dumps(check_id)
        record_needle = b'"check_id":' + quoted + b","  # a check record
        line_needle = b"," + quoted + b","  # a check line (``records.check_line``)

        found: list[dict[str, Any]] = []  # the check record of the line ``is_check`` took

        def is_check(line: bytes) -> bool:
            records = checks_of(logfile.decode([line]))
            if records and records[0]["check_id"] == check_id:
                found[:] = records[:1]
                return True
            return False

        today = rec["at"][:10]
        for day in sorted((p.stem for p in (self.root / "checks").glob("*.jsonl")), reverse=True):
            if day < days_before(today, self.outcome_days):
                break
            path = self.root / "checks" / f"{day}.jsonl"
            line = logfile.find_line(path, record_needle, is_check) or \
                logfile.find_line(path, line_needle, is_check)
            if line is not None:
                if found[0]["unit"] != unit:
                    raise Forbidden("not_your_check", "only the unit that made a check may "
                                    "post its outcome")
                logfile.append(self._outcome_path(day), orjson.dumps(rec) + b"\n")
                return rec
        raise NotFound("unknown_check", f"no check {check_id!r} with hits in the last "
                       f"{self.outcome_days} days")

    # -- statistics -------------------------------------------------------------------------
    def stats(self, month: str, by: str) -> list[dict[str, Any]]:
        month, by = check_month(month), check_by(by)
        total: Counter[tuple[str, str]] = Counter()
        days = {p.stem for p in (self.root / "checks").glob(f"{month}-*.jsonl")}
        for day in sorted(days):
            self._add(total, self._fold(("c", day), by))
        for day in self.audit_files.days():
            if day.startswith(month):
                self._add(total, self._fold(("a", day), by))
        return rows(by, total)

    @staticmethod
    def _add(total: Counter[tuple[str, str]], part: Counter[tuple[str, str]]) -> None:
        total.update(part)

    def _fold(self, what: tuple[str, str], by: str) -> Counter[tuple[str, str]]:
        kind, day = what
        offset, counts = self._folds.get(what, (0, Counter()))
        if kind == "c":
            path = self.root / "checks" / f"{day}.jsonl"
            while True:
                lines, offset = logfile.read_lines(path, offset, 10_000)
                if not lines:
                    break
                count_checks(checks_of(logfile.decode(lines)), counts)
        else:
            batch: list[dict[str, Any]] = []
            for record, end in self.audit_files.scan(day, offset):
                batch.append(record)
                offset = end
            count_queries(batch, counts)
        self._folds[what] = (offset, counts)
        out: Counter[tuple[str, str]] = Counter()
        for (_, b, key, name), n in counts.items():
            if b == by:
                out[(key, name)] += n
        return out

    # -- audit ------------------------------------------------------------------------------
    def read_audit(self, since: str | None = None, limit: int = 100, unit: str | None = None
                   ) -> Page:
        cursor = day_cursor(since)
        days = self.audit_files.days()
        if cursor is None:
            if not days:
                return Page([], "")
            cursor = (days[0], "0")
        day, pos = cursor[0], offset_cursor(cursor[1])
        if not self.audit_files.position_ok(day, pos, days):
            raise bad_cursor("since", "an audit cursor")
        out: list[dict[str, Any]] = []
        budget = max(10_000, 100 * limit)
        for d in [x for x in days if x >= day]:
            if d != day:
                day, pos = d, 0
            got, pos, scanned = self.audit_files.read(day, pos, limit - len(out), unit,
                                                      budget=budget)
            out.extend(public(r) for r in got)
            budget -= scanned
            if len(out) >= limit or budget <= 0:
                break
        return Page(out, f"{day}:{pos}")

    def maintain(self, now: int | None = None) -> dict[str, Any]:
        """Archive audit days that closed two days ago or earlier; prune past retention."""
        today = clock.format_instant(clock.now() if now is None else now)[:10]
        horizon = days_before(today, 1)
        closed = [d for d in self.audit_files.days()
                  if d < horizon and self.audit_files.close_day(d)]
        return {"archived": closed, "pruned": self.audit_files.prune(today)}

    # -- the audit salt ---------------------------------------------------------------------
    def audit_secret(self) -> str:
        """This data folder's secret audit salt, generated by the first process that asks
        (``<data>/backbone/audit-salt``, readable by its owner only)."""
        return logfile.shared_secret(self.root / "audit-salt")

    # -- rate limits and health -------------------------------------------------------------
    def take(self, unit: str, rate_per_s: float) -> Admission:
        return self.limiter.take(unit, rate_per_s)

    def healthy(self) -> bool:
        return os.access(self.root, os.W_OK)

    def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "reachable": self.healthy()}

    def close(self) -> None:
        pass


def checks_of(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The check records of decoded feed or check file lines (``records.stored_check``); a
    line that is JSON but no check record is logged and skipped, like a torn one."""
    out = []
    for obj in objs:
        try:
            out.append(stored_check(obj))
        except (ValueError, TypeError, KeyError, AttributeError, Invalid) as exc:
            log.error("backbone.unreadable_check_line %r: %.200r", exc, obj)
    return out


def _load_outcomes(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for rec in logfile.decode(path.read_bytes().split(b"\n")):
        rec.pop("b", None)
        out[rec["check_id"]] = rec  # a later post replaces an earlier one
    return out

