"""Build throughput, snapshot size and open cost (issue 2 "Figures to reach").

    python -m bench.generate /tmp/g1m --entries 1000000 --seed 1
    python -m bench.bench_build /tmp/g1m --out /tmp/s1m

Builds SOURCE in-process and prints one JSON object: CPU seconds per build phase, total user
and system CPU, wall time, peak RSS, source entries per CPU second, ``data.bin`` bytes per
entry; then opens the snapshot in a fresh process (so the build's memory does not count) and
reports the open time and the resident memory after the open and a few checks.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from indexer import build as build_module
from indexer.compiler import Compiler


def _timed(owner: Any, name: str, label: str, phases: dict[str, float]) -> None:
    inner = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            phases[label] = phases.get(label, 0.0) + time.process_time() - started

    setattr(owner, name, wrapper)


def measure_build(source: Path, out: Path) -> dict[str, Any]:
    phases: dict[str, float] = {}
    for owner, name, label in ((build_module, "_catalogues", "catalogues"),
                               (build_module, "_ingest_entries", "entries"),
                               (build_module, "_ingest_relations", "relations"),
                               (Compiler, "dedupe", "dedupe"), (Compiler, "compile", "compile"),
                               (build_module, "describe", "source checksums"),
                               (build_module.snapshot, "write", "write")):
        _timed(owner, name, label, phases)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    result = build_module.build(source, out)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    entries = result.counts["source_entries"]
    data = (result.path / "data.bin").stat().st_size
    return {"snapshot": str(result.path), "counts": result.counts,
            "phases_cpu_s": {k: round(v, 2) for k, v in phases.items()},
            "user_s": round(user, 2), "sys_s": round(system, 2), "wall_s": round(wall, 2),
            "peak_rss_mb": after.ru_maxrss // 1024,
            "entries_per_user_s": round(entries / user), "entries_per_wall_s": round(entries / wall),
            "data_bin_bytes": data, "data_bin_bytes_per_entry": round(data / entries, 1)}


_OPEN = """
import json, resource, sys, time
t = time.perf_counter()
from indexer.snapshot import Snapshot
snap = Snapshot.open(sys.argv[1])
opened = time.perf_counter() - t
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmRSS"))
after_open = rss()
from screening.decision import Caller, CheckRequest, check
ids = [snap.subject_id(r) for r in range(0, len(snap.subject_type), max(1, len(snap.subject_type) // 50))]
t = time.perf_counter()
for sid in ids:
    check(snap, CheckRequest(sid, "government_procurement"), Caller())
checks = time.perf_counter() - t
print(json.dumps({"open_s": round(opened, 3), "rss_after_open_mb": after_open,
                  "rss_after_checks_mb": rss(), "checks": len(ids),
                  "checks_s": round(checks, 3)}))
"""


def measure_open(snapshot: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _OPEN, str(snapshot)], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.bench_build", description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-open", action="store_true", help="skip the open/RSS measurement")
    args = p.parse_args(argv)
    report = measure_build(args.source, args.out)
    if not args.no_open:
        report["open"] = measure_open(Path(report["snapshot"]))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
