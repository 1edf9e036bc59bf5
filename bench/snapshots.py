"""A generated snapshot for the micro-benchmarks, built once and reused.

``BENCH_ENTRIES`` (else the benchmark's default) sets the size; ``BENCH_DIR`` (else a new
temporary folder) keeps the source and snapshot so later runs skip generating and building.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.generate import generate
from indexer.build import build
from indexer.snapshot import Snapshot, snapshot_folders


def generated_snapshot(default_entries: int, prefix: str) -> Snapshot:
    entries = int(os.environ.get("BENCH_ENTRIES", str(default_entries)))
    root = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix=prefix))
    out = root / f"snapshots-{entries}"
    if not snapshot_folders(out):
        generate(root / f"source-{entries}", entries=entries, seed=1, progress=False)
        build(root / f"source-{entries}", out)
    return Snapshot.open(out)
