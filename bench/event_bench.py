"""Live events over HTTP: acceptance on one replica → effect on another (issue 4's figure).

    python -m bench.event_bench [--events 100] [--entries 20000] [--modes redis,embedded]
                                [--work DIR] [--out FILE]

"Event acceptance to effect on another replica: p99 ≤ 1 s", measured as an approval system
sees it. In one run, on loopback only, bounded in count and time:

1. generates a source (``bench.generate``, seed 1) and builds one snapshot; writes an issuer
   account for ``court.dishonest_debtor`` (whose measure ``M-GP-1`` blocks in
   ``government_procurement``) and an agency account;
2. per mode, starts two real ``screening serve`` processes, A and B: ``redis`` — both on one
   ``redis-server`` (AOF on); ``embedded`` — both on one data folder (as two replicas sharing a
   volume, or two workers of one);
3. ``--events`` times: posts to A a ``listed`` event for a fresh organisation, and from A's
   202 polls B's ``POST /v1/check`` for it every 2 ms until B answers ``block``; the time from
   A's answer to B's first ``block`` is the latency. Every event must take effect on B within
   5 s or the run fails.

Servers are started here and stopped by PID (SIGTERM); nothing else is touched.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.http_bench import cli_server, emit
from bench.http_record_bench import redis_server

LIST, AUTHORITY, SCENARIO = "court.dishonest_debtor", "福州市中级人民法院", "government_procurement"
ISSUER_KEY, AGENCY_KEY = "bench-issuer-key-0123", "bench-agency-key-0123"


def write_accounts(path: Path) -> Path:
    from screening.demo import account_line

    rows = [account_line("FY-BENCH", "bench issuer", ISSUER_KEY, "issuer", "350000",
                         authorities=[AUTHORITY], lists=[LIST]),
            account_line("CZ-BENCH", "bench agency", AGENCY_KEY, "agency", "350100")]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def listing(i: int, subject: str) -> dict[str, Any]:
    return {"id": f"V-BENCH-{i}", "at": "2026-01-01T00:00:00+08:00", "type": "listed",
            "record": {"id": f"E-BENCH-{i}", "list": LIST,
                       "subject": {"type": "org", "id": subject, "name": f"基准主体{i}"},
                       "authority": AUTHORITY, "region": "350100",
                       "valid_from": "2026-01-01", "valid_until": "2099-01-01",
                       "reason": "有履行能力而拒不履行", "basis": f"（2026）闽01执{i}号"}}


def measure(a: str, b: str, n: int, seed: int) -> list[float]:
    import httpx

    from screening.demo import make_uscc

    rng = random.Random(seed)
    latencies: list[float] = []
    issuer = {"Authorization": f"Bearer {ISSUER_KEY}"}
    agency = {"Authorization": f"Bearer {AGENCY_KEY}"}
    with httpx.Client(timeout=5) as h:
        for i in range(n):
            subject = make_uscc(rng, "350102")
            body = {"subject": subject, "scenario": SCENARIO}
            assert h.post(b + "/v1/check", json=body, headers=agency).json()["decision"] \
                == "pass", "a fresh subject must pass before its listing"
            r = h.post(a + "/v1/events", json={"events": [listing(i, subject)]},
                       headers=issuer)
            accepted = time.monotonic()
            if r.status_code != 202:
                raise RuntimeError(f"event {i} refused: {r.status_code} {r.text}")
            while True:
                decision = h.post(b + "/v1/check", json=body, headers=agency).json()["decision"]
                if decision == "block":
                    latencies.append(time.monotonic() - accepted)
                    break
                if time.monotonic() - accepted > 5:
                    raise RuntimeError(f"event {i} had no effect on the other replica in 5 s")
                time.sleep(0.002)
    return latencies


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.event_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--entries", type=int, default=20_000)
    p.add_argument("--modes", default="redis,embedded")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if "redis" in modes and shutil.which("redis-server") is None:
        print("needs redis-server for --modes redis", file=sys.stderr)
        return 2
    from bench.generate import generate
    from indexer.build import build

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="event-bench-") as tmp:
        work = args.work or Path(tmp)
        source, snapshots = work / "source", work / "snapshots"
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(snapshots, ignore_errors=True)
        generate(source, entries=args.entries, seed=1, progress=False)
        build(source, snapshots, max_rejects=args.entries)
        accounts = write_accounts(work / "accounts.jsonl")
        results: dict[str, list[float]] = {}
        for k, mode in enumerate(modes):
            with contextlib.ExitStack() as stack:
                url = (stack.enter_context(redis_server(work / f"redis-{k}"))
                       if mode == "redis" else None)
                data = [work / f"data-{mode}-{side}" for side in ("a", "b")]
                if mode == "embedded":
                    data = [work / "data-embedded"] * 2  # one folder: one event log
                for d in data:
                    shutil.rmtree(d, ignore_errors=True)
                extra = ("--redis", url) if url else ()
                ports = [stack.enter_context(cli_server(snapshots, accounts, data=d,
                                                        extra=extra)) for d in data]
                a, b = (f"http://127.0.0.1:{port}" for port in ports)
                results[mode] = measure(a, b, args.events, seed=7 + k)
            xs = results[mode]
            print(f"{mode}: p50 {_pct(xs, .5) * 1e3:.1f} ms, p99 {_pct(xs, .99) * 1e3:.1f} ms",
                  file=sys.stderr)
    lines = [(f"run of {started}; {args.entries:,} entries; {args.events} `listed` events per "
              "mode, each posted to replica A, then B's `/v1/check` polled every 2 ms until it "
              "blocks; two real `screening serve` processes, loopback"), "",
             "| backbone | events | p50 ms | p90 ms | p99 ms | max ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for mode, xs in results.items():
        lines.append(f"| {mode} | {len(xs)} | {_pct(xs, .5) * 1e3:.1f} | "
                     f"{_pct(xs, .9) * 1e3:.1f} | {_pct(xs, .99) * 1e3:.1f} | "
                     f"{max(xs) * 1e3:.1f} |")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
