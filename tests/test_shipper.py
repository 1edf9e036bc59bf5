"""The shipper process (``open_backbone(settings, shipper=True)``, what ``screening serve``
runs): the serving process only appends and cuts, a separate process ships the spool.

Nothing acknowledged may be lost and nothing applied twice when the shipper is SIGKILLed
during a burst (a serving process restarts one), when it dies between applying a batch and
moving the checkpoint, when the serving process is SIGKILLed (the shipper adopts its slot, then
exits by itself), when the owner's ``flush`` and the shipper race for a slot, and when Redis
is killed and restarted (degraded state reaches the serving process).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from screening.backbone import Front, logfile, open_backbone, shipper as shipping
from screening.backbone.embedded import checks_of
from screening.backbone.records import stored_audit, subject_hash
from screening.backbone.spool import ShipLock, read_batches, read_checkpoint, slot_id
from screening.settings import Settings
from tests.test_backbone import (ROOT, RedisServer, aud, kill_writer, kind,  # noqa: F401
                                 own_redis, rec, redis_server, settings_for, whole_audit,
                                 whole_feed)


def _flushall(server: RedisServer | None) -> None:
    if server:
        import redis
        with redis.Redis.from_url(server.url) as r:
            r.flushall()


@pytest.fixture
def server(kind: str, request: pytest.FixtureRequest) -> RedisServer | None:  # noqa: F811
    found = request.getfixturevalue("redis_server") if kind == "redis" else None
    _flushall(found)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _shipper_pid(root: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = shipping.read_status(root)
        if status and _alive(int(status["pid"])) and shipping.running(root):
            return int(status["pid"])
        time.sleep(0.02)
    raise AssertionError("no shipper running")


def _wait(cond: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


class Burst:
    """A thread recording check + audit records as fast as it can (with a tiny pause)."""

    def __init__(self, bb: Front, prefix: str = "c", every: int = 20) -> None:
        self.bb, self.prefix, self.every = bb, prefix, every
        self.acked: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            cid = f"{self.prefix}-{i}"
            self.bb.record(checks=[rec(cid)], audits=[aud(cid)])
            self.acked.append(cid)
            i += 1
            if i % self.every == 0:
                time.sleep(0.001)

    def __enter__(self) -> Burst:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _exactly_once(bb: Any, acked: list[str]) -> None:
    feed = Counter(i["check_id"] for i in whole_feed(bb, "法院A", 5000))
    assert set(acked) <= set(feed) and max(feed.values()) == 1
    audits = Counter(r["check_id"] for r in whole_audit(bb))
    assert set(acked) <= set(audits) and max(audits.values()) == 1


def test_the_shipper_process_ships_and_the_serving_process_only_appends(
        kind: str, server: RedisServer | None, tmp_path: Path) -> None:
    bb = open_backbone(settings_for(kind, tmp_path / "data", server), shipper=True,
                       interval=0.02)
    try:
        assert bb._thread is not None and bb._thread.name == "backbone-cutter"
        pid = _shipper_pid(bb.spool_root)
        assert pid != os.getpid()
        for i in range(200):
            bb.record(checks=[rec(f"c-{i}")], audits=[aud(f"c-{i}")])
        assert not bb.spool.keep and not bb.spool._queue  # nothing kept in this process
        _wait(lambda: len(whole_audit(bb)) == 200)  # shipped without any flush here
        _exactly_once(bb, [f"c-{i}" for i in range(200)])
        assert bb.status()["spool_bytes"] < 200 and not bb.degraded()
    finally:
        bb.close()
    _wait(lambda: not _alive(pid), 5)  # close stops the shipper it started


def test_shipper_sigkilled_during_a_burst_is_restarted_and_loses_nothing(
        kind: str, server: RedisServer | None, tmp_path: Path) -> None:
    bb = open_backbone(settings_for(kind, tmp_path / "data", server), shipper=True,
                       interval=0.01)
    try:
        with Burst(bb) as burst:
            for _ in range(3):  # kill it three times mid-burst
                first = _shipper_pid(bb.spool_root)
                time.sleep(0.3)
                os.kill(first, signal.SIGKILL)
                _wait(lambda: not _alive(first) or not shipping.running(bb.spool_root), 5)
                second = _shipper_pid(bb.spool_root)  # started again by the serving process
                assert second != first
            time.sleep(0.2)
        assert len(burst.acked) > 500
        _wait(lambda: len(whole_audit(bb)) >= len(burst.acked))  # by the new shipper
        _exactly_once(bb, burst.acked)
    finally:
        bb.close()


@pytest.mark.parametrize("unknown", [b'{"zz":[1,2,3]}', b'{"q":"not a list"}', b'{"q":[1,2]}',
                                     b'{"qb":[[1],[]]}', b'[1,2]', b'{"c":[],"a":[],"x":1}',
                                     b'{"q2":[1,2],"h":[],"r":"no route"}',
                                     b'{"q2":"x","h":[]}'])
def test_a_line_this_version_cannot_read_stays_in_the_spool(tmp_path: Path,
                                                            unknown: bytes) -> None:
    """A torn line (not JSON) is skipped, but a JSON line of a kind this version cannot read —
    a newer writer's, in a rolling restart — stops reading before its batch: that batch and
    the ones after it stay in the spool rather than being shipped without it."""
    from screening.backbone import open_store

    data = tmp_path / "data"
    bb = open_backbone(Settings(data=data), shipper=True, start=False)
    try:
        folder = bb.spool.folder
        bb.record(audits=[aud("a-1")])
        bb.spool.record(b'{"q":["2026-06-01T10:00:00+08:00","U1"\n')  # torn: skipped
        bb.spool.cut()
        bb.record(audits=[aud("a-2")])
        bb.spool.record(unknown + b"\n")
        bb.record(audits=[aud("a-3")])
        bb.spool.cut()
        bb.record(audits=[aud("a-4")])
        bb.spool.cut()
        got = read_batches(folder, slot_id(folder) or "", read_checkpoint(folder), None, False)
        assert [[a["check_id"] for a in b.audits] for b in got] == [["a-1"]]
        before = bb.spool.pending_bytes()
        lock = ShipLock(folder)
        assert lock.acquire()
        try:
            assert shipping.ship_files(open_store(Settings(data=data)), folder, lock) == 1
        finally:
            lock.release()
        assert [a["check_id"] for a in whole_audit(bb)] == ["a-1"]
        assert 0 < bb.spool.pending_bytes() < before  # the rest waits, nothing dropped
        bb.record(audits=[aud("a-5")])  # later batches wait behind it, in order
        bb.spool.cut()
        assert read_batches(folder, slot_id(folder) or "", read_checkpoint(folder), None,
                            False) == []
        assert [a["check_id"] for a in whole_audit(bb)] == ["a-1"]
    finally:
        bb.close(timeout=0.2)


def test_a_lagging_shipper_reads_a_bounded_share_of_the_spool(tmp_path: Path) -> None:
    """However many batches wait, one read parses about ``budget`` bytes of them (at least
    one batch, however big), and reading on from each checkpoint yields every batch once, in
    order, across segment files."""
    from screening.backbone.spool import commit, segments

    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, start=False)
    try:
        bb.spool.segment_bytes = 20_000  # several segment files
        sizes = [3, 40, 1, 7, 120, 2, 2, 60, 5]  # audit records a batch
        n = 0
        for size in sizes:
            bb.record(audits=[aud(f"a-{n + i}") for i in range(size)])
            n += size
            bb.spool.cut()
        folder = bb.spool.folder
        assert len(segments(folder)) >= 2
        seen: list[list[str]] = []
        chunks = 0
        while True:
            got = read_batches(folder, slot_id(folder) or "", read_checkpoint(folder), None,
                               False, 64, budget=4_000)
            if not got:
                break
            chunks += 1
            assert len(got) == 1 or sum(b.end - b.start for b in got[:-1]) < 4_000
            for batch in got:
                seen.append([a["check_id"] for a in batch.audits])
                commit(folder, batch)
        assert [len(b) for b in seen] == sizes
        assert [c for b in seen for c in b] == [f"a-{i}" for i in range(n)]
        assert chunks > 3  # the budget split the reading
    finally:
        bb.close(timeout=0.2)


def test_the_cutter_cuts_a_batch_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """A burst is cut into batches of about ``CUT_BYTES`` without waiting ``batch_every``:
    applying a batch (in one piece) holds a bounded number of records."""
    from screening.backbone import open_store, shipper_command

    monkeypatch.setattr("screening.backbone.front.CUT_BYTES", 2_000)
    settings = Settings(data=tmp_path / "data")
    bb = Front(open_store(settings), settings.data / "spool", interval=0.01,
               shipper=shipper_command(settings, interval=0.01), batch_every=3600.0)
    try:
        for i in range(40):
            bb.record(audits=[aud(f"a-{i}")])
        deadline = time.monotonic() + 10
        while bb.spool.uncut_bytes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bb.spool.uncut_bytes < 2_000
        folder = bb.spool.folder
        got = read_batches(folder, slot_id(folder) or "", read_checkpoint(folder), None, False,
                           64)
        assert len(got) >= 1
    finally:
        bb.close(timeout=0.2)


def test_shipper_dead_between_apply_and_checkpoint_applies_once(
        kind: str, server: RedisServer | None, tmp_path: Path) -> None:
    settings = settings_for(kind, tmp_path / "data", server)
    bb = open_backbone(settings, shipper=True, start=False)  # no cutter, no shipper process
    try:
        bb.record(checks=[rec("c-1"), rec("c-2")], audits=[aud("c-1")])
        bb.spool.cut()
        folder = bb.spool.folder
        (batch,) = read_batches(folder, slot_id(folder) or "", read_checkpoint(folder), None,
                                True)
        # a shipper applied the batch and was killed before it moved the checkpoint
        bb.store.apply(batch.id, list(batch.checks), list(batch.audits), replay=False,
                       raw=(batch.raw_checks, batch.raw_audits))
        assert read_checkpoint(folder) == (0, 0)
        bb.record(checks=[rec("c-3")], audits=[aud("c-3")])
        bb.spool.cut()
        # the next shipper (a new process: it did not write the checkpoint) ships the slot
        lock = ShipLock(folder)
        assert lock.acquire()
        try:
            shipping.ship_files(bb.store, folder, lock)
        finally:
            lock.release()
        assert [i["check_id"] for i in whole_feed(bb, "法院A")] == ["c-1", "c-2", "c-3"]
        assert [r["check_id"] for r in whole_audit(bb)] == ["c-1", "c-3"]
        assert bb.spool.pending_bytes() == 0
    finally:
        bb.close()




def test_serving_process_sigkilled_its_shipper_adopts_the_slot_and_exits(
        kind: str, server: RedisServer | None, tmp_path: Path) -> None:
    data = tmp_path / "data"
    pids: list[int] = []
    acked = kill_writer(data, server, shipper=True,
                        before_kill=lambda: pids.append(_shipper_pid(data / "spool")))
    pid = pids[0]
    # the orphaned shipper drains the dead process's slot on its own, then exits
    _wait(lambda: not _alive(pid), 20)
    bb = open_backbone(settings_for(kind, data, server), start=False)
    try:
        assert bb.spool.folder.name == "slot-0" and bb.spool.pending_bytes() == 0
        _exactly_once(bb, acked)
    finally:
        bb.close()
    assert not shipping.running(data / "spool")


def test_owner_flush_and_shipper_race_for_the_slot(kind: str, server: RedisServer | None,
                                                   tmp_path: Path) -> None:
    bb = open_backbone(settings_for(kind, tmp_path / "data", server), shipper=True,
                       interval=0.005)
    try:
        _shipper_pid(bb.spool_root)
        with Burst(bb, every=1) as burst:  # ≤ 1,000 records a second
            for _ in range(20):
                assert bb.flush(5)
                time.sleep(0.02)
        assert bb.flush(5)
        _exactly_once(bb, burst.acked)
    finally:
        bb.close()


def test_redis_killed_and_restarted_with_a_shipper(own_redis: RedisServer,  # noqa: F811
                                                   tmp_path: Path) -> None:
    bb = open_backbone(settings_for("redis", tmp_path / "data", own_redis), shipper=True,
                       interval=0.02)
    try:
        _shipper_pid(bb.spool_root)
        with Burst(bb) as burst:
            time.sleep(0.3)
            own_redis.stop(signal.SIGKILL)
            _wait(lambda: bb.degraded() and bb.status()["degraded"], 5)  # the shipper's state
            assert not bb.healthy()
            time.sleep(0.3)
            own_redis.start()
            _wait(lambda: not bb.degraded(), 10)
        assert bb.flush(10) and bb.status()["spool_bytes"] == 0
        _exactly_once(bb, burst.acked)
    finally:
        bb.close()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[Front, Front]]:
    settings = Settings(data=tmp_path / "data")
    a = open_backbone(settings, shipper=True, interval=0.01)
    b = open_backbone(settings, shipper=True, interval=0.01)
    yield a, b
    b.close()
    a.close()


def test_one_shipper_per_data_folder_and_the_survivor_restarts_it(
        two_workers: tuple[Front, Front]) -> None:
    a, b = two_workers
    assert a.spool.folder != b.spool.folder
    pid = _shipper_pid(a.spool_root)
    time.sleep(1.5)  # both cutters looked; one shipper holds the lock
    assert len([c for c in a._children + b._children if c.poll() is None]) == 1
    owner, other = (a, b) if any(c.pid == pid for c in a._children) else (b, a)
    for i in range(100):
        other.record(checks=[rec(f"c-{i}")], audits=[aud(f"c-{i}")])
    owner.close()  # stops its shipper; the other worker starts one
    assert not _alive(pid)
    _wait(lambda: len(whole_audit(other)) == 100)
    assert _shipper_pid(other.spool_root) != pid
    _exactly_once(other, [f"c-{i}" for i in range(100)])


def test_a_shipper_never_ships_a_slot_whose_owner_has_a_flusher_thread(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path / "data")
    threaded = open_backbone(settings, start=False)  # flusher-thread mode, not started
    try:
        threaded.record(checks=[rec("c-1")], audits=[aud("c-1")])
        threaded.spool.cut()
        served = open_backbone(settings, shipper=True, interval=0.01)
        try:
            _shipper_pid(served.spool_root)
            time.sleep(1.0)  # several shipper rounds
            assert threaded.spool.pending_bytes() > 0  # left to its owner
            assert whole_audit(threaded) == []
            assert threaded.flush()
            _exactly_once(threaded, ["c-1"])
        finally:
            served.close()
    finally:
        threaded.close()


@pytest.mark.parametrize("person", [False, True])
def test_a_compact_check_line_expands_to_exactly_the_two_records(person: bool) -> None:
    import orjson

    from screening.backbone import audit_record, check_record
    from screening.backbone.records import expand_query, query_line
    from tests.test_backbone import result

    res = result("c-9", [("E-1", "court.dd", "法院A", "block"), ("E-2", "tax.x", "税务B", "alert")],
                 person=person)
    res["hits"][1]["measures"].append({"id": "M-X", "name": "n", "force": "advisory",
                                       "effect": "review", "action": "review", "basis": "b"})
    subject = res["subject"]["id"]
    line = query_line(res, unit="U1", scenario="bidding", region="350100", subject=subject,
                      purpose="审批", consent="C-1")
    assert line is not None and line.endswith(b"\n")
    assert subject.encode() not in line or not person  # a person's number is masked
    check, audit = expand_query(orjson.loads(line)["q"])
    at = audit["at"]
    assert check == check_record(res, unit="U1", scenario="bidding", region="350100", at=at)
    assert audit == audit_record(unit="U1", scenario="bidding", subject=subject, decision="block",
                                 check_id="c-9", purpose="审批", consent="C-1", at=at)
    assert list(check) == list(check_record(res, unit="U1", scenario="bidding") or {})
    clean = {**res, "hits": []}
    line = query_line(clean, unit="U1", scenario="bidding", region=None, subject=subject)
    assert line is not None
    assert expand_query(orjson.loads(line)["q"])[0] is None
    linked = {**res, "hits": [{**res["hits"][0], "path": "org_of:legal_rep",
                               "via": {"type": "person", "id": "11010519491231002X"}}]}
    line = query_line(linked, unit="U1", scenario="bidding", region=None, subject=subject)
    assert b"11010519491231002X" not in line  # the via person's number is masked in the spool
    check, audit = expand_query(orjson.loads(line)["q"])
    assert check == check_record(linked, unit="U1", scenario="bidding", at=audit["at"])
    assert check["hits"][0]["via"]["id"] == "1101051949****002X"


@pytest.mark.parametrize("person", [False, True])
def test_a_routed_check_line_expands_to_exactly_the_two_records(person: bool) -> None:
    """``check_line`` (what the request path spools): its records are ``check_record`` and
    ``audit_record``; its route is its day and the sorted authorities of its hits; its audit
    part is a compact line of the audit record alone; no person's number is in clear."""
    import orjson

    from screening.backbone import audit_record, check_record
    from screening.backbone.records import check_line, expand_line, route_line
    from tests.test_backbone import result

    res = result("c-9", [("E-2", "tax.x", "税务B", "alert"), ("E-1", "court.dd", "法院A", "block"),
                         ("E-3", "court.dd", "", "review")], person=person)
    res["hits"][1]["measures"].append({"id": "M-X", "name": "n", "force": "advisory",
                                       "effect": "review", "action": "review", "basis": "b"})
    before = orjson.dumps(res)
    subject = res["subject"]["id"]
    # a purpose and consent holding the markers the route is found by, as text
    purpose, consent = '审批],"h":[x', 'C-1,"r":["2020-01-01",null]}'
    line = check_line(res, unit="U1", scenario="bidding", region="350100", subject=subject,
                      purpose=purpose, consent=consent, at="2026-06-01T23:59:59.500000+08:00")
    assert line.endswith(b"\n") and orjson.dumps(res) == before  # the answer is untouched
    assert subject.encode() not in line or not person
    at = "2026-06-01T23:59:59.500000+08:00"
    check, audit = expand_line(orjson.loads(line))
    assert check == check_record(res, unit="U1", scenario="bidding", region="350100", at=at)
    assert audit == audit_record(unit="U1", scenario="bidding", subject=subject, decision="alert",
                                 check_id="c-9", purpose=purpose, consent=consent, at=at)
    day, names, audit_line = route_line(line[:-1])
    assert (day, names) == ("2026-06-01", ["法院A", "税务B"])
    assert stored_audit(orjson.loads(audit_line)) == audit
    assert b'"h"' not in audit_line and b"E-1" not in audit_line
    # every torn prefix of the line is refused (a write cut short is never filed)
    assert all(route_line(line[:n]) is None for n in range(len(line) - 1))
    clean = {**res, "hits": []}
    line = check_line(clean, unit="U1", scenario="bidding", region=None, subject=subject)
    assert expand_line(orjson.loads(line))[0] is None
    assert route_line(line[:-1])[:2] == (orjson.loads(line)["q2"][0][:10], None)
    linked = {**res, "hits": [res["hits"][0], {**res["hits"][1], "path": "org_of:legal_rep",
                              "via": {"type": "person", "id": "11010519491231002X"}}]}
    line = check_line(linked, unit="U1", scenario="bidding", region=None, subject=subject)
    assert b"11010519491231002X" not in line  # the via person's number is masked in the spool
    assert linked["hits"][1]["via"]["id"] == "11010519491231002X"  # not in the answer
    check, audit = expand_line(orjson.loads(line))
    assert check == check_record(linked, unit="U1", scenario="bidding", at=audit["at"])
    assert check["hits"][1]["via"]["id"] == "1101051949****002X"


