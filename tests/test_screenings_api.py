"""Bulk screening over HTTP (issue 5): upload → job → progress → streamed result, the
permissions of a job, the refusals before any work, and a job that survives a restart.

In-process (``httpx.ASGITransport``) with the app's lifespan running (it starts the job
runner); backbone off. The expected output is what ``screening bulk`` writes for the same file
as the same caller at the same ``as_of``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from screening.app import create_app
from screening.cli import main as cli_main
from screening.holder import SnapshotHolder
from screening.settings import Settings
from tests.apifixtures import fixture_dirs  # noqa: F401
from tests.servicekit import (
    AS_OF,
    ORG_BLACK,
    ORG_CLEAN,
    ORG_LOCAL,
    ORG_SHARED,
    PERSON_BLACK,
    PERSON_REP,
    auth,
)

SCENARIO = "government_procurement"
ROWS = [ORG_BLACK, ORG_SHARED, ORG_CLEAN, ORG_LOCAL, PERSON_BLACK, PERSON_REP, "", "12345",
        ORG_BLACK[:-1] + "0", ORG_CLEAN.lower()]


def supplier_csv(copies: int = 1) -> bytes:
    lines = ["企业名称,统一社会信用代码"]
    n = 0
    for _ in range(copies):
        for subject in ROWS:
            n += 1
            lines.append(f"供应商{n},{subject}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_bulk(snapshots: Path, src: Path, out: Path, tier: str = "agency",
               region: str = "350100") -> bytes:
    """What ``screening bulk`` writes for ``src`` as a ``tier`` caller of ``region``."""
    code = cli_main(["bulk", str(src), "--scenario", SCENARIO, "--out", str(out),
                     "--snapshot", str(snapshots), "--tier", tier, "--region", region,
                     "--as-of", AS_OF])
    assert code == 0
    return out.read_bytes()


Make = Callable[..., Any]


@pytest.fixture
def make_app(fixture_dirs: tuple[Path, Path], tmp_path: Path) -> Make:  # noqa: F811
    snapshots, accounts = fixture_dirs

    def make(**settings: Any) -> Any:
        s = Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data", **settings)
        holder = SnapshotHolder(snapshots)
        holder.refresh()
        return create_app(s, holder=holder, watch=False, backbone=False)

    return make


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (the job runner) and a client over ASGI."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def upload(c: httpx.AsyncClient, body: bytes, who: str = "agency",
                 **params: str) -> httpx.Response:
    params.setdefault("scenario", SCENARIO)
    params.setdefault("as_of", AS_OF)
    return await c.post("/v1/screenings", params=params, content=body,
                        headers={**auth(who), "content-type": "text/csv"})


async def wait_done(c: httpx.AsyncClient, job_id: str, who: str = "agency",
                    timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await c.get(f"/v1/screenings/{job_id}", headers=auth(who))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["state"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, f"job not done in {timeout} s: {body}"
        await asyncio.sleep(0.05)


def test_upload_poll_result_equals_cli(make_app: Make, fixture_dirs: tuple[Path, Path],  # noqa: F811
                                       tmp_path: Path) -> None:
    snapshots, _ = fixture_dirs
    src = tmp_path / "suppliers.csv"
    src.write_bytes(supplier_csv())
    expected = write_bulk(snapshots, src, tmp_path / "cli.csv")

    async def go() -> None:
        async with running(make_app()) as c:
            r = await upload(c, src.read_bytes())
            assert r.status_code == 202, r.text
            job = r.json()
            assert r.headers["location"] == f"/v1/screenings/{job['id']}"
            assert job["state"] in ("pending", "running", "done")
            assert job["unit"] == "350100-CZJ"
            done = await wait_done(c, job["id"])
            assert done["state"] == "done", done
            assert done["rows_done"] == done["rows_total"] == len(ROWS)
            assert done["rate_per_s"] > 0
            assert done["counts"]["decisions"]["block"] >= 2
            assert sum(done["counts"]["errors"].values()) == 3  # empty, short, check char
            assert done["as_of"] == AS_OF
            res = await c.get(f"/v1/screenings/{job['id']}/result", headers=auth("agency"))
            assert res.status_code == 200, res.text
            assert res.headers["content-type"].startswith("text/csv")
            assert res.content == expected
            # an admin may read any job
            r = await c.get(f"/v1/screenings/{job['id']}/result", headers=auth("admin"))
            assert r.status_code == 200 and r.content == expected

    asyncio.run(go())


def test_job_runs_as_the_account(make_app: Make, fixture_dirs: tuple[Path, Path],  # noqa: F811
                                 tmp_path: Path) -> None:
    """The public tier may upload; its rows are decided (and masked) as a public caller."""
    snapshots, _ = fixture_dirs
    src = tmp_path / "suppliers.csv"
    src.write_bytes(supplier_csv())
    expected = write_bulk(snapshots, src, tmp_path / "public.csv", tier="public",
                          region="national")
    agency = write_bulk(snapshots, src, tmp_path / "agency.csv")
    assert expected != agency

    async def go() -> None:
        async with running(make_app()) as c:
            r = await upload(c, src.read_bytes(), "public")
            assert r.status_code == 202, r.text
            done = await wait_done(c, r.json()["id"], "public")
            assert done["state"] == "done"
            res = await c.get(f"/v1/screenings/{done['id']}/result", headers=auth("public"))
            assert res.status_code == 200 and res.content == expected

    asyncio.run(go())


def test_permissions_and_refusals(make_app: Make, tmp_path: Path) -> None:
    async def go() -> None:
        async with running(make_app(max_upload=10_000)) as c:
            r = await upload(c, supplier_csv())
            assert r.status_code == 202
            job_id = r.json()["id"]
            await wait_done(c, job_id)
            for path in (f"/v1/screenings/{job_id}", f"/v1/screenings/{job_id}/result"):
                r = await c.get(path, headers=auth("adopter"))  # another unit
                assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_job"
                r = await c.get(path)
                assert r.status_code == 401 and r.json()["error"]["code"] == "missing_key"
            for path in (f"/v1/screenings/{job_id}?foo=1",
                         f"/v1/screenings/{job_id}/result?partal=true"):
                r = await c.get(path, headers=auth("agency"))
                assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field"
            for path in ("/v1/screenings/nope", "/v1/screenings/nope/result"):
                r = await c.get(path, headers=auth("agency"))
                assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_job"

            async def refused(body: bytes, status: int, code: str, **params: str) -> None:
                r = await upload(c, body, **params)
                assert r.status_code == status, r.text
                assert set(r.json()) == {"error"}
                assert r.json()["error"]["code"] == code, r.text
                assert str(tmp_path) not in r.text  # no server path in the message
                assert "--column" not in r.text  # the HTTP words, not the command line's

            r = await c.post("/v1/screenings", params={"scenario": SCENARIO},
                             content=supplier_csv())
            assert r.status_code == 401
            await refused(b"", 422, "missing_file")
            await refused(supplier_csv(), 422, "unknown_scenario", scenario="nope")
            await refused(b"name,phone\nA,1\n", 422, "no_identifier_column")
            await refused(supplier_csv(), 422, "bad_as_of", as_of="yesterday")
            await refused(supplier_csv(), 422, "bad_format", format="xlsx")
            await refused(supplier_csv(), 422, "unknown_field", colum="x")
            await refused(supplier_csv(200), 413, "upload_too_large")
            r = await c.post("/v1/screenings", content=supplier_csv(), headers=auth("agency"))
            assert r.status_code == 422 and r.json()["error"]["code"] == "missing_field"
        uploads = tmp_path / "data" / "jobs" / ".uploads"
        assert len(list(uploads.iterdir())) == 1  # refused uploads are removed

    asyncio.run(go())


def test_job_survives_a_restart(make_app: Make, fixture_dirs: tuple[Path, Path],  # noqa: F811
                                tmp_path: Path) -> None:
    snapshots, _ = fixture_dirs
    src = tmp_path / "suppliers.csv"
    src.write_bytes(supplier_csv(20))
    expected = write_bulk(snapshots, src, tmp_path / "cli.csv")

    async def first() -> str:
        app = make_app()
        app.screenings.chunk_bytes = 1024  # several chunks
        transport = httpx.ASGITransport(app=app)  # no lifespan: nothing runs the job here
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await upload(c, src.read_bytes())
            assert r.status_code == 202, r.text
            job = r.json()
            assert job["state"] == "pending" and job["chunks_total"] > 2
            # one chunk done, then the process "dies"
            app.screenings.jobs.run(job["id"], max_chunks=1)
            r = await c.get(f"/v1/screenings/{job['id']}", headers=auth("agency"))
            assert r.json()["chunks_done"] == 1 and r.json()["state"] != "done"
            r = await c.get(f"/v1/screenings/{job['id']}/result", headers=auth("agency"))
            assert r.status_code == 409 and r.json()["error"]["code"] == "job_not_done"
            return str(job["id"])

    async def second(job_id: str) -> None:
        async with running(make_app()) as c:  # a new app on the same data folder
            done = await wait_done(c, job_id)
            assert done["state"] == "done" and done["rows_total"] == 20 * len(ROWS)
            res = await c.get(f"/v1/screenings/{job_id}/result", headers=auth("agency"))
            assert res.status_code == 200 and res.content == expected

    asyncio.run(second(asyncio.run(first())))


def test_an_upload_cut_off_by_the_client_is_a_400(make_app: Make, tmp_path: Path) -> None:
    """A client that goes away mid-upload gets (were it still there) 400 ``disconnected``,
    never a 500, and its partial upload is removed."""
    app = make_app()
    body = supplier_csv()
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": body[:40], "more_body": True},
                     {"type": "http.disconnect"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/v1/screenings",
             "raw_path": b"/v1/screenings", "root_path": "",
             "query_string": f"scenario={SCENARIO}".encode(),
             "headers": [(b"host", b"t"), (b"content-type", b"text/csv"),
                         (b"content-length", str(len(body)).encode()),
                         *[(k.lower().encode(), v.encode()) for k, v in auth("agency").items()]],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert orjson.loads(payload)["error"]["code"] == "disconnected"
    uploads = tmp_path / "data" / "jobs" / ".uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
