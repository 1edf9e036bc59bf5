"""Bulk screening over HTTP (SPEC §6, issue 5): the routes over ``screening.jobs.Jobs``.

======================================  ======  ==============================================
route                                   auth    answer
======================================  ======  ==============================================
POST /v1/screenings?scenario=S&…        key     202, the job's progress (``id``, ``state`` …)
GET  /v1/screenings/{job_id}            owner   the job's progress
GET  /v1/screenings/{job_id}/result     owner   the screened file, streamed (409 until done)
======================================  ======  ==============================================

The upload is the raw request body (a CSV or JSON Lines file, as ``screening bulk`` reads
it), with the options as query parameters: ``scenario`` (required), ``column``, ``format``
(``csv`` | ``jsonl``; else the ``Content-Type`` ``text/csv`` / ``application/x-ndjson``,
else detected from the content), ``region``, ``consent``, ``as_of``. The body is streamed to
``<data>/jobs/.uploads/<id>.upload`` (limit ``SCREENING_MAX_UPLOAD``, 413 above), then
``Jobs.create`` inspects it — no identifier column, unknown scenario, bad ``as_of`` … are
refused (422) before any row is screened, and the upload is removed.

The job runs as the uploading account (tier, region, adopted measures); only that unit, or an
admin, may read it (403; 404 for an unknown id). A ``JobRunner`` thread, started and stopped by
the app's lifespan, does the pending jobs one after the other; at start it resumes every job
not done or failed, so jobs survive a restart (a job loses at most the chunk in flight).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from indexer.snapshot import Snapshot

from . import openapi
from .accounts import Account
from .bulk import CHUNK_BYTES
from .errors import BadRequest, Forbidden, Invalid, PayloadTooLarge, ScreeningError
from .jobs import Jobs, JobStatus
from .overlay import Overlay
from .service import Service

log = logging.getLogger(__name__)

ROUTE = "/v1/screenings"
_FORMATS = {"csv": "csv", "jsonl": "jsonl"}
_CONTENT_TYPES = {"text/csv": "csv", "text/tab-separated-values": "csv",
                  "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
                  "application/x-jsonlines": "jsonl", "application/jsonlines": "jsonl"}
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_OPTIONS = frozenset({"scenario", "column", "format", "region", "consent", "as_of"})


class _Stop(Exception):
    """Raised from ``on_chunk`` to leave a job between two chunks (shutdown)."""


def progress(st: JobStatus, owner: str | None = None) -> dict[str, Any]:
    """The body of ``GET /v1/screenings/{id}``."""
    out: dict[str, Any] = {
        "id": st.id, "state": st.state, "message": st.message,
        "rows_done": st.rows_done,
        "rows_total": st.rows_done if st.state == "done" else None,
        "rate_per_s": round(st.rate, 1),
        "counts": {"decisions": st.counts.get("decisions", {}),
                   "errors": st.counts.get("errors", {}),
                   "empty": st.counts.get("empty", 0)},
        "chunks_done": st.chunks_done, "chunks_total": st.chunks_total,
        "bytes_done": st.bytes_done, "bytes_total": st.bytes_total,
        "eta_seconds": None if st.eta_seconds is None else round(st.eta_seconds, 1),
        "scenario": st.scenario, "snapshot": st.snapshot, "as_of": st.as_of,
        "updated_at": st.updated_at,
    }
    if owner is not None:
        out["unit"] = owner
    return out


class JobRunner:
    """One background thread doing the unfinished jobs of ``jobs`` in creation order."""

    def __init__(self, jobs: Callable[[], Jobs], ready: Callable[[], bool]) -> None:
        self._jobs = jobs  # made on first use (``Jobs`` creates its folder)
        self.ready = ready  # a snapshot is loaded
        self.chunk_bytes = CHUNK_BYTES  # the chunk size of new jobs (tests make it small)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._given_up: set[str] = set()  # failed unexpectedly in this process

    @property
    def jobs(self) -> Jobs:
        return self._jobs()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="screening-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def unfinished(self) -> list[str]:
        out = []
        for job_id in self.jobs.ids():
            if job_id in self._given_up:
                continue
            try:
                state = self.jobs.status(job_id).state
            except (ScreeningError, OSError, ValueError):
                continue
            if state not in ("done", "failed"):
                out.append(job_id)
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            worked = False
            try:
                if self.ready():
                    for job_id in self.unfinished():
                        if self._stop.is_set():
                            return
                        worked = self._run(job_id) or worked
            except Exception:  # never let the runner die: log and look again
                log.exception("jobs.runner_failed root=%s", self.jobs.root)
                worked = False
            if not worked:
                self._wake.wait(1.0)

    def _run(self, job_id: str) -> bool:
        """Run one job to its end (or to shutdown); False if another process holds it."""
        def on_chunk(_: JobStatus) -> None:
            if self._stop.is_set():
                raise _Stop

        locks = self.jobs.root / ".locks"
        locks.mkdir(exist_ok=True)
        with (locks / f"{job_id}.lock").open("a+b") as lock:
            try:  # one process at a time on a job (``--workers N`` share the folder)
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                self._run_locked(job_id, on_chunk)
                return True
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _run_locked(self, job_id: str, on_chunk: Callable[[JobStatus], None]) -> None:
        try:
            if self.jobs.status(job_id).state in ("done", "failed"):
                return  # finished by another process meanwhile
            self.jobs.run(job_id, on_chunk=on_chunk)
        except _Stop:
            log.info("jobs.stopped id=%s (resumed at the next start)", job_id)
        except ScreeningError as exc:  # recorded as failed by Jobs.run
            log.warning("jobs.failed id=%s code=%s", job_id, exc.code)
        except OSError as exc:
            log.warning("jobs.failed id=%s reason=%s", job_id, exc)
        except Exception:
            self._given_up.add(job_id)
            log.exception("jobs.crashed id=%s", job_id)


def _option(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


def router(service: Service, root: Path, max_upload: int) -> tuple[APIRouter, JobRunner]:
    """The routes, and the runner the lifespan starts (``runner.start()``/``stop()``)."""
    holder = service.holder

    def snapshot() -> Snapshot:
        return holder.require().snapshot

    def overlay(snap: Snapshot) -> Overlay | None:
        loaded = holder.current
        if loaded is None or loaded.snapshot is not snap:
            return None
        ov: Overlay | None = service.overlay(loaded)
        return ov

    made: list[Jobs] = []

    def get_jobs() -> Jobs:
        if not made:
            made.append(Jobs(root, snapshot, overlay=overlay))
        return made[0]

    runner = JobRunner(get_jobs, lambda: holder.current is not None)
    uploads = root / ".uploads"
    api = APIRouter(tags=["screenings"])

    def account_of(request: Request) -> Account:
        return service.authenticate(request.headers.get("authorization"))

    def owned(request: Request, job_id: str) -> tuple[Account, JobStatus, str]:
        account = account_of(request)
        jobs = get_jobs()
        st = jobs.status(job_id)  # 404 unknown_job
        spec = orjson.loads((root / job_id / "job.json").read_bytes())
        owner = str(spec["caller"]["unit"])
        if owner != account.unit and account.tier != "admin":
            raise Forbidden("not_your_job", f"job {job_id} belongs to another unit")
        return account, st, owner

    async def receive_to(request: Request, path: Path) -> int:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise BadRequest("bad_content_length", "Content-Length is not a number") \
                    from None
            if size > max_upload:
                raise PayloadTooLarge("upload_too_large", f"the upload is {size} bytes; the "
                                      f"limit is {max_upload}")
        size = 0
        with path.open("wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_upload:
                    raise PayloadTooLarge("upload_too_large",
                                          f"the upload is over {max_upload} bytes")
                f.write(chunk)
        return size

    @api.post(ROUTE, summary="Start a bulk screening job", status_code=202,
              response_model=None,
              responses={202: {"description": "the job's progress; `Location` names it"},
                         **openapi.errors(400, 401, 403, 413, 422, 429, 503)})
    async def create(request: Request) -> Response:
        """Upload a CSV or JSON Lines file as the raw body; options as query parameters
        (`scenario` required; `column`, `format`, `region`, `consent`, `as_of`). The job
        screens every row as the uploading account, as `screening bulk` would."""
        account = account_of(request)
        unknown = sorted(set(request.query_params) - _OPTIONS)
        if unknown:
            raise Invalid("unknown_field", f"unknown parameter {unknown[0]!r}", field=unknown[0])
        scenario = _option(request, "scenario")
        if scenario is None:
            raise Invalid("missing_field", "name the scenario with ?scenario=…",
                          field="scenario")
        fmt = _option(request, "format")
        if fmt is not None and fmt not in _FORMATS:
            raise Invalid("bad_format", "format must be csv or jsonl", field="format")
        if fmt is None:
            ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
            fmt = _CONTENT_TYPES.get(ctype)
        holder.require()
        job_id = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(6)
        uploads.mkdir(parents=True, exist_ok=True)
        path = uploads / f"{job_id}.upload"
        try:
            size = await receive_to(request, path)
            if size == 0:
                raise Invalid("missing_file", "send the file as the request body",
                              field="file")
            st = await asyncio.to_thread(
                get_jobs().create, path, scenario=scenario, caller=account.caller,
                column=_option(request, "column"), format=fmt,
                region=_option(request, "region"), consent=_option(request, "consent"),
                as_of=_option(request, "as_of"), chunk_bytes=runner.chunk_bytes,
                job_id=job_id)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        runner.wake()
        log.info("jobs.created id=%s unit=%s bytes=%d chunks=%d", job_id, account.unit, size,
                 st.chunks_total)
        return Response(orjson.dumps(progress(st, account.unit)), status_code=202,
                        media_type="application/json",
                        headers={"location": f"{ROUTE}/{job_id}"})

    @api.get(ROUTE + "/{job_id}", summary="Progress of a bulk screening job",
             response_model=None,
             responses={200: {"description": "`state`, `rows_done`, `rows_total`, "
                                             "`rate_per_s`, `counts`, …"},
                        **openapi.errors(401, 403, 404, 429)})
    async def status(job_id: str, request: Request) -> Response:
        """State (`pending`, `running`, `paused`, `failed`, `done`), rows done, rate,
        counts by decision and by error."""
        _, st, owner = owned(request, job_id)
        return Response(orjson.dumps(progress(st, owner)), media_type="application/json")

    @api.get(ROUTE + "/{job_id}/result", summary="The screened file of a job",
             response_model=None,
             responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
                        **openapi.errors(401, 403, 404, 429),
                        409: {"model": openapi.ErrorBody,
                              "description": "the job is not done"}})
    async def result(job_id: str, request: Request) -> Response:
        """The output, streamed: the input rows in order with the result columns, byte for
        byte what `screening bulk` writes. 409 `job_not_done` before the job is done, unless
        `?partial=true` (the rows of the chunks done so far)."""
        _, st, _ = owned(request, job_id)
        partial = (request.query_params.get("partial") or "").lower() in ("1", "true", "yes")
        stream = get_jobs().result(job_id, partial=partial)
        spec = orjson.loads((root / job_id / "job.json").read_bytes())
        fmt = spec["layout"].get("format", "csv")
        ext = "csv" if fmt == "csv" else "jsonl"
        return StreamingResponse(stream, media_type=_MEDIA.get(fmt, "application/octet-stream"),
                                 headers={"content-disposition":
                                          f'attachment; filename="{job_id}.{ext}"',
                                          "x-job-state": st.state})

    return api, runner