def test_torn_routed_lines_are_skipped_and_the_batch_ships_without_them(tmp_path: Path) -> None:
    """A routed line cut short (power loss) in the spool is skipped, as a torn line of any
    other kind; the lines around it are shipped, once. A whole line whose route does not
    read is shipped as its records."""
    from screening.backbone import EmbeddedStore
    from screening.backbone.records import check_line
    from tests.test_backbone import result

    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, start=False)
    try:
        for i in range(3):
            res = result(f"c-{i}", [("E-1", "court.dd", "法院A", "block")])
            bb.record_check(res, unit="U1", scenario="bidding", region=None,
                            subject=res["subject"]["id"])
            if i == 1:  # the torn line, then a newline (what reopening a torn segment adds)
                torn = bb.spool
                path = torn.folder / f"{torn.segment:08d}.log"
                whole = path.read_bytes()
                last = whole[:-1].rsplit(b"\n", 1)[-1]
                with path.open("ab") as f:
                    f.write(last[:-3] + b"\n")
        res = result("c-3", [("E-1", "court.dd", "法院A", "block")])
        line = check_line(res, unit="U1", scenario="bidding", region=None,
                          subject=res["subject"]["id"])
        bb.spool.record(line.replace(b',"r":["', b',"r":["day ', 1))  # an odd route
        bb.spool.cut()
        folder = bb.spool.folder
        store = EmbeddedStore(tmp_path / "store")
        batches = read_batches(folder, slot_id(folder) or "", (0, 0), None, False, records=False)
        assert len(batches) == 1 and len(batches[0].raw_checks) == 4
        shipping.apply_batch(store, folder, batches[0])
        page = store.read_feedback("法院A")
        assert [i["check_id"] for i in page.items] == ["c-0", "c-1", "c-2", "c-3"]
        assert len(store.read_audit().items) == 4
    finally:
        bb.close(timeout=0.2)


