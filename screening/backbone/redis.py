"""The Redis backbone (redis-py): streams and counters shared by every replica.

Key layout (``prefix`` defaults to ``sb:``)::

    sb:events                 stream of accepted live events (field ``e``: the event JSON)
    sb:event-ids              hash event id -> stream id (idempotent acceptance)
    sb:feed:<authority>       stream per authority (field ``i``: a check record that hit it,
                              expanded into items on reading), trimmed after ``feed_days``
    sb:check:<check id>       "<unit>\\t<day>" of a check with hits, expires after ``outcome_days``
    sb:outcome:<check id>     the posted outcome (JSON), expires after ``feed_days``
    sb:stats:<YYYY-MM>:<by>   hash "<key>\\t<counter>" -> count
    sb:audit                  stream of audit records (field ``r``) for the last two CST days;
                              closed days go to ``<data>/audit/<day>.jsonl.gz`` (``archive``)
    sb:audit-archived         stream id of the last archived audit record
    sb:batch:<batch id>       marker of an applied spool batch (expires after 7 days)
    sb:rate:<unit>            GCRA theoretical arrival time (µs, Redis clock)
    sb:lock:maintain          one replica archives at a time

A batch is one ``EVALSHA``: the script sets the batch marker with ``SET NX`` and runs the
batch's commands (one JSON argument, decoded by the script) only if it was not set — a batch replayed from a spool applies once.
Unreachable Redis raises ``Unavailable`` (the front keeps spooling and retries).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from indexer import clock

from ..errors import Forbidden, NotFound, Unavailable
from . import logfile
from .archive import DEFAULT_KEEP_DAYS, AuditFiles, days_before
from .embedded import (
    OUTCOME_DAYS,
    bad_cursor,
    day_cursor,
    offset_cursor,
    public,
)
from .events import UNCHECKED, ExportResult, StaleLog, export_events
from .ratelimit import GCRA_LUA, Admission, LocalLimiter, parameters
from .records import Page, authorities, check_event, day_of, feed_items, outcome_record
from .stats import SEP, check_by, check_month, increments, rows

log = logging.getLogger(__name__)

T = TypeVar("T")
FEED_DAYS = 400
BATCH_TTL = 7 * 86400
DOWN = (redis_py.ConnectionError, redis_py.TimeoutError)

# ARGV[1]: the id of the last event the caller judged against ("0-0": none; "*": do not
# check), then id/event pairs; STALE (nothing appended) if the stream has moved past ARGV[1]
APPEND_EVENTS_LUA = """
if ARGV[1] ~= '*' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local tail = '0-0'
  if #last > 0 then tail = last[1][1] end
  if tail ~= ARGV[1] then return redis.error_reply('STALE the event log moved') end
end
local out = {}
for i = 2, #ARGV, 2 do
  local sid = redis.call('HGET', KEYS[2], ARGV[i])
  if not sid then
    sid = redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1])
    redis.call('HSET', KEYS[2], ARGV[i], sid)
  end
  out[#out + 1] = sid
end
return out
"""

# ARGV: ttl, the batch's commands as one JSON array of arrays, then the records as serialised
# on the request path; in a command, a number n stands for ARGV[n] (so records are neither
# re-encoded nor escaped, and redis-py packs a few arguments per record, not dozens)
APPLY_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local ops = cjson.decode(ARGV[2])
for i = 1, #ops do
  local op = ops[i]
  for j = 1, #op do
    if type(op[j]) == 'number' then op[j] = ARGV[op[j]] end
  end
  redis.call(unpack(op))
end
return 1
"""


def stream_cursor(value: str | None, field: str = "since", *, whole: bool = False
                  ) -> str | None:
    """A stream id cursor, ``<ms>-<seq>`` (``whole``: both parts, as every id a reader is
    given has them; the event log's own cursors may be ``<ms>``)."""
    if value is None or value == "":
        return None
    ms, sep, seq = str(value).partition("-")
    if not (_u64(ms) and (_u64(seq) if sep or whole else True)):
        raise bad_cursor(field)
    return str(value)


def _u64(text: str) -> bool:
    """ASCII digits of a number a stream id part can hold (Redis: 64 bits unsigned)."""
    return text.isascii() and text.isdigit() and len(text) <= 20 and int(text) < 1 << 64


def day_start_ms(day: str) -> int:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=clock.CST)
    return int(start.timestamp() * 1000)


