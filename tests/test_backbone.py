"""Contract tests of the shared backbone, run against both stores: embedded files and a REAL
``redis-server`` started by a fixture on a free loopback port (stopped by its PID).

Besides the contract (events, feedback, outcomes, stats, audit, rate limits, health): Redis
killed and restarted while writing, a service SIGKILLed during a burst of writes, a batch
applied but not checkpointed before a crash, audit archiving and retention.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from indexer import clock
from screening.backbone import (
    Backbone,
    Front,
    Store,
    audit_record,
    check_record,
    open_backbone,
    open_store,
)
from screening.backbone.archive import days_before
from screening.errors import Forbidden, Invalid, NotFound, Unavailable
from screening.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DAY_US = 86_400_000_000
MAY = "2026-05-10T10:00:00+08:00"

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (apt-get install redis-server)")


class RedisServer:
    """A redis-server subprocess: AOF on, no RDB snapshots, data in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, to stop and restart."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop(signal.SIGKILL)


def settings_for(kind: str, data: Path, server: RedisServer | None) -> Settings:
    return Settings(data=data, redis=server.url if kind == "redis" and server else None)


@pytest.fixture(params=["embedded", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bb(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Front]:
    server = None
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        import redis
        with redis.Redis.from_url(server.url) as r:
            r.flushall()
    front = open_backbone(settings_for(kind, tmp_path / "data", server), interval=0.02)
    yield front
    front.close()


def result(check_id: str, hits: list[tuple[str, str, str, str]], *, person: bool = False
           ) -> dict[str, Any]:
    """A check response with hits (entry, list, authority, action)."""
    return {
        "check_id": check_id, "decision": hits[0][3] if hits else "pass", "snapshot": "v1",
        "subject": {"type": "person" if person else "org",
                    "id": "11010519491231002X" if person else "91350100M000100Y43"},
        "hits": [{"entry": e, "list": li, "kind": "black", "path": "subject", "via": None,
                  "authority": a, "measures": [{"id": "M-" + e, "name": "m", "force": "mandatory",
                                                "effect": act, "action": act, "basis": None}]}
                 for e, li, a, act in hits]}


def rec(check_id: str, unit: str = "U1", scenario: str = "bidding", at: str | None = None,
        hits: list[tuple[str, str, str, str]] | None = None) -> dict[str, Any]:
    hits = [("E-1", "court.dd", "法院A", "block")] if hits is None else hits
    made = check_record(result(check_id, hits), unit=unit, scenario=scenario, region="350100",
                        at=at)
    assert made is not None
    return made


def aud(check_id: str, unit: str = "U1", scenario: str = "bidding", decision: str | None = "block",
        at: str | None = None, consent: str | None = None) -> dict[str, Any]:
    return audit_record(unit=unit, scenario=scenario, subject="91350100M000100Y43",
                        decision=decision, check_id=check_id, purpose="审批", consent=consent,
                        at=at)


def whole_feed(bb: Any, authority: str, limit: int = 100) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = bb.read_feedback(authority, cursor, limit)
        if not page.items:
            return items
        items.extend(page.items)
        cursor = page.next


def whole_audit(bb: Any, unit: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = bb.read_audit(cursor, 1000, unit)
        if not page.items:
            return items
        items.extend(page.items)
        cursor = page.next


# -- the contract, both stores --------------------------------------------------------------

def test_protocols(bb: Front) -> None:
    assert isinstance(bb, Backbone) and isinstance(bb.store, Store)
    assert bb.healthy() and not bb.status()["degraded"]


def test_events_idempotent_and_paged(bb: Front) -> None:
    ev = [{"id": f"V-{i}", "at": "2026-05-01", "entry": "E-1", "type": "objection_opened"}
          for i in range(5)]
    assert bb.append_events(ev[:3]) == ["V-0", "V-1", "V-2"]
    assert bb.append_events([ev[2], ev[3], ev[3], ev[4]]) == ["V-2", "V-3", "V-4"]
    first = bb.read_events(None, 2)
    assert [e["id"] for e in first.items] == ["V-0", "V-1"]
    rest = bb.read_events(first.next, 10)
    assert [e["id"] for e in rest.items] == ["V-2", "V-3", "V-4"]
    assert rest.items[0] == ev[2]
    assert bb.read_events(rest.next).items == []
    with pytest.raises(Invalid):
        bb.append_events([{"at": "2026-05-01"}])
    with pytest.raises(Invalid):
        bb.read_events("not a cursor")


def test_append_is_conditional_on_the_log_the_events_were_judged_against(bb: Front) -> None:
    """``append_events(events, after=cursor)`` appends only if nothing was appended after
    ``cursor`` (another replica's events): otherwise ``StaleLog`` and nothing appended. An
    empty log is ``None``; the cursor ``read_events`` returns is the one to pass."""
    from screening.backbone.events import StaleLog

    ev = [{"id": f"V-{i}", "at": "2026-05-01", "entry": "E-1", "type": "objection_opened"}
          for i in range(4)]
    empty = bb.read_events(None).next
    assert bb.append_events(ev[:1], None) == ["V-0"]  # nothing before: None holds
    with pytest.raises(StaleLog):
        bb.append_events(ev[1:2], None)  # V-0 came after "nothing"
    with pytest.raises(StaleLog):
        bb.append_events(ev[1:2], empty)
    seen = bb.read_events(None).next
    assert bb.append_events(ev[1:3], seen) == ["V-1", "V-2"]
    with pytest.raises(StaleLog):
        bb.append_events(ev[3:], seen)  # V-1 and V-2 came after it
    assert [e["id"] for e in bb.read_events(None).items] == ["V-0", "V-1", "V-2"]
    now = bb.read_events(None).next
    assert bb.append_events([ev[2]], now) == ["V-2"]  # a re-post appends nothing
    assert bb.append_events(ev[3:], now) == ["V-3"]
    assert [e["id"] for e in bb.read_events(None).items] == ["V-0", "V-1", "V-2", "V-3"]


def test_wait_events_wakes_within_a_second(bb: Front) -> None:
    cursor = bb.read_events(None).next
    assert bb.wait_events(cursor, timeout=0.05).items == []
    accepted: list[float] = []

    def append() -> None:  # acceptance is when the append returns (SPEC §6: within a second)
        bb.append_events([{"id": "V-9", "at": "2026-05-01", "entry": "E-1", "type": "revoked"}])
        accepted.append(time.monotonic())

    timer = threading.Timer(0.2, append)
    timer.start()
    page = bb.wait_events(cursor, timeout=3.0)
    woke = time.monotonic()
    timer.join()
    assert [e["id"] for e in page.items] == ["V-9"]
    assert accepted and woke - accepted[0] < 1.0


def test_export_folds_exactly_once_into_indexer_build(bb: Front, tmp_path: Path) -> None:
    from indexer.build import build
    from indexer.snapshot import Snapshot
    from tests.sourcekit import write_source

    src = write_source(
        tmp_path / "source",
        lists=[{"code": "court.dd", "name": "失信被执行人名单", "kind": "black",
                "authority": "最高人民法院", "publicity": "public"}],
        scenarios=[{"code": "bidding", "name": "招标投标"}],
        entries=[{"id": "E-1", "list": "court.dd", "authority": "法院A",
                  "subject": {"type": "org", "id": "91350100M000100Y43", "name": "某公司"},
                  "valid_from": "2025-01-01", "valid_until": None}],
        events=[{"id": "V-0", "at": "2026-04-01", "entry": "E-1", "type": "objection_opened"}])
    bb.append_events([
        {"id": "V-0", "at": "2026-04-01", "entry": "E-1", "type": "objection_opened"},
        {"id": "V-1", "at": "2026-05-01", "entry": "E-1", "type": "objection_closed",
         "result": "rejected"}])
    first = bb.export_events(src / "events")
    assert first.count == 1 and first.path is not None and first.path.name.startswith("live-")
    assert bb.export_events(src / "events").path is None  # nothing new: nothing written
    bb.append_events([{"id": "V-2", "at": "2026-06-01", "entry": "E-1", "type": "exited",
                       "reason": "repaired"}])
    assert bb.export_events(src / "events").count == 1
    snap = Snapshot.open(build(src, tmp_path / "out").path)  # a duplicate id would fail it
    try:
        assert all(snap.has_event(i) for i in ("V-0", "V-1", "V-2"))
    finally:
        snap.close()


def test_feedback_goes_to_each_authority_and_pages(bb: Front) -> None:
    two = [("E-1", "court.dd", "法院A", "block"), ("E-2", "tax.bad", "税务局", "review")]
    bb.record(checks=[rec(f"c-{i}", hits=two if i % 2 else None) for i in range(7)])
    bb.record_checks([check_record(result("c-p", [("E-3", "court.dd", "法院A", "alert")],
                                          person=True), unit="U2", scenario="honors")])  # type: ignore[list-item]
    assert bb.flush()
    items, cursor, seen = [], None, []
    while True:
        page = bb.read_feedback("法院A", cursor, 3)
        seen.append(len(page.items))
        if not page.items:
            break
        items.extend(page.items)
        cursor = page.next
    assert [i["check_id"] for i in items] == [f"c-{i}" for i in range(7)] + ["c-p"]
    assert seen == [3, 3, 2, 0]
    assert items[-1]["subject"] == {"type": "person", "id": "1101051949****002X"}
    assert items[0]["entry"] == "E-1" and items[0]["action"] == "block"
    assert items[0]["outcome"] is None and items[0]["unit"] == "U1"
    assert {k for k in items[0]} >= {"check_id", "at", "unit", "scenario", "region", "entry",
                                    "list", "measures", "action", "snapshot", "outcome"}
    tax = whole_feed(bb, "税务局")
    assert [i["check_id"] for i in tax] == ["c-1", "c-3", "c-5"]
    assert {i["action"] for i in tax} == {"review"}
    assert whole_feed(bb, "无关部门") == []
    assert bb.read_feedback("法院A", cursor, 3).items == []
    with pytest.raises(Invalid):
        bb.read_feedback("法院A", "junk")


def bad_cursor(call: Callable[[], Any]) -> None:
    with pytest.raises(Invalid) as bad:
        call()
    assert bad.value.code == "bad_cursor", bad.value


def test_cursors_not_issued_are_refused(bb: Front, kind: str) -> None:
    """A cursor the backbone did not issue is a clear bad_cursor (422), never a crash or a
    silent restart: too large for an offset or a stream id, digits that are not ASCII, a
    day that is no date, a position inside a line or past the end, a stream id of another
    day than its cursor says."""
    bb.record(checks=[rec(f"c-{i}") for i in range(3)])
    bb.audit([aud(f"c{i}") for i in range(3)])
    assert bb.flush()
    page = bb.read_feedback("法院A", None, 2)
    assert len(page.items) == 2
    for junk in ("9" * 24, "1-" + "9" * 23, "１２", "-1", "1.5"):
        bad_cursor(lambda j=junk: bb.read_feedback("法院A", j))
    first = bb.read_audit(None, 2)
    day = first.items[0]["at"][:10]
    for junk in (f"{day}:{'9' * 24}", "2026-02-30:0", "2026-W01-1:0", f"{day}:１",
                 f"{day}:1-" + "9" * 23):
        bad_cursor(lambda j=junk: bb.read_audit(j))
    if kind == "embedded":  # byte offsets: only where a line starts
        offset = int(page.next)
        bad_cursor(lambda: bb.read_feedback("法院A", str(offset - 1)))
        bad_cursor(lambda: bb.read_feedback("法院A", str(offset + 10**6)))
        audit_pos = int(first.next.partition(":")[2])
        bad_cursor(lambda: bb.read_audit(f"{day}:{audit_pos + 1}"))
        bad_cursor(lambda: bb.read_audit(f"{day}:{audit_pos + 10**6}"))
        later = days_before(day, -3)  # a day the trail does not hold, after the ones it does
        bad_cursor(lambda: bb.read_audit(f"{later}:0"))
    else:  # stream ids: whole, of the cursor's own day, not past the stream's last one
        sid = first.next.partition(":")[2]
        assert "-" in sid
        bad_cursor(lambda: bb.read_audit(f"{days_before(day, 1)}:{sid}"))
        bad_cursor(lambda: bb.read_audit(f"{day}:0"))  # an offset, with no archived day
        ms, _, seq = bb.read_feedback("法院A", page.next).next.partition("-")  # the last id
        for junk in (ms, "5", f"{ms}-{int(seq) + 1}", f"{int(ms) + 1}-0",
                     f"{(1 << 64) - 1}-{(1 << 64) - 1}"):
            bad_cursor(lambda j=junk: bb.read_feedback("法院A", j))
        ams, _, aseq = bb.read_audit(first.next).next.partition(":")[2].partition("-")
        bad_cursor(lambda: bb.read_audit(f"{day}:{ams}-{int(aseq) + 1}"))
        bad_cursor(lambda: bb.read_audit(f"{day}:{ams}"))
        bad_cursor(lambda: bb.read_feedback("无关部门", "1-0"))  # a feed that has no entry
    # the cursors it did issue still read on
    assert [i["check_id"] for i in bb.read_feedback("法院A", page.next).items] == ["c-2"]
    assert [r["check_id"] for r in bb.read_audit(first.next).items] == ["c2"]
    if kind == "embedded":  # a pruned day (before every day the trail holds): from the oldest
        assert [r["check_id"] for r in bb.read_audit(f"{days_before(day, 4000)}:0").items] \
            == ["c0", "c1", "c2"]


def test_outcomes_only_by_the_checking_unit(bb: Front) -> None:
    bb.record(checks=[rec("c-1", unit="U1"), rec("c-2", unit="U2")])
    # no flush: an outcome posted right after the check still finds it
    out = bb.post_outcome("c-1", "U1", "intercepted", None)
    assert out["outcome"] == "intercepted" and out["unit"] == "U1"
    with pytest.raises(Forbidden):
        bb.post_outcome("c-2", "U1", "intercepted", None)
    with pytest.raises(NotFound):
        bb.post_outcome("c-404", "U1", "intercepted", None)
    with pytest.raises(Invalid) as bad:
        bb.post_outcome("c-2", "U2", "ignored", None)
    assert bad.value.code == "bad_outcome"
    with pytest.raises(Invalid) as bare:
        bb.post_outcome("c-2", "U2", "overridden", "  ")
    assert bare.value.code == "note_required"
    bb.post_outcome("c-2", "U2", "overridden", "上级批准")
    bb.post_outcome("c-2", "U2", "allowed_after_review", None)  # a later post replaces
    feed = {i["check_id"]: i["outcome"] for i in whole_feed(bb, "法院A")}
    assert feed["c-1"]["outcome"] == "intercepted"
    assert feed["c-2"]["outcome"] == "allowed_after_review" and feed["c-2"]["unit"] == "U2"


def test_stats_grouping(bb: Front) -> None:
    two = [("E-1", "L1", "法院A", "block"), ("E-2", "L2", "法院B", "review")]
    bb.record(checks=[rec("c1", "U1", "bidding", MAY, two),
                      rec("c2", "U2", "gp", MAY, [("E-1", "L1", "法院A", "block")])],
              audits=[aud("c1", "U1", "bidding", "block", MAY),
                      aud("c2", "U2", "gp", "block", MAY),
                      aud("c3", "U1", "bidding", "pass", MAY),
                      aud("c4", "U1", "bidding", None, MAY)])
    assert bb.flush()
    assert bb.stats("2026-05", "authority") == [
        {"authority": "法院A", "checks": 2, "hits": 2, "actions": {"block": 2}, "decisions": {}},
        {"authority": "法院B", "checks": 1, "hits": 1, "actions": {"review": 1},
         "decisions": {}}]
    assert bb.stats("2026-05", "list")[0] == {"list": "L1", "checks": 2, "hits": 2,
                                              "actions": {"block": 2}, "decisions": {}}
    assert bb.stats("2026-05", "unit") == [
        {"unit": "U1", "checks": 3, "hits": 2, "actions": {"block": 1, "review": 1},
         "decisions": {"block": 1, "pass": 1}},
        {"unit": "U2", "checks": 1, "hits": 1, "actions": {"block": 1},
         "decisions": {"block": 1}}]
    assert [(r["scenario"], r["checks"], r["hits"]) for r in bb.stats("2026-05", "scenario")] \
        == [("bidding", 3, 2), ("gp", 1, 1)]
    assert bb.stats("2026-05", "coverage") == [
        {"unit": "U1", "scenario": "bidding", "checks": 3},
        {"unit": "U2", "scenario": "gp", "checks": 1}]
    assert [(r["action"], r["checks"], r["hits"]) for r in bb.stats("2026-05", "action")] \
        == [("block", 2, 2), ("pass", 1, 0), ("review", 0, 1)]
    assert bb.stats("2026-06", "unit") == []
    for month in ("2026-13", "２０２６-05", "0000-05", "2026-5", "26-05-1"):
        with pytest.raises(Invalid) as bad:
            bb.stats(month, "unit")
        assert bad.value.code == "bad_month"
    with pytest.raises(Invalid):
        bb.stats("2026-05", "colour")


def test_audit_paging_and_unit_filter(bb: Front) -> None:
    bb.audit([aud(f"c{i}", unit=f"U{i % 2}", consent="授权书-1" if i == 3 else None)
              for i in range(7)])
    assert bb.flush()
    first = bb.read_audit(None, 3)
    rest = bb.read_audit(first.next, 100)
    got = [r["check_id"] for r in first.items + rest.items]
    assert got == [f"c{i}" for i in range(7)]
    assert bb.read_audit(rest.next, 100).items == []
    assert [r["check_id"] for r in whole_audit(bb, "U1")] == ["c1", "c3", "c5"]
    r3 = first.items[0]
    assert set(r3) >= {"at", "unit", "scenario", "subject", "purpose", "consent", "decision"}
    assert "91350100M000100Y43" not in str(first.items) and len(r3["subject"]) == 64
    assert rest.items[0]["consent"] == "授权书-1"


def test_audit_archived_to_files_and_kept_three_years(bb: Front, tmp_path: Path) -> None:
    bb.audit([aud(f"c{i}", consent="授权书" if i % 2 else None) for i in range(5)])
    assert bb.flush()
    first = bb.read_audit(None, 2)
    now = clock.now()
    today = clock.format_instant(now)[:10]
    assert bb.maintain(now + DAY_US)["archived"] == []  # yesterday's and today's stay hot
    assert bb.maintain(now + 3 * DAY_US)["archived"] == [today]
    archive = tmp_path / "data" / "audit" / f"{today}.jsonl.gz"
    assert archive.is_file() and not archive.with_suffix("").exists()
    if bb.backend == "redis":
        assert bb.store.r.xlen("sb:audit") == 0  # type: ignore[attr-defined]
    rest = bb.read_audit(first.next, 100)  # a cursor taken before archiving still works
    assert [r["check_id"] for r in first.items + rest.items] == [f"c{i}" for i in range(5)]
    bb.audit([aud("late")])  # and the trail goes on after the archived day
    assert bb.flush()
    assert [r["check_id"] for r in whole_audit(bb)][-2:] == ["c4", "late"]
    assert bb.maintain(now + 3 * 365 * DAY_US)["pruned"] == []  # ≥ 3 years, authorized too
    assert archive.is_file()
    assert bb.maintain(now + 1200 * DAY_US)["pruned"] == [today]
    assert not archive.exists()
    with pytest.raises(ValueError):
        open_store(Settings(data=tmp_path / "x"), audit_keep_days=365)


def test_rate_limit(bb: Front) -> None:
    assert [bb.take("U1", 3).allowed for _ in range(3)] == [True] * 3
    denied = bb.take("U1", 3)
    assert not denied.allowed and 0 < denied.retry_after <= 0.34
    assert bb.take("U2", 3).allowed  # per unit


def test_batch_applied_once(bb: Front) -> None:
    store = bb.store
    store.apply("batch-1", [rec("c-1")], [aud("c-1")], replay=False)
    store.apply("batch-1", [rec("c-1")], [aud("c-1")], replay=True)
    assert len(whole_feed(bb, "法院A")) == 1
    assert len(whole_audit(bb)) == 1
    month = clock.format_instant(clock.now())[:7]
    assert bb.stats(month, "unit")[0]["checks"] == 1


def test_crash_between_apply_and_checkpoint(kind: str, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server") if kind == "redis" else None
    if server:
        import redis
        with redis.Redis.from_url(server.url) as r:
            r.flushall()
    settings = settings_for(kind, tmp_path / "data", server)
    first = open_backbone(settings, start=False)
    first.record(checks=[rec("c-1"), rec("c-2")])
    first.spool.cut()
    (batch,) = first.spool.batches()
    first.store.apply(batch.id, list(batch.checks), list(batch.audits), replay=batch.replay)
    first.spool.close()  # "killed": applied, checkpoint not moved
    first._shiplock.release()
    first.store.close()
    second = open_backbone(settings, start=False)
    try:
        assert second.spool.folder == first.spool.folder  # the slot is taken over
        second.record(checks=[rec("c-3")])
        assert second.flush()
        assert [i["check_id"] for i in whole_feed(second, "法院A")] == ["c-1", "c-2", "c-3"]
    finally:
        second.close()


# -- failures -------------------------------------------------------------------------------

def test_redis_killed_and_restarted_while_writing(own_redis: RedisServer, tmp_path: Path
                                                  ) -> None:
    bb = open_backbone(settings_for("redis", tmp_path / "data", own_redis), interval=0.02)
    acked: list[str] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            bb.record(checks=[rec(f"c-{i}")], audits=[aud(f"c-{i}")])
            acked.append(f"c-{i}")
            i += 1
            time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.3)
        own_redis.stop(signal.SIGKILL)
        time.sleep(0.4)
        assert bb.status()["degraded"] and not bb.healthy()
        with pytest.raises(Unavailable):
            bb.read_events(None)
        assert bb.take("U1", 1000).allowed  # local fallback
        own_redis.start()
        time.sleep(0.3)
    finally:
        stop.set()
        writer.join()
    try:
        assert bb.flush(timeout=10)
        assert not bb.status()["degraded"] and bb.status()["spool_bytes"] == 0
        feed = Counter(i["check_id"] for i in whole_feed(bb, "法院A", 1000))
        assert len(acked) > 100 and set(feed) == set(acked) and max(feed.values()) == 1
        assert Counter(r["check_id"] for r in whole_audit(bb)) == Counter(acked)
    finally:
        bb.close()


def kill_writer(data: Path, server: RedisServer | None, *, after: int = 3000,
                shipper: bool = False, before_kill: Callable[[], None] | None = None
                ) -> list[str]:
    """Run ``WRITER`` on ``data`` and SIGKILL it once ``after`` checks were acknowledged
    (calling ``before_kill`` just before); return every acknowledged check id."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data), server.url if server else "",
                             "1" if shipper else "0"], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    acked = []
    for line in proc.stdout:
        acked.append(line.decode().strip())
        if len(acked) >= after:
            break
    if before_kill is not None:
        before_kill()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked.extend(x for x in proc.stdout.read().decode().split())
    proc.stdout.close()
    return acked


WRITER = """
import sys
from pathlib import Path
from screening.backbone import open_backbone, audit_record, check_record
from screening.settings import Settings
# argv: data folder, Redis URL or "", and "1" to ship from a shipper process
bb = open_backbone(Settings(data=Path(sys.argv[1]), redis=sys.argv[2] or None), interval=0.005,
                   shipper=sys.argv[3:4] == ["1"])
hit = {"entry": "E-1", "list": "court.dd", "kind": "black", "path": "subject", "via": None,
       "authority": "法院A", "measures": []}
i = 0
while True:
    cid = f"c-{i}"
    res = {"check_id": cid, "decision": "block", "subject": {"type": "org", "id": "X"},
           "hits": [hit], "snapshot": "v1"}
    bb.record(checks=[check_record(res, unit="U1", scenario="bidding")],
              audits=[audit_record(unit="U1", scenario="bidding", subject="X",
                                   decision="block", check_id=cid)])
    sys.stdout.write(cid + "\\n")
    sys.stdout.flush()
    i += 1
"""


def test_sigkill_during_a_burst_loses_nothing_acknowledged(kind: str, tmp_path: Path,
                                                           request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("redis_server") if kind == "redis" else None
    if server:
        import redis
        with redis.Redis.from_url(server.url) as r:
            r.flushall()
    data = tmp_path / "data"
    acked = kill_writer(data, server)
    bb = open_backbone(settings_for(kind, data, server), start=False)
    try:
        assert bb.flush()
        feed = Counter(i["check_id"] for i in whole_feed(bb, "法院A", 5000))
        assert set(acked) <= set(feed) and max(feed.values()) == 1
        audits = Counter(r["check_id"] for r in whole_audit(bb))
        assert set(acked) <= set(audits) and max(audits.values()) == 1
    finally:
        bb.close()


def test_spool_batches_from_the_queue_and_from_the_file(tmp_path: Path) -> None:
    from screening.backbone.spool import Spool

    spool = Spool.claim(tmp_path / "spool", segment_bytes=400)
    shipped: list[str] = []
    ids: list[str] = []
    for i in range(60):
        records = [{"check_id": f"c-{i}"}]
        spool.record(orjson.dumps({"c": records}) + b"\n", records)
        if i % 7 == 6:
            spool.cut()
            if i < 30:  # ship from the in-process queue; later batches are left on file
                for batch in spool.batches():
                    ids.append(batch.id)
                    shipped.extend(c["check_id"] for c in batch.checks)
                    spool.commit(batch)
    spool.cut()
    assert len(spool.segments()) > 1 and ids
    again = Spool.adopt(tmp_path / "spool" / "slot-1", create=True)  # a second slot: empty
    assert again is not None and again.batches() == []
    again.close()
    spool.close()
    reopened = Spool.claim(tmp_path / "spool", segment_bytes=400)  # read back from the file
    rest = reopened.batches(limit=100)
    assert rest and rest[0].replay
    shipped.extend(c["check_id"] for b in rest for c in b.checks)
    assert shipped == [f"c-{i}" for i in range(60)]
    assert len(set(ids + [b.id for b in rest])) == len(ids) + len(rest)
    for b in rest:
        reopened.commit(b)
    assert reopened.pending_bytes() == 0 and len(reopened.segments()) == 1
    reopened.close()


def test_a_malformed_record_is_set_aside_not_retried_forever(bb: Front,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    bb.record_checks([{"check_id": "broken"}])  # no "at", no "hits"
    bb.record(checks=[rec("c-ok")])
    with caplog.at_level("ERROR"):
        assert bb.flush()
    assert [i["check_id"] for i in whole_feed(bb, "法院A")] == ["c-ok"]
    assert b"broken" in (bb.spool.folder / "rejected.jsonl").read_bytes()


# -- the audit salt ---------------------------------------------------------------------------
def _v1(subject: str) -> str:
    import hashlib

    return hashlib.sha256(b"screening-audit-v1:" + subject.encode()).hexdigest()


def test_the_audit_hashes_with_the_deployments_secret_salt(kind: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """A masked ID number (its birth MMDD hidden) and its audit hash sit side by side in a
    feed line, and the audit joins the feed on check_id: with a published salt, a few hundred
    hashes give the number back. The deployment's own secret salt (kept in the store, the
    same for every process and replica) leaves nothing to try it with."""
    import hashlib

    server = request.getfixturevalue("redis_server") if kind == "redis" else None
    person = "11010519491231002X"
    a = open_backbone(settings_for(kind, tmp_path / "a", server), interval=0.02)
    try:
        hashed = audit_record(unit="U1", scenario="bidding", subject=person,
                              decision="block")["subject"]
        salt_file = tmp_path / "a" / "backbone" / "audit-salt"
        if kind == "embedded":
            assert salt_file.exists() and salt_file.stat().st_mode & 0o777 == 0o600
            secret = salt_file.read_text().strip()
        else:  # kept in Redis, shared by the replicas: nothing in the data folder
            assert not salt_file.exists()
            import redis

            with redis.Redis.from_url(server.url) as r:  # type: ignore[union-attr]
                secret = r.get("sb:audit-salt").decode()
        assert len(secret) == 64
        assert hashed == hashlib.sha256(
            b"screening-audit-v2:" + secret.encode() + b":" + person.encode()).hexdigest()
        # the masked number and the hash, as a feed line has them: no MMDD gives it back
        masked = person[:10] + "****" + person[14:]
        assert not any(_v1(masked.replace("****", f"{m:02d}{d:02d}")) == hashed
                       for m in range(1, 13) for d in range(1, 32))
    finally:
        a.close()
    # another process of the same deployment (a worker, a replica) hashes alike
    data_b = tmp_path / ("a" if kind == "embedded" else "b")
    b = open_backbone(settings_for(kind, data_b, server), interval=0.02)
    try:
        assert audit_record(unit="U1", scenario="bidding", subject=person,
                            decision="block")["subject"] == hashed
    finally:
        b.close()


def test_an_audit_salt_setting_is_used_as_it_is(tmp_path: Path) -> None:
    import hashlib

    bb = open_backbone(Settings(data=tmp_path / "data", audit_salt="s3cret"), interval=0.02)
    try:
        got = audit_record(unit="U1", scenario="bidding", subject="91350100M000100Y43",
                           decision="pass")["subject"]
        assert got == hashlib.sha256(b"screening-audit-v2:s3cret:91350100M000100Y43").hexdigest()
        assert not (tmp_path / "data" / "backbone" / "audit-salt").exists()
    finally:
        bb.close()


def test_degraded_as_soon_as_a_call_to_redis_fails(own_redis: RedisServer, tmp_path: Path
                                                   ) -> None:
    """A check's answer says the backbone is degraded (``Front.degraded``) once any call to
    Redis has failed — the live-event tailer's, a read — not only once a record waits to be
    shipped; and no longer once a call succeeds again."""
    bb = open_backbone(settings_for("redis", tmp_path / "data", own_redis), interval=0.02)
    try:
        bb.read_events(None)
        assert not bb.degraded()
        own_redis.stop(signal.SIGKILL)
        with pytest.raises(Unavailable):
            bb.read_events(None)
        assert bb.degraded()
        own_redis.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                bb.read_events(None)
                break
            except Unavailable:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert not bb.degraded()
    finally:
        bb.close()