def test_an_outcome_finds_its_check_line_not_a_line_that_mentions_its_id(tmp_path: Path
                                                                         ) -> None:
    """``post_outcome`` looks a check up in the day's file by its id: a later line that holds
    the same id as text (a consent reference here) is not taken for it."""
    from screening.backbone import EmbeddedStore
    from screening.backbone.records import check_line, route_line
    from screening.errors import Forbidden
    from tests.test_backbone import result

    store = EmbeddedStore(tmp_path / "store")
    mine = result("X-2", [("E-1", "court.dd", "法院A", "block")])
    other = result("X-3", [("E-1", "court.dd", "法院A", "block")])
    lines = [check_line(mine, unit="U2", scenario="bidding", region=None, subject="S")[:-1],
             check_line(other, unit="U1", scenario="bidding", region=None, subject="S",
                        consent="X-2")[:-1]]
    routed = [route_line(line) for line in lines]
    store.apply("b1", [], [], raw=(lines, [r[2] for r in routed]),
                routes=([(r[0], tuple(r[1])) for r in routed], [r[0] for r in routed]))
    assert store.post_outcome("X-2", "U2", "intercepted")["check_id"] == "X-2"
    with pytest.raises(Forbidden):
        store.post_outcome("X-3", "U2", "intercepted")
    with pytest.raises(Forbidden):
        store.post_outcome("X-2", "U1", "intercepted")


