"""Bulk screening over HTTP (SPEC §6, issue 5): the routes over ``screening.jobs.Jobs``.

======================================  ======  ==============================================
route                                   auth    answer
======================================  ======  ==============================================
POST /v1/screenings?scenario=S&…        key     202, the job's progress (``id``, ``state`` …)
GET  /v1/screenings/{job_id}            owner   the job's progress
GET  /v1/screenings/{job_id}/result     owner   the screened file, streamed (409 until done)
DELETE /v1/screenings/{job_id}          owner   204: the job, its output and upload deleted
======================================  ======  ==============================================

The upload is the raw request body (a CSV or JSON Lines file, as ``screening bulk`` reads
it), with the options as query parameters: ``scenario`` (required), ``column``, ``format``
(``csv`` | ``jsonl``; else the ``Content-Type`` ``text/csv`` / ``application/x-ndjson``,
else detected from the content), ``region``, ``consent``, ``as_of``. The body is streamed to
``<data>/jobs/.uploads/<id>.upload`` (limit ``SCREENING_MAX_UPLOAD``, 413 above), then
``Jobs.create`` inspects it — no identifier column, unknown scenario, bad ``as_of`` … are
refused (422) before any row is screened, and the upload is removed.

The job runs as the uploading account (tier, region, adopted measures); only that unit, or an
admin, may read it or delete it (403; 404 for an unknown id). A ``JobRunner`` thread, started
and stopped by the app's lifespan, does the pending jobs one after the other; at start it
resumes every job not done or failed, so jobs survive a restart (a job loses at most the chunk
in flight). With Redis (``SCREENING_REDIS``) the runner drives jobs instead of doing them: the
chunks go to a consumer group that every replica sharing the jobs folder works
(``screening.distribute``). Jobs done or failed more than ``SCREENING_JOB_DAYS`` ago are
deleted with their uploads.

A job decides on the live events applied when it was created, replayed into an overlay of its
own (``PrivateOverlays``): the served overlay keeps changing on the event loop thread.

Every row of a job is a query (SPEC §6): ``JobRecorder`` records each chunk's rows through the
service's recorder, as a batch request's items are — an audit record for each row (a row that
is no valid identifier too, with no decision), a feedback record for each row with hits —
before the chunk's output is written, so a chunk marked done has been recorded. Each row's
check id is ``<job id>:<chunk>:<row in the chunk>`` and its ``purpose`` names the job. A chunk
redone after a crash between the two is recorded again, under the same check ids.
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
from starlette.requests import ClientDisconnect

from indexer.snapshot import Snapshot

from . import openapi
from .accounts import Account
from .distribute import DOWN, ChunkQueue, ChunkWorker
from .errors import (
    BadRequest,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    ScreeningError,
)
from .jobs import Jobs, JobStatus, SnapshotUnavailable
from .live import replay
from .overlay import Overlay
from .screener import CHECKED, KIND_SPECIAL, TYPES, Batch, Screener
from .service import Service
from .settings import Settings
from .tabular import Chunk
from .wire import BatchRequest, refuse_unknown

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
        "updated_at": st.updated_at, "workers": st.workers,
    }
    if owner is not None:
        out["unit"] = owner
    return out


class JobRunner:
    """One background thread doing (or, with a chunk queue, driving) the unfinished jobs of
    ``jobs`` in creation order, and deleting old ones."""

    SWEEP_EVERY = 3600.0

    def __init__(self, jobs: Callable[[], Jobs], ready: Callable[[], bool], *,
                 chunk_bytes: int, keep_seconds: float,
                 queue: Callable[[Jobs], ChunkQueue] | None = None) -> None:
        self._jobs = jobs  # made on first use (``Jobs`` creates its folder)
        self.ready = ready  # a snapshot is loaded
        self.chunk_bytes = chunk_bytes  # the chunk size of new jobs
        self.keep_seconds = keep_seconds
        self._make_queue = queue
        self.queue: ChunkQueue | None = None
        self._worker: ChunkWorker | None = None
        self._swept_at = 0.0
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
        if self._make_queue is not None and self.queue is None:
            self.queue = self._make_queue(self.jobs)
            self._worker = ChunkWorker(self.queue, self.ready)
        if self._worker is not None:
            self._worker.start()
        self._thread = threading.Thread(target=self._loop, name="screening-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if self._worker is not None:
            self._worker.stop(timeout)
        if self.queue is not None:  # its Redis connections; a new start makes a new one
            self.queue.close()
            self.queue = self._worker = None

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
                if time.monotonic() - self._swept_at > self.SWEEP_EVERY:
                    self._swept_at = time.monotonic()
                    for job_id in self.jobs.sweep(self.keep_seconds):
                        log.info("jobs.deleted id=%s (older than %.0f s)", job_id,
                                 self.keep_seconds)
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
        """Run one job to its end (or to shutdown); False if another process holds it or it
        must wait (its snapshot or live events cannot be had now): the loop looks again in a
        second."""
        if self.queue is not None:
            try:
                return self._drive(self.queue, job_id)
            except DOWN as exc:  # no Redis: this replica does the job alone
                log.warning("jobs.redis_unavailable id=%s (running locally): %s", job_id, exc)

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
                return self._run_locked(job_id, on_chunk)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _drive(self, queue: ChunkQueue, job_id: str) -> bool:
        token = queue.lock(job_id)
        if token is None:
            return False  # another replica drives it
        try:
            if self.jobs.status(job_id).state in ("done", "failed"):
                return True
            state = queue.drive(job_id, token, self._stop.is_set)
            log.info("jobs.driven id=%s state=%s", job_id, state)
            return True
        except NotFound:
            return True  # deleted meanwhile
        except SnapshotUnavailable as exc:  # the loop tries again in a second
            self._set_state(job_id, "paused", exc.message)
            log.warning("jobs.waiting id=%s: %s", job_id, exc.message)
            return False
        except ScreeningError as exc:
            self._set_state(job_id, "failed", exc.message)
            log.warning("jobs.failed id=%s code=%s", job_id, exc.code)
            return True
        except OSError as exc:
            self._set_state(job_id, "failed", str(exc))
            log.warning("jobs.failed id=%s reason=%s", job_id, exc)
            return True
        finally:
            try:
                queue.unlock(job_id, token)
            except DOWN:
                pass  # expires by itself

    def _set_state(self, job_id: str, state: str, message: str) -> None:
        try:
            self.jobs.set_state(job_id, state, message)
        except OSError:  # the job was deleted meanwhile
            pass

    def _run_locked(self, job_id: str, on_chunk: Callable[[JobStatus], None]) -> bool:
        """False when the job must wait (see ``_run``)."""
        try:
            if self.jobs.status(job_id).state in ("done", "failed"):
                return True  # finished by another process meanwhile
            self.jobs.run(job_id, on_chunk=on_chunk)
        except _Stop:
            log.info("jobs.stopped id=%s (resumed at the next start)", job_id)
        except SnapshotUnavailable as exc:  # paused: the loop tries again in a second
            log.warning("jobs.waiting id=%s: %s", job_id, exc.message)
            return False
        except ScreeningError as exc:  # recorded as failed by Jobs.run
            log.warning("jobs.failed id=%s code=%s", job_id, exc.code)
        except OSError as exc:
            log.warning("jobs.failed id=%s reason=%s", job_id, exc)
        except Exception:
            self._given_up.add(job_id)
            log.exception("jobs.crashed id=%s", job_id)
        return True


def _option(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None


class PrivateOverlays:
    """The live events a job decides on, as an overlay of its own.

    A job is pinned to a snapshot version and to the number of live events applied to that
    snapshot when it was created (``Jobs.create`` records it): every chunk, in any replica,
    before or after a restart, decides on the same events, so the output never depends on
    which worker did a chunk or when. The served overlay is changed in place on the event
    loop thread, so a job never reads it: it replays the backbone's event log onto its
    snapshot, as the service does before a swap, until that many events have applied. The
    log is the same on every replica, so is the result. One overlay is cached.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._copy: tuple[int, int, Overlay | None] | None = None

    def applied(self, snap: Snapshot) -> int:
        """Live events applied to ``snap`` now (0 when it is not the served snapshot)."""
        loaded = self.service.holder.current
        if loaded is None or loaded.snapshot is not snap:
            return 0
        served = self.service.overlay(loaded)
        return len(served.applied) if served is not None else 0

    def of(self, snap: Snapshot, upto: int | None) -> Overlay | None:
        if upto is None:  # a job from before events were pinned: those applied now
            upto = self.applied(snap)
        if upto == 0:
            return None
        with self._lock:
            cached = self._copy
            if cached is not None and cached[:2] == (id(snap), upto):
                return cached[2]
            overlay = self._replay(snap, upto)
            self._copy = (id(snap), upto, overlay)
            return overlay

    def _replay(self, snap: Snapshot, upto: int) -> Overlay:
        live = self.service.live
        if live is None:
            raise SnapshotUnavailable("events_unavailable", "the job decides on live events "
                                      "and this process has no backbone to read them from")
        overlay = Overlay(snap)
        try:  # the events the service skips are skipped here too
            replay(live.backbone, overlay, upto=upto)
        except ScreeningError as exc:  # Unavailable: the backbone is away
            raise SnapshotUnavailable("events_unavailable", exc.message) from None
        if len(overlay.applied) < upto:
            raise SnapshotUnavailable("events_behind", f"the event log has {len(overlay.applied)}"
                                      f" of the job's {upto} live events for {snap.version}")
        return overlay


