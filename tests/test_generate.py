"""The benchmark source generator (bench.generate): deterministic, valid, consistent."""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from bench.generate import generate, main
from bench.subjects import Population, registration_number_check
from indexer import identifiers

ENTRIES = 2_000
ROLES = {"legal_rep", "principal", "actual_controller", "direct_responsible", "director",
         "supervisor", "senior_manager", "shareholder", "practitioner"}


def _read(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return [orjson.loads(line) for line in data.splitlines()]


def _folder(root: Path, name: str) -> list[dict[str, Any]]:
    return [r for p in sorted((root / name).iterdir()) for r in _read(p)]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("source")
    counts = generate(root, entries=ENTRIES, seed=7, lines_per_file=700, progress=False)
    assert counts["entries"] == ENTRIES
    assert counts["files"]["entries"] == 3  # 700 + 700 + 600
    return root


def test_same_seed_same_bytes(source: Path, tmp_path: Path) -> None:
    generate(tmp_path, entries=ENTRIES, seed=7, lines_per_file=700, progress=False)
    assert _files(tmp_path) == _files(source)


def test_other_seed_other_data(source: Path, tmp_path: Path) -> None:
    generate(tmp_path, entries=ENTRIES, seed=8, lines_per_file=700, progress=False)
    assert _files(tmp_path)["entries/entries-00000.jsonl"] != \
        _files(source)["entries/entries-00000.jsonl"]


def test_gz_is_the_same_data_compressed(tmp_path: Path) -> None:
    generate(tmp_path / "plain", entries=300, seed=3, progress=False)
    generate(tmp_path / "gz", entries=300, seed=3, gz=True, progress=False)
    generate(tmp_path / "gz2", entries=300, seed=3, gz=True, progress=False)
    assert _files(tmp_path / "gz") == _files(tmp_path / "gz2")  # no timestamp in the header
    for name in ("entries", "relations", "events"):
        plain = b"".join(p.read_bytes() for p in sorted((tmp_path / "plain" / name).iterdir()))
        packed = sorted((tmp_path / "gz" / name).iterdir())
        assert all(p.name.endswith(".jsonl.gz") for p in packed)
        assert b"".join(gzip.decompress(p.read_bytes()) for p in packed) == plain


def _prefix(code: str) -> str:
    while code.endswith("00"):
        code = code[:-2]
    return code


def _listed_records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["record"] for e in events if e["type"] == "listed"]


def test_identifiers_are_valid_and_org_codes_unique(source: Path) -> None:
    events = _folder(source, "events")
    entries = _folder(source, "entries") + _listed_records(events)
    relations = _folder(source, "relations")
    orgs: set[str] = set()
    persons: set[str] = set()
    for e in entries:
        subject = e["subject"]
        (orgs if subject["type"] == "org" else persons).add(subject["id"])
        persons.update(p["id"] for p in e.get("persons", []))
        for alias in subject.get("aliases", []):
            assert len(alias) == 15 and alias.isdigit()
            assert alias[14] == registration_number_check(alias[:14])
    for r in relations:
        orgs.add(r["org"])
        persons.add(r["person"])
    for uscc in orgs:
        ident = identifiers.parse(uscc, "org")
        assert ident.form == "uscc" and ident.value == uscc
        assert identifiers.parse(uscc).type == "org"  # not mistaken for an ID number
    for ric in persons:
        ident = identifiers.parse(ric, "person")
        assert ident.value == ric
        assert "19500101" <= ric[6:14] <= "20041231"
    codes = {u[8:17] for u in orgs}
    assert len(codes) == len(orgs)  # a 9-character organisation code finds one USCC
    assert orgs.isdisjoint(persons)
    aliases = [a for e in entries for a in e["subject"].get("aliases", [])]
    by_alias: defaultdict[str, set[str]] = defaultdict(set)
    for e in entries:
        for a in e["subject"].get("aliases", []):
            by_alias[a].add(e["subject"]["id"])
    assert aliases and all(len(ids) == 1 for ids in by_alias.values())


def test_vectorised_check_characters_match_identifiers() -> None:
    pop = Population(11)
    ks = np.arange(0, 30_000, 3, dtype=np.int64)
    orgs = pop.orgs(ks, (ks % 7 == 0).astype(np.uint8))
    for uscc in orgs.uscc:
        assert uscc[16] == identifiers.org_code_check_char(uscc[8:16])
        assert uscc[17] == identifiers.uscc_check_char(uscc[:17])
    assert {u[:2] for u in orgs.uscc} >= {"91", "92", "12", "51", "52", "N2", "Y1"}
    ids, names = pop.persons(ks * 8 + 5)
    assert all(i[17] == identifiers.ric_check_char(i[:17]) for i in ids)
    assert len(set(ids)) == len(ids) and all(2 <= len(n) <= 4 for n in names)


