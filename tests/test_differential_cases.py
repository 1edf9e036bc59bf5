"""The hand-computed sources of tests/test_naive_selfcheck.py, run through the core.

Each source is built into a real snapshot and checked at every boundary instant (and 1 s /
1 µs around it), for every subject, cycling through scenarios, tiers, regions, consent and
adopted measures; the core must agree with the naive evaluator on every check (same
comparison as tests/test_differential.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from tests.differential import NUDGES, Check, Source, boundaries, report, run
from tests.naive import CST
from tests.test_naive_selfcheck import SOURCES, SUBJECTS

TIERS = ("agency", "public", "issuer")
REGIONS = (("national", None), ("350102", None), ("national", "350100"), ("350000", "350102"))


def as_source(records: dict[str, Any]) -> Source:
    return Source(lists=list(records["lists"]), measures=list(records.get("measures", ())),
                  scenarios=list(records.get("scenarios", ())),
                  entries=list(records.get("entries", ())),
                  relations=list(records.get("relations", ())),
                  events=list(records.get("events", ())),
                  orgs=[s for s in SUBJECTS if not s[:17].isdigit()],
                  persons=[s for s in SUBJECTS if s[:17].isdigit()])


def grid(source: Source) -> list[Check]:
    naive = source.naive()
    scenarios = [s["code"] for s in source.scenarios]
    recommended = tuple(m["id"] for m in source.measures if m["force"] == "recommended")
    combos = itertools.cycle(itertools.product(TIERS, REGIONS, (None, "C-1"),
                                               ((), recommended), scenarios))
    checks = []
    for point in boundaries(source, naive):
        for nudge in sorted(set(NUDGES)):
            as_of = (point + nudge).astimezone(CST).isoformat()
            for subject in SUBJECTS:
                tier, (caller_region, region), consent, adopted, scenario = next(combos)
                checks.append(Check(subject=subject, scenario=scenario, as_of=as_of,
                                    tier=tier, caller_region=caller_region, region=region,
                                    consent=consent, adopted=adopted))
    return checks


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_hand_written_sources(name: str) -> None:
    source = as_source(SOURCES[name])
    checks = grid(source)
    assert len(checks) > 100
    mismatches = run(source, checks)
    assert not mismatches, report(source, mismatches)


def test_grid_hits_the_boundaries() -> None:
    """The grid really checks on, and 1 µs before, the validity bounds of the sources."""
    checks = grid(as_source(SOURCES["validity"]))
    instants = {dt.datetime.fromisoformat(c.as_of) for c in checks}
    start = dt.datetime(2025, 3, 1, tzinfo=CST)
    assert start in instants and start - dt.timedelta(microseconds=1) in instants
    assert dt.datetime(2025, 9, 11, tzinfo=CST) in instants            # derived watch end
