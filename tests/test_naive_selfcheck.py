"""Hand-computed answers for the naive evaluator (tests/naive.py), so that it can be trusted
as the reference of the differential tests."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.naive import (CST, Naive, is_valid_id, is_valid_uscc, make_id, make_uscc, mask_id,
                         parse_time, scope_covers, shift_years, subject_type)

ORG = "91350100M000100Y43"
ORG2 = make_uscc("91350100", "MA2Y3K4R")
PERSON = "11010519491231002X"
PERSON2 = make_id("350102", dt.date(1980, 2, 29), "123")

LISTS = [
    {"code": "black.a", "name": "A", "kind": "black", "authority": "X", "publicity": "public",
     "exit_watch_list": "watch.a", "exit_watch_days": 10},
    {"code": "black.nosusp", "name": "B", "kind": "black", "authority": "X",
     "publicity": "shared", "objection_suspends": False},
    {"code": "watch.a", "name": "W", "kind": "watch", "authority": "X", "publicity": "shared"},
    {"code": "red.a", "name": "R", "kind": "red", "authority": "X", "publicity": "public"},
]
SCENARIOS = [{"code": "gp", "name": "GP"}, {"code": "honors", "name": "H"}]
MEASURES = [
    {"id": "M-block", "lists": ["black.a"], "targets": ["subject", "linked:legal_rep"],
     "scenarios": ["gp"], "force": "mandatory", "effect": "block"},
    {"id": "M-rec", "lists": ["black.nosusp"], "targets": ["subject", "org_of:director"],
     "scenarios": ["gp"], "force": "recommended", "effect": "block"},
    {"id": "M-watch", "lists": ["watch.a"], "targets": ["subject"], "scenarios": ["gp"],
     "force": "recommended", "effect": "alert"},
    {"id": "M-green", "lists": ["red.a"], "targets": ["subject"], "scenarios": ["gp", "honors"],
     "force": "recommended", "effect": "green"},
    {"id": "M-clean", "lists": [], "targets": ["subject"], "scenarios": ["honors"],
     "force": "recommended", "effect": "green", "clean_years": 3},
]


def entry(id: str, lst: str, subj: str, vf: str, vu: str | None = None, **kw: object) -> dict:
    typ = "person" if len(subj) == 18 and subj[:17].isdigit() and is_valid_id(subj) else "org"
    rec = {"id": id, "list": lst, "subject": {"type": typ, "id": subj, "name": "n"},
           "authority": "X", "region": "350100", "valid_from": vf, "valid_until": vu}
    rec.update(kw)
    return rec


def test_identifiers() -> None:
    assert make_uscc("91350100", "M000100Y") == ORG
    assert make_id("110105", dt.date(1949, 12, 31), "002") == PERSON
    assert is_valid_uscc(ORG) and is_valid_uscc(ORG2)
    assert not is_valid_uscc(ORG[:-1] + "0")
    assert is_valid_id(PERSON) and is_valid_id(PERSON2)
    assert not is_valid_id("11010519491231002Y")
    assert subject_type(PERSON) == "person" and subject_type(ORG) == "org"
    assert mask_id(PERSON) == "1101051949****002X"


def test_times_and_regions() -> None:
    assert parse_time("2025-03-01") == dt.datetime(2025, 3, 1, tzinfo=CST)
    assert parse_time("2025-02-28T16:00:00+00:00") == parse_time("2025-03-01")
    assert parse_time("2025-03-01T00:00:00") == parse_time("2025-03-01")
    assert shift_years(parse_time("2028-02-29T10:00:00+08:00"), -1) == \
        dt.datetime(2027, 2, 28, 10, tzinfo=CST)
    # 2024-02-29T20:00Z is 2024-03-01 04:00 CST: years are counted in CST.
    assert shift_years(parse_time("2024-02-29T20:00:00+00:00"), -1) == \
        dt.datetime(2023, 3, 1, 4, tzinfo=CST)
    assert scope_covers("national", "national") and scope_covers("national", "350102")
    assert scope_covers("350000", "350102") and scope_covers("35", "350102")
    assert scope_covers("350100", "350102") and scope_covers("350102", "350102")
    assert not scope_covers("350102", "350100")
    assert not scope_covers("35", "national")
    assert not scope_covers("3502", "350102")


SRC_VALIDITY = dict(
    lists=LISTS, measures=MEASURES, scenarios=SCENARIOS,
    entries=[entry("E1", "black.a", ORG, "2025-03-01", "2026-03-01")],
    events=[
        {"id": "V1", "at": "2025-06-01T10:00:00+08:00", "entry": "E1",
         "type": "objection_opened"},
        {"id": "V2", "at": "2025-06-02T10:00:00+08:00", "entry": "E1",
         "type": "objection_closed", "result": "rejected"},
        {"id": "V3", "at": "2025-09-01T00:00:00+08:00", "entry": "E1", "type": "exited",
         "reason": "repaired"},
    ])


def test_validity_exit_watch_and_objections() -> None:
    naive = Naive(**SRC_VALIDITY)

    def dec(as_of: str, **kw: object) -> tuple[str, set, set]:
        r = naive.check(ORG, "gp", as_of=as_of, **kw)
        return r.decision, r.hit_keys(), {(s[0], s[3]) for s in r.suppressed}

    assert dec("2025-02-28T23:59:59.999999+08:00") == ("pass", set(), set())
    assert dec("2025-03-01") == ("block", {("E1", "subject", None)}, set())
    assert dec("2025-06-01T10:00:00+08:00") == ("pass", set(), {("E1", "objection_pending")})
    assert dec("2025-06-02T09:59:59+08:00") == ("pass", set(), {("E1", "objection_pending")})
    assert dec("2025-06-02T10:00:00+08:00")[0] == "block"
    assert dec("2025-08-31T23:59:59+08:00")[0] == "block"
    # Exit at 2025-09-01: derived watch over [2025-09-01, 2025-09-11), shared publicity.
    assert dec("2025-09-01") == ("alert", {("E1/watch", "subject", None)}, set())
    assert dec("2025-09-01", tier="public") == ("pass", set(), set())
    assert dec("2025-09-10T23:59:59+08:00")[0] == "alert"
    assert dec("2025-09-11") == ("pass", set(), set())


SRC_WATCH = dict(
    lists=LISTS, measures=MEASURES, scenarios=SCENARIOS,
    entries=[entry("E1", "black.a", ORG, "2025-03-01", "2025-04-01")],
    events=[{"id": "V1", "at": "2025-03-20T00:00:00+08:00", "entry": "E1",
             "type": "objection_opened"}])


def test_watch_from_valid_until_not_suspended_by_objection() -> None:
    naive = Naive(**SRC_WATCH)
    r = naive.check(ORG, "gp", as_of="2025-03-31T23:59:59+08:00")
    assert r.decision == "pass" and [s[0] for s in r.suppressed] == ["E1"]
    r = naive.check(ORG, "gp", as_of="2025-04-01")
    assert r.decision == "alert" and r.hit_keys() == {("E1/watch", "subject", None)}
    assert r.suppressed == []


TIE_AT = "2025-05-01T00:00:00+08:00"
_TIE_COMMON = dict(lists=LISTS, measures=MEASURES, scenarios=SCENARIOS,
                   entries=[entry("E1", "black.a", ORG, "2025-03-01")])
_OPENED = {"id": "V1", "at": TIE_AT, "entry": "E1", "type": "objection_opened"}
_CLOSED = {"id": "V2", "at": "2025-04-30T16:00:00+00:00", "entry": "E1",
           "type": "objection_closed", "result": "rejected"}       # the same instant
SRC_TIE_OPEN_CLOSE = dict(events=[_OPENED, _CLOSED], **_TIE_COMMON)
SRC_TIE_CLOSE_OPEN = dict(events=[_CLOSED, _OPENED], **_TIE_COMMON)


def test_objection_ties_follow_file_order() -> None:
    at = TIE_AT
    # Opened then closed at the same instant: never open.
    naive = Naive(**SRC_TIE_OPEN_CLOSE)  # type: ignore[arg-type]
    assert naive.check(ORG, "gp", as_of=at).decision == "block"
    # Closed (nothing open) then opened: open from `at` on.
    naive = Naive(**SRC_TIE_CLOSE_OPEN)  # type: ignore[arg-type]
    assert naive.check(ORG, "gp", as_of=at).decision == "pass"
    assert naive.check(ORG, "gp", as_of="2025-04-30T23:59:59+08:00").decision == "block"


SRC_PURGES = dict(
    lists=LISTS, measures=MEASURES, scenarios=SCENARIOS,
    entries=[entry("E1", "black.nosusp", ORG, "2025-03-01"),
             entry("E2", "black.a", ORG2, "2025-03-01", "2025-05-01"),
             entry("E3", "black.a", PERSON, "2025-03-01", "2025-05-01")],
    events=[
        {"id": "V1", "at": "2025-03-10T00:00:00+08:00", "entry": "E1",
         "type": "objection_opened"},
        {"id": "V2", "at": "2025-03-10T00:00:00+08:00", "entry": "E2", "type": "revoked"},
        {"id": "V3", "at": "2025-03-10T00:00:00+08:00", "entry": "E3",
         "type": "objection_opened"},
        {"id": "V4", "at": "2026-03-10T00:00:00+08:00", "entry": "E3",
         "type": "objection_closed", "result": "upheld"},
        {"id": "V5", "at": "2025-01-01T00:00:00+08:00", "type": "listed",
         "record": entry("E4", "red.a", ORG2, "2025-01-01")},
    ])


def test_no_suspension_and_purges() -> None:
    naive = Naive(**SRC_PURGES)
    # Not suspended on black.nosusp; recommended block not adopted -> review.
    r = naive.check(ORG, "gp", as_of="2025-03-11")
    assert r.decision == "review" and r.hits[0].measures == [("M-rec", "review")]
    r = naive.check(ORG, "gp", as_of="2025-03-11", adopted={"M-rec"})
    assert r.decision == "block"
    # shared entry invisible to the public tier.
    assert naive.check(ORG, "gp", as_of="2025-03-11", tier="public").hits == []
    # Purged entries: never, not even before the purge, and no derived watch.
    for as_of in ("2025-03-02", "2025-05-02"):
        assert naive.check(ORG2, "gp", as_of=as_of).hit_keys() == {("E4", "subject", None)}
        assert naive.check(PERSON, "gp", as_of=as_of).hits == []
    # Listed record counts as source; red, green measure.
    assert naive.check(ORG2, "gp", as_of="2025-01-01").decision == "green"


SRC_LINKS = dict(
    lists=LISTS, measures=MEASURES, scenarios=SCENARIOS,
    entries=[
        entry("E1", "black.a", ORG, "2025-01-01", scope="35",
              persons=[{"role": "legal_rep", "id": PERSON2, "name": "p"}]),
        entry("E2", "black.nosusp", PERSON, "2025-01-01", publicity="authorized"),
        entry("E3", "red.a", PERSON, "2025-01-01"),
        entry("E4", "red.a", ORG2, "2025-01-01"),
    ],
    relations=[{"org": ORG, "person": PERSON, "role": "legal_rep", "name": "p"},
               {"org": ORG, "person": PERSON, "role": "director", "name": "p"},
               {"org": ORG2, "person": PERSON, "role": "director", "name": "p"}])


def test_links_red_conflict_and_visibility() -> None:
    naive = Naive(**SRC_LINKS)
    t = "2025-02-01"
    # Person via relation: linked:legal_rep reaches E1 (scope 35 covers 350102 only).
    r = naive.check(PERSON, "gp", as_of=t, caller_region="350102")
    assert r.hit_keys() == {("E1", "linked:legal_rep", ORG), ("E3", "subject", None)}
    assert r.decision == "block"
    r = naive.check(PERSON, "gp", as_of=t)          # national region: scope 35 not covering
    assert r.hit_keys() == {("E3", "subject", None)} and r.decision == "green"
    # Authorized own black entry only with consent; then the red entry is suppressed.
    r = naive.check(PERSON, "gp", as_of=t, consent="C1")
    assert r.hit_keys() == {("E2", "subject", None)}
    assert r.suppressed == [("E3", "subject", None, "red_conflict")]
    assert r.decision == "review"
    # Person named in the entry's persons.
    r = naive.check(PERSON2, "gp", as_of=t, region="350100")
    assert r.hit_keys() == {("E1", "linked:legal_rep", ORG)}
    # No measure for linked:legal_rep in honors: no link hit.
    r = naive.check(PERSON2, "honors", as_of=t, region="350100")
    assert r.hit_keys() == set() and r.decision == "green"
    # Org via org_of:director -> E2 (authorized, needs consent).
    r = naive.check(ORG2, "gp", as_of=t, consent="C1")
    assert r.hit_keys() == {("E2", "org_of:director", PERSON), ("E4", "subject", None)}
    assert r.decision == "review"
    r = naive.check(ORG2, "gp", as_of=t)
    assert r.hit_keys() == {("E4", "subject", None)} and r.decision == "green"
    # The public tier sees the person through whom it was reached masked.
    r = naive.check(ORG2, "gp", as_of=t, consent="C1", tier="public")
    assert r.hit_keys() == {("E2", "org_of:director", "1101051949****002X"),
                            ("E4", "subject", None)}


SRC_CLEAN = dict(
    lists=LISTS, measures=MEASURES, scenarios=SCENARIOS,
    entries=[entry("E1", "black.nosusp", ORG, "2021-01-01", "2022-03-01"),
             entry("E2", "black.a", PERSON, "2021-01-01", "2021-06-01"),
             entry("E3", "red.a", PERSON2, "2021-01-01")],
    events=[{"id": "V1", "at": "2021-02-01T00:00:00+08:00", "entry": "E2",
             "type": "objection_opened"}])


def test_clean_years() -> None:
    naive = Naive(**SRC_CLEAN)
    # E1 in effect until 2022-03-01 exclusive: 3 years back from 2025-03-01 is 2022-03-01.
    assert naive.check(ORG, "honors", as_of="2025-02-28T23:59:59+08:00",
                       tier="agency").measures == []
    assert naive.check(ORG, "honors", as_of="2025-03-01").measures == [("M-clean", "green")]
    # Invisible (shared) entries don't count for the public tier.
    assert naive.check(ORG, "honors", as_of="2024-06-01", tier="public").decision == "green"
    # E2 in effect over [2021-01-01, 2021-02-01) (then suspended, then its watch from
    # 2021-06-01 to 2021-06-11).
    assert naive.check(PERSON, "honors", as_of="2024-06-11").decision == "green"
    assert naive.check(PERSON, "honors", as_of="2024-06-10T23:59:59+08:00",
                       tier="public").decision == "green"        # watch is shared
    assert naive.check(PERSON, "honors", as_of="2024-06-10T23:59:59+08:00").decision == "pass"
    # Never listed (or only red-listed) qualifies.
    assert naive.check(ORG2, "honors", as_of="2025-01-01").decision == "green"
    assert naive.check(PERSON2, "honors", as_of="2025-01-01").decision == "green"
    assert naive.check(ORG2, "gp", as_of="2025-01-01").decision == "pass"


SRC_LEAP = dict(lists=LISTS, measures=[{**MEASURES[4], "clean_years": 1}],
                scenarios=SCENARIOS,
                entries=[entry("E1", "black.a", ORG, "2027-01-01",
                               "2027-02-28T12:00:00.000001+08:00")])

# Every hand-written source above, for tests/test_differential_cases.py.
SOURCES = {"validity": SRC_VALIDITY, "watch": SRC_WATCH, "tie_open_close": SRC_TIE_OPEN_CLOSE,
           "tie_close_open": SRC_TIE_CLOSE_OPEN, "purges": SRC_PURGES, "links": SRC_LINKS,
           "clean": SRC_CLEAN, "leap": SRC_LEAP}
SUBJECTS = (ORG, ORG2, PERSON, PERSON2)


@pytest.mark.parametrize("as_of,expected", [
    ("2027-02-28T12:00:00+08:00", "pass"),           # in effect
    ("2028-02-28T12:00:00+08:00", "pass"),           # back to 2027-02-28 12:00
    ("2028-02-29T12:00:00+08:00", "pass"),           # 29 Feb -> 28 Feb 2027 12:00
    ("2028-02-29T12:00:00.000001+08:00", "green"),   # back to just after the end
    ("2028-02-29T04:00:00.000001Z", "green"),        # same instant, offset irrelevant
])
def test_clean_years_leap_day(as_of: str, expected: str) -> None:
    naive = Naive(**SRC_LEAP)
    assert naive.check(ORG, "honors", as_of=as_of, tier="public").decision == expected