def test_a_check_is_recorded_at_the_instant_it_was_decided(tmp_path: Path) -> None:
    """The records of a check carry the time it was decided at — the answer's ``as_of`` when
    the check asked for none — and the time it was made when it asked about another instant."""
    from indexer import clock
    from screening.accounts import Account
    from screening.decision import CheckRequest
    from screening.live import BackboneRecorder
    from tests.test_backbone import result

    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, start=False)
    try:
        recorder = BackboneRecorder(bb)
        unit = Account(unit="U1", name="u", tier="agency")
        now = clock.format_instant(clock.now())
        res = {**result("c-now", [("E-1", "court.dd", "法院A", "block")]), "as_of": now}
        recorder.record(unit, CheckRequest(subject="S", scenario="bidding"), res)
        past = {**result("c-past", [("E-1", "court.dd", "法院A", "block")]),
                "as_of": "2020-01-01T00:00:00+08:00"}
        before = clock.now()
        recorder.record(unit, CheckRequest(subject="S", scenario="bidding",
                                           as_of="2020-01-01"), past)
        bb.spool.cut()
        folder = bb.spool.folder
        (batch,) = read_batches(folder, slot_id(folder) or "", (0, 0), None, False)
        checks, audits = batch.records()
        assert [c["at"] for c in checks] == [a["at"] for a in audits]
        assert checks[0]["at"] == now
        assert clock.parse_instant(checks[1]["at"]) >= before  # not 2020
    finally:
        bb.close(timeout=0.2)


