"""What recording every row costs a bulk job run over HTTP (``POST /v1/screenings``).

    python -m bench.job_record_bench [--entries 20000] [--rows 200000] [--rounds 2]

Builds a snapshot from the bench generator (seed 1), writes a CSV of ``--rows`` valid USCCs
that no entry holds (the common case: unlisted suppliers), and runs one job over it with
``screening.jobs.Jobs`` in this process, alternately without a recorder and with
``screening.screenings.JobRecorder`` over a shipper-mode backbone (what ``screening serve``
runs: the rows are appended to the spool; the shipper is not started, so its expansion of
the batch lines, done later in the background, is not counted). Prints the CPU time of the
job per row and the spool bytes per row.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.http_bench import prepare_source


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--entries", type=int, default=20_000)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)

    from indexer import identifiers
    from indexer.build import build
    from indexer.snapshot import Snapshot, snapshot_folders
    from screening.backbone import open_backbone
    from screening.decision import Caller
    from screening.jobs import Jobs
    from screening.live import BackboneRecorder
    from screening.screenings import JobRecorder
    from screening.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare_source(work / "source", args.entries, 1, "bench")
        build(work / "source", work / "snapshots", max_rejects=args.entries)
        snap = Snapshot.open(snapshot_folders(work / "snapshots")[-1])
        rows = ["名称,统一社会信用代码"]
        n = 0
        while len(rows) <= args.rows:
            org = f"{n:08d}"
            n += 1
            body = "91990100" + org + identifiers.org_code_check_char(org)
            uscc = body + identifiers.uscc_check_char(body)
            if snap.lookup(uscc) is None:
                rows.append(f"供应商{n},{uscc}")
        src = work / "suppliers.csv"
        src.write_text("\n".join(rows) + "\n", encoding="utf-8")
        settings = Settings(snapshot=work / "snapshots", data=work / "data")
        bb = open_backbone(settings, shipper=True, start=False)

        class _Service:
            recorder = BackboneRecorder(bb)

        caller = Caller(unit="BENCH", tier="agency", region="national")
        try:
            for rnd in range(args.rounds):
                for recording in (False, True):
                    record: Any = JobRecorder(_Service()) if recording else None  # type: ignore[arg-type]
                    jobs = Jobs(work / "jobs", lambda: snap, record=record)
                    before_spool = bb.spool.pending_bytes()
                    st = jobs.create(src, scenario="government_procurement", caller=caller,
                                     as_of="2026-11-22T10:00:00+08:00")
                    t0 = os.times()
                    done = jobs.run(st.id)
                    t1 = os.times()
                    assert done.state == "done", done
                    cpu = (t1.user + t1.system - t0.user - t0.system) / args.rows * 1e6
                    spooled = (bb.spool.pending_bytes() - before_spool) / args.rows
                    print(f"round {rnd} {'record' if recording else 'none  '}: "
                          f"{cpu:.2f} µs CPU a row, {spooled:.0f} spool bytes a row",
                          file=sys.stderr)
        finally:
            bb.close(timeout=0.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
