"""Bulk screening end to end: ``screening bulk`` on a generated file against a generated snapshot.

    python -m bench.bench_bulk [--entries 1000000] [--rows 1000000] [--listed 0.01]
                               [--bad 0.001] [--workdir /tmp/bench-bulk] [--format csv|jsonl]

1. ``bench.generate`` writes a source of ``--entries`` entries, ``indexer build`` compiles it
   (both kept in ``--workdir`` and reused when present);
2. an input file of ``--rows`` rows is written: ``--listed`` of them subjects of the snapshot
   (listed organisations and persons, and linked ones), ``--bad`` of them invalid, the rest
   valid unlisted USCCs (two thirds) and ID numbers (one third), in the column
   ``统一社会信用代码`` beside a row number and a company name;
3. ``python -m screening bulk`` runs in a child process pinned to one core (``taskset``),
   timed from the outside; its peak RSS is the ``ru_maxrss`` that ``os.wait4`` reports.

The figures printed at the end go into ``bench/RESULTS.md`` (bulk section).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer import identifiers

ALPHABET = np.frombuffer(identifiers.USCC_ALPHABET.encode(), dtype=np.uint8)
DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
REGIONS = np.array([list(r.encode()) for r in ("350100", "350102", "350203", "350583",
                                               "110105", "440305", "310115")], dtype=np.uint8)


def _checks(body: np.ndarray, kind: str) -> np.ndarray:
    """Append the check character(s) to rows of ASCII codes (vectorised SPEC §2)."""
    if kind == "ric":
        d = body.astype(np.int64) - 48
        w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
        check = np.frombuffer(identifiers.ID_CHECK.encode(), np.uint8)[(d @ w) % 11]
        return np.column_stack([body, check])
    value = np.full(256, 0, np.int64)
    value[ALPHABET] = np.arange(31)
    org = np.where(body[:, 8:16] <= 57, body[:, 8:16].astype(np.int64) - 48,
                   body[:, 8:16].astype(np.int64) - 55)
    org_check = np.frombuffer(b"0X987654321", np.uint8)[(org @ np.array([3, 7, 9, 10, 5, 8, 4, 2]))
                                                         % 11]
    first = np.column_stack([body, org_check])
    w = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
    check = ALPHABET[(31 - (value[first] @ w) % 31) % 31]
    return np.column_stack([first, check])


def unlisted_ids(n: int, rng: np.random.Generator) -> list[str]:
    n_org = n * 2 // 3
    head = np.frombuffer(b"91", np.uint8)
    org = np.column_stack([np.tile(head, (n_org, 1)), REGIONS[rng.integers(0, len(REGIONS), n_org)],
                           ALPHABET[rng.integers(0, 31, (n_org, 8))]])
    orgs = _checks(org, "uscc")
    n_p = n - n_org
    born = np.datetime64("1950-01-01") + rng.integers(0, 365 * 55, n_p).astype("m8[D]")
    ymd = np.array([list(s.replace("-", "").encode()) for s in born.astype(str)], np.uint8)
    person = np.column_stack([REGIONS[rng.integers(0, len(REGIONS), n_p)], ymd,
                              DIGITS[rng.integers(0, 10, (n_p, 3))]])
    persons = _checks(person, "ric")
    out = [r.tobytes().decode() for r in orgs] + [r.tobytes().decode() for r in persons]
    return out


def write_input(path: Path, snapshot: Path, *, rows: int, listed: float, bad: float,
                fmt: str, seed: int = 5) -> None:
    from indexer.snapshot import Snapshot

    rng = np.random.default_rng(seed)
    snap = Snapshot.open(snapshot, check=False)
    keys = snap.subject_key
    block = 1_000_000
    names = ["某某贸易有限公司", "福州市鼓楼区新创石材有限公司", "张三", ""]
    with path.open("w", encoding="utf-8", newline="") as f:
        if fmt == "csv":
            f.write("序号,企业名称,统一社会信用代码\n")
        for start in range(0, rows, block):
            n = min(block, rows - start)
            ids = unlisted_ids(n, rng)
            pick = rng.random(n)
            for i in np.flatnonzero(pick < listed):
                ids[i] = keys[rng.integers(0, len(keys))].decode()
            for i in np.flatnonzero(pick > 1 - bad):
                ids[i] = ids[i][:17] + ("0" if ids[i][17] != "0" else "1")
            order = rng.permutation(n)
            if fmt == "csv":
                f.writelines(f"{start + j},{names[j % 4]},{ids[k]}\n" for j, k in enumerate(order))
            else:
                f.writelines(f'{{"n":{start + j},"name":"{names[j % 4]}","subject":"{ids[k]}"}}\n'
                             for j, k in enumerate(order))


def ensure_snapshot(work: Path, entries: int) -> Path:
    snaps = work / f"snap-{entries}"
    if snaps.is_dir() and any(snaps.iterdir()):
        return snaps
    from bench.generate import generate
    from indexer.build import build

    src = work / f"source-{entries}"
    t = time.perf_counter()
    generate(src, entries=entries, seed=1)
    print(f"generated {entries:,} entries in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    t = time.perf_counter()
    result = build(src, snaps, max_rejects=10**9)
    print(f"built {result.version} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    shutil.rmtree(src)
    return snaps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_bulk",
                                description=__doc__.split("\n")[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--listed", type=float, default=0.01)
    p.add_argument("--bad", type=float, default=0.001)
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--scenario", default="government_procurement")
    p.add_argument("--prepare-only", action="store_true", help="build the snapshot and stop")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-bulk")
    args = p.parse_args(argv)
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    snaps = ensure_snapshot(work, args.entries)
    if args.prepare_only:
        return 0
    src = work / f"input-{args.entries}-{args.rows}-{args.listed}.{args.format}"
    if not src.exists():
        t = time.perf_counter()
        write_input(src, snaps, rows=args.rows, listed=args.listed, bad=args.bad, fmt=args.format)
        print(f"wrote {src} ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    out = work / f"output.{args.format}"
    cmd = ["python", "-m", "screening", "bulk", str(src), "--scenario", args.scenario,
           "--out", str(out), "--snapshot", str(snaps)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    print("$ " + " ".join(cmd), file=sys.stderr)
    log = work / "bulk.stderr"
    t = time.perf_counter()
    with log.open("w") as err:
        child = subprocess.Popen(cmd, env=env, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
    wall = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss / 1024
    print(log.read_text(), file=sys.stderr)
    if child.returncode != 0:
        return child.returncode
    print(f"rows {args.rows:,}  entries {args.entries:,}  wall {wall:.1f} s  "
          f"{args.rows / wall:,.0f} rows/s end to end  peak RSS {rss:,.0f} MiB  "
          f"input {src.stat().st_size / 1e6:.0f} MB  output {out.stat().st_size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
