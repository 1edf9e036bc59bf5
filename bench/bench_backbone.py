"""Micro-benchmarks of the backbone's recording cost (issue 4: feedback recording ≤ 15% of
single-check throughput with every check a hit).

    python -m pytest bench/bench_backbone.py --benchmark-only -p no:randomly \
        -o python_files='bench_*.py' --benchmark-columns=median,mean,ops,rounds

* ``test_check_only`` — one in-process check of a listed organisation (a hit), the baseline;
* ``test_check_and_record[embedded|redis]`` — the same check plus what the request path adds:
  ``check_record`` + ``audit_record`` + ``Front.record`` (one spool write), flusher running;
* ``test_loop_check_only`` / ``test_loop_check_and_record[...]`` — 10,000 checks a round, with
  the flusher's work inside the round: the throughput cost of recording, GIL contention included;
* ``test_record_only[...]`` — the recording part alone;
* ``test_record_check_shipper_mode`` — the same with a shipper (``screening serve``): one compact
  line, the records are built by the shipper process (HTTP-level figures:
  ``python -m bench.http_record_bench``);
* ``test_ship[...]`` — flusher side: apply 1,000 spooled checks to the store (per batch);
* ``test_redis_ping`` and ``test_take_redis`` — one redis-py round trip, the shared GCRA.

The snapshot is generated once (``BENCH_ENTRIES``, default 20,000) under a temporary folder;
a ``redis-server`` is started on a free port like the tests do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.snapshots import generated_snapshot
from indexer.snapshot import Snapshot
from screening.backbone import Front, audit_record, check_record, open_backbone
from screening.decision import Caller, CheckRequest, check
from screening.settings import Settings
from tests.test_backbone import RedisServer

SCENARIO = "government_procurement"
AS_OF = "2026-06-01T00:00:00+08:00"


@pytest.fixture(scope="session")
def snap() -> Snapshot:
    return generated_snapshot(20_000, "bench-backbone-")


@pytest.fixture(scope="session")
def hit_subject(snap: Snapshot) -> str:
    """An organisation whose check has hits with measures (a block, ideally)."""
    a = snap.arrays
    off, types = a["subject_entries_off"], a["subject_type"]
    for row in range(len(types)):
        if types[row] or off[row + 1] == off[row]:
            continue
        sid = snap.subject_id(row)
        result = check(snap, CheckRequest(sid, SCENARIO, as_of=AS_OF), Caller())
        if result["hits"] and any(h["measures"] for h in result["hits"]):
            return sid
    raise LookupError("no organisation with a hit in the generated snapshot")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(params=["embedded", "redis"])
def front(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Front]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    bb = open_backbone(Settings(data=tmp_path / "data", redis=url))
    yield bb
    bb.close()


def _record(bb: Front, result: dict[str, Any], caller: Caller) -> None:
    """What the HTTP layer does after each check (docs/backbone.md)."""
    made = check_record(result, unit=caller.unit, scenario=SCENARIO, region=caller.region)
    bb.record(checks=[made] if made else [],
              audits=[audit_record(unit=caller.unit, scenario=SCENARIO,
                                   subject=result["subject"]["id"],
                                   decision=result["decision"], check_id=result["check_id"])])


def test_check_only(benchmark: Any, snap: Snapshot, hit_subject: str) -> None:
    request, caller = CheckRequest(hit_subject, SCENARIO, as_of=AS_OF), Caller()
    result = benchmark(check, snap, request, caller)
    assert result["hits"]


def test_check_and_record(benchmark: Any, snap: Snapshot, hit_subject: str, front: Front
                          ) -> None:
    request, caller = CheckRequest(hit_subject, SCENARIO, as_of=AS_OF), Caller()

    def run() -> None:
        _record(front, check(snap, request, caller), caller)

    benchmark(run)
    assert front.flush(30)


LOOP = 10_000


def test_loop_check_only(benchmark: Any, snap: Snapshot, hit_subject: str) -> None:
    """Throughput baseline: 10,000 checks of a listed organisation in a loop."""
    request, caller = CheckRequest(hit_subject, SCENARIO, as_of=AS_OF), Caller()

    def run() -> None:
        for _ in range(LOOP):
            check(snap, request, caller)

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


def test_loop_check_and_record(benchmark: Any, snap: Snapshot, hit_subject: str, front: Front
                               ) -> None:
    """The same loop, each check recorded (check + audit record), the flusher shipping in the
    background; the round ends when everything is in the store (so its work is counted)."""
    request, caller = CheckRequest(hit_subject, SCENARIO, as_of=AS_OF), Caller()

    def run() -> None:
        for _ in range(LOOP):
            _record(front, check(snap, request, caller), caller)
        assert front.flush(30)

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


def test_record_only(benchmark: Any, snap: Snapshot, hit_subject: str, front: Front) -> None:
    caller = Caller()
    result = check(snap, CheckRequest(hit_subject, SCENARIO, as_of=AS_OF), caller)
    benchmark(_record, front, result, caller)
    assert front.flush(30)


def test_record_check_shipper_mode(benchmark: Any, snap: Snapshot, hit_subject: str,
                                   tmp_path: Path) -> None:
    """The request path of ``screening serve`` (shipper mode): ``record_check`` writes one
    compact line; nothing is shipped here (no cutter, no shipper process)."""
    caller = Caller()
    result = check(snap, CheckRequest(hit_subject, SCENARIO, as_of=AS_OF), caller)
    bb = open_backbone(Settings(data=tmp_path / "data"), shipper=True, start=False)
    try:
        benchmark(bb.record_check, result, unit=caller.unit, scenario=SCENARIO,
                  region=caller.region, subject=result["subject"]["id"])
    finally:
        bb.close()


def test_ship(benchmark: Any, snap: Snapshot, hit_subject: str, tmp_path: Path,
              request: pytest.FixtureRequest, front: Front) -> None:
    """Flusher cost: 1,000 checks with hits (and their audit records) spooled, then shipped."""
    caller = Caller()
    result = check(snap, CheckRequest(hit_subject, SCENARIO, as_of=AS_OF), caller)
    front.flush()

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        for _ in range(1000):
            _record(front, result, caller)
        return (), {}

    benchmark.pedantic(lambda: front.flush(30), setup=setup, rounds=5, iterations=1)


def test_redis_ping(benchmark: Any, redis_url: str) -> None:
    import redis
    with redis.Redis.from_url(redis_url) as r:
        benchmark(r.ping)


def test_take_redis(benchmark: Any, redis_url: str, tmp_path: Path) -> None:
    bb = open_backbone(Settings(data=tmp_path / "data", redis=redis_url))
    try:
        benchmark(bb.take, "U1", 1e9)
    finally:
        bb.close()