def test_record_check_through_the_shipper(kind: str, server: RedisServer | None,
                                          tmp_path: Path) -> None:
    """Routed check lines, shipped to either store: the feed and the audit trail read back
    what ``check_record`` and ``audit_record`` make (the Redis store gets them expanded)."""
    from screening.backbone import audit_record, check_record
    from tests.test_backbone import result

    bb = open_backbone(settings_for(kind, tmp_path / "data", server), shipper=True,
                       interval=0.01)
    try:
        for i in range(50):
            res = result(f"c-{i}", [("E-1", "court.dd", "法院A", "block")], person=i % 2 == 1)
            bb.record_check(res, unit="U1", scenario="bidding", region="350100",
                            subject=res["subject"]["id"], purpose="审批")
        res = result("c-clean", [])
        bb.record_check(res, unit="U1", scenario="bidding", region=None, subject="X")
        _wait(lambda: len(whole_audit(bb)) == 51)
        feed = whole_feed(bb, "法院A")
        assert [i["check_id"] for i in feed] == [f"c-{i}" for i in range(50)]
        assert feed[1]["subject"]["id"] == "1101051949****002X"
        audits = whole_audit(bb)
        assert {r["purpose"] for r in audits} == {"审批", None}
        for i in (0, 1):
            made = check_record(result(f"c-{i}", [("E-1", "court.dd", "法院A", "block")],
                                       person=i == 1), unit="U1", scenario="bidding",
                                region="350100", at=feed[i]["at"])
            assert made is not None
            item = {k: v for k, v in feed[i].items() if k != "outcome"}
            assert item == {**{k: made[k] for k in made if k != "hits"},
                            **{k: v for k, v in made["hits"][0].items() if k != "authority"}}
            assert audits[i] == audit_record(
                unit="U1", scenario="bidding", subject=result(f"c-{i}", [], person=i == 1)[
                    "subject"]["id"], decision="block", check_id=f"c-{i}", purpose="审批",
                at=feed[i]["at"])
    finally:
        bb.close()