RECORD_ROWS = 1000  # rows a recorder call (one spool line) holds


class JobRecorder:
    """Feedback and audit of a job's rows (module doc), for ``Jobs(record=...)``."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def __call__(self, spec: dict[str, Any], index: int, chunk: Chunk, batch: Batch,
                 screener: Screener) -> None:
        record_batch = getattr(self.service.recorder, "record_batch", None)
        if record_batch is None:
            return
        caller = spec["caller"]
        account = Account(unit=caller["unit"], name=caller["unit"], tier=caller["tier"],
                          region=caller["region"])
        request = BatchRequest(spec["scenario"], spec["region"], spec["as_of"], [],
                               purpose=f"bulk screening {spec['id']}")
        consent = spec["consent"]
        unlisted = [screener.unlisted[t].response for t in TYPES]  # by KIND_ORG, KIND_PERSON
        prefix = f"{spec['id']}:{index}:"
        kinds, ids, special = batch.kinds.tolist(), batch.ids, batch.special
        items: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for i, raw in enumerate(chunk.ids):
            kind = kinds[i]
            if kind == KIND_SPECIAL:
                row = special[i]
                # a row that failed: no check id, audited with no decision
                result = {**row[1], "check_id": prefix + str(i)} if row[0] == CHECKED else \
                    {"error": {"code": row[1], "message": row[2]}}
            else:  # the unlisted answer, for this row's subject
                base = unlisted[kind]
                result = {**base, "check_id": prefix + str(i),
                          "subject": {**base["subject"], "id": ids[i]}}
            items.append({"subject": raw if isinstance(raw, str) else None,
                          "consent": consent})
            results.append(result)
            if len(items) >= RECORD_ROWS:
                record_batch(account, request, items, results)
                items, results = [], []
        if items:
            record_batch(account, request, items, results)


def router(service: Service, settings: Settings) -> tuple[APIRouter, JobRunner]:
    """The routes, and the runner the lifespan starts (``runner.start()``/``stop()``)."""
    holder = service.holder
    root = settings.jobs_root
    max_upload = settings.max_upload
    events = PrivateOverlays(service)

    def snapshot() -> Snapshot:
        return holder.require().snapshot

    made: list[Jobs] = []

    def get_jobs() -> Jobs:
        if not made:
            made.append(Jobs(root, snapshot, overlay=events.of, applied=events.applied,
                             record=JobRecorder(service)))
        return made[0]

    queue = None
    if settings.redis:
        redis_url = settings.redis

        def queue(jobs: Jobs) -> ChunkQueue:
            return ChunkQueue(redis_url, jobs, claim_idle=settings.job_claim_idle)

    runner = JobRunner(get_jobs, lambda: holder.current is not None,
                       chunk_bytes=settings.job_chunk, keep_seconds=settings.job_days * 86400,
                       queue=queue)
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
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > max_upload:
                        raise PayloadTooLarge("upload_too_large",
                                              f"the upload is over {max_upload} bytes")
                    f.write(chunk)
            except ClientDisconnect:  # (the answer goes nowhere; a 400, not a 500, is logged)
                raise BadRequest("disconnected", "the client went away mid-upload") from None
        return size

    @api.post(ROUTE, summary="Start a bulk screening job", status_code=202,
              response_model=None,
              openapi_extra={**openapi.UPLOAD_BODY, **openapi.query(
                  ("scenario", "the approval point's scenario", True),
                  ("column", "the identifier column (default: detected)"),
                  ("format", "`csv` or `jsonl` (default: from Content-Type, else detected)"),
                  ("region", "the check region"),
                  ("consent", "a consent reference for authorized entries"),
                  ("as_of", "decide every row as of this time (default: the upload)"))},
              responses={202: {"description": "the job's progress; `Location` names it"},
                         **openapi.errors(
                             400, 401, 403, 413, 422, 429, 503,
                             e400="`bad_content_length`, `disconnected`",
                             e403="a region not covered by the account (`region_forbidden`)",
                             e413="over `SCREENING_MAX_UPLOAD` (`upload_too_large`)",
                             e422="`missing_file`, `empty_file`, `no_identifier_column`, "
                                  "`unknown_scenario`, `bad_as_of`, `bad_format`, "
                                  "`unknown_field` …")})
    async def create(request: Request) -> Response:
        """Upload a CSV or JSON Lines file as the raw body; options as query parameters
        (`scenario` required; `column`, `format`, `region`, `consent`, `as_of`). The job
        screens every row as the uploading account, as `screening bulk` would."""
        account = account_of(request)
        refuse_unknown(sorted(request.query_params), _OPTIONS, "parameter")
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
        except ScreeningError as exc:  # its message names the upload, not the server's path
            path.unlink(missing_ok=True)
            exc.message = exc.message.replace(str(path), "the upload").replace(
                "--column", "?column=")  # the command line's words for the query parameter
            exc.args = (exc.message,)
            raise
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
        refuse_unknown(request.query_params, (), "parameter")
        return Response(orjson.dumps(progress(st, owner)), media_type="application/json")

    @api.get(ROUTE + "/{job_id}/result", summary="The screened file of a job",
             response_model=None,
             openapi_extra=openapi.query(
                 ("partial", "`true`: the rows of the chunks done so far, before the end")),
             responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
                        **openapi.errors(401, 403, 404, 429),
                        409: {"model": openapi.ErrorBody,
                              "description": "the job is not done"}})
    async def result(job_id: str, request: Request) -> Response:
        """The output, streamed: the input rows in order with the result columns, byte for
        byte what `screening bulk` writes. 409 `job_not_done` before the job is done, unless
        `?partial=true` (the rows of the chunks done so far)."""
        _, st, _ = owned(request, job_id)
        refuse_unknown(request.query_params, ("partial",), "parameter")
        partial = (request.query_params.get("partial") or "").lower() in ("1", "true", "yes")
        stream = get_jobs().result(job_id, partial=partial)
        spec = orjson.loads((root / job_id / "job.json").read_bytes())
        fmt = spec["layout"].get("format", "csv")
        ext = "csv" if fmt == "csv" else "jsonl"
        return StreamingResponse(stream, media_type=_MEDIA.get(fmt, "application/octet-stream"),
                                 headers={"content-disposition":
                                          f'attachment; filename="{job_id}.{ext}"',
                                          "x-job-state": st.state})

    @api.delete(ROUTE + "/{job_id}", summary="Delete a bulk screening job",
                status_code=204, response_model=None,
                responses={204: {"description": "the job, its output and its upload are gone"},
                           **openapi.errors(401, 403, 404, 429)})
    async def delete(job_id: str, request: Request) -> Response:
        """Delete the job, its output and its upload now (finished jobs are deleted anyway
        `SCREENING_JOB_DAYS` after they end). A job deleted while running stops at its next
        chunk."""
        _, st, owner = owned(request, job_id)
        refuse_unknown(request.query_params, (), "parameter")
        await asyncio.to_thread(get_jobs().delete, job_id)
        log.info("jobs.deleted id=%s unit=%s state=%s", job_id, owner, st.state)
        return Response(status_code=204)

    return api, runner
