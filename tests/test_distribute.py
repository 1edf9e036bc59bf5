"""One bulk job spread over many workers (issue 5): the Redis consumer group of chunk
numbers (``screening.distribute``), job deletion and retention, and the live events a job
decides on.

The queue tests run two or three "processes" in one: separate ``Jobs`` and ``ChunkQueue``
objects over one jobs folder and one real ``redis-server``. The last test runs two real
``screening serve`` processes on one Redis and one jobs folder. Every output is compared with
what ``screening bulk`` writes for the same file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from indexer.build import build
from indexer.snapshot import Snapshot
from screening.app import create_app
from screening.backbone import open_backbone
from screening.decision import Caller
from screening.distribute import ChunkQueue, ChunkWorker
from screening.holder import SnapshotHolder
from screening.jobs import Jobs
from screening.settings import Settings
from tests.apifixtures import fixture_dirs  # noqa: F401
from tests.servicekit import (
    AS_OF,
    ORG_BLACK,
    ORG_CLEAN,
    auth,
    make_org,
    write_fixture_source,
)
from tests.test_backbone import RedisServer
from tests.test_live_api import REVOKE, listed
from tests.test_screenings_api import SCENARIO, supplier_csv, upload, write_bulk

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server not installed")

AGENCY = Caller(unit="350100-CZJ", tier="agency", region="350100")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def newest(snapshots: Path) -> Snapshot:
    holder = SnapshotHolder(snapshots)
    holder.refresh()
    return holder.require().snapshot


def make_job(jobs: Jobs, src: Path, chunk_bytes: int = 1024) -> str:
    st = jobs.create(src, scenario=SCENARIO, caller=AGENCY, as_of=AS_OF,
                     chunk_bytes=chunk_bytes)
    return st.id


def run_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.05)


def prepared(fixture_dirs: tuple[Path, Path], tmp_path: Path,  # noqa: F811
             copies: int) -> tuple[Snapshot, Path, bytes]:
    """The served snapshot, a supplier file of ``copies`` × the fixture rows, and what
    ``screening bulk`` writes for it."""
    snapshots, _ = fixture_dirs
    src = tmp_path / "suppliers.csv"
    src.write_bytes(supplier_csv(copies))
    return newest(snapshots), src, write_bulk(snapshots, src, tmp_path / "cli.csv")


def test_chunks_spread_over_workers_give_the_cli_output(
        fixture_dirs: tuple[Path, Path], tmp_path: Path, redis: RedisServer) -> None:  # noqa: F811
    snap, src, expected = prepared(fixture_dirs, tmp_path, 100)
    root = tmp_path / "jobs"
    # three processes over one folder: the driver, and two workers
    driver_jobs, jobs_a, jobs_b = (Jobs(root, lambda: snap) for _ in range(3))
    job_id = make_job(driver_jobs, src)
    total = driver_jobs.status(job_id).chunks_total
    assert total >= 20
    driver = ChunkQueue(redis.url, driver_jobs, consumer="driver")
    workers = [ChunkWorker(ChunkQueue(redis.url, j, consumer=name), lambda: True)
               for j, name in ((jobs_a, "a"), (jobs_b, "b"))]
    for w in workers:
        w.start()
    try:
        token = driver.lock(job_id)
        assert token is not None
        assert driver.lock(job_id) is None  # one driver per job
        assert driver.drive(job_id, token, lambda: False) == "done"
        driver.unlock(job_id, token)
        assert driver.lock(job_id) is not None
    finally:
        for w in workers:
            w.stop()
    st = driver_jobs.status(job_id)
    assert st.state == "done" and st.chunks_done == total
    assert set(st.workers) <= {"a", "b", "driver"} and sum(st.workers.values()) == total
    assert st.workers.get("a", 0) > 0 and st.workers.get("b", 0) > 0, st.workers
    assert b"".join(driver_jobs.result(job_id)) == expected
    assert driver.redis.xpending(driver.stream, "workers")["pending"] == 0
    assert driver.redis.xlen(driver.stream) == 0  # acked messages are deleted


def test_a_chunk_held_by_a_dead_worker_is_taken_over(
        fixture_dirs: tuple[Path, Path], tmp_path: Path, redis: RedisServer) -> None:  # noqa: F811
    snap, src, expected = prepared(fixture_dirs, tmp_path, 10)
    root = tmp_path / "jobs"
    jobs_dead, jobs_live = Jobs(root, lambda: snap), Jobs(root, lambda: snap)
    job_id = make_job(jobs_dead, src)
    dead = ChunkQueue(redis.url, jobs_dead, consumer="dead", claim_idle=0.3)
    live = ChunkQueue(redis.url, jobs_live, consumer="live", claim_idle=0.3)
    dead.publish(job_id, jobs_dead.pending(job_id))
    [(_, held_job, held)] = dead.take(block=1.0)  # taken, then the process is killed
    assert held_job == job_id
    run_until(lambda: (live.work_one(block=0.1), not jobs_live.pending(job_id))[1], 20,
              "the live worker finishing the job")
    part = orjson_part(root / job_id / "parts" / f"{held:06d}.json")
    assert part["worker"] == "live"  # the dead worker's chunk, claimed once idle
    assert live.redis.xpending(live.stream, "workers")["pending"] == 0
    assert b"".join(jobs_live.result(job_id)) == expected


def orjson_part(path: Path) -> dict[str, Any]:
    import orjson
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def test_a_worker_without_the_jobs_snapshot_leaves_its_chunks(
        fixture_dirs: tuple[Path, Path], tmp_path: Path, redis: RedisServer) -> None:  # noqa: F811
    snapshots, _ = fixture_dirs
    # the job's snapshot lives in a folder the other replica rolled away from and deleted
    own = tmp_path / "own-snapshots"
    shutil.copytree(snapshots, own)
    snap = newest(own)
    other = build(write_fixture_source(tmp_path / "other-source"), tmp_path / "other")
    newer = Snapshot.open(other.path)
    assert newer.version != snap.version
    src = tmp_path / "suppliers.csv"
    src.write_bytes(supplier_csv(5))
    expected = write_bulk(snapshots, src, tmp_path / "cli.csv")
    root = tmp_path / "jobs"
    jobs_old, jobs_new = Jobs(root, lambda: snap), Jobs(root, lambda: newer)
    job_id = make_job(jobs_old, src)
    shutil.rmtree(own)  # still mapped by jobs_old; gone for everyone else
    q_new = ChunkQueue(redis.url, jobs_new, consumer="new", claim_idle=0.3)
    q_old = ChunkQueue(redis.url, jobs_old, consumer="old", claim_idle=0.3)
    pending = jobs_old.pending(job_id)
    q_new.publish(job_id, pending)
    for _ in pending:
        assert q_new.work_one(block=0.2) is False  # left, not acked, not reset
    assert jobs_new.pending(job_id) == pending
    assert jobs_new.status(job_id).snapshot == snap.version
    run_until(lambda: (q_old.work_one(block=0.1), not jobs_old.pending(job_id))[1], 20,
              "the worker with the snapshot finishing the job")
    assert b"".join(jobs_old.result(job_id)) == expected


def test_the_driver_works_alone_without_redis(fixture_dirs: tuple[Path, Path],  # noqa: F811
                                              tmp_path: Path) -> None:
    snap, src, expected = prepared(fixture_dirs, tmp_path, 5)
    jobs = Jobs(tmp_path / "jobs", lambda: snap)
    job_id = make_job(jobs, src)
    from tests.test_server import free_port
    queue = ChunkQueue(f"redis://127.0.0.1:{free_port()}/0", jobs, consumer="alone")
    assert queue.drive(job_id, "token", lambda: False) == "done"
    assert set(jobs.status(job_id).workers) == {"alone"}
    assert b"".join(jobs.result(job_id)) == expected


# -- retention and deletion ---------------------------------------------------------------------
def test_sweep_deletes_old_finished_jobs_and_their_uploads(
        fixture_dirs: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    snapshots, _ = fixture_dirs
    snap = newest(snapshots)
    root = tmp_path / "jobs"
    jobs = Jobs(root, lambda: snap)
    (root / ".uploads").mkdir()
    done_upload = root / ".uploads" / "j-done.upload"
    done_upload.write_bytes(supplier_csv())
    pending_upload = root / ".uploads" / "j-pending.upload"
    pending_upload.write_bytes(supplier_csv())
    orphan = root / ".uploads" / "j-orphan.upload"
    orphan.write_bytes(b"x")
    for job_id, path in (("j-done", done_upload), ("j-pending", pending_upload)):
        jobs.create(path, scenario=SCENARIO, caller=AGENCY, as_of=AS_OF, job_id=job_id)
    jobs.run("j-done")
    assert jobs.sweep(3600) == []  # nothing is old yet
    assert jobs.ids() == ["j-done", "j-pending"] and orphan.exists()
    later = time.time() + 2 * 3600
    assert jobs.sweep(3600, now=later) == ["j-done"]  # a pending job is never swept
    assert jobs.ids() == ["j-pending"]
    assert not done_upload.exists() and not orphan.exists() and pending_upload.exists()


def test_delete_a_job_over_http(fixture_dirs: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    snapshots, accounts = fixture_dirs
    settings = Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data")
    holder = SnapshotHolder(snapshots)
    holder.refresh()
    app = create_app(settings, holder=holder, watch=False, backbone=False)

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)  # no lifespan: the job stays pending
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            job = (await upload(c, supplier_csv())).json()
            url = f"/v1/screenings/{job['id']}"
            upload_file = settings.jobs_root / ".uploads" / f"{job['id']}.upload"
            assert upload_file.exists()
            r = await c.delete(url, headers=auth("adopter"))
            assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_job"
            assert (await c.delete(url)).status_code == 401
            r = await c.delete(url, headers=auth("agency"))
            assert r.status_code == 204 and r.content == b""
            assert not upload_file.exists()
            r = await c.get(url, headers=auth("agency"))
            assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_job"
            assert (await c.delete(url, headers=auth("agency"))).status_code == 404

    asyncio.run(go())


# -- the live events a job decides on -------------------------------------------------------------
def test_a_job_decides_on_the_events_applied_when_it_was_created(
        fixture_dirs: tuple[Path, Path], tmp_path: Path) -> None:  # noqa: F811
    snapshots, accounts = fixture_dirs
    settings = Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data")
    bb = open_backbone(settings, interval=0.01)
    holder = SnapshotHolder(snapshots)
    holder.refresh()
    app = create_app(settings, holder=holder, watch=False, backbone=bb)
    fresh = make_org(91)
    body = f"企业名称,统一社会信用代码\nA,{ORG_BLACK}\nB,{fresh}\nC,{ORG_CLEAN}\n".encode()

    def decisions(job_id: str) -> dict[str, str]:
        out = b"".join(app.screenings.jobs.result(job_id)).decode("utf-8-sig")
        return {r["统一社会信用代码"]: r["decision"] for r in csv.DictReader(io.StringIO(out))}

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)  # no lifespan: jobs are run by hand here
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            async def check(subject: str) -> str:
                r = await c.post("/v1/check", headers=auth("agency"), json={
                    "subject": subject, "scenario": SCENARIO, "as_of": AS_OF})
                return str(r.json()["decision"])

            assert await check(ORG_BLACK) == "block"
            r = await c.post("/v1/events", json={"events": [REVOKE]}, headers=auth("issuer"))
            assert r.status_code == 202, r.text
            first = (await upload(c, body)).json()["id"]
            # accepted after the first job was created, before it ran
            r = await c.post("/v1/events", json={"events": [listed(9, fresh)]},
                             headers=auth("issuer"))
            assert r.status_code == 202, r.text
            assert await check(fresh) == "block"
            second = (await upload(c, body)).json()["id"]
            now = {s: await check(s) for s in (ORG_BLACK, fresh, ORG_CLEAN)}
        # run both in a thread, as the runner does, while the served overlay stays live
        for job_id in (first, second):
            thread = threading.Thread(target=app.screenings.jobs.run, args=(job_id,))
            thread.start()
            thread.join(30)
        assert decisions(first) == {ORG_BLACK: "pass", fresh: "pass", ORG_CLEAN: "pass"}
        assert decisions(second) == now == {ORG_BLACK: "pass", fresh: "block",
                                            ORG_CLEAN: "pass"}

    try:
        asyncio.run(go())
    finally:
        bb.close()


# -- two real replicas --------------------------------------------------------------------------
def test_two_replicas_share_one_job(fixture_dirs: tuple[Path, Path], tmp_path: Path,  # noqa: F811
                                    redis: RedisServer) -> None:
    from tests.test_server import REPO, free_port, stop, wait_ready

    snapshots, accounts = fixture_dirs
    src = tmp_path / "suppliers.csv"
    src.write_bytes(supplier_csv(1500))  # ~15,000 rows: chunks long enough for both to take
    expected = write_bulk(snapshots, src, tmp_path / "cli.csv")
    env = dict(os.environ, PYTHONPATH=str(REPO), SCREENING_LOG_LEVEL="warning",
               SCREENING_JOBS=str(tmp_path / "shared-jobs"), SCREENING_JOB_CHUNK="8192",
               SCREENING_JOB_CLAIM_IDLE="5")
    procs, bases = [], []
    try:
        for name in ("a", "b"):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "screening", "serve", "--snapshot", str(snapshots),
                 "--accounts", str(accounts), "--port", str(port), "--redis", redis.url,
                 "--data", str(tmp_path / name)], cwd=REPO, env=env))
            bases.append(f"http://127.0.0.1:{port}")
        for proc, base in zip(procs, bases):
            wait_ready(proc, base)
        a, b = bases
        with httpx.Client(timeout=10) as h:
            r = h.post(a + "/v1/screenings", content=src.read_bytes(),
                       params={"scenario": SCENARIO, "as_of": AS_OF},
                       headers={**auth("agency"), "content-type": "text/csv"})
            assert r.status_code == 202, r.text
            job = r.json()
            assert job["chunks_total"] >= 40
            url = f"/v1/screenings/{job['id']}"
            deadline = time.monotonic() + 60
            while (st := h.get(b + url, headers=auth("agency")).json())["state"] != "done":
                assert st["state"] in ("pending", "running"), st
                assert time.monotonic() < deadline, st
                time.sleep(0.1)
            pids = {name.split("-")[-2] for name in st["workers"]}
            assert pids == {str(p.pid) for p in procs}, st["workers"]  # both did chunks
            assert sum(st["workers"].values()) == st["chunks_total"]
            assert h.get(b + url + "/result", headers=auth("agency")).content == expected
            assert h.get(a + url + "/result", headers=auth("agency")).content == expected
    finally:
        for proc in procs:
            stop(proc)
