"""HTTP benchmark of the check service, beside a raw ASGI callable on the same server stack.

    python -m bench.http_bench [--entries 100000] [--duration 10] [--connections 64]
                               [--work DIR] [--generator bench|builtin] [--out FILE]

In one run, on loopback only, with bounded durations:

1. prepares a source (``bench.generate``, or the demo generator), a snapshot, an accounts file
   with a bench key, and request bodies: mostly clean applicants, some listed, some red;
2. starts, one after the other, on the same uvicorn stack (uvloop, httptools, no access log)
   pinned to CPU 0, every one on ``screening serve``'s uvicorn options (``CheckProtocol``):
   ``raw`` (an ASGI callable that parses the same body with orjson and returns a small JSON),
   ``check`` (``screening serve``'s app: ``POST /v1/check`` answered in the HTTP protocol),
   ``norec`` (the same, feedback and audit recording off), ``asgi`` (the same app on uvicorn's
   own httptools protocol: the check's ASGI fast path) and ``route`` (the app with the fast
   path off: the FastAPI route);
3. drives each with ``wrk`` pinned to CPU 1 (peak req/s, latency percentiles), then on
   ``check``: p99 at half of its peak (connections paced by a per-request delay; after a
   2-s warm-up at that pace, as every peak run has one), batch throughput (10,000 subjects a request) and 10 snapshot swaps under load.

Needs ``wrk`` (``apt-get install -y wrk``) and ``taskset`` (util-linux).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SERVER_CPU, LOAD_CPU = "0", "1"
KEY = "bench-key-0123456789"


# -- the raw ASGI callable and the server entry ---------------------------------------------
async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Parse the JSON body like the check does, answer a small JSON."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    try:
        subject = orjson.loads(body).get("subject") if body else None
    except orjson.JSONDecodeError:
        subject = None
    out = orjson.dumps({"decision": "pass", "subject": subject})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


def _serve(kind: str, port: int, snapshot: Path, accounts: Path) -> None:
    import uvicorn

    from screening.app import create_app
    from screening.server import uvicorn_options
    from screening.settings import Settings

    settings = Settings(snapshot=snapshot, port=port, accounts=accounts, watch_interval=0.2,
                        log_level="warning", data=snapshot.parent / f"data-{kind}-{port}")
    options = uvicorn_options(settings)
    if kind == "raw":
        app: Any = raw_app
    elif kind == "norec":  # the fast path with feedback/audit recording off (bench only)
        from bench.http_record_bench import NullRecorder
        app = create_app(settings, recorder=NullRecorder())
    else:
        app = create_app(settings, fastpath=kind != "route")
    if kind == "asgi":  # the check's ASGI fast path, on uvicorn's own httptools protocol
        options["http"] = "httptools"
    uvicorn.run(app, **options)  # type: ignore[arg-type]


# -- preparation -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_source(root: Path, entries: int, seed: int, generator: str) -> None:
    if generator == "bench":
        from bench.generate import generate

        generate(root, entries=entries, seed=seed, progress=False)
    else:
        from screening.demo import write_demo_source

        write_demo_source(root, entries=entries, seed=seed)


def subject_mix(source: Path, snapshot: Path, n: int = 2000, seed: int = 7
                ) -> tuple[list[dict[str, str]], list[str]]:
    """Check bodies and their kinds: 80% clean applicants, 12% listed (black/watch), 5% red,
    3% persons."""
    from indexer.snapshot import Snapshot
    from screening.decision import Caller, CheckRequest, check
    from screening.demo import make_ric, make_uscc

    kinds = {li["code"]: li["kind"] for li in map(orjson.loads, (source / "lists.jsonl")
                                                  .read_bytes().splitlines())}
    listed: list[str] = []
    red: list[str] = []
    for path in sorted((source / "entries").glob("*.jsonl")):
        for raw in path.read_bytes().splitlines()[:50_000]:
            e = orjson.loads(raw)
            (red if kinds.get(e["list"]) == "red" else listed).append(e["subject"]["id"])
    rng = random.Random(seed)
    snap = Snapshot.open(snapshot)
    caller = Caller(tier="agency", region="350100")
    scenarios = ["government_procurement", "bidding", "administrative_license"]
    bodies: list[dict[str, str]] = []
    kinds_: list[str] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.80:
            region = rng.choice(["350102", "350203", "350582", "110105"])
            subject, kind = make_uscc(rng, region), "clean"
        elif roll < 0.92 and listed:
            subject, kind = rng.choice(listed), "listed"
        elif roll < 0.97 and red:
            subject, kind = rng.choice(red), "red"
        else:
            subject, kind = make_ric(rng, "350102"), "person"
        kinds_.append(kind)
        body = {"subject": subject, "scenario": scenarios[i % len(scenarios)]}
        check(snap, CheckRequest(**body), caller)  # every body is valid
        bodies.append(body)
    return bodies, kinds_


def write_accounts(path: Path) -> None:
    from screening.demo import account_line

    path.write_bytes(orjson.dumps(account_line("BENCH", "bench", KEY, "agency", "350100")) + b"\n")


def lua_script(path: Path, bodies: list[bytes], delay_ms: int | None = None) -> Path:
    items = ",\n".join(f"[==[{b.decode()}]==]" for b in bodies)
    # a random think time (mean delay_ms) keeps the connections from firing in lockstep
    delay = (f"delay = function() return math.random(0, {2 * delay_ms}) end\n"
             if delay_ms else "")
    path.write_text(f"""local bodies = {{
{items}
}}
local reqs = {{}}
local i = 0
init = function(args)
  for k, b in ipairs(bodies) do
    reqs[k] = wrk.format("POST", "/v1/check", {{["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer {KEY}"}}, b)
  end
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
{delay}""", encoding="utf-8")
    return path


# -- running ---------------------------------------------------------------------------------
def _ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _wait_ready(proc: subprocess.Popen[Any], port: int, kind: str, streak: int = 1) -> None:
    """Until ``streak`` readiness probes in a row answer 200 (with several workers, each
    probe's connection goes to whichever worker accepts it: a streak makes it very likely
    that every worker has loaded the snapshot)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}")
        if all(_ready(port) for _ in range(streak)):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{kind} server did not become ready")


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def server(kind: str, snapshot: Path, accounts: Path) -> Iterator[tuple[int, int]]:
    """One uvicorn worker pinned to CPU 0 serving ``kind`` (module doc)."""
    port = _free_port()
    cmd = ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "bench.http_bench", "_serve", kind,
           str(port), str(snapshot), str(accounts)]
    # own session: side by side, the kernel's autogroups split CPU 0 between the two process
    # trees (a server and its shipper child) evenly, whatever each runs
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent,
                            start_new_session=True)
    try:
        _wait_ready(proc, port, kind)
        yield port, proc.pid
    finally:
        _stop(proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(port: int, pid: int, script: Path, *, connections: int,
             duration: float) -> dict[str, Any]:
    """A wrk run, with the server's CPU time per request (robust to a busy machine)."""
    before = cpu_seconds(pid)
    result = wrk(port, script, connections=connections, duration=duration)
    result["cpu_us"] = (cpu_seconds(pid) - before) / max(1, result["requests"]) * 1e6
    return result


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, script: Path, *, connections: int, duration: float) -> dict[str, Any]:
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s",
           "--latency", "-s", str(script), f"http://127.0.0.1:{port}/v1/check"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                         check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{out}")
    done = re.search(r"(\d+) requests in", out)
    result: dict[str, Any] = {"rps": float(rps[1]), "requests": int(done[1]) if done else 0,
                              "non_2xx": 0, "socket_errors": 0, "raw": out}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        result[f"p{pct}_ms"] = float(m[1]) * _UNITS[m[2]] if m else None
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        result["non_2xx"] = int(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["socket_errors"] = sum(int(g) for g in m.groups())
    return result


def batch_throughput(port: int, body: bytes, n_subjects: int, duration: float,
                     clients: int = 2) -> dict[str, Any]:
    """Client threads (CPU 1) posting 10,000-subject batches back to back."""
    import httpx

    os.sched_setaffinity(0, {int(LOAD_CPU)})
    stop = time.monotonic() + duration
    done: list[float] = []
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"Authorization": f"Bearer {KEY}",
                                   "Content-Type": "application/json"}) as c:
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = c.post("/v1/check/batch", content=body)
                answered = r.content.count(b'"check_id"') + r.content.count(b'{"error"')
                if r.status_code != 200 or answered != n_subjects:
                    failures.append(f"{r.status_code}: {answered} answers {r.content[:200]!r}")
                done.append(time.perf_counter() - t)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    if failures:
        print(f"batch failures: {len(failures)}, first: {failures[0]}", file=sys.stderr)
    return {"requests": len(done), "failures": len(failures), "elapsed_s": elapsed,
            "subjects_per_s": len(done) * n_subjects / elapsed,
            "mean_request_s": sum(done) / max(1, len(done))}