@pytest.mark.parametrize("shipper", [True, False], ids=["shipper", "flusher"])
def test_a_batch_is_recorded_item_by_item_in_order(tmp_path: Path, shipper: bool) -> None:
    """``record_batch`` (one write for a whole batch request) stores what recording each item
    alone stores: a feedback record per hit item, an audit record per item (failed ones with
    no decision), in the batch's order, with one time for the batch."""
    from screening.backbone import audit_record
    from tests.test_backbone import result

    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=shipper, interval=0.01)
    items: list[tuple[dict[str, Any] | None, Any, str | None]] = []
    for i in range(30):
        if i % 7 == 3:  # an item that failed validation: audited, no decision
            items.append((None, audit_record(unit="U1", scenario="bidding", subject=None,
                                             decision=None), None))
            continue
        hits = [("E-1", "court.dd", "法院A", "block")] if i % 3 == 0 else []
        if i % 5 == 0 and hits:  # a hit through an organisation names a person (masked)
            hits_ = result(f"b-{i}", hits)
            hits_["hits"][0]["path"] = "org_of:legal_rep"
            hits_["hits"][0]["via"] = {"id": "11010519491231002X", "name": "张三"}
            res = hits_
        else:
            res = result(f"b-{i}", hits, person=i % 2 == 1)
        items.append((res, res["subject"]["id"], "C-7" if i % 4 == 0 else None))
    try:
        bb.record_batch(items, unit="U1", scenario="bidding", region="350100", purpose="招标")
        assert bb.flush(10)
        audit = whole_audit(bb)
        assert [a["check_id"] for a in audit] == [r["check_id"] if r else None
                                                  for r, _, _ in items]
        assert [a["decision"] for a in audit] == [r["decision"] if r else None
                                                  for r, _, _ in items]
        assert [a["consent"] for a in audit] == [c for _, _, c in items]
        assert [a["subject"] for a in audit] == [subject_hash(s) if r else None
                                                 for r, s, _ in items]
        assert {a["purpose"] for a in audit if a["check_id"]} == {"招标"}
        assert len({a["at"] for a in audit if a["check_id"]}) == 1  # one time for the batch
        feed = whole_feed(bb, "法院A")
        hit_ids = [r["check_id"] for r, _, _ in items if r and r["hits"]]
        assert [f["check_id"] for f in feed] == hit_ids
        org_of = [f for f in feed if f["path"] == "org_of:legal_rep"]
        assert org_of and all(f["via"]["id"] == "1101051949****002X" for f in org_of)
        assert all("*" in f["subject"]["id"] for f in feed if f["subject"]["type"] == "person")
    finally:
        bb.close()


