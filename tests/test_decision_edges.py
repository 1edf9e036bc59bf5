"""Edges of the check outside the rule tables: as_of bounds, the cached unlisted answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.build import build
from indexer.snapshot import Snapshot
from screening.decision import Caller, CheckRequest, check
from screening.errors import Invalid

from .sourcekit import write_source

ORG = "91350100M000100Y43"
PERSON = "11010519491231002X"  # related to ORG only: in the snapshot, with no entries
STRANGER = "110105198001011238"  # in no record at all


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    root = tmp_path_factory.mktemp("edges")
    write_source(
        root / "src",
        lists=[{"code": "b", "kind": "black"}],
        scenarios=[{"code": "honors", "name": "评先评优"}, {"code": "bidding", "name": "招投标"}],
        measures=[{"id": "CY3", "name": "容缺", "lists": [], "targets": ["subject"],
                   "scenarios": ["honors"], "force": "recommended", "effect": "green",
                   "clean_years": 3},
                  {"id": "CY5", "name": "绿色通道", "lists": [], "targets": ["subject"],
                   "scenarios": ["honors"], "force": "mandatory", "effect": "green",
                   "clean_years": 5}],
        entries=[{"id": "E1", "list": "b", "valid_from": "2025-01-01",
                  "subject": {"type": "org", "id": ORG}}],
        relations=[{"org": ORG, "person": PERSON, "role": "director"}])
    return Snapshot.open(build(root / "src", root / "out").path)


@pytest.mark.parametrize("as_of", ["1799-12-31T23:59:59+08:00", "9000-01-01",
                                   "9999-12-31T23:59:59-12:00"])
def test_as_of_out_of_range_is_422(snap: Snapshot, as_of: str) -> None:
    with pytest.raises(Invalid) as err:
        check(snap, CheckRequest(ORG, "honors", as_of=as_of), Caller())
    assert err.value.code == "bad_as_of" and err.value.status == 422


def test_as_of_bounds_inclusive_low(snap: Snapshot) -> None:
    assert check(snap, CheckRequest(ORG, "honors", as_of="1800-01-01"), Caller())["decision"] == "green"


@pytest.mark.parametrize("scenario", ["honors", "bidding"])
@pytest.mark.parametrize("as_of", ["2020-02-29T12:00:00+08:00", "2026-11-22"])
def test_unlisted_answer_equals_general_path(snap: Snapshot, scenario: str, as_of: str) -> None:
    """A subject found nowhere (cached answer) decides like one present with no entries."""
    present = check(snap, CheckRequest(PERSON, scenario, as_of=as_of), Caller())
    nowhere = check(snap, CheckRequest(STRANGER, scenario, as_of=as_of), Caller())
    assert snap.lookup(PERSON) is not None and snap.lookup(STRANGER) is None
    for key in ("decision", "hits", "measures", "suppressed"):
        assert present[key] == nowhere[key]
    expected = ["CY3", "CY5"] if scenario == "honors" else []
    assert [m["id"] for m in nowhere["measures"]] == expected
    assert nowhere["decision"] == ("green" if expected else "pass")
    nowhere["measures"].clear()  # a caller mutating its answer must not change the next one
    again = check(snap, CheckRequest(STRANGER, scenario, as_of=as_of), Caller())
    assert [m["id"] for m in again["measures"]] == expected
