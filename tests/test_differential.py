"""Differential tests: the core (build + snapshot + check) against tests/naive.py.

For each random source, a real snapshot is built and many checks are compared on: the
decision; the set of hits as (entry, path, via id) with each hit's list, kind and set of
(measure id, action); the set of suppressed (entry, reason) — and with path and via; and the
top-level (clean_years) measures with their actions. ``as_of`` values sit exactly on, and one
second / one microsecond around, every validity bound, event time, derived watch end, and the
same instants N years later for the clean_years measures.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.differential import (DrawChooser, RandomChooser, Source, gen_checks, gen_source,
                                report, run)

@st.composite
def cases(draw: st.DrawFn) -> tuple[Source, list]:
    c = DrawChooser(draw)
    source = gen_source(c)
    checks = gen_checks(c, source, source.naive(), c.int(8, 20))
    return source, checks


@settings(max_examples=60, deadline=None, derandomize=False, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(cases())
def test_core_agrees_with_naive(case: tuple[Source, list]) -> None:
    source, checks = case
    mismatches = run(source, checks)
    assert not mismatches, report(source, mismatches)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_core_agrees_with_naive_large(seed: int) -> None:
    c = RandomChooser(seed)
    source = gen_source(c, n_subjects=(25, 30), n_entries=(200, 200), n_relations=(60, 60),
                        n_measures=12, n_lists=(4, 5), all_kinds=True)
    started = time.perf_counter()
    checks = gen_checks(c, source, source.naive(), 300)
    mismatches = run(source, checks)
    assert not mismatches, report(source, mismatches)
    assert time.perf_counter() - started < 120