def test_grouped_checks_are_spooled_with_one_write_at_the_end(tmp_path: Path) -> None:
    """``grouped()`` (the fast path's Coalescer around one loop turn's checks): nothing is
    written inside the block, everything with one write at its end, then shipped as usual."""
    from tests.test_backbone import result

    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, interval=0.01)
    try:
        writes = bb.spool.records
        with bb.grouped():
            for i in range(5):
                res = result(f"g-{i}", [("E-1", "court.dd", "法院A", "block")])
                bb.record_check(res, unit="U1", scenario="bidding", region="350100",
                                subject=res["subject"]["id"])
            with bb.grouped():  # nested: still one write, at the outer end
                bb.record_check(result("g-5", []), unit="U1", scenario="bidding",
                                region=None, subject="X")
            assert bb.spool.records == writes  # nothing written yet
        assert bb.spool.records == writes + 1
        assert bb.flush(10)
        assert [a["check_id"] for a in whole_audit(bb)] == [f"g-{i}" for i in range(6)]
        assert len(whole_feed(bb, "法院A")) == 5
    finally:
        bb.close()


_CHURN = """
import resource, sys
import orjson
if sys.argv[1] == "keep":
    from screening.backbone.shipper import keep_heap
    assert keep_heap()
record = {"check_id": "c-1", "at": "2026-06-01T10:00:00+08:00", "hits": [{"entry": "E-1",
          "list": "court.dishonest_debtor", "authority": "x" * 400, "measures": []}]}
faults = []
for _ in range(4):  # a shipper's rounds: a batch's records encoded, held, freed at once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    held = [orjson.dumps(record) for _ in range(20_000)]
    del held
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[1:]))
"""


def test_the_shipper_keeps_its_heap_between_batches() -> None:
    """``keep_heap`` (called by the shipper process at start): a batch's records freed at once
    leave their pages to the next batch instead of giving them back to the system and
    faulting them in again. Counted in fresh processes, rounds after the first."""
    import subprocess
    import sys

    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _CHURN, mode], cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=60)
        return int(out.stdout.strip())

    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("no glibc malloc here")
    kept, given_back = faults("keep"), faults("plain")
    assert given_back > 1_000  # ~20 MB a round, returned and faulted in again
    assert kept * 10 < given_back


def test_shipping_bytes_and_routes_files_what_records_file(tmp_path: Path) -> None:
    """The embedded store files the same records in the same files and batches whether the
    shipper hands it the parsed records or only their bytes and routes
    (``read_batches(records=False)``, what ``ship_files`` does for it; a routed check line is
    then filed as it is and expanded when read): routed, compact, batch and record lines;
    hits for several authorities and none; two days; a record it cannot file, set aside both
    ways."""
    from screening.backbone import EmbeddedStore
    from tests.test_backbone import result

    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, start=False)
    try:
        for i in range(40):
            hits = [("E-1", "court.dd", "法院A", "block"), ("E-2", "tax.x", "税务局B", "alert"),
                    ("E-3", "court.dd", "", "review")][: i % 4]
            res = result(f"c-{i}", hits, person=i % 5 == 0)
            bb.record_check(res, unit="U1", scenario="bidding", region="350100",
                            subject=res["subject"]["id"], purpose="审批", consent=f"C-{i}")
            if i % 9 == 0:
                bb.record(checks=[rec(f"r-{i}", at="2026-06-01T10:00:00+08:00")],
                          audits=[aud(f"r-{i}", at="2026-05-31T23:59:59+08:00")])
            if i % 13 == 0:
                items = [(result(f"b-{i}-{k}", hits[:k]), "91350100M000100Y43", None)
                         for k in range(3)]
                bb.record_batch(items, unit="U2", scenario="bidding", region=None)
            if i == 20:
                bb.record(checks=[{"check_id": "no-time", "hits": []}])  # refused both ways
            if i % 10 == 9:
                bb.spool.cut()
        folder = bb.spool.folder
        stores = {flag: EmbeddedStore(tmp_path / f"store-{flag}") for flag in (True, False)}
        for flag, store in stores.items():
            checkpoint = (0, 0)
            while True:
                got = read_batches(folder, slot_id(folder) or "", checkpoint, None, False, 3,
                                   records=flag)
                if not got:
                    break
                for batch in got:
                    assert (batch.check_routes is None) == flag
                    shipping.apply_batch(store, folder, batch)
                    checkpoint = (batch.segment, batch.end)

        def files(root: Path) -> dict[str, tuple[list[bytes], list[dict[str, Any]]]]:
            """Each file's batch markers, and its records as the store's readers see them."""
            out = {}
            for p in sorted(root.rglob("*.jsonl")):
                name = str(p.relative_to(root))
                lines = p.read_bytes().split(b"\n")
                objs = logfile.decode(lines)
                assert len(objs) + sum(line.startswith(b'{"b":') for line in lines) == \
                    len([line for line in lines if line])  # nothing unreadable
                out[name] = ([line for line in lines if line.startswith(b'{"b":')],
                             [stored_audit(o) for o in objs] if name.startswith("audit/")
                             else checks_of(objs))
            return out

        kept, lean = files(tmp_path / "store-True"), files(tmp_path / "store-False")
        assert kept == lean
        assert sum(len(records) for _, records in kept.values()) > 100
        assert sum(name.startswith("backbone/feeds/") for name in kept) == 2  # A, B; not ""
        assert sum(name.startswith("backbone/checks/") for name in kept) == 2
        assert sum(name.startswith("audit/") for name in kept) == 2
        rejected = (folder / "rejected.jsonl").read_bytes().splitlines()
        assert len(rejected) == 2 and all(b"no-time" in line for line in rejected)
    finally:
        bb.close(timeout=0.2)


