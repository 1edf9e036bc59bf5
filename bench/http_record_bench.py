"""HTTP-level cost of feedback recording (issue 4): ``POST /v1/check`` with every check a hit,
recording on versus recording off, on one uvicorn worker.

    python -m bench.http_record_bench [--entries 20000] [--duration 8] [--rounds 3]
        [--connections 64] [--modes off,embedded,thread,redis,embedded+away] [--pairs N]
        [--work DIR] [--out FILE]

Issue 4's figure: "Feedback recording costs ≤ 15% of single-check throughput with every check
a hit", i.e. req/s with recording ≥ 0.85 × req/s without. In one run, on loopback only, every
wrk run bounded by ``-d``:

1. generates a source (``bench.generate``, seed 1), builds one snapshot, writes the bench
   account (``agency``, region 350100) and picks up to 200 listed organisations whose
   ``government_procurement`` check has hits with measures: **every request is a hit**, so
   every request writes a feedback record and an audit record (bodies cycle through them);
2. serves the same snapshot as one uvicorn worker (``screening serve``'s app and options,
   fast path on) pinned to CPU 0, once per mode, each with its own fresh data folder:

   * ``off`` — recording off: ``create_app(settings, recorder=NullRecorder())``. This is a
     bench-side wiring (there is no setting or option for it): the backbone is opened by the
     lifespan as usual (live events tailed, rate limits), only the per-check
     ``bb.record(...)`` is replaced by nothing;
   * ``embedded`` — what ``screening serve`` runs by default: embedded backbone, the serving
     process appends to its spool, a shipper process (its child, so pinned to CPU 0 too)
     applies the batches;
   * ``redis`` — the same with ``--redis`` on a redis-server (AOF on) pinned to CPU 1 with wrk;
   * ``thread`` — embedded, shipped by a flusher thread inside the serving process (the design
     before the shipper process; ``create_app(settings, backbone=open_backbone(settings))``);
   * ``build`` (diagnostic) — the records are built for every check but not written;
   * ``append`` (diagnostic) — built and appended to the spool (shipper mode's request path),
     with no cutter thread and no shipper: nothing is shipped;
   * ``<mode>+away`` (diagnostic) — the shipper process re-pinned to CPU 1 (with wrk): what the
     serving process's core alone pays; sequential rounds only (side by side it would take
     CPU from the other server's wrk);

3. **sequential rounds**: each mode after the other (interleaved, ``--rounds`` times), wrk
   ``-t1`` pinned to CPU 1 after a 2 s warm-up; req/s and CPU time per request of the server
   process and its children (the shipper), and of the server process alone (``/proc``),
   during the run; and *to completion*: the CPU of the server and its shipper from ready to
   exit (``wait4``), shipping of every answered check's records included, per answered check
   (the niced shipper lags on the saturated core: after wrk stops, the bench waits until the
   spool is empty before it stops the server, so every record is shipped by then);
4. **side by side**: ``off`` and one recording mode served at the same time on CPU 0, each in
   its own session (so the kernel's autogroups split CPU 0 evenly between the two process
   trees, whatever threads or children each has) and each driven by its own wrk on CPU 1:
   the ratio of their req/s is the ratio of their costs under the same background load;
5. after each server stops (SIGTERM), counts the audit records its backbone holds against the
   requests wrk saw answered (every answered check must have been
   recorded; a few more are recorded than wrk counts: requests in flight when wrk stops).

Needs ``wrk`` and ``taskset``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.http_bench import (LOAD_CPU, SERVER_CPU, _free_port, _median, _wait_ready, emit,
                              lua_script, prepare_source, spool_drain_seconds, wrk,
                              write_accounts)

SCENARIO = "government_procurement"
MODES = ("embedded", "redis", "thread", "build", "append")
ROOT = Path(__file__).resolve().parent.parent


class NullRecorder:
    """Recording off, for this benchmark only: takes every check and records nothing."""

    def record(self, account: Any, request: Any, result: Any) -> None:
        return None


class BuildOnlyRecorder:
    """Diagnostic (``build``): builds the check and audit records, writes nothing."""

    def record(self, account: Any, request: Any, result: Any) -> None:
        from screening.live import BackboneRecorder

        BackboneRecorder._records(account, request, result, [], [])


def _serve(mode: str, port: int, snapshot: Path, accounts: Path, data: Path,
           redis_url: str) -> None:
    import uvicorn

    from screening.app import create_app
    from screening.server import uvicorn_options
    from screening.settings import Settings

    mode = mode.removesuffix("+away")
    settings = Settings(snapshot=snapshot, port=port, accounts=accounts, data=data,
                        redis=redis_url if mode == "redis" else None, log_level="warning")
    recorder: Any = None
    if mode == "off":
        recorder = NullRecorder()
    elif mode == "build":
        recorder = BuildOnlyRecorder()
    elif mode in ("thread", "append"):
        from screening.backbone import open_backbone

        # thread: the previous design, the flusher thread in this process; append
        # (diagnostic): the shipper-mode request path alone, no cutter, no shipper
        backbone = (open_backbone(settings) if mode == "thread"
                    else open_backbone(settings, shipper=True, start=False))
        try:
            uvicorn.run(create_app(settings, backbone=backbone),
                        **uvicorn_options(settings))  # type: ignore[arg-type]
        finally:
            backbone.close()
        return
    app = create_app(settings, recorder=recorder)
    uvicorn.run(app, **uvicorn_options(settings))  # type: ignore[arg-type]


# -- preparation -----------------------------------------------------------------------------
def hit_bodies(snapshot: Path, limit: int = 200) -> list[bytes]:
    """Bodies of listed organisations whose check (as the bench account) hits with measures."""
    from indexer.snapshot import Snapshot
    from screening.decision import Caller, CheckRequest, check

    snap = Snapshot.open(snapshot)
    caller = Caller(tier="agency", region="350100")
    a = snap.arrays
    off, types = a["subject_entries_off"], a["subject_type"]
    out: list[bytes] = []
    for row in range(len(types)):
        if types[row] or off[row + 1] == off[row]:
            continue
        body = {"subject": snap.subject_id(row), "scenario": SCENARIO}
        result = check(snap, CheckRequest(**body), caller)
        if result["hits"] and any(h["measures"] for h in result["hits"]):
            out.append(orjson.dumps(body))
            if len(out) >= limit:
                break
    if not out:
        raise LookupError("no organisation with a hit in the generated snapshot")
    return out


# -- processes -------------------------------------------------------------------------------
def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its threads and its live children (and reaped ones)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return total


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU of the server process alone (all its threads, no children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(mode: str, snapshot: Path, accounts: Path, data: Path, redis_url: str,
           usage: dict[str, float] | None = None) -> Iterator[tuple[int, int]]:
    """One uvicorn worker pinned to CPU 0, in its own session (its own autogroup).
    ``usage``: filled with the CPU seconds of the server and every child it reaped (the
    shipper), from start to exit, including shipping what was still spooled at SIGTERM."""
    port = _free_port()
    cmd = ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "bench.http_record_bench",
           "_serve", mode, str(port), str(snapshot), str(accounts), str(data), redis_url]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        _wait_ready(proc, port, mode)
        if mode.endswith("+away"):
            move_shipper(proc.pid)
        yield port, proc.pid
    finally:
        cpu = stop(proc)
        if usage is not None:
            usage["total"] = cpu


def move_shipper(pid: int) -> None:
    """``+away``: pin the server's shipper process to the load CPU instead of the server's."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            for child in task.read_text().split():
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"screening.backbone\0ship" in cmdline:
                    subprocess.run(["taskset", "-p", "-c", LOAD_CPU, child], check=True,
                                   capture_output=True)
                    return
        time.sleep(0.1)
    raise RuntimeError("no shipper process found")


