"""One bulk job's chunks spread over every replica: a Redis consumer group (issue 5).

Replicas that share a Redis *and* a jobs folder (a shared volume: NFS, a ReadWriteMany
volume, one host's disk under ``--workers N``) share one stream of chunk numbers::

    sb:jobs:<volume>:chunks          stream; fields ``j`` (job id), ``c`` (chunk number)
        group "workers"              every serving process is a consumer (host-pid-token)
    sb:jobs:<volume>:driver:<job>    the replica driving a job (SET NX EX, renewed)

``<volume>`` is a token written once into ``<jobs>/.volume``: replicas that do not share the
folder get different streams, so no replica is ever handed a chunk whose job it cannot see.

Driving a job (``ChunkQueue.drive``, by whichever replica's runner takes the driver lock):
pin the snapshot, publish the pending chunk numbers, then wait until every chunk has its
marker and mark the job done. Working (``ChunkQueue.work``, a thread in every replica): read
one message with ``XREADGROUP``, call ``Jobs.run_chunk`` (idempotent), ``XACK``. The unit of
failure is the chunk:

* a worker killed mid-chunk leaves its message pending; any worker claims it with
  ``XAUTOCLAIM`` once it has been idle ``claim_idle`` seconds and does it again;
* a worker that cannot open the job's snapshot version leaves the message to the others;
* a job whose chunks make no progress for ``claim_idle`` (or Redis unreachable) is finished by
  its driver alone, chunk by chunk, as the embedded runner would;
* a driver killed mid-job drops its lock within ``DRIVER_TTL`` seconds; another replica's
  runner takes the job over and publishes what is still pending.

Chunks done twice are written twice with the same bytes (``jobs.run_chunk``), so none of the
above can change a job's output: it is byte for byte what one process writes.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis as redis_py

from .errors import NotFound, ScreeningError
from .jobs import Jobs, SnapshotUnavailable

log = logging.getLogger(__name__)

GROUP = "workers"
DRIVER_TTL = 15  # seconds a driver's lock outlives its last renewal
DOWN = (redis_py.ConnectionError, redis_py.TimeoutError)
MAXLEN = 1_000_000  # messages kept in the stream (acked ones are deleted at once)


def volume_id(root: Path) -> str:
    """The jobs folder's token, created by the first process to look (``O_EXCL``)."""
    path = Path(root) / ".volume"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        for _ in range(50):  # written by another process just now
            token = path.read_text().strip()
            if token:
                return token
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty") from None
    token = secrets.token_hex(8)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class ChunkQueue:
    """The stream of chunk numbers of the jobs under ``jobs.root``."""

    def __init__(self, url: str, jobs: Jobs, *, prefix: str = "sb:", claim_idle: float = 60.0,
                 consumer: str | None = None) -> None:
        self.jobs = jobs
        self.claim_idle = claim_idle
        self.consumer = consumer or consumer_name()
        self.base = f"{prefix}jobs:{volume_id(jobs.root)}:"
        self.stream = self.base + "chunks"
        # socket timeout above the longest BLOCK, so a blocked read is not cut as a timeout
        self.redis = redis_py.Redis.from_url(url, socket_timeout=5.0,
                                             socket_connect_timeout=2.0)
        self._group_ready = False

    # -- the stream ----------------------------------------------------------------------
    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis_py.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def publish(self, job_id: str, chunks: list[int]) -> None:
        self._ensure_group()
        pipe = self.redis.pipeline(transaction=False)
        for index in chunks:
            pipe.xadd(self.stream, {"j": job_id, "c": str(index)}, maxlen=MAXLEN,
                      approximate=True)
        pipe.execute()

    def take(self, block: float = 1.0) -> list[tuple[bytes, str, int]]:
        """One message: a claimed one whose worker went quiet, else a new one (blocking up
        to ``block`` seconds). Each is ``(message id, job id, chunk)``."""
        self._ensure_group()
        claimed = self.redis.xautoclaim(self.stream, GROUP, self.consumer,
                                        min_idle_time=int(self.claim_idle * 1000),
                                        start_id="0-0", count=1)
        messages: list[tuple[bytes, dict[bytes, bytes]]] = [m for m in claimed[1] if m and m[1]]
        if not messages:
            got: Any = self.redis.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=1,
                                             block=max(1, int(block * 1000)))
            messages = [m for _, items in got or [] for m in items if m[1]]
        out = []
        for message_id, fields in messages:
            try:
                out.append((message_id, fields[b"j"].decode(), int(fields[b"c"])))
            except (KeyError, ValueError, UnicodeDecodeError):
                log.warning("jobs.bad_message id=%r fields=%r", message_id, fields)
                self.ack(message_id)
        return out

    def ack(self, message_id: bytes) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.stream, GROUP, message_id)
        pipe.xdel(self.stream, message_id)
        pipe.execute()

    # -- working -------------------------------------------------------------------------
    def work_one(self, block: float = 1.0) -> bool:
        """Take and do at most one chunk; True if one was done."""
        did = False
        for message_id, job_id, index in self.take(block):
            try:
                self.jobs.run_chunk(job_id, index, worker=self.consumer, reset=False)
            except NotFound:
                self.ack(message_id)  # the job was deleted: nothing to do
                continue
            except SnapshotUnavailable as exc:
                log.info("jobs.chunk_left id=%s chunk=%d: %s", job_id, index, exc.message)
                continue  # not acked: claimed by a worker that has the version
            except ScreeningError as exc:  # the input changed, …: the job cannot finish
                log.warning("jobs.chunk_failed id=%s chunk=%d code=%s", job_id, index, exc.code)
                self.jobs.set_state(job_id, "failed", exc.message)
                self.ack(message_id)
                continue
            except OSError as exc:  # not acked: tried again once claimed
                log.warning("jobs.chunk_failed id=%s chunk=%d reason=%s", job_id, index, exc)
                continue
            self.ack(message_id)
            did = True
        return did

    # -- driving -------------------------------------------------------------------------
    def lock(self, job_id: str) -> str | None:
        """The driver lock of ``job_id``: a token if taken, None if another replica has it."""
        token = f"{self.consumer}:{secrets.token_hex(4)}"
        if self.redis.set(self.base + "driver:" + job_id, token, nx=True, ex=DRIVER_TTL):
            return token
        return None

    def _renew(self, job_id: str, token: str) -> bool:
        key = self.base + "driver:" + job_id
        # only while still ours (a driver that stalled past the TTL must notice)
        renewed = self.redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('EXPIRE', KEYS[1], ARGV[2]) else return 0 end",
            1, key, token, DRIVER_TTL)
        return bool(renewed)

    def unlock(self, job_id: str, token: str) -> None:
        self.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                        "return redis.call('DEL', KEYS[1]) else return 0 end",
                        1, self.base + "driver:" + job_id, token)

    def drive(self, job_id: str, token: str, stop: Callable[[], bool],
              poll: float = 0.2) -> str:
        """Publish ``job_id``'s pending chunks and see it to its end; returns the final
        state (``done``, ``failed``, or ``running`` when stopped or the lock was lost)."""
        jobs = self.jobs
        jobs.prepare(job_id)  # may start the job over on the current snapshot
        jobs.set_state(job_id, "running")
        published = True
        try:
            self.publish(job_id, jobs.pending(job_id))
        except DOWN as exc:
            log.warning("jobs.publish_failed id=%s (driving alone): %s", job_id, exc)
            published = False
        done = -1
        progress_at = time.monotonic()
        renewed_at = time.monotonic()
        while not stop():
            st = jobs.status(job_id)  # one read of the markers a poll
            if st.state == "failed":
                return "failed"
            if st.chunks_done == st.chunks_total:
                jobs.set_state(job_id, "done")
                return "done"
            now = time.monotonic()
            if st.chunks_done != done:
                done, progress_at = st.chunks_done, now
            if now - renewed_at > DRIVER_TTL / 3:
                try:
                    if not self._renew(job_id, token):
                        log.warning("jobs.driver_lost id=%s", job_id)
                        return "running"
                    renewed_at = now
                except DOWN:
                    published = False
            if not published or now - progress_at > self.claim_idle:
                # nobody is making progress (or Redis is away): do the next chunk here
                rest = jobs.pending(job_id)
                if rest:
                    jobs.run_chunk(job_id, rest[0], worker=self.consumer)
                progress_at = time.monotonic()
                continue
            time.sleep(poll)
        return "running"

    def close(self) -> None:
        self.redis.close()


class ChunkWorker:
    """The thread of one process that works the chunk stream until stopped."""

    def __init__(self, queue: ChunkQueue, ready: Callable[[], bool]) -> None:
        self.queue = queue
        self.ready = ready
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="screening-chunks",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            if not self.ready():
                self._stop.wait(0.5)
                continue
            try:
                self.queue.work_one(block=1.0)
                backoff = 0.5
            except DOWN as exc:
                log.warning("jobs.worker_waiting redis: %s", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:  # never let the worker die: log and go on
                log.exception("jobs.worker_failed")
                self._stop.wait(backoff)