def test_the_embedded_store_fsyncs_every_file_of_a_batch(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's files are all written, then all ``fsync``ed (one journal commit instead of
    one a file), before ``apply`` returns and the shipper moves its checkpoint."""
    from screening.backbone import EmbeddedStore

    store = EmbeddedStore(tmp_path / "store")
    synced: list[str] = []
    fsync = os.fsync

    def recorded(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recorded)
    hits = [("E-1", "court.dd", "法院A", "block"), ("E-2", "tax.x", "税务局B", "alert")]
    store.apply("b-1", [rec("c-1", hits=hits), rec("c-2", at="2026-06-01T10:00:00+08:00")],
                [aud("c-1"), aud("c-2", at="2026-06-01T10:00:00+08:00")])
    written = sorted(str(p) for p in (tmp_path / "store").rglob("*.jsonl"))
    assert len(written) == 6  # two check days, two audit days, two feeds
    assert sorted(synced) == written


def test_records_before_a_broken_cut_line_wait_for_the_next_cut(tmp_path: Path) -> None:
    """A cut line that is not JSON (a torn write mended by the next append) ends no batch: the
    records before it are shipped with the next good cut, never skipped — also when a read
    (a 1 MiB window) ends between the broken cut line and the next good one."""
    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, start=False)
    try:
        folder = bb.spool.folder
        bb.record(audits=[aud("a-1")])
        bb.spool.cut()
        bb.record(audits=[aud("a-2")])
        bb.spool.record(b'{"cut":17\n')  # broken
        tail = [f"t-{i}" for i in range(6_000)]  # > 1 MiB before the next good cut
        for name in tail:
            bb.record(audits=[aud(name)])
        got = read_batches(folder, slot_id(folder) or "", read_checkpoint(folder), None,
                           False, 64, budget=1)
        assert [[a["check_id"] for a in b.audits] for b in got] == [["a-1"]]
        bb.spool.cut()
        for budget in (1, 2_048, 8 << 20):
            seen: list[list[str]] = []
            checkpoint = read_checkpoint(folder)
            while got := read_batches(folder, slot_id(folder) or "", checkpoint, None, False,
                                      64, budget=budget):
                seen += [[a["check_id"] for a in b.audits] for b in got]
                checkpoint = (got[-1].segment, got[-1].end)
            assert seen == [["a-1"], ["a-2", *tail]], budget
    finally:
        bb.close(timeout=0.2)


def test_a_courteous_process_yields_the_cpu_every_so_many_steps(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """``courtesy``: a process that asked for it yields every ``every`` steps (the spool lines
    ``read_batches`` reads count); any other process never does; the shipper asks for it."""
    from screening.backbone import courtesy

    yields: list[int] = []
    monkeypatch.setattr(courtesy.os, "sched_yield", lambda: yields.append(1))
    monkeypatch.setattr(courtesy, "_every", 0)
    for _ in range(100):
        courtesy.step()
    assert yields == []
    courtesy.courteous(10)
    try:
        for _ in range(35):
            courtesy.step()
        assert len(yields) == 3
        bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, start=False)
        try:
            for i in range(200):
                bb.record(audits=[aud(f"a-{i}")])
            bb.spool.cut()
            folder = bb.spool.folder
            yields.clear()
            read_batches(folder, slot_id(folder) or "", (0, 0), None, False, records=False)
            assert len(yields) in (20, 21)  # 201 lines: 200 records and the cut
        finally:
            bb.close(timeout=0.2)
    finally:
        courtesy.courteous(0)
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from screening.backbone import courtesy, "
            "shipper, EmbeddedStore; root = Path(sys.argv[1]); "
            "shipper.main(EmbeddedStore(root), root / 'spool', idle_exit=0.1); "
            "print(courtesy._every)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ship")], cwd=ROOT,
                         check=True, capture_output=True, text=True, timeout=60)
    assert int(out.stdout.strip()) == shipping.COURTESY_STEPS > 0  # the shipper process yields