def spool_drain_seconds(data: Path, timeout: float = 300.0) -> float:
    """Seconds until the spools under ``data`` hold nothing unshipped (the servers idle)."""
    from screening.backbone.spool import Spool, pending_bytes

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not sum(pending_bytes(f) for f in Spool.slots(data / "spool")):
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"the spool under {data} did not drain in {timeout:g} s")


@contextlib.contextmanager
def cli_server(snapshot: Path, accounts: Path, workers: int = 1, *, data: Path,
               extra: tuple[str, ...] = ()) -> Iterator[int]:
    """The real ``screening serve --workers N`` (not pinned) on ``data``, with ``extra``
    options (``--redis URL``)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "screening", "serve", "--snapshot", str(snapshot),
           "--accounts", str(accounts), "--port", str(port), "--workers", str(workers),
           "--data", str(data), *extra]
    env = dict(os.environ, SCREENING_LOG_LEVEL="warning")
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent, env=env)
    try:
        _wait_ready(proc, port, "cli", streak=10 * workers)
        yield port
    finally:
        _stop(proc)


def paired(snapshot: Path, accounts: Path, script: Path, *, connections: int,
           duration: float, kind: str = "check") -> tuple[dict[str, Any], dict[str, Any]]:
    """``raw`` and ``kind`` at once, both on CPU 0, each driven by its own wrk on CPU 1.

    Sharing one core fairly, each gets the same CPU time under the same background load, so
    the ratio of their req/s is the ratio of their costs, robust to a busy machine.
    """
    with server("raw", snapshot, accounts) as (raw_port, _), \
            server(kind, snapshot, accounts) as (check_port, _):
        out: dict[str, dict[str, Any]] = {}

        def run(name: str, port: int) -> None:
            out[name] = wrk(port, script, connections=connections, duration=duration)

        threads = [threading.Thread(target=run, args=("raw", raw_port)),
                   threading.Thread(target=run, args=("check", check_port))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return out["raw"], out["check"]


def swaps_under_load(port: int, script: Path, served: Path, staged: list[Path], *,
                     connections: int, interval: float) -> dict[str, Any]:
    """wrk on /v1/check while ``staged`` snapshots are renamed into ``served``, one by one."""
    duration = interval * (len(staged) + 1) + 1
    result: dict[str, Any] = {}

    def load() -> None:
        result.update(wrk(port, script, connections=connections, duration=duration))

    runner = threading.Thread(target=load)
    runner.start()
    versions = []
    for folder in staged:
        time.sleep(interval)
        os.rename(folder, served / folder.name)
        versions.append(folder.name)
    runner.join()
    result["swaps"] = len(versions)
    return result


def emit(lines: list[str], out: Path | None) -> None:
    """Print the Markdown report, and write it to ``out`` too."""
    report = "\n".join(lines)
    print(report)
    if out:
        out.write_text(report + "\n", encoding="utf-8")


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2] if xs else float("nan")


def _fmt(x: float | None, unit: str = "") -> str:
    return "–" if x is None else f"{x:,.2f}{unit}" if x < 100 else f"{x:,.0f}{unit}"


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "_serve":
        _serve(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.http_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--swaps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every kind")
    p.add_argument("--generator", choices=("bench", "builtin"), default="bench")
    p.add_argument("--work", type=Path, default=None, help="working folder (default: temporary)")
    p.add_argument("--out", type=Path, default=None, help="also write the Markdown report here")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("needs wrk (apt-get install -y wrk) and taskset", file=sys.stderr)
        return 2
    from indexer.build import build

    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        work = args.work or Path(tmp)
        source, served, staging = work / "source", work / "snapshots", work / "staging"
        for d in (source, served, staging):
            shutil.rmtree(d, ignore_errors=True)
        t = time.monotonic()
        prepare_source(source, args.entries, args.seed, args.generator)
        first = build(source, served, max_rejects=args.entries)
        staged = [build(source, staging, max_rejects=args.entries).path
                  for _ in range(args.swaps)]
        print(f"prepared {args.entries} entries, {1 + args.swaps} snapshots in "
              f"{time.monotonic() - t:.0f}s", file=sys.stderr)
        accounts = work / "accounts.jsonl"
        write_accounts(accounts)
        mix, kinds = subject_mix(source, first.path)
        bodies = [orjson.dumps(b) for b in mix]
        script = lua_script(work / "checks.lua", bodies)
        rounds: dict[str, list[dict[str, Any]]] = {"raw": [], "check": [], "norec": [],
                                                   "asgi": [], "route": []}
        for _ in range(args.rounds):  # interleaved, so drifting machine load hits all alike
            for kind in rounds:
                with server(kind, served, accounts) as (port, pid):
                    wrk(port, script, connections=args.connections, duration=2)  # warm-up
                    rounds[kind].append(measured(port, pid, script,
                                                 connections=args.connections,
                                                 duration=args.duration))
                    print(f"{kind}: {rounds[kind][-1]['rps']:,.0f} req/s", file=sys.stderr)
        clean_script = lua_script(work / "clean.lua", [orjson.dumps(b) for b, k in zip(mix, kinds)
                                                       if k == "clean"])
        pairs: dict[str, list[float]] = {"mix": [], "clean": [], "mix-norec": [], "mix-asgi": []}
        for _ in range(args.rounds):
            for name, sc, kind in (("mix", script, "check"), ("clean", clean_script, "check"),
                                   ("mix-norec", script, "norec"), ("mix-asgi", script, "asgi")):
                r, c = paired(served, accounts, sc, connections=args.connections,
                              duration=args.duration, kind=kind)
                pairs[name].append(c["rps"] / r["rps"])
                print(f"paired {name}: raw {r['rps']:,.0f}, {kind} {c['rps']:,.0f}",
                      file=sys.stderr)
        rows = {k: sorted(v, key=lambda r: r["rps"])[len(v) // 2] for k, v in rounds.items()}
        best = {k: max(v, key=lambda r: r["rps"]) for k, v in rounds.items()}
        cpu = {k: sorted(r["cpu_us"] for r in v)[len(v) // 2] for k, v in rounds.items()}
        batch_items = [{"subject": b["subject"]} for b in (mix * (10_000 // len(mix) + 1))[:10_000]]
        batch_body = orjson.dumps({"scenario": "bidding", "subjects": batch_items})
        with server("check", served, accounts) as (port, pid):
            half = best["check"]["rps"] / 2
            delay_ms = 10
            conns = max(1, round(half * (delay_ms + 0.3) / 1000))
            pacing = lua_script(work / "paced.lua", bodies, delay_ms)
            # warm-up at the same pace, as before every peak run: a fresh server's first
            # seconds (its shipper starting, the snapshot's pages faulted in) are no steady state
            wrk(port, pacing, connections=conns, duration=2)
            paced = wrk(port, pacing, connections=conns, duration=args.duration)
            before = cpu_seconds(pid)
            batch = batch_throughput(port, batch_body, 10_000, args.duration)
            batch_cpu = cpu_seconds(pid) - before
            swap = swaps_under_load(port, script, served, staged,
                                    connections=args.connections, interval=1.0)
        shutil.rmtree(work / "data", ignore_errors=True)  # a fresh backbone for the burst
        with cli_server(served, accounts, 2, data=work / "data") as port:
            batch2 = batch_throughput(port, batch_body, 10_000, args.duration, clients=3)
            # the niced shipper lags under the burst: the time it then takes to ship the rest
            # gives the rate sustained with every record shipped (a lower bound: while it
            # drains, one core ships and the other idles)
            batch2["drain_s"] = spool_drain_seconds(work / "data")
            batch2["sustained"] = batch2["requests"] * 10_000 / (batch2["elapsed_s"]
                                                                 + batch2["drain_s"])
    raw = rows["raw"]
    ratios = [c["rps"] / r["rps"] for c, r in zip(rounds["check"], rounds["raw"])]
    lines = [
        f"entries {args.entries:,} ({args.generator} generator); wrk -t1 -c{args.connections} "
        f"-d{args.duration:g}s on CPU {LOAD_CPU}; one uvicorn worker (uvloop, httptools) on CPU "
        f"{SERVER_CPU}; {args.rounds} interleaved rounds: median and best req/s, median "
        "server CPU time per request",
        "",
        "| server | req/s (median) | vs raw | req/s (best) | vs raw | CPU µs/req | vs raw "
        "| p50 ms | p99 ms | non-2xx | rounds (req/s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, kind in (("raw ASGI callable (parse + small JSON)", "raw"),
                       ("/v1/check (`screening serve`: in the HTTP protocol)", "check"),
                       ("/v1/check, recording off", "norec"),
                       ("/v1/check on uvicorn's own protocol (ASGI fast path)", "asgi"),
                       ("/v1/check (FastAPI route, fast path off)", "route")):
        r = rows[kind]
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['rps'] / raw['rps']:.2f}× | "
                     f"{best[kind]['rps']:,.0f} | {best[kind]['rps'] / best['raw']['rps']:.2f}× | "
                     f"{cpu[kind]:.0f} | {cpu['raw'] / cpu[kind]:.2f}× | "
                     f"{_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} | "
                     f"{sum(x['non_2xx'] for x in rounds[kind])} | "
                     f"{', '.join(format(x['rps'], ',.0f') for x in rounds[kind])} |")
    lines += [
        "",
        f"- /v1/check ÷ raw, round by round (req/s): {', '.join(f'{x:.2f}' for x in ratios)}",
        f"- **side by side at once** (raw and check servers both on CPU {SERVER_CPU}, each with "
        f"its own wrk on CPU {LOAD_CPU}; ratio of req/s = ratio of cost): service-hall mix "
        f"{_median(pairs['mix']):.2f}× (rounds {', '.join(f'{x:.2f}' for x in pairs['mix'])}); "
        f"clean applicants only {_median(pairs['clean']):.2f}× (rounds "
        f"{', '.join(f'{x:.2f}' for x in pairs['clean'])}); service-hall mix with feedback "
        f"and audit recording off (bench-side `NullRecorder`) "
        f"{_median(pairs['mix-norec']):.2f}× (rounds "
        f"{', '.join(f'{x:.2f}' for x in pairs['mix-norec'])}); the ASGI fast path on "
        f"uvicorn's own protocol {_median(pairs['mix-asgi']):.2f}× (rounds "
        f"{', '.join(f'{x:.2f}' for x in pairs['mix-asgi'])})",
        f"- half of peak ({best['check']['rps']:,.0f} / 2): {paced['rps']:,.0f} req/s "
        f"({conns} connections, {delay_ms} ms think time): p50 {_fmt(paced['p50_ms'])} ms, "
        f"p90 {_fmt(paced['p90_ms'])} ms, p99 {_fmt(paced['p99_ms'])} ms, "
        f"non-2xx {paced['non_2xx']}",
        f"- batch, 10,000 subjects a request, one worker (CPU {SERVER_CPU}), 2 clients: "
        f"{batch['subjects_per_s']:,.0f} subjects/s, {batch['mean_request_s'] * 1000:,.0f} ms "
        f"a request, {batch['failures']} failures of {batch['requests']}; server CPU "
        f"{batch_cpu:.1f} s for {batch['requests'] * 10_000:,} subjects = "
        f"{batch['requests'] * 10_000 / max(batch_cpu, 1e-9):,.0f} subjects per CPU-second",
        f"- batch, `screening serve --workers 2` (both CPUs, clients on CPU {LOAD_CPU}), "
        f"3 clients: {batch2['subjects_per_s']:,.0f} subjects/s, "
        f"{batch2['mean_request_s'] * 1000:,.0f} ms a request, {batch2['failures']} failures "
        f"of {batch2['requests']}; the shipper then took {batch2['drain_s']:.1f} s more to "
        f"ship every record: {batch2['sustained']:,.0f} subjects/s with everything shipped "
        "(a lower bound: one core ships while the other idles)",
        f"- snapshot swaps under load: {swap['swaps']} swaps during {swap['rps']:,.0f} req/s "
        f"of /v1/check, non-2xx {swap['non_2xx']}, socket errors {swap['socket_errors']}",
    ]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