def stop(proc: subprocess.Popen[Any]) -> float:
    """SIGTERM (graceful: the backbone ships what is spooled), SIGKILL after 30 s; by PID.
    Returns the CPU seconds of the process and of the children it reaped (``wait4``)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return float(usage.ru_utime + usage.ru_stime)
        if time.monotonic() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server (AOF on, ``appendfsync everysec``) pinned to the load CPU."""
    port = _free_port()
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["taskset", "-c", LOAD_CPU, "redis-server", "--port", str(port),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                             "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        stop(proc)


def audits_recorded(mode: str, data: Path, redis_url: str) -> int:
    """Audit records the backbone holds (after the server stopped and shipped its spool)."""
    mode = mode.removesuffix("+away")
    if mode in ("off", "build", "append"):
        return 0
    if mode == "redis":
        import redis

        r = redis.Redis.from_url(redis_url)
        n = int(r.xlen("sb:audit"))
        r.flushall()  # the next server starts empty, like an embedded one
        return n
    n = 0
    for path in (data / "audit").glob("*.jsonl"):
        with path.open("rb") as f:
            # an audit record, or a check's head as a compact line (``records.route_line``)
            n += sum(1 for line in f if line.startswith((b'{"at"', b'{"q"')))
    return n


def measured(mode: str, snapshot: Path, accounts: Path, data: Path, redis_url: str,
             script: Path, *, connections: int, duration: float) -> dict[str, Any]:
    usage: dict[str, float] = {}
    shutil.rmtree(data, ignore_errors=True)  # a fresh backbone: nothing left to adopt or count
    with server(mode, snapshot, accounts, data, redis_url, usage) as (port, pid):
        ready = tree_cpu_seconds(pid)
        warm = wrk(port, script, connections=connections, duration=2)
        before, own = tree_cpu_seconds(pid), own_cpu_seconds(pid)
        result = wrk(port, script, connections=connections, duration=duration)
        n = max(1, result["requests"])
        result["cpu_us"] = (tree_cpu_seconds(pid) - before) / n * 1e6
        result["own_us"] = (own_cpu_seconds(pid) - own) / n * 1e6
        # the niced shipper lags on the saturated core: let it ship everything before the
        # server stops (a stopping server ships for at most 2 s and leaves the rest spooled)
        result["drain_s"] = (spool_drain_seconds(data) if mode.removesuffix("+away")
                             not in ("off", "build", "append") else 0.0)
    answered = warm["requests"] + result["requests"]
    # everything the answered checks cost, their records shipped to the end: a shipper that
    # lags behind (niced, on a busy core) ships the rest after wrk stops, and that counts
    result["full_us"] = (usage["total"] - ready) / max(1, answered) * 1e6
    result["answered"] = answered
    result["recorded"] = audits_recorded(mode, data, redis_url)
    return result


def side_by_side(mode: str, snapshot: Path, accounts: Path, work: Path, tag: str,
                 redis_url: str, script: Path, *, connections: int, duration: float
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``off`` and ``mode`` at once, both on CPU 0 (one autogroup each), a wrk each on CPU 1."""
    for name in (f"data-pair-off-{tag}", f"data-pair-{mode}-{tag}"):
        shutil.rmtree(work / name, ignore_errors=True)
    with server("off", snapshot, accounts, work / f"data-pair-off-{tag}", redis_url) as (p0, _), \
            server(mode, snapshot, accounts, work / f"data-pair-{mode}-{tag}", redis_url) \
            as (p1, _):
        for port in (p0, p1):
            wrk(port, script, connections=connections, duration=1)
        out: dict[str, dict[str, Any]] = {}

        def run(name: str, port: int) -> None:
            out[name] = wrk(port, script, connections=connections, duration=duration)

        threads = [threading.Thread(target=run, args=("off", p0)),
                   threading.Thread(target=run, args=(mode, p1))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    audits_recorded(mode, work, redis_url)  # empties Redis for the next server
    return out["off"], out[mode]


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "_serve":
        _serve(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]),
               Path(sys.argv[6]), sys.argv[7])
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.http_record_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default="off,embedded,redis",
                   help="comma-separated: off, embedded, redis (off is always measured)")
    p.add_argument("--pairs", type=int, default=None,
                   help="side-by-side rounds per recording mode (default: --rounds)")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("needs wrk (apt-get install -y wrk) and taskset", file=sys.stderr)
        return 2
    modes = ["off"] + [m for m in args.modes.split(",") if m and m != "off"]
    recording = modes[1:]
    if not {m.removesuffix("+away") for m in recording} <= set(MODES):
        p.error(f"modes are off, {', '.join(MODES)} (optionally with +away)")
    pairs_n = args.rounds if args.pairs is None else args.pairs
    from indexer.build import build

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="http-record-bench-") as tmp:
        work = args.work or Path(tmp)
        source, served = work / "source", work / "snapshots"
        for d in (source, served):
            shutil.rmtree(d, ignore_errors=True)
        prepare_source(source, args.entries, args.seed, "bench")
        build(source, served, max_rejects=args.entries)
        snapshot = served
        accounts = work / "accounts.jsonl"
        write_accounts(accounts)
        from indexer.snapshot import snapshot_folders

        bodies = hit_bodies(snapshot_folders(served)[-1])
        script = lua_script(work / "hits.lua", bodies)
        print(f"{len(bodies)} hit bodies", file=sys.stderr)
        with contextlib.ExitStack() as stack:
            redis_url = (stack.enter_context(redis_server(work / "redis"))
                         if "redis" in recording else "")
            rounds: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for i in range(args.rounds):
                for mode in modes:
                    data = work / f"data-{mode}-{i}"
                    r = measured(mode, snapshot, accounts, data, redis_url, script,
                                 connections=args.connections, duration=args.duration)
                    rounds[mode].append(r)
                    print(f"round {i} {mode}: {r['rps']:,.0f} req/s, {r['cpu_us']:.0f} µs CPU/req,"
                          f" {r['full_us']:.0f} µs to completion, recorded {r['recorded']} of "
                          f"{r['answered']}", file=sys.stderr)
            paired = [m for m in recording if not m.endswith("+away")]  # +away is not fair
            pairs: dict[str, list[tuple[float, float]]] = {m: [] for m in paired}
            for i in range(pairs_n):
                for mode in paired:
                    off, on = side_by_side(mode, snapshot, accounts, work, str(i), redis_url,
                                           script, connections=args.connections,
                                           duration=args.duration)
                    pairs[mode].append((off["rps"], on["rps"]))
                    print(f"pair {i} {mode}: off {off['rps']:,.0f}, on {on['rps']:,.0f} req/s "
                          f"({on['rps'] / off['rps']:.2f}×)", file=sys.stderr)
    load = os.getloadavg()
    lines = [
        f"run of {started}; {args.entries:,} entries (bench generator), {len(bodies)} listed "
        f"organisations with measures, `{SCENARIO}`: every check a hit; wrk -t1 "
        f"-c{args.connections} -d{args.duration:g}s on CPU {LOAD_CPU}; one uvicorn worker on "
        f"CPU {SERVER_CPU}; load average at the end {load[0]:.1f}",
        "",
        "| recording | req/s (median of rounds) | vs off | CPU µs/req, all processes, during "
        "the run (median) | vs off | of which the server process | CPU µs/req to completion "
        "| vs off | p50 / p99 ms | recorded / answered | rounds (req/s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    med = {m: _median([r["rps"] for r in rounds[m]]) for m in modes}
    full = {m: _median([r["full_us"] for r in rounds[m]]) for m in modes}
    cpu = {m: _median([r["cpu_us"] for r in rounds[m]]) for m in modes}
    own = {m: _median([r["own_us"] for r in rounds[m]]) for m in modes}
    for mode in modes:
        rs = rounds[mode]
        mid = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
        lines.append(
            f"| {mode} | {med[mode]:,.0f} | {med[mode] / med['off']:.2f}× | {cpu[mode]:.0f} | "
            f"{cpu[mode] / cpu['off']:.2f}× | {own[mode]:.0f} | {full[mode]:.0f} | "
            f"{full[mode] / full['off']:.2f}× | "
            f"{mid['p50_ms']:.2f} / {mid['p99_ms']:.2f} | "
            + ("–" if mode == "off" else
               f"{sum(r['recorded'] for r in rs):,} / {sum(r['answered'] for r in rs):,}")
            + f" | {', '.join(format(r['rps'], ',.0f') for r in rs)} |")
    lines.append("")
    for mode in recording:
        seq = [on["rps"] / off["rps"] for on, off in zip(rounds[mode], rounds["off"])]
        if mode not in pairs:
            lines.append(f"- {mode} ÷ off, one after the other, round by round: "
                         f"{', '.join(f'{x:.2f}' for x in seq)}")
            continue
        ratios = [on / off for off, on in pairs[mode]]
        lines.append(
            f"- **{mode} ÷ off, side by side at once** (both on CPU {SERVER_CPU}, one "
            f"autogroup each): **{_median(ratios):.2f}×** (pairs: "
            + ", ".join(f"{on:,.0f}/{off:,.0f} = {on / off:.2f}" for off, on in pairs[mode])
            + f"); one after the other, round by round: {', '.join(f'{x:.2f}' for x in seq)}")
    lines.append(
        "- to completion: the CPU time of the server and its shipper from ready to exit, "
        "shipping included (a niced shipper on a saturated core lags, and ships the rest after "
        "wrk stops), per answered check; off ÷ on of it is the throughput ratio a core "
        "sustains while every record is shipped as fast as it is made")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
