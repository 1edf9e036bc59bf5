"""Disagreements found by the differential tests, minimised and kept as explicit cases.

Each case is a tiny source and the checks on which the core disagreed with tests/naive.py
(or failed); the expected answer is also written out by hand, so the case does not depend on
the naive evaluator being right.
"""

from __future__ import annotations

from tests.differential import ORG_POOL, PERSON_POOL, Check, Source, naive_check, run

ORG = ORG_POOL[0]
PERSON = PERSON_POOL[0]
LISTS = [{"code": "L0.black", "name": "名单0", "kind": "black", "authority": "机关0"}]
MEASURES = [{"id": "M-0", "name": "措施0", "lists": ["L0.black"], "targets": ["subject"],
             "scenarios": ["government_procurement"], "force": "mandatory", "effect": "block"}]
SCENARIOS = [{"code": "government_procurement", "name": "政府采购"}]


def test_relations_without_entries() -> None:
    """Found 2026-11-22: a source with a relation but no entry made every check of the
    related organisation or person raise ``AttributeError: 'list' object has no attribute
    'tolist'`` in ``screening/decision.py`` (``entries_of``). §2: never a 500; §5: an unlisted
    subject passes."""
    source = Source(lists=LISTS, measures=MEASURES, scenarios=SCENARIOS, entries=[],
                    relations=[{"org": ORG, "person": PERSON, "role": "legal_rep",
                                "name": "某人"}],
                    events=[], orgs=[ORG], persons=[PERSON])
    checks = [Check(subject=s, scenario="government_procurement", as_of="2025-01-01",
                    tier=tier) for s in (ORG, PERSON) for tier in ("public", "agency")]
    naive = source.naive()
    for chk in checks:
        r = naive_check(naive, chk)
        assert (r.decision, r.hits, r.measures, r.suppressed) == ("pass", [], [], [])
    mismatches = run(source, checks)
    assert not mismatches, "\n".join(map(str, mismatches))
