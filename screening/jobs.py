"""Bulk screening jobs: durable, resumable, chunked (SPEC §6 "as a job with progress").

A job screens one input file for one scenario and caller at one fixed ``as_of`` against one
snapshot version. Its folder under the jobs root holds::

    <id>/job.json          what to do: input (path, size, mtime), layout, scenario, caller,
                           region, consent, as_of, snapshot version and folder, the chunk plan
    <id>/parts/000007.out  the rendered output of chunk 7 (the input's byte range 7)
    <id>/parts/000007.json its counts and timing: written last, so it marks the chunk done
    <id>/state.json        the last run's state: running, paused, failed (+ message)

The plan is made once, when the job is created (``tabular.plan``), so every chunk is an
independent unit: ``run_chunk(job, i)`` reads, screens and writes chunk ``i`` and nothing
else, idempotently — two workers doing the same chunk at once both write the same bytes
under their own temporary names and rename them into place. ``run`` does the pending chunks
in order in this process; ``screening.distribute`` hands chunk numbers to every replica
through a Redis consumer group instead (the jobs folder on shared storage), each worker
calling ``run_chunk``. A restart loses at most the chunk in flight: done chunks have their
marker, and half-written temporary files are swept once they are old. The output is the CSV
header then the parts in order, byte for byte what an uninterrupted run (or ``screening
bulk``) writes. The engine knows nothing of HTTP or Redis: an HTTP layer maps
``create``/``status``/``result`` to routes, and ``ScreeningError`` subclasses to statuses.

An input inside the jobs folder (an HTTP upload) is recorded relative to it, so replicas that
mount the shared folder at different paths find it.

``record`` (``screenings.JobRecorder`` over HTTP) is given each chunk's rows and results
before the chunk's output is written: every row is a query, audited and fed back.

The snapshot is pinned: a job resumed after the service rolled to a newer snapshot reopens
its own version if that folder is still there, and otherwise starts over on the new one
(so a job's rows are never decided on two versions). A worker that only helps with chunks
(``run_chunk(..., reset=False)``) never starts a job over: when it cannot open the job's
version it raises ``SnapshotUnavailable`` and leaves the chunk to a worker that can.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from indexer.snapshot import CorruptSnapshot, Snapshot

from . import tabular
from .bulk import CHUNK_BYTES, RESERVED, Counts, Renderer, screen_chunk
from .decision import Caller
from .errors import Invalid, NotFound, ScreeningError
from .gcpause import paused_gc
from .overlay import Overlay
from .screener import Batch, Screener
from .tabular import Layout


class JobNotDone(ScreeningError):
    status = 409


class SnapshotUnavailable(ScreeningError):
    """This process cannot open the snapshot version a job is pinned to."""

    status = 503


STALE_TMP_SECONDS = 600.0  # a temporary file older than this is a crashed writer's


@dataclass(frozen=True, slots=True)
class JobStatus:
    id: str
    state: str  # pending | running | paused | failed | done
    message: str | None
    chunks_total: int
    chunks_done: int
    rows_done: int
    bytes_total: int
    bytes_done: int
    seconds: float  # screening time spent on the chunks done
    rate: float  # rows per second of screening time
    eta_seconds: float | None
    counts: dict[str, Any]
    workers: dict[str, int]  # chunks done by each worker (process) that did some
    updated_at: float | None  # last chunk done or state change (a stale "running" = a crash)
    scenario: str
    snapshot: str
    as_of: str

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def _tmp(path: Path) -> Path:
    """A temporary name of this writer alone (workers may write the same chunk at once)."""
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")


def _write_json(path: Path, data: Any) -> None:
    tmp = _tmp(path)
    tmp.write_bytes(orjson.dumps(data))
    os.replace(tmp, path)


def _write_durable(path: Path, data: bytes) -> None:
    tmp = _tmp(path)
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Jobs:
    """The jobs under ``root``. ``snapshot()`` gives the snapshot being served now. With live
    events: ``applied(snap)`` counts the events applied to ``snap`` now (recorded in a new
    job), and ``overlay(snap, n)`` gives an overlay of ``snap`` with the first ``n`` of them
    (``None``: no events), private to the caller."""

    def __init__(self, root: Path, snapshot: Callable[[], Snapshot], *,
                 overlay: Callable[[Snapshot, int | None], Overlay | None] | None = None,
                 applied: Callable[[Snapshot], int] | None = None,
                 record: Callable[[dict[str, Any], int, tabular.Chunk, Batch, Screener], None]
                 | None = None) -> None:
        """``record(spec, index, chunk, batch, screener)``: given each chunk's rows and
        results before its output is written (feedback and audit; ``screenings.JobRecorder``)."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._snapshot = snapshot
        self._overlay = overlay
        self._applied = applied
        self._record = record
        self._pinned: dict[str, Snapshot] = {}
        self._renderers: dict[str, tuple[tuple[Any, ...], Renderer]] = {}

    # -- creating ------------------------------------------------------------------------
    def create(self, input: Path, *, scenario: str, caller: Caller, column: str | None = None,
               format: str | None = None, region: str | None = None,
               consent: str | None = None, as_of: str | None = None,
               chunk_bytes: int = CHUNK_BYTES, job_id: str | None = None) -> JobStatus:
        """Inspect the input, fix ``as_of`` and the snapshot, plan the chunks; no row is
        screened yet. Raises ``Invalid`` (no identifier column, unknown scenario …)."""
        input = Path(input).resolve()
        layout = tabular.inspect(input, format=format, column=column, reserved=RESERVED)
        snap = self._snapshot()
        events = self._applied(snap) if self._applied is not None else 0
        screener = self._screener(snap, events, scenario=scenario, caller=caller,
                                  region=region, as_of=as_of, consent=consent)
        job_id = job_id or time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
        if not job_id.replace("-", "").replace("_", "").isalnum():
            raise Invalid("bad_job_id", f"bad job id {job_id!r}", field="job")
        size, mtime = tabular.file_identity(input)
        try:  # inside the (possibly shared) jobs folder: relative to it
            recorded = str(input.relative_to(self.root.resolve()))
        except ValueError:
            recorded = str(input)
        spec = {"id": job_id, "input": recorded, "size": size, "mtime_ns": mtime,
                "layout": layout.to_json(), "scenario": scenario,
                "caller": {"unit": caller.unit, "tier": caller.tier, "region": caller.region,
                           "adopted": sorted(caller.adopted)},
                "region": region, "consent": consent, "as_of": screener.as_of,
                "snapshot": snap.version, "snapshot_folder": str(snap.folder),
                "events": events,
                "chunk_bytes": chunk_bytes, "created_at": time.time(),
                "chunks": [list(r) for r in tabular.plan(input, layout, chunk_bytes)]}
        folder = self.root / job_id
        tmp = self.root / f".{job_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "parts").mkdir(parents=True)
        _write_json(tmp / "job.json", spec)
        try:
            os.rename(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise Invalid("job_exists", f"job {job_id!r} exists", field="job") from None
        return self.status(job_id)

    # -- running -------------------------------------------------------------------------
    def run(self, job_id: str, *, max_chunks: int | None = None,
            on_chunk: Callable[[JobStatus], None] | None = None) -> JobStatus:
        """Do the pending chunks in order; stop after ``max_chunks`` (state ``paused``)."""
        spec = self._spec(job_id)
        self.set_state(job_id, "running")
        try:
            renderer = self._renderer(spec)  # pins ``spec`` (a job starting over: in place)
            for done, index in enumerate(self.pending(job_id)):
                if max_chunks is not None and done >= max_chunks:
                    self.set_state(job_id, "paused")
                    return self.status(job_id)
                self._chunk(spec, renderer, index)
                if on_chunk is not None:
                    on_chunk(self.status(job_id))
        except SnapshotUnavailable as exc:  # passing: tried again later
            self.set_state(job_id, "paused", exc.message)
            raise
        except (ScreeningError, OSError) as exc:
            message = exc.message if isinstance(exc, ScreeningError) else str(exc)
            self.set_state(job_id, "failed", message)
            raise
        self.set_state(job_id, "done")
        return self.status(job_id)

    def run_chunk(self, job_id: str, index: int, *, worker: str | None = None,
                  reset: bool = True) -> Counts:
        """Screen chunk ``index`` (idempotent: a done chunk is not redone). ``worker`` names
        the process in the chunk's marker; ``reset=False``: raise ``SnapshotUnavailable``
        rather than start the job over on another snapshot version."""
        spec = self._spec(job_id)
        if not 0 <= index < len(spec["chunks"]):
            raise NotFound("unknown_chunk", f"job {job_id} has no chunk {index}", field="chunk")
        marker = self._part(job_id, index, "json")
        if not marker.exists():
            self._chunk(spec, self._cached_renderer(spec, reset), index, worker)
        return Counts.from_json(orjson.loads(marker.read_bytes())["counts"])

    def prepare(self, job_id: str) -> None:
        """Check the input and pin the snapshot (starting over if its version is gone), as
        ``run`` does before its first chunk: the driver of a distributed job calls this."""
        self._renderer(self._spec(job_id))

    def pending(self, job_id: str) -> list[int]:
        spec = self._spec(job_id)
        parts = self.root / job_id / "parts"
        old = time.time() - STALE_TMP_SECONDS
        for stale in parts.glob("*.tmp"):
            try:
                if stale.stat().st_mtime < old:
                    stale.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
        return [i for i in range(len(spec["chunks"]))
                if not (parts / f"{i:06d}.json").exists()]

    def set_state(self, job_id: str, state: str, message: str | None = None) -> None:
        """Record the job's state (``running``, ``paused``, ``failed`` with a message)."""
        record: dict[str, Any] = {"state": state, "at": time.time()}
        if message is not None:
            record["message"] = message
        _write_json(self.root / job_id / "state.json", record)

    def _chunk(self, spec: dict[str, Any], renderer: Renderer, index: int,
               worker: str | None = None) -> None:
        start, end = spec["chunks"][index]
        began = time.perf_counter()
        record = self._record

        def on_rows(chunk: tabular.Chunk, batch: Batch) -> None:
            if record is not None:
                record(spec, index, chunk, batch, renderer.screener)

        with paused_gc():
            body, counts = screen_chunk(self._input(spec), renderer, start, end,
                                        on_rows=on_rows)
        job_id = spec["id"]
        _write_durable(self._part(job_id, index, "out"), body)
        _write_durable(self._part(job_id, index, "json"), orjson.dumps(
            {"counts": counts.to_json(), "bytes": end - start,
             "seconds": time.perf_counter() - began, "at": time.time(),
             "worker": worker}))

    def _input(self, spec: dict[str, Any]) -> Path:
        return self.root / spec["input"]  # an absolute path stays as it is

    def _cached_renderer(self, spec: dict[str, Any], reset: bool) -> Renderer:
        """One renderer per job while the snapshot and its overlay stay the same (a worker
        doing many chunks of one job builds its screener once)."""
        key = (spec["snapshot"], spec.get("events"), spec["as_of"], spec["size"],
               spec["mtime_ns"])
        cached = self._renderers.get(spec["id"])
        if cached is not None and cached[0] == key:
            return cached[1]
        renderer = self._renderer(spec, reset=reset)
        self._renderers = {spec["id"]: (key, renderer)}  # the last job only: bounded
        return renderer

    def _part(self, job_id: str, index: int, ext: str) -> Path:
        return self.root / job_id / "parts" / f"{index:06d}.{ext}"

    def _renderer(self, spec: dict[str, Any], *, reset: bool = True) -> Renderer:
        size, mtime = tabular.file_identity(self._input(spec))
        if (size, mtime) != (spec["size"], spec["mtime_ns"]):
            raise Invalid("input_changed", f"the input {spec['input']} changed since job "
                          f"{spec['id']} was created", field="file")
        snap = self._pinned_snapshot(spec, reset=reset)
        caller = Caller(unit=spec["caller"]["unit"], tier=spec["caller"]["tier"],
                        region=spec["caller"]["region"],
                        adopted=frozenset(spec["caller"]["adopted"]))
        screener = self._screener(snap, spec.get("events"), scenario=spec["scenario"],
                                  caller=caller,
                                  region=spec["region"], as_of=spec["as_of"],
                                  consent=spec["consent"])
        return Renderer(Layout.from_json(spec["layout"]), screener)

    def _screener(self, snap: Snapshot, events: int | None, **options: Any) -> Screener:
        """``events``: how many live events (None: all applied now, as jobs made before
        events were pinned)."""
        overlay = self._overlay(snap, events) if self._overlay is not None else None
        return Screener(snap, overlay=overlay, **options)

    def _pinned_snapshot(self, spec: dict[str, Any], *, reset: bool = True) -> Snapshot:
        current = self._snapshot()
        version = spec["snapshot"]
        if current.version == version:
            return current
        if version in self._pinned:
            return self._pinned[version]
        try:
            snap = self._pinned[version] = Snapshot.open(spec["snapshot_folder"])
            if snap.version == version:
                return snap
        except (CorruptSnapshot, OSError):
            pass
        if not reset:
            raise SnapshotUnavailable("snapshot_unavailable", f"job {spec['id']} is pinned to "
                                      f"snapshot {version}, which this process cannot open")
        # The job's snapshot is gone: start over on the current one.
        folder = self.root / spec["id"]
        shutil.rmtree(folder / "parts")
        (folder / "parts").mkdir()
        spec["snapshot"], spec["snapshot_folder"] = current.version, str(current.folder)
        spec["events"] = self._applied(current) if self._applied is not None else 0
        _write_json(folder / "job.json", spec)
        return current

    # -- reading -------------------------------------------------------------------------
    def _spec(self, job_id: str) -> dict[str, Any]:
        path = self.root / job_id / "job.json"
        if "/" in job_id or job_id.startswith(".") or not path.is_file():
            raise NotFound("unknown_job", f"no job {job_id!r}", field="job")
        spec: dict[str, Any] = orjson.loads(path.read_bytes())
        return spec

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if not p.name.startswith(".") and (p / "job.json").is_file())

    def status(self, job_id: str) -> JobStatus:
        spec = self._spec(job_id)
        folder = self.root / job_id
        total = Counts()
        seconds = 0.0
        bytes_done = 0
        updated: float | None = None
        workers: dict[str, int] = {}
        markers = sorted((folder / "parts").glob("*.json"))
        for marker in markers:
            part = orjson.loads(marker.read_bytes())
            total.add(Counts.from_json(part["counts"]))
            name = part.get("worker") or "local"
            workers[name] = workers.get(name, 0) + 1
            seconds += part["seconds"]
            bytes_done += part["bytes"]
            updated = max(updated or 0.0, part["at"])
        chunks = len(spec["chunks"])
        state_file = folder / "state.json"
        state = orjson.loads(state_file.read_bytes()) if state_file.exists() else {}
        name = "done" if len(markers) == chunks else state.get("state", "pending")
        if name == "done" and len(markers) < chunks:
            name = "paused"
        layout = spec["layout"]
        bytes_total = layout["size"] - layout["data_start"]
        rate = total.rows / seconds if seconds else 0.0
        speed = bytes_done / seconds if seconds else 0.0
        eta = (bytes_total - bytes_done) / speed if speed else None
        return JobStatus(id=job_id, state=name, message=state.get("message"),
                         chunks_total=chunks, chunks_done=len(markers), rows_done=total.rows,
                         bytes_total=bytes_total, bytes_done=bytes_done, seconds=seconds,
                         rate=rate, eta_seconds=eta if name != "done" else 0.0,
                         counts=total.to_json(), workers=workers,
                         updated_at=max(updated or 0.0, state.get("at", 0.0)) or None,
                         scenario=spec["scenario"],
                         snapshot=spec["snapshot"], as_of=spec["as_of"])

    def result(self, job_id: str, *, partial: bool = False,
               block_size: int = 1 << 20) -> Iterator[bytes]:
        """The output file as a stream of byte blocks: the header, then the parts in order.
        Raises ``JobNotDone`` unless the job is done or ``partial`` (the done prefix)."""
        spec = self._spec(job_id)
        chunks = len(spec["chunks"])
        parts = self.root / job_id / "parts"
        done = 0
        while done < chunks and (parts / f"{done:06d}.json").exists():
            done += 1
        if done < chunks and not partial:
            raise JobNotDone("job_not_done", f"job {job_id} has {chunks - done} chunks to go")
        return self._stream(spec, done, block_size)

    def _stream(self, spec: dict[str, Any], done: int, block_size: int) -> Iterator[bytes]:
        layout = Layout.from_json(spec["layout"])
        header = Renderer.header_of(layout)
        if header:
            yield header
        for i in range(done):
            with self._part(spec["id"], i, "out").open("rb") as f:
                while block := f.read(block_size):
                    yield block

    def delete(self, job_id: str) -> None:
        """Remove the job's folder, and its input when it is an upload in the jobs folder."""
        spec = self._spec(job_id)
        self._renderers.pop(job_id, None)
        folder = self.root / job_id
        gone = self.root / f".{job_id}.deleted"
        os.rename(folder, gone)  # atomic: the job is gone for readers at once
        if not Path(spec["input"]).is_absolute():
            self._input(spec).unlink(missing_ok=True)
        shutil.rmtree(gone, ignore_errors=True)

    def sweep(self, keep_seconds: float, now: float | None = None) -> list[str]:
        """Delete the jobs done or failed more than ``keep_seconds`` ago, and uploads left
        behind by no job for as long. Returns the ids deleted."""
        now = time.time() if now is None else now
        deleted = []
        for job_id in self.ids():
            try:
                st = self.status(job_id)
                if st.state in ("done", "failed") and (st.updated_at or 0.0) < now - keep_seconds:
                    self.delete(job_id)
                    deleted.append(job_id)
            except (ScreeningError, OSError, ValueError):
                continue  # deleted meanwhile, or unreadable: left to an operator
        uploads = self.root / ".uploads"
        if uploads.is_dir():
            for upload in uploads.glob("*.upload"):
                try:
                    if (not (self.root / upload.stem).exists()
                            and upload.stat().st_mtime < now - keep_seconds):
                        upload.unlink(missing_ok=True)
                except OSError:
                    continue
        for leftover in self.root.glob(".*.deleted"):  # a delete cut short
            shutil.rmtree(leftover, ignore_errors=True)
        return deleted