def sid_key(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def sid_day(sid: str) -> str:
    return clock.format_instant(int(sid.split("-")[0]) * 1000)[:10]


class RedisStore:
    backend = "redis"

    def __init__(self, url: str, data: Path, *, prefix: str = "sb:",
                 audit_keep_days: int = DEFAULT_KEEP_DAYS, outcome_days: int = OUTCOME_DAYS,
                 feed_days: int = FEED_DAYS, timeout: float = 2.0) -> None:
        self.url = url
        self.p = prefix
        self.data = Path(data)
        self.r: Any = redis_py.Redis.from_url(  # replies are untyped: bytes, lists, dicts
            url, socket_timeout=timeout, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0),
            health_check_interval=0)
        self.audit_files = AuditFiles(Path(data) / "audit", keep_days=audit_keep_days)
        self.outcome_days = outcome_days
        self.feed_days = feed_days
        self.limiter = LocalLimiter()  # while Redis is unreachable
        self._append = self.r.register_script(APPEND_EVENTS_LUA)
        self._apply = self.r.register_script(APPLY_LUA)
        self._gcra = self.r.register_script(GCRA_LUA)
        self._health: tuple[float, bool] = (0.0, False)
        self.events_read_at: float | None = None

    @contextmanager
    def _up(self) -> Iterator[None]:
        try:
            yield
        except DOWN as exc:
            self._health = (time.monotonic(), False)
            raise Unavailable("backbone_unavailable", f"Redis is unreachable: {exc}") from None

    def _call(self, fn: Callable[[], T]) -> T:
        with self._up():
            value = fn()
        self._health = (time.monotonic(), True)
        return value

    # -- live events ------------------------------------------------------------------------
    def append_events(self, events: list[dict[str, Any]], after: str | None = UNCHECKED
                      ) -> list[str]:
        """Accept events once per id (AOF-backed); unavailable while Redis is unreachable —
        an event must reach every replica, so no replica accepts one alone. ``after``: the
        cursor (stream id) the caller judged the events against (None: an empty log); if
        the stream moved past it, ``StaleLog`` and nothing appended (one Lua script: the
        check and the append are atomic across replicas)."""
        ids = [check_event(e) for e in events]
        args: list[Any] = [UNCHECKED if after == UNCHECKED
                           else stream_cursor(after, "after") or "0-0"]
        for event_id, event in zip(ids, events):
            args += [event_id, orjson.dumps(event)]
        if len(args) > 1:
            try:
                self._call(lambda: self._append(keys=[self.p + "events",
                                                      self.p + "event-ids"], args=args))
            except redis_py.ResponseError as exc:
                if str(exc).startswith("STALE"):
                    raise StaleLog(str(exc)) from None
                raise
        return list(dict.fromkeys(ids))

    def read_events(self, after: str | None = None, limit: int = 1000) -> Page:
        start = stream_cursor(after, "after")
        got = self._call(lambda: self.r.xrange(self.p + "events",
                                               "-" if start is None else "(" + start,
                                               count=limit))
        self.events_read_at = time.monotonic()
        return self._page(got, b"e", start)

    def wait_events(self, after: str | None, timeout: float, limit: int = 1000) -> Page:
        start = stream_cursor(after, "after") or "0-0"
        block = max(1, int(timeout * 1000))
        got = self._call(lambda: self.r.xread({self.p + "events": start}, count=limit,
                                              block=block))
        self.events_read_at = time.monotonic()
        return self._page(got[0][1] if got else [], b"e", start)

    def _last_id(self, key: str) -> tuple[int, int]:
        """The last id a stream ever gave (kept when its entries are trimmed); (0, 0) for a
        stream that does not exist."""
        try:
            info = self.r.xinfo_stream(key)
        except redis_py.ResponseError:  # no such key
            return (0, 0)
        last = info.get("last-generated-id") or b"0-0"
        return sid_key(last.decode() if isinstance(last, bytes) else str(last))

    @staticmethod
    def _page(entries: list[Any], field: bytes, start: str | None) -> Page:
        items = [orjson.loads(fields[field]) for _, fields in entries]
        last = entries[-1][0].decode() if entries else (start or "0-0")
        return Page(items, last)

    def export_events(self, folder: Path) -> ExportResult:
        return export_events(self.read_events, Path(folder))

    # -- feedback and audit, applied in batches from the spool -----------------------------
    def apply(self, batch_id: str, checks: list[dict[str, Any]], audits: list[dict[str, Any]],
              *, replay: bool = False,
              raw: tuple[Sequence[bytes], Sequence[bytes]] | None = None) -> None:
        raw_checks, raw_audits = raw if raw is not None else (
            [orjson.dumps(c) for c in checks], [orjson.dumps(a) for a in audits])
        args: list[Any] = [BATCH_TTL, b""]
        ops: list[list[Any]] = []
        check_ttl = str(self.outcome_days * 86400)
        for rec, data in zip(checks, raw_checks):
            args.append(data)
            ref = len(args)  # 1-based ARGV index in the script
            ops.append(["SET", self.p + "check:" + rec["check_id"],
                        f"{rec['unit']}\t{day_of(rec['at'])}", "EX", check_ttl])
            ops.extend(["XADD", self.p + "feed:" + a, "*", "i", ref] for a in authorities(rec))
        for (month, by, key, name), n in increments(checks, audits).items():
            ops.append(["HINCRBY", f"{self.p}stats:{month}:{by}", key + SEP + name, str(n)])
        audit = self.p + "audit"
        for data in raw_audits:
            args.append(data)
            ops.append(["XADD", audit, "*", "r", len(args)])
        if ops:
            args[1] = orjson.dumps(ops)
            self._call(lambda: self._apply(keys=[self.p + "batch:" + batch_id], args=args))

    def read_feedback(self, authority: str, since: str | None = None, limit: int = 100) -> Page:
        """Feed items of ``authority``: the stream holds the check records that hit it, each
        expanded into one item per hit of that authority (a cursor never splits a check)."""
        start = stream_cursor(since, whole=True)
        key = self.p + "feed:" + authority

        def read() -> tuple[list[Any], list[Any]] | None:
            if start is not None and sid_key(start) > self._last_id(key):
                return None  # past the end of the feed: not a cursor it gave
            entries = self.r.xrange(key, "-" if start is None else "(" + start, count=limit)
            records = [orjson.loads(f[b"i"]) for _, f in entries]
            ids = [r["check_id"] for r in records]
            outcomes = self.r.mget([self.p + "outcome:" + i for i in ids]) if ids else []
            return entries, [(r, o) for r, o in zip(records, outcomes)]

        got = self._call(read)
        if got is None:
            raise bad_cursor("since")
        entries, records = got
        items: list[dict[str, Any]] = []
        for rec, outcome in records:
            found = None if outcome is None else orjson.loads(outcome)
            for item in feed_items(rec).get(authority, ()):
                item["outcome"] = found
                items.append(item)
        last = entries[-1][0].decode() if entries else (start or "0-0")
        return Page(items, last)

    def post_outcome(self, check_id: str, unit: str, outcome: str, note: str | None = None
                     ) -> dict[str, Any]:
        rec = outcome_record(check_id, unit, outcome, note)
        found = self._call(lambda: self.r.get(self.p + "check:" + check_id))
        if found is None:
            raise NotFound("unknown_check", f"no check {check_id!r} with hits in the last "
                           f"{self.outcome_days} days")
        if found.decode().split("\t")[0] != unit:
            raise Forbidden("not_your_check", "only the unit that made a check may post its "
                            "outcome")
        self._call(lambda: self.r.set(self.p + "outcome:" + check_id, orjson.dumps(rec),
                                      ex=self.feed_days * 86400))
        return rec

    # -- statistics -------------------------------------------------------------------------
    def stats(self, month: str, by: str) -> list[dict[str, Any]]:
        month, by = check_month(month), check_by(by)
        raw = self._call(lambda: self.r.hgetall(f"{self.p}stats:{month}:{by}"))
        counts: Counter[tuple[str, str]] = Counter()
        for field, n in raw.items():
            key, _, name = field.decode().rpartition(SEP)
            counts[(key, name)] = int(n)
        return rows(by, counts)

    # -- audit ------------------------------------------------------------------------------
    def read_audit(self, since: str | None = None, limit: int = 100, unit: str | None = None
                   ) -> Page:
        files = self.audit_files
        archived = [d for d in files.days() if files.is_archived(d)]
        cursor = day_cursor(since)
        out: list[dict[str, Any]] = []
        budget = max(10_000, 100 * limit)
        boundary = self._call(lambda: self.r.get(self.p + "audit-archived"))
        last_archived = boundary.decode() if boundary else None
        if cursor is None:
            day, pos = (archived[0], "0") if archived else ("", "")
        else:
            day, pos = cursor
            if "-" in pos:  # a stream id, of a record of that day, not past the last one
                if stream_cursor(pos, whole=True) is None or sid_day(pos) != day or \
                        sid_key(pos) > self._call(lambda: self._last_id(self.p + "audit")):
                    raise bad_cursor("since", "an audit cursor")
            else:  # a position in an archived day (a day pruned since: before them all)
                offset = offset_cursor(pos)
                if not (files.position_ok(day, offset, archived) if day in archived
                        else bool(archived) and day < archived[0]):
                    raise bad_cursor("since", "an audit cursor")
            if "-" in pos and last_archived and sid_key(pos) <= sid_key(last_archived):
                # the cursor's record was archived since: continue from the same place on file
                pos = str(next((end for rec, end in files.scan(day) if rec.get("sid") == pos), 0))
        next_cursor = since or ""
        while pos and "-" not in pos and len(out) < limit and budget > 0:
            got, offset, scanned = files.read(day, int(pos), limit - len(out), unit,
                                              budget=budget)
            out.extend(public(r) for r in got)
            budget -= scanned
            pos, next_cursor = str(offset), f"{day}:{offset}"
            if len(out) >= limit or budget <= 0:
                return Page(out, next_cursor)
            later = [d for d in archived if d > day]
            if later:
                day, pos = later[0], "0"
            else:
                pos = ""
        if len(out) < limit and budget > 0:
            if pos and "-" in pos:
                start = "(" + pos
            elif last_archived:
                start = "(" + last_archived
            else:
                start = "-"
            entries = self._call(lambda: self.r.xrange(self.p + "audit", start,
                                                       count=limit - len(out)))
            for sid, fields in entries:
                rec = orjson.loads(fields[b"r"])
                if unit is None or rec.get("unit") == unit:
                    out.append(rec)
            if entries:
                last = entries[-1][0].decode()
                next_cursor = f"{sid_day(last)}:{last}"
        return Page(out, next_cursor)

    def maintain(self, now: int | None = None) -> dict[str, Any]:
        """Archive closed audit days (two days old) to files and trim them from Redis; prune
        archives past retention; trim feeds past ``feed_days``. One replica at a time."""
        now = clock.now() if now is None else now
        today = clock.format_instant(now)[:10]
        lock = self.p + "lock:maintain"
        if not self._call(lambda: self.r.set(lock, "1", nx=True, ex=600)):
            return {"archived": [], "pruned": [], "skipped": True}
        try:
            archived = self._archive(days_before(today, 1))
            feed_min = f"{now // 1000 - self.feed_days * 86_400_000}-0"

            def trim_feeds() -> None:
                for key in self.r.scan_iter(match=self.p + "feed:*", count=1000):
                    self.r.xtrim(key, minid=feed_min, approximate=True)

            self._call(trim_feeds)
            return {"archived": archived, "pruned": self.audit_files.prune(today)}
        finally:
            self._call(lambda: self.r.delete(lock))

    def _archive(self, horizon: str) -> list[str]:
        stream = self.p + "audit"
        done: list[str] = []
        while True:
            first = self._call(lambda: self.r.xrange(stream, "-", "+", count=1))
            if not first:
                return done
            day = sid_day(first[0][0].decode())
            if day >= horizon:
                return done
            end_ms = day_start_ms(days_before(day, -1))
            if self.audit_files.is_archived(day):  # written before a crash: find its end
                last = ""
                for record, _ in self.audit_files.scan(day):
                    last = record.get("sid", last)
            else:
                lines, start = [], "-"
                while True:
                    chunk = self._call(lambda: self.r.xrange(stream, start, str(end_ms - 1),
                                                             count=10_000))
                    if not chunk:
                        break
                    for sid, fields in chunk:
                        lines.append(orjson.dumps({**orjson.loads(fields[b"r"]),
                                                   "sid": sid.decode()}))
                    start = "(" + chunk[-1][0].decode()
                last = start[1:]
                self.audit_files.write_day(day, b"\n".join(lines) + b"\n")
                done.append(day)
            if last:
                self._call(lambda: self.r.set(self.p + "audit-archived", last))
            self._call(lambda: self.r.xtrim(stream, minid=f"{end_ms}-0", approximate=False))

    # -- the audit salt ---------------------------------------------------------------------
    def audit_secret(self) -> str:
        """The deployment's secret audit salt, kept in Redis (``<prefix>audit-salt``, made by
        the first replica that asks) so that every replica hashes alike. With Redis away at
        start: this data folder's own, logged (set ``SCREENING_AUDIT_SALT`` on every replica
        to need neither)."""
        key = self.p + "audit-salt"
        try:
            def shared() -> str:
                self.r.set(key, secrets.token_hex(32), nx=True)
                value = self.r.get(key)
                return value.decode() if isinstance(value, bytes) else str(value)
            return self._call(shared)
        except Unavailable:
            log.warning("backbone.audit_salt_local: Redis is unreachable; hashing audit "
                        "subjects with this data folder's salt until restart (set "
                        "SCREENING_AUDIT_SALT on every replica)")
            return logfile.shared_secret(self.data / "backbone" / "audit-salt")

    # -- rate limits and health -------------------------------------------------------------
    def take(self, unit: str, rate_per_s: float) -> Admission:
        interval, tolerance = parameters(rate_per_s)
        try:
            allowed, wait = self._gcra(keys=[self.p + "rate:" + unit],
                                       args=[int(interval * 1e6), int(tolerance * 1e6)])
        except DOWN:
            self._health = (time.monotonic(), False)
            return self.limiter.take(unit, rate_per_s)
        return Admission(bool(allowed), 0.0 if allowed else int(wait) / 1e6)

    def known_down(self) -> bool:
        """Cheap (no I/O): did the last call to Redis fail, within the last 2 s? (The
        live-event tailer of a serving process calls it at least every second, so while
        Redis is away this stays true, and turns false with its first call that succeeds.)"""
        checked, ok = self._health
        return not ok and checked > 0 and time.monotonic() - checked < 2.0

    def healthy(self) -> bool:
        checked, ok = self._health
        if time.monotonic() - checked > 0.5:
            try:
                ok = bool(self.r.ping())
            except DOWN:
                ok = False
            self._health = (time.monotonic(), ok)
        return ok

    def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "reachable": self.healthy()}

    def close(self) -> None:
        self.r.close()
