"""Micro-benchmarks of the in-process check (issue 2 figures).

    python -m pytest bench/bench_check.py --benchmark-only -p no:randomly \
        --benchmark-columns=median,mean,ops,rounds

The snapshot is generated and built once per session (``BENCH_ENTRIES``, default 100,000)
under ``BENCH_DIR`` (default a temporary folder), reused when it exists.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.snapshots import generated_snapshot
from indexer.identifiers import ric_check_char
from indexer.snapshot import Snapshot
from screening.decision import Caller, CheckRequest, check, check_batch, resolve

SCENARIO = "government_procurement"
AS_OF = "2026-06-01T00:00:00+08:00"


@pytest.fixture(scope="session")
def snap() -> Snapshot:
    return generated_snapshot(100_000, "bench-check-")


def _find(snap: Snapshot, *, person: bool, min_links: int, min_hits: int) -> str:
    """A listed subject with at least ``min_links`` related subjects and ``min_hits`` hits."""
    a = snap.arrays
    links, entries, types = a["subject_links_off"], a["subject_entries_off"], a["subject_type"]
    for row in range(len(types)):
        if bool(types[row]) != person or links[row + 1] - links[row] < min_links:
            continue
        if not person and entries[row + 1] == entries[row]:
            continue
        sid = snap.subject_id(row)
        result = check(snap, CheckRequest(sid, SCENARIO, as_of=AS_OF), Caller())
        if len(result["hits"]) >= min_hits:
            return sid
    raise LookupError("no such subject in the generated snapshot")


def _clean_person() -> str:
    body = "35010219800101123"
    return body + ric_check_char(body)


def test_resolve_unlisted(benchmark: Any, snap: Snapshot) -> None:
    """Normalise + validate + look up an unlisted ID number (figure: median ≤ 3 µs)."""
    sid = _clean_person()
    assert resolve(snap, sid, None).row is None
    benchmark(resolve, snap, sid, None)


def test_check_unlisted(benchmark: Any, snap: Snapshot) -> None:
    """The whole check of an unlisted subject, response dict included."""
    request = CheckRequest(_clean_person(), SCENARIO, as_of=AS_OF)
    assert check(snap, request, Caller())["hits"] == []
    benchmark(check, snap, request, Caller())


def test_check_org_hit_with_linked_persons(benchmark: Any, snap: Snapshot) -> None:
    """A listed organisation with ≥ 3 linked persons, with explanations (figure: ≤ 30 µs)."""
    request = CheckRequest(_find(snap, person=False, min_links=3, min_hits=1), SCENARIO,
                           as_of=AS_OF)
    benchmark(check, snap, request, Caller())


def test_check_person_link_hits(benchmark: Any, snap: Snapshot) -> None:
    """A person reached through the organisations they run (linked:<role> hits)."""
    request = CheckRequest(_find(snap, person=True, min_links=1, min_hits=2), SCENARIO,
                           as_of=AS_OF)
    benchmark(check, snap, request, Caller())


def test_batch_1000_mostly_clean(benchmark: Any, snap: Snapshot) -> None:
    """A batch of 1,000 subjects, 1% listed: subjects per second = 1000 / mean."""
    listed = _find(snap, person=False, min_links=0, min_hits=1)
    items = [listed if i % 100 == 0 else
             (b := f"350102198{i % 10}0101{i % 1000:03d}") + ric_check_char(b)
             for i in range(1000)]
    benchmark(check_batch, snap, SCENARIO, items, Caller(), as_of=AS_OF)


def test_open_snapshot(benchmark: Any, snap: Snapshot) -> None:
    """Open + verify (checksums) the snapshot."""
    benchmark.pedantic(Snapshot.open, args=(snap.folder,), rounds=5, iterations=1)