def test_catalogue_references_resolve(source: Path) -> None:
    lists = {r["code"]: r for r in _read(source / "lists.jsonl")}
    scenarios = {r["code"] for r in _read(source / "scenarios.jsonl")}
    measures = _read(source / "measures.jsonl")
    assert {"government_procurement", "bidding", "administrative_license", "fiscal_funds",
            "customs_clearance", "honors", "soe_appointment"} <= scenarios
    for code, lst in lists.items():
        assert lst["kind"] in ("red", "black", "watch")
        assert lst["publicity"] in ("public", "shared", "authorized")
        if "exit_watch_list" in lst:
            assert lst["kind"] == "black"
            assert lists[lst["exit_watch_list"]]["kind"] == "watch"
    assert any(not lst["objection_suspends"] for lst in lists.values())
    assert {lst["publicity"] for lst in lists.values()} == {"public", "shared", "authorized"}
    assert len({m["id"] for m in measures}) == len(measures)
    for m in measures:
        assert set(m["lists"]) <= set(lists), m["id"]
        assert set(m["scenarios"]) <= scenarios, m["id"]
        assert m["force"] in ("mandatory", "recommended")
        assert m["effect"] in ("block", "review", "alert", "green")
        for target in m["targets"]:
            prefix, _, role = target.partition(":")
            assert target == "subject" or (prefix in ("linked", "org_of") and role in ROLES)
        if "clean_years" in m:
            assert m["effect"] == "green" and m["lists"] == []
    targets = {t.partition(":")[0] for m in measures for t in m["targets"]}
    assert targets == {"subject", "linked", "org_of"}


def test_entries_are_consistent(source: Path) -> None:
    lists = {r["code"]: r for r in _read(source / "lists.jsonl")}
    events = _folder(source, "events")
    entries = _folder(source, "entries") + _listed_records(events)
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == len(ids)
    assert not any(i.endswith("/watch") for i in ids)
    kinds: defaultdict[str, int] = defaultdict(int)
    for e in entries:
        assert e["list"] in lists
        kinds[lists[e["list"]]["kind"]] += 1
        assert e["publicity"] in ("public", "shared", "authorized")
        start = e["valid_from"][:10]
        if e["valid_until"] is not None:
            assert e["valid_until"] > start
        assert e["scope"] == "national" or _prefix(e["region"]).startswith(_prefix(e["scope"]))
        assert all(p["role"] in ROLES for p in e.get("persons", []))
    assert set(kinds) == {"red", "black", "watch"}
    subjects = [e["subject"]["type"] for e in entries]
    assert 0.05 < subjects.count("person") / len(subjects) < 0.4


def test_relations_and_links(source: Path) -> None:
    relations = _folder(source, "relations")
    entries = _folder(source, "entries")
    assert {r["role"] for r in relations} <= ROLES
    assert {"legal_rep", "director", "shareholder", "actual_controller"} <= \
        {r["role"] for r in relations}
    assert 1.5 < len(relations) / ENTRIES < 2.5
    orgs_of: defaultdict[str, set[str]] = defaultdict(set)
    for r in relations:
        orgs_of[r["person"]].add(r["org"])
    assert any(len(o) > 1 for o in orgs_of.values())  # some persons run several orgs
    listed_orgs = {e["subject"]["id"] for e in entries if e["subject"]["type"] == "org"}
    listed_persons = {e["subject"]["id"] for e in entries if e["subject"]["type"] == "person"}
    assert listed_orgs <= {r["org"] for r in relations}
    assert listed_persons & set(orgs_of)  # listed persons reach organisations (org_of:)
    rep = {(r["org"], r["person"]) for r in relations if r["role"] == "legal_rep"}
    named = [(e["subject"]["id"], p["id"]) for e in entries for p in e.get("persons", [])
             if p["role"] == "legal_rep"]
    assert named and all(pair in rep for pair in named)


def test_events(source: Path) -> None:
    events = _folder(source, "events")
    known = {e["id"] for e in _folder(source, "entries")}
    ids = [v["id"] for v in events]
    assert len(set(ids)) == len(ids)
    last: dict[str, str] = {}
    types = set()
    for v in events:
        assert v["at"].endswith("+08:00") and len(v["at"]) == 25
        types.add(v.get("reason") or v.get("result") or v["type"])
        if v["type"] == "listed":
            assert v["record"]["id"] not in known
            known.add(v["record"]["id"])
            last[v["record"]["id"]] = v["at"]
            continue
        entry = v["entry"]
        assert entry in known and not entry.endswith("/watch")
        assert v["at"] > last.get(entry, "")
        last[entry] = v["at"]
    assert {"objection_opened", "rejected", "upheld", "revoked", "listed", "repaired",
            "fulfilled", "expired"} <= types


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--entries", "50", "--seed", "2", "--events-share", "0"]) == 0
    counts = orjson.loads(capsys.readouterr().out)
    assert counts["entries"] == 50 and counts["events"] == 0
    assert not list((tmp_path / "events").iterdir())


def test_source_builds_without_rejects(source: Path, tmp_path: Path) -> None:
    build = pytest.importorskip("indexer.build")
    result = build.build(source, tmp_path, max_rejects=0)
    assert result.rejects == 0
