"""One test (or one parametrized case) per rule of SPEC §3 (events, purge, rejects), §4 and §5.

Every answer is written out literally, worked out by hand from the SPEC on small hand-written
sources; nothing here is computed by another evaluator. Times are China Standard Time
(+08:00) unless written otherwise; a bare date is 00:00 CST, so ``2025-03-01`` starts at
``2025-02-28T16:00:00Z``. "1µs before" cases use ``.999999``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from indexer.build import BuildFailed, build
from indexer.identifiers import org_code_check_char, ric_check_char, uscc_check_char
from indexer.snapshot import Snapshot
from screening.decision import Caller, CheckRequest, check
from screening.errors import ScreeningError
from tests.sourcekit import write_jsonl, write_source

# --------------------------------------------------------------------------------------------
# Identifiers (SPEC §2). The two standard examples, plus valid ones made with the check
# characters (organisation codes contain a letter, so no org code can pass as an ID number).

ORG_A = "91350100M000100Y43"
PERSON_A = "11010519491231002X"
PERSON_A_MASKED = "1101051949****002X"


def make_org(n: int) -> str:
    org8 = f"MA{n:06d}"
    body = "91350100" + org8 + org_code_check_char(org8)
    return body + uscc_check_char(body)


def make_person(n: int) -> str:
    body = f"35010219800101{n:03d}"
    return body + ric_check_char(body)


_orgs = iter(range(1, 1000))
_persons = iter(range(1, 1000))


def org() -> str:
    return make_org(next(_orgs))


def person() -> str:
    return make_person(next(_persons))


# --------------------------------------------------------------------------------------------
# Catalogue shared by every snapshot below.

L_BLACK = "court.dishonest_debtor"      # black, public, suspends (explicit), exit → watch 365 d
L_WATCH = "watch.after_black"           # watch, shared (the exit-to-watch list)
L_BLACK2 = "market.serious_dishonest"   # black, public, objection_suspends omitted (default)
L_TONGHUA = "tonghua.black"             # black, public, objection_suspends false (通化)
L_RED = "tax.a_grade"                   # red, public
L_SHARED = "gov.shared_black"           # black, shared
L_AUTH = "credit.authorized_black"      # black, authorized
L_WATCH2 = "market.watch"               # watch, public

LISTS = [
    {"code": L_BLACK, "name": "失信被执行人名单", "kind": "black", "authority": "最高人民法院",
     "publicity": "public", "objection_suspends": True, "exit_watch_list": L_WATCH,
     "exit_watch_days": 365},
    {"code": L_WATCH, "name": "黑名单退出后重点关注名单", "kind": "watch",
     "authority": "最高人民法院", "publicity": "shared"},
    {"code": L_BLACK2, "name": "严重违法失信名单", "kind": "black",
     "authority": "国家市场监督管理总局", "publicity": "public"},
    {"code": L_TONGHUA, "name": "通化市失信黑名单", "kind": "black",
     "authority": "通化市发展和改革委员会", "publicity": "public", "objection_suspends": False},
    {"code": L_RED, "name": "A级纳税人名单", "kind": "red", "authority": "国家税务总局",
     "publicity": "public"},
    {"code": L_SHARED, "name": "政务共享失信名单", "kind": "black", "authority": "某部门",
     "publicity": "shared"},
    {"code": L_AUTH, "name": "授权查询失信名单", "kind": "black", "authority": "某部门",
     "publicity": "authorized"},
    {"code": L_WATCH2, "name": "重点关注名单", "kind": "watch", "authority": "某部门",
     "publicity": "public"},
]

SCENARIOS = [{"code": c, "name": n} for c, n in [
    ("government_procurement", "政府采购"), ("bidding", "招标投标"),
    ("administrative_license", "行政许可"), ("fiscal_funds", "财政资金"),
    ("customs_clearance", "海关通关"), ("honors", "评先评优"),
    ("soe_appointment", "国有企业任职")]]


def measure(mid: str, lists: list[str], targets: list[str], scenario: str, force: str,
            effect: str, **extra: Any) -> dict[str, Any]:
    return {"id": mid, "name": f"措施 {mid}", "lists": lists, "targets": targets,
            "scenarios": [scenario], "force": force, "effect": effect,
            "implementer": "某部门", "basis": f"依据 {mid}", **extra}


MEASURES = [
    # government_procurement
    measure("M-GP-1", [L_BLACK, L_BLACK2, L_TONGHUA, L_SHARED, L_AUTH], ["subject"],
            "government_procurement", "mandatory", "block"),
    measure("M-GP-2", [L_WATCH, L_WATCH2], ["subject"], "government_procurement",
            "mandatory", "alert"),
    measure("M-GP-3", [L_RED], ["subject"], "government_procurement", "recommended", "green"),
    # bidding
    measure("M-BID-1", [L_BLACK], ["subject"], "bidding", "recommended", "block"),
    measure("M-BID-2", [L_BLACK], ["subject"], "bidding", "recommended", "review"),
    measure("M-BID-3", [L_WATCH2], ["subject"], "bidding", "recommended", "alert"),
    # administrative_license
    measure("M-AL-1", [L_BLACK], ["subject"], "administrative_license", "mandatory", "review"),
    measure("M-AL-2", [L_SHARED], ["subject"], "administrative_license", "mandatory", "block"),
    measure("M-AL-3", [L_WATCH2], ["subject"], "administrative_license", "mandatory", "alert"),
    measure("M-AL-4", [L_RED], ["subject"], "administrative_license", "mandatory", "green"),
    # fiscal_funds
    measure("M-FF-1", [L_RED], ["subject"], "fiscal_funds", "recommended", "green"),
    measure("M-FF-2", [L_BLACK], ["linked:legal_rep"], "fiscal_funds", "recommended", "alert"),
    # soe_appointment
    measure("M-SOE-1", [L_BLACK], ["linked:legal_rep", "linked:director"], "soe_appointment",
            "mandatory", "block"),
    measure("M-SOE-2", [L_BLACK], ["org_of:legal_rep", "org_of:director"], "soe_appointment",
            "mandatory", "review"),
    # honors: 连续 3 年无不良信用记录
    measure("M-HON-1", [], ["subject"], "honors", "recommended", "green", clean_years=3),
    # customs_clearance: no measure at all
]

CATALOGUE = {"lists": LISTS, "measures": MEASURES, "scenarios": SCENARIOS}

AS_OF = "2026-06-01T12:00:00+08:00"


def entry(eid: str, lst: str, subject: str, *, vf: str = "2025-01-01", vu: str | None = None,
          name: str = "某某主体", **extra: Any) -> dict[str, Any]:
    stype = "person" if subject[:17].isdigit() else "org"
    return {"id": eid, "list": lst,
            "subject": {"type": stype, "id": subject, "name": name,
                        **({"aliases": extra.pop("aliases")} if "aliases" in extra else {})},
            "authority": extra.pop("authority", "福州市中级人民法院"),
            "region": extra.pop("region", "350100"),
            "valid_from": vf, "valid_until": vu,
            "reason": "有履行能力而拒不履行生效法律文书确定义务",
            "basis": f"（2024）闽01执{eid}号",
            **extra}


def ev(vid: str, at: str, etype: str, eid: str | None = None, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": vid, "at": at, "type": etype}
    if eid is not None:
        rec["entry"] = eid
    rec.update(extra)
    return rec


def rel(org_id: str, person_id: str, role: str, name: str = "某人") -> dict[str, str]:
    return {"org": org_id, "person": person_id, "role": role, "name": name}


# --------------------------------------------------------------------------------------------
# Running a check and reducing its answer to what the rules decide.

def run(snap: Any, subject: str, scenario: str = "government_procurement", *,
        as_of: str | None = AS_OF, tier: str = "agency", caller_region: str = "national",
        adopted: tuple[str, ...] = (), region: str | None = None, consent: str | None = None,
        name: str | None = None, type: str | None = None) -> dict[str, Any]:
    caller = Caller(unit="test-unit", tier=tier, region=caller_region,
                    adopted=frozenset(adopted))
    request = CheckRequest(subject=subject, scenario=scenario, type=type, name=name,
                           region=region, as_of=as_of, consent=consent)
    return check(snap, request, caller)


Hit = tuple[str, str, "str | None", tuple[tuple[str, str], ...]]


def H(eid: str, path: str = "subject", via: str | None = None,
      m: dict[str, str] | None = None) -> Hit:
    """An expected hit: entry, path, via id and {measure id: action}."""
    return (eid, path, via, tuple(sorted((m or {}).items())))


def expect(decision: str, hits: list[Hit] | tuple[Hit, ...] = (),
           suppressed: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
           measures: dict[str, str] | None = None) -> dict[str, Any]:
    return {"decision": decision, "hits": sorted(hits, key=repr),
            "suppressed": sorted(suppressed, key=repr),
            "measures": sorted((measures or {}).items())}


def summary(res: dict[str, Any]) -> dict[str, Any]:
    """Lists, not sets: a duplicated hit or suppression shows up as a difference."""
    hits = [(h["entry"], h["path"], h["via"]["id"] if h["via"] else None,
             tuple(sorted((m["id"], m["action"]) for m in h["measures"])))
            for h in res["hits"]]
    return {"decision": res["decision"], "hits": sorted(hits, key=repr),
            "suppressed": sorted(((s["entry"], s["reason"]) for s in res["suppressed"]),
                                 key=repr),
            "measures": sorted((m["id"], m["action"]) for m in res["measures"])}


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def cst(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


BLOCK = {"M-GP-1": "block"}   # government_procurement on a black entry
ALERT = {"M-GP-2": "alert"}   # government_procurement on a watch entry

# ============================================================================================
# §4 — when an entry is in effect (scenario government_procurement, agency, national)

O_T1, O_T2, O_T3, O_T4, O_T5, O_T6, O_T7, O_T8, O_T9, O_T10, O_T11 = (org() for _ in range(11))
P_T12 = person()
O_W1, O_W2, O_W3, O_W4, O_W5, O_W6 = (org() for _ in range(6))

TIME_ENTRIES = [
    entry("E-T1", L_BLACK2, O_T1, vf="2025-03-01", vu="2028-03-01"),
    entry("E-T2", L_BLACK2, O_T2, vf="2025-06-01T10:00:00+05:30", vu="2025-12-31T23:00:00-05:00"),
    entry("E-T3", L_BLACK2, O_T3, vf="2020-01-01", vu=None),
    entry("E-T4", L_BLACK2, O_T4),
    entry("E-T5", L_BLACK2, O_T5),
    entry("E-T6", L_TONGHUA, O_T6),
    entry("E-T7", L_BLACK, O_T7, vu="2026-01-01"),
    entry("E-T8", L_BLACK, O_T8, vu="2025-09-01"),
    entry("E-T9", L_BLACK2, O_T9),
    entry("E-T10", L_BLACK2, O_T10),
    entry("E-T11", L_BLACK2, O_T11),
    # exit to watch (L_BLACK: exit_watch_list watch.after_black, 365 days)
    entry("E-W1", L_BLACK, O_W1, vu="2026-01-01", scope="35", publicity="public",
          authority="福州市中级人民法院"),
    entry("E-W2", L_BLACK, O_W2, vu="2029-01-01"),
    entry("E-W3", L_BLACK, O_W3, vu="2026-01-01"),
    entry("E-W4", L_BLACK, O_W4),
    entry("E-W5", L_BLACK, O_W5, vu="2026-01-01"),
    entry("E-W6", L_BLACK, O_W6),
]

TIME_EVENTS = [
    ev("V-T4", "2026-05-01T10:00:00+08:00", "exited", "E-T4", reason="repaired"),
    ev("V-T5a", "2026-05-01T10:00:00+08:00", "objection_opened", "E-T5"),
    ev("V-T5b", "2026-06-01T10:00:00+08:00", "objection_closed", "E-T5", result="rejected"),
    ev("V-T6a", "2026-05-01T10:00:00+08:00", "objection_opened", "E-T6"),
    ev("V-T6b", "2026-06-01T10:00:00+08:00", "objection_closed", "E-T6", result="rejected"),
    ev("V-T7", "2027-06-01T00:00:00+08:00", "revoked", "E-T7"),
    ev("V-T8a", "2025-06-01T00:00:00+08:00", "objection_opened", "E-T8"),
    ev("V-T8b", "2025-07-01T00:00:00+08:00", "objection_closed", "E-T8", result="upheld"),
    # E-T9: the later event comes first in the file — order is by `at`.
    ev("V-T9b", "2026-06-01T00:00:00+08:00", "objection_closed", "E-T9", result="rejected"),
    ev("V-T9a", "2026-05-01T00:00:00+08:00", "objection_opened", "E-T9"),
    # E-T10: closed and re-opened at the same instant, in that file order → open after.
    ev("V-T10a", "2026-03-01T00:00:00+08:00", "objection_opened", "E-T10"),
    ev("V-T10b", "2026-04-01T00:00:00+08:00", "objection_closed", "E-T10", result="rejected"),
    ev("V-T10c", "2026-04-01T00:00:00+08:00", "objection_opened", "E-T10"),
    # E-T11: opened then closed at the same instant, in that file order → closed after.
    ev("V-T11a", "2026-03-01T00:00:00+08:00", "objection_opened", "E-T11"),
    ev("V-T11b", "2026-04-01T00:00:00+08:00", "objection_opened", "E-T11"),
    ev("V-T11c", "2026-04-01T00:00:00+08:00", "objection_closed", "E-T11", result="rejected"),
    # E-T12 is added by a `listed` event, then exits.
    ev("V-T12a", "2026-01-10T00:00:00+08:00", "listed",
       record=entry("E-T12", L_BLACK2, P_T12, vf="2026-02-01", vu=None, name="王五")),
    ev("V-T12b", "2026-05-01T00:00:00+08:00", "exited", "E-T12", reason="fulfilled"),
    ev("V-W2", "2027-06-01T08:00:00+08:00", "exited", "E-W2", reason="fulfilled"),
    ev("V-W3", "2026-02-01T00:00:00+08:00", "exited", "E-W3", reason="expired"),
    # E-W4: two exits, the later one first in the file; the first exit (by `at`) counts.
    ev("V-W4b", "2026-04-01T00:00:00+08:00", "exited", "E-W4", reason="repaired"),
    ev("V-W4a", "2026-02-01T00:00:00+08:00", "exited", "E-W4", reason="standard_changed"),
    ev("V-W5", "2025-12-01T00:00:00+08:00", "objection_opened", "E-W5"),
    ev("V-W6", "2026-03-01T00:00:00+08:00", "exited", "E-W6", reason="repaired"),
]


@pytest.fixture(scope="module")
def time_snap(build_snapshot: Any) -> Any:
    return build_snapshot("time", **CATALOGUE, entries=TIME_ENTRIES, events=TIME_EVENTS)


def _cases(*rows: tuple[str, str, str, dict[str, Any]]) -> Any:
    return pytest.mark.parametrize("subject,as_of,expected", [r[1:] for r in rows],
                                   ids=[r[0] for r in rows])


T1_HIT = expect("block", [H("E-T1", m=BLOCK)])
T2_HIT = expect("block", [H("E-T2", m=BLOCK)])
PASS = expect("pass")


@_cases(
    ("valid_from-exact-utc", O_T1, "2025-02-28T16:00:00Z", T1_HIT),
    ("valid_from-exact-cst", O_T1, "2025-03-01T00:00:00+08:00", T1_HIT),
    ("valid_from-exact-no-offset-is-cst", O_T1, "2025-03-01T00:00:00", T1_HIT),
    ("valid_from-1us-before-utc", O_T1, "2025-02-28T15:59:59.999999Z", PASS),
    ("valid_from-1us-before-cst", O_T1, "2025-02-28T23:59:59.999999+08:00", PASS),
    ("valid_from-1us-before-no-offset", O_T1, "2025-02-28T23:59:59.999999", PASS),
    ("valid_from-midnight-utc-is-not-start", O_T1, "2025-03-01T00:00:00+00:00", T1_HIT),
    ("valid_until-1us-before", O_T1, "2028-02-29T23:59:59.999999+08:00", T1_HIT),
    ("valid_until-exact", O_T1, "2028-03-01T00:00:00+08:00", PASS),
    ("valid_until-exact-utc", O_T1, "2028-02-29T16:00:00+00:00", PASS),
)
def test_date_bounds_are_cst_midnight_inclusive_exclusive(time_snap: Any, subject: str,
                                                          as_of: str, expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    # valid_from 2025-06-01T10:00+05:30 = 04:30Z = 12:30 CST
    ("from-exact-cst", O_T2, "2025-06-01T12:30:00+08:00", T2_HIT),
    ("from-exact-own-offset", O_T2, "2025-06-01T10:00:00+05:30", T2_HIT),
    ("from-1us-before-utc", O_T2, "2025-06-01T04:29:59.999999+00:00", PASS),
    # valid_until 2025-12-31T23:00-05:00 = 2026-01-01T04:00Z = 12:00 CST
    ("until-1us-before-cst", O_T2, "2026-01-01T11:59:59.999999+08:00", T2_HIT),
    ("until-exact-cst", O_T2, "2026-01-01T12:00:00+08:00", PASS),
    ("until-exact-own-offset", O_T2, "2025-12-31T23:00:00-05:00", PASS),
)
def test_iso_times_with_other_offsets(time_snap: Any, subject: str, as_of: str,
                                      expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    ("far-future", O_T3, "2099-12-31T23:59:59+08:00", expect("block", [H("E-T3", m=BLOCK)])),
    ("1us-before-from", O_T3, "2019-12-31T23:59:59.999999+08:00", PASS),
)
def test_null_valid_until_has_no_end(time_snap: Any, subject: str, as_of: str,
                                     expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    ("1us-before-exit", O_T4, "2026-05-01T09:59:59.999999+08:00",
     expect("block", [H("E-T4", m=BLOCK)])),
    ("at-exit", O_T4, "2026-05-01T10:00:00+08:00", PASS),
    ("at-exit-utc", O_T4, "2026-05-01T02:00:00Z", PASS),
    ("long-after-exit", O_T4, "2030-01-01T00:00:00+08:00", PASS),
)
def test_exited_ends_the_entry_at_its_time(time_snap: Any, subject: str, as_of: str,
                                           expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


T5_SUPPRESSED = expect("pass", suppressed=[("E-T5", "objection_pending")])


@_cases(
    ("1us-before-opened", O_T5, "2026-05-01T09:59:59.999999+08:00",
     expect("block", [H("E-T5", m=BLOCK)])),
    ("at-opened", O_T5, "2026-05-01T10:00:00+08:00", T5_SUPPRESSED),
    ("1us-before-closed", O_T5, "2026-06-01T09:59:59.999999+08:00", T5_SUPPRESSED),
    ("at-closed", O_T5, "2026-06-01T10:00:00+08:00", expect("block", [H("E-T5", m=BLOCK)])),
)
def test_objection_suspends_by_default(time_snap: Any, subject: str, as_of: str,
                                       expected: Any) -> None:
    """market.serious_dishonest has no `objection_suspends` key: the default is true."""
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    ("at-opened", O_T6, "2026-05-01T10:00:00+08:00", expect("block", [H("E-T6", m=BLOCK)])),
    ("during", O_T6, "2026-05-20T00:00:00+08:00", expect("block", [H("E-T6", m=BLOCK)])),
)
def test_objection_changes_nothing_without_objection_suspends(time_snap: Any, subject: str,
                                                              as_of: str,
                                                              expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    ("before-revoke-in-validity", O_T7, "2025-06-01T00:00:00+08:00", PASS),
    ("would-be-watch", O_T7, "2026-06-01T00:00:00+08:00", PASS),
    ("after-revoke", O_T7, "2027-07-01T00:00:00+08:00", PASS),
    ("before-objection", O_T8, "2025-03-01T00:00:00+08:00", PASS),
    ("during-objection", O_T8, "2025-06-15T00:00:00+08:00", PASS),
    ("after-upheld", O_T8, "2025-08-01T00:00:00+08:00", PASS),
    ("would-be-watch-upheld", O_T8, "2025-10-01T00:00:00+08:00", PASS),
)
def test_revoked_and_upheld_purge_for_every_as_of(time_snap: Any, subject: str, as_of: str,
                                                  expected: Any) -> None:
    """Purged: no hit, no suppression, no derived watch — before and after the event."""
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    ("by-at-before", O_T9, "2026-04-30T23:59:59.999999+08:00",
     expect("block", [H("E-T9", m=BLOCK)])),
    ("by-at-open", O_T9, "2026-05-15T00:00:00+08:00",
     expect("pass", suppressed=[("E-T9", "objection_pending")])),
    ("by-at-closed", O_T9, "2026-06-01T00:00:00+08:00", expect("block", [H("E-T9", m=BLOCK)])),
    ("tie-closed-then-opened-first", O_T10, "2026-03-15T00:00:00+08:00",
     expect("pass", suppressed=[("E-T10", "objection_pending")])),
    ("tie-closed-then-opened-at-tie", O_T10, "2026-04-01T00:00:00+08:00",
     expect("pass", suppressed=[("E-T10", "objection_pending")])),
    ("tie-closed-then-opened-after", O_T10, "2026-05-01T00:00:00+08:00",
     expect("pass", suppressed=[("E-T10", "objection_pending")])),
    ("tie-opened-then-closed-first", O_T11, "2026-03-15T00:00:00+08:00",
     expect("pass", suppressed=[("E-T11", "objection_pending")])),
    ("tie-opened-then-closed-at-tie", O_T11, "2026-04-01T00:00:00+08:00",
     expect("block", [H("E-T11", m=BLOCK)])),
    ("tie-opened-then-closed-after", O_T11, "2026-05-01T00:00:00+08:00",
     expect("block", [H("E-T11", m=BLOCK)])),
)
def test_events_apply_in_order_of_at_then_file_order(time_snap: Any, subject: str,
                                                     as_of: str, expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    ("1us-before-record-from", P_T12, "2026-01-31T23:59:59.999999+08:00", PASS),
    ("at-record-from", P_T12, "2026-02-01T00:00:00+08:00", expect("block", [H("E-T12", m=BLOCK)])),
    ("1us-before-exit", P_T12, "2026-04-30T23:59:59.999999+08:00",
     expect("block", [H("E-T12", m=BLOCK)])),
    ("at-exit", P_T12, "2026-05-01T00:00:00+08:00", PASS),
)
def test_listed_event_adds_a_record(time_snap: Any, subject: str, as_of: str,
                                    expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


W1_WATCH = expect("alert", [H("E-W1/watch", m=ALERT)])


@_cases(
    ("parent-1us-before-until", O_W1, "2025-12-31T23:59:59.999999+08:00",
     expect("block", [H("E-W1", m=BLOCK)])),
    ("watch-at-until", O_W1, "2026-01-01T00:00:00+08:00", W1_WATCH),
    ("watch-1us-before-365d", O_W1, "2026-12-31T23:59:59.999999+08:00", W1_WATCH),
    ("watch-at-365d", O_W1, "2027-01-01T00:00:00+08:00", PASS),
)
def test_exit_to_watch_on_reaching_valid_until(time_snap: Any, subject: str, as_of: str,
                                               expected: Any) -> None:
    """E-W1 has scope 35; checks are made for region 350102 (which 35 covers)."""
    assert summary(run(time_snap, subject, as_of=as_of, region="350102")) == expected


def test_exit_to_watch_entry_fields(time_snap: Any) -> None:
    res = run(time_snap, O_W1, as_of="2026-06-01T00:00:00+08:00", region="350102")
    (hit,) = res["hits"]
    assert hit["entry"] == "E-W1/watch"
    assert hit["list"] == L_WATCH
    assert hit["kind"] == "watch"
    assert hit["path"] == "subject" and hit["via"] is None
    assert hit["publicity"] == "shared"      # the watch list's, not the parent's "public"
    assert hit["scope"] == "35"              # the parent's
    assert hit["authority"] == "福州市中级人民法院"  # the parent's
    assert instant(hit["valid_from"]) == cst("2026-01-01T00:00:00")
    assert instant(hit["valid_until"]) == cst("2027-01-01T00:00:00")
    assert res["subject"]["type"] == "org" and res["subject"]["id"] == O_W1


@pytest.mark.parametrize("tier,region", [
    ("public", "350102"),   # the watch list is shared: invisible to the public tier
    ("agency", None),       # national check: scope 35 (kept from the parent) does not cover it
    ("agency", "110105"),   # scope 35 does not cover 110105
])
def test_exit_to_watch_keeps_scope_and_takes_watch_publicity(time_snap: Any, tier: str,
                                                             region: str | None) -> None:
    res = run(time_snap, O_W1, as_of="2026-06-01T00:00:00+08:00", tier=tier, region=region)
    assert summary(res) == PASS


@_cases(
    # E-W2 exits at 2027-06-01T08:00; +365 days crosses 2028-02-29 → 2028-05-31T08:00.
    ("fulfilled-1us-before-exit", O_W2, "2027-06-01T07:59:59.999999+08:00",
     expect("block", [H("E-W2", m=BLOCK)])),
    ("fulfilled-at-exit", O_W2, "2027-06-01T08:00:00+08:00",
     expect("alert", [H("E-W2/watch", m=ALERT)])),
    ("fulfilled-1us-before-365d", O_W2, "2028-05-31T07:59:59.999999+08:00",
     expect("alert", [H("E-W2/watch", m=ALERT)])),
    ("fulfilled-at-365d", O_W2, "2028-05-31T08:00:00+08:00", PASS),
    # E-W3 reaches valid_until 2026-01-01 before its exit (2026-02-01): x = 2026-01-01.
    ("expired-at-until", O_W3, "2026-01-01T00:00:00+08:00",
     expect("alert", [H("E-W3/watch", m=ALERT)])),
    ("expired-1us-before-365d", O_W3, "2026-12-31T23:59:59.999999+08:00",
     expect("alert", [H("E-W3/watch", m=ALERT)])),
    ("expired-at-365d", O_W3, "2027-01-01T00:00:00+08:00", PASS),
    ("expired-not-from-exit", O_W3, "2027-01-15T00:00:00+08:00", PASS),
    # E-W4: exits 2026-04-01 (first in file) and 2026-02-01; the first exit by time counts.
    ("first-exit-1us-before", O_W4, "2026-01-31T23:59:59.999999+08:00",
     expect("block", [H("E-W4", m=BLOCK)])),
    ("first-exit-at", O_W4, "2026-02-01T00:00:00+08:00",
     expect("alert", [H("E-W4/watch", m=ALERT)])),
    ("first-exit-1us-before-365d", O_W4, "2027-01-31T23:59:59.999999+08:00",
     expect("alert", [H("E-W4/watch", m=ALERT)])),
    ("first-exit-at-365d", O_W4, "2027-02-01T00:00:00+08:00", PASS),
    # E-W6: exit "repaired" 2026-03-01 → watch to 2027-03-01.
    ("repaired-1us-before-exit", O_W6, "2026-02-28T23:59:59.999999+08:00",
     expect("block", [H("E-W6", m=BLOCK)])),
    ("repaired-at-exit", O_W6, "2026-03-01T00:00:00+08:00",
     expect("alert", [H("E-W6/watch", m=ALERT)])),
    ("repaired-1us-before-365d", O_W6, "2027-02-28T23:59:59.999999+08:00",
     expect("alert", [H("E-W6/watch", m=ALERT)])),
    ("repaired-at-365d", O_W6, "2027-03-01T00:00:00+08:00", PASS),
)
def test_exit_to_watch_for_any_exit_reason(time_snap: Any, subject: str, as_of: str,
                                           expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


@_cases(
    ("parent-before-objection", O_W5, "2025-11-30T23:59:59.999999+08:00",
     expect("block", [H("E-W5", m=BLOCK)])),
    ("parent-suspended", O_W5, "2025-12-15T00:00:00+08:00",
     expect("pass", suppressed=[("E-W5", "objection_pending")])),
    ("watch-at-until-despite-open-objection", O_W5, "2026-01-01T00:00:00+08:00",
     expect("alert", [H("E-W5/watch", m=ALERT)])),
    ("watch-later", O_W5, "2026-06-01T00:00:00+08:00",
     expect("alert", [H("E-W5/watch", m=ALERT)])),
)
def test_exit_to_watch_not_affected_by_objection_on_parent(time_snap: Any, subject: str,
                                                           as_of: str, expected: Any) -> None:
    assert summary(run(time_snap, subject, as_of=as_of)) == expected


def test_as_of_is_reported_in_cst(time_snap: Any) -> None:
    res = run(time_snap, O_T1, as_of="2025-02-28T16:00:00Z")
    used = instant(res["as_of"])
    assert used == cst("2025-03-01T00:00:00")
    assert used.utcoffset() == dt.timedelta(hours=8)
    assert res["snapshot"] == time_snap.version


# ============================================================================================
# §5.1 — visibility by tier and consent; scope vs region

O_V = org()
O_S = org()

VIS_ENTRIES = [
    entry("E-V1", L_BLACK2, O_V),                          # public (list default)
    entry("E-V2", L_SHARED, O_V),                          # shared (list default)
    entry("E-V3", L_AUTH, O_V),                            # authorized (list default)
    entry("E-V4", L_BLACK2, O_V, publicity="shared"),      # entry overrides list: shared
    entry("E-V5", L_SHARED, O_V, publicity="public"),      # entry overrides list: public
    entry("E-S1", L_BLACK2, O_S),                          # scope omitted: national
    entry("E-S2", L_BLACK2, O_S, scope="35"),
    entry("E-S3", L_BLACK2, O_S, scope="350100"),
    entry("E-S4", L_BLACK2, O_S, scope="350102"),
    entry("E-S5", L_BLACK2, O_S, scope="350000"),
    entry("E-S6", L_BLACK2, O_S, scope="110000"),
    entry("E-S7", L_BLACK2, O_S, scope="3501"),
    entry("E-S8", L_BLACK2, O_S, scope="national"),
]


@pytest.fixture(scope="module")
def vis_snap(build_snapshot: Any) -> Any:
    return build_snapshot("vis", **CATALOGUE, entries=VIS_ENTRIES)


def _blocks(*eids: str) -> dict[str, Any]:
    return expect("block", [H(e, m=BLOCK) for e in eids])


@pytest.mark.parametrize("tier,consent,expected", [
    ("public", None, _blocks("E-V1", "E-V5")),
    ("public", "AUTH-2026-001", _blocks("E-V1", "E-V3", "E-V5")),
    ("agency", None, _blocks("E-V1", "E-V2", "E-V4", "E-V5")),
    ("issuer", None, _blocks("E-V1", "E-V2", "E-V4", "E-V5")),
    ("admin", None, _blocks("E-V1", "E-V2", "E-V4", "E-V5")),
    ("agency", "AUTH-2026-001", _blocks("E-V1", "E-V2", "E-V3", "E-V4", "E-V5")),
    ("admin", "AUTH-2026-001", _blocks("E-V1", "E-V2", "E-V3", "E-V4", "E-V5")),
])
def test_publicity_by_tier_and_consent(vis_snap: Any, tier: str, consent: str | None,
                                       expected: Any) -> None:
    assert summary(run(vis_snap, O_V, tier=tier, consent=consent)) == expected


@pytest.mark.parametrize("caller_region,region,expected", [
    ("national", None, _blocks("E-S1", "E-S8")),
    ("national", "350102", _blocks("E-S1", "E-S8", "E-S2", "E-S3", "E-S4", "E-S5", "E-S7")),
    ("national", "350100", _blocks("E-S1", "E-S8", "E-S2", "E-S3", "E-S5", "E-S7")),
    ("national", "350000", _blocks("E-S1", "E-S8", "E-S2", "E-S5")),
    ("national", "350200", _blocks("E-S1", "E-S8", "E-S2", "E-S5")),
    ("national", "110105", _blocks("E-S1", "E-S8", "E-S6")),
    # no request region: the caller's region is the check's region
    ("350102", None, _blocks("E-S1", "E-S8", "E-S2", "E-S3", "E-S4", "E-S5", "E-S7")),
    ("350100", None, _blocks("E-S1", "E-S8", "E-S2", "E-S3", "E-S5", "E-S7")),
    # a request region under the caller's region replaces it
    ("350100", "350102", _blocks("E-S1", "E-S8", "E-S2", "E-S3", "E-S4", "E-S5", "E-S7")),
    ("350000", "350100", _blocks("E-S1", "E-S8", "E-S2", "E-S3", "E-S5", "E-S7")),
    ("350100", "350100", _blocks("E-S1", "E-S8", "E-S2", "E-S3", "E-S5", "E-S7")),
])
def test_scope_covers_check_region(vis_snap: Any, caller_region: str, region: str | None,
                                   expected: Any) -> None:
    assert summary(run(vis_snap, O_S, caller_region=caller_region, region=region)) == expected


@pytest.mark.parametrize("caller_region,region", [
    ("350100", "350200"),     # a sibling
    ("350100", "350000"),     # the caller's parent
    ("350100", "110105"),     # elsewhere
    ("350100", "national"),   # national is not under 350100
    ("350102", "350100"),     # 350102 does not cover 350100
])
def test_request_region_outside_caller_region_is_403(vis_snap: Any, caller_region: str,
                                                     region: str) -> None:
    with pytest.raises(ScreeningError) as err:
        run(vis_snap, O_S, caller_region=caller_region, region=region)
    assert err.value.status == 403
    assert err.value.code == "region_forbidden"


# ============================================================================================
# §5.2–5.4 — own hits, link hits (soe_appointment: M-SOE-1 linked:legal_rep/director → block,
# M-SOE-2 org_of:legal_rep/director → review), masking

O_L1, O_L2, O_L3, O_L4, O_L5, O_L6, O_L7, O_L8, O_L9 = (org() for _ in range(9))
P1, P2, P3, P4, P5, P7, P8, P9, P10, P11 = (person() for _ in range(10))
P6 = PERSON_A
P12, P12_MASKED = "110105196001010017", "1101051960****0017"

LINK_ENTRIES = [
    entry("E-L1", L_BLACK, O_L1, name="福州甲贸易有限公司",
          persons=[{"role": "legal_rep", "id": P1, "name": "张一"},
                   {"role": "director", "id": P2, "name": "李二"}]),
    entry("E-L2", L_BLACK, O_L2),
    entry("E-L3", L_TONGHUA, O_L3),
    entry("E-L4P", L_BLACK, P6, name="张三"),
    entry("E-L5", L_TONGHUA, O_L5, persons=[{"role": "legal_rep", "id": P7, "name": "赵七"}]),
    entry("E-L5P", L_BLACK, P7, name="赵七"),
    entry("E-L6", L_BLACK, O_L6),
    entry("E-L7a", L_BLACK, O_L7, persons=[{"role": "legal_rep", "id": P9, "name": "孙九"}]),
    entry("E-L7b", L_BLACK, O_L7),
    entry("E-L8", L_BLACK, O_L8),
    entry("E-P11R", L_RED, P11, name="周十一"),
    entry("E-L9P", L_BLACK, P12, name="刘十二"),
]
LINK_RELATIONS = [
    rel(O_L1, P1, "legal_rep", "张一"),      # also named in E-L1's persons, same role
    rel(O_L1, P4, "supervisor", "钱四"),     # no measure targets linked:supervisor
    rel(O_L2, P3, "legal_rep", "吴三"),      # two roles in one organisation
    rel(O_L2, P3, "director", "吴三"),
    rel(O_L3, P5, "legal_rep", "郑五"),      # E-L3 is on a list no link measure reaches
    rel(O_L4, P6, "legal_rep", "张三"),      # O_L4 has no entry; its legal_rep is listed
    rel(O_L6, P8, "legal_rep", "冯八"),
    rel(O_L7, P10, "legal_rep", "陈十"),
    rel(O_L8, P11, "legal_rep", "周十一"),
    rel(O_L9, P12, "director", "刘十二"),    # P12's own entry is under objection
]
LINK_EVENTS = [ev("V-L6", "2026-05-01T00:00:00+08:00", "objection_opened", "E-L6"),
               ev("V-L9", "2026-05-01T00:00:00+08:00", "objection_opened", "E-L9P")]


@pytest.fixture(scope="module")
def link_snap(build_snapshot: Any) -> Any:
    return build_snapshot("links", **CATALOGUE, entries=LINK_ENTRIES, relations=LINK_RELATIONS,
                          events=LINK_EVENTS)


SOE_BLOCK = {"M-SOE-1": "block"}
SOE_REVIEW = {"M-SOE-2": "review"}


@pytest.mark.parametrize("subject,scenario,expected", [
    # relation and entry persons give the same (entry, path, via): one hit
    (P1, "soe_appointment", expect("block", [H("E-L1", "linked:legal_rep", O_L1, SOE_BLOCK)])),
    # named only in the entry's persons
    (P2, "soe_appointment", expect("block", [H("E-L1", "linked:director", O_L1, SOE_BLOCK)])),
    # two roles: two hits
    (P3, "soe_appointment", expect("block", [H("E-L2", "linked:legal_rep", O_L2, SOE_BLOCK),
                                             H("E-L2", "linked:director", O_L2, SOE_BLOCK)])),
    # a role no measure targets: no link hit at all
    (P4, "soe_appointment", PASS),
    # a list no link measure covers: no link hit
    (P5, "soe_appointment", PASS),
    # a scenario with no linked measure: no link hit
    (P1, "government_procurement", PASS),
    (P2, "customs_clearance", PASS),
    # entry persons link to that entry only; relations to every entry of the organisation
    (P9, "soe_appointment", expect("block", [H("E-L7a", "linked:legal_rep", O_L7, SOE_BLOCK)])),
    (P10, "soe_appointment", expect("block", [H("E-L7a", "linked:legal_rep", O_L7, SOE_BLOCK),
                                              H("E-L7b", "linked:legal_rep", O_L7, SOE_BLOCK)])),
], ids=["relation+persons-one-hit", "persons-only", "two-roles", "role-not-targeted",
        "list-not-covered", "scenario-without-link-measure", "scenario-without-measures",
        "persons-bind-their-entry-only", "relations-bind-every-entry"])
def test_linked_hits_for_a_person(link_snap: Any, subject: str, scenario: str,
                                  expected: Any) -> None:
    assert summary(run(link_snap, subject, scenario)) == expected


@pytest.mark.parametrize("subject,scenario,expected", [
    (O_L4, "soe_appointment", expect("review", [H("E-L4P", "org_of:legal_rep", P6,
                                                  SOE_REVIEW)])),
    (O_L4, "government_procurement", PASS),
    # O_L5's legal_rep P7 is listed but named only in E-L5's persons: no org_of hit;
    # O_L5's own entry is reported without a measure.
    (O_L5, "soe_appointment", expect("pass", [H("E-L5")])),
], ids=["org_of-via-relation", "scenario-without-org_of-measure", "persons-give-no-org_of"])
def test_org_of_hits_for_an_organisation(link_snap: Any, subject: str, scenario: str,
                                         expected: Any) -> None:
    assert summary(run(link_snap, subject, scenario)) == expected


@pytest.mark.parametrize("subject,scenario,expected", [
    (O_L1, "soe_appointment", expect("pass", [H("E-L1")])),
    (O_L1, "customs_clearance", expect("pass", [H("E-L1")])),
    (P6, "soe_appointment", expect("pass", [H("E-L4P")])),
    (O_L1, "government_procurement", expect("block", [H("E-L1", m=BLOCK)])),
], ids=["org-no-subject-measure", "scenario-without-measures", "person-no-subject-measure",
        "with-measure"])
def test_own_hits_reported_even_without_measure(link_snap: Any, subject: str, scenario: str,
                                                expected: Any) -> None:
    assert summary(run(link_snap, subject, scenario)) == expected


@pytest.mark.parametrize("subject,scenario,expected", [
    (P8, "soe_appointment", expect("pass", suppressed=[("E-L6", "objection_pending")])),
    # no measure would apply to the link: not reported at all
    (P8, "government_procurement", PASS),
    # own entries are reported suppressed whatever the scenario
    (O_L6, "government_procurement", expect("pass", suppressed=[("E-L6", "objection_pending")])),
    (O_L6, "customs_clearance", expect("pass", suppressed=[("E-L6", "objection_pending")])),
], ids=["link-with-measure", "link-without-measure", "own-with-measure", "own-without-measure"])
def test_suppressed_by_objection(link_snap: Any, subject: str, scenario: str,
                                 expected: Any) -> None:
    assert summary(run(link_snap, subject, scenario)) == expected


def test_alert_beats_green(link_snap: Any) -> None:
    """P11: own red (M-FF-1 green) and legal_rep of a black organisation (M-FF-2 alert).
    A linked black entry is no own black hit, so no red conflict."""
    res = run(link_snap, P11, "fiscal_funds")
    assert summary(res) == expect("alert", [H("E-P11R", m={"M-FF-1": "green"}),
                                            H("E-L8", "linked:legal_rep", O_L8,
                                              {"M-FF-2": "alert"})])


def test_public_tier_masks_person_ids_in_via(link_snap: Any) -> None:
    res = run(link_snap, O_L4, "soe_appointment", tier="public")
    assert summary(res) == expect("review", [H("E-L4P", "org_of:legal_rep", PERSON_A_MASKED,
                                               SOE_REVIEW)])
    assert PERSON_A not in json.dumps(res, ensure_ascii=False)


def test_public_tier_masks_person_ids_in_subject(link_snap: Any) -> None:
    res = run(link_snap, PERSON_A, "soe_appointment", tier="public")
    assert res["subject"]["type"] == "person"
    assert res["subject"]["id"] == PERSON_A_MASKED
    assert summary(res) == expect("pass", [H("E-L4P")])
    assert PERSON_A not in json.dumps(res, ensure_ascii=False)


def test_public_tier_masks_person_ids_in_suppressed_via(link_snap: Any) -> None:
    res = run(link_snap, O_L9, "soe_appointment", tier="public")
    assert summary(res) == expect("pass", suppressed=[("E-L9P", "objection_pending")])
    (sup,) = res["suppressed"]
    assert sup["path"] == "org_of:director"
    assert sup["via"]["id"] == P12_MASKED
    assert P12 not in json.dumps(res, ensure_ascii=False)


def test_government_tier_does_not_mask(link_snap: Any) -> None:
    res = run(link_snap, O_L4, "soe_appointment", tier="agency")
    assert res["hits"][0]["via"]["id"] == PERSON_A
    res = run(link_snap, PERSON_A, "soe_appointment", tier="agency")
    assert res["subject"]["id"] == PERSON_A


# ============================================================================================
# §5.4–5.6 — measures, actions, red conflict, decision precedence; names; identifiers

O_A1, O_A2, O_A3, O_A4, O_A5 = (org() for _ in range(5))
O_R1, O_R2, O_R3, O_R4, O_R5, O_R6 = (org() for _ in range(6))
O_N, O_I1, O_I2, O_UNLISTED = (org() for _ in range(4))
P_I1 = "360426199101010071"           # listed; queried as 360426910101007
P_NEVER = person()
ALIAS = "350100100012345"            # a 15-digit 注册号: not a valid 15-digit ID (month 00)

DECIDE_ENTRIES = [
    entry("E-A1", L_BLACK, O_A1),
    entry("E-A2", L_WATCH2, O_A2),
    entry("E-A3", L_RED, O_A3),
    entry("E-A4a", L_BLACK, O_A4), entry("E-A4b", L_SHARED, O_A4),
    entry("E-A5a", L_BLACK, O_A5), entry("E-A5b", L_WATCH2, O_A5),
    entry("E-R1r", L_RED, O_R1), entry("E-R1b", L_BLACK, O_R1),
    entry("E-R2r", L_RED, O_R2), entry("E-R2w", L_WATCH2, O_R2),
    entry("E-R3r", L_RED, O_R3), entry("E-R3b", L_BLACK2, O_R3, vf="2024-01-01", vu="2025-01-01"),
    entry("E-R4r", L_RED, O_R4), entry("E-R4b", L_SHARED, O_R4),
    entry("E-R5r", L_RED, O_R5), entry("E-R5b", L_BLACK2, O_R5),
    entry("E-R6r", L_RED, O_R6), entry("E-R6b", L_BLACK, O_R6, vu="2025-12-01"),
    entry("E-N", L_BLACK, O_N, name="某某贸易有限公司"),
    entry("E-I1", L_BLACK2, P_I1, name="李四"),
    entry("E-I2", L_BLACK2, O_I1),
    entry("E-I3", L_BLACK2, O_I2, aliases=[ALIAS]),
    entry("E-I4", L_BLACK2, ORG_A, name="某某贸易有限公司"),
]
DECIDE_EVENTS = [ev("V-R5", "2026-05-01T00:00:00+08:00", "objection_opened", "E-R5b")]


@pytest.fixture(scope="module")
def decide_snap(build_snapshot: Any) -> Any:
    return build_snapshot("decide", **CATALOGUE, entries=DECIDE_ENTRIES, events=DECIDE_EVENTS)


@pytest.mark.parametrize("subject,scenario,adopted,expected", [
    # recommended block not adopted → review; recommended review → review
    (O_A1, "bidding", (), expect("review", [H("E-A1", m={"M-BID-1": "review",
                                                           "M-BID-2": "review"})])),
    # recommended block adopted → block
    (O_A1, "bidding", ("M-BID-1",), expect("block", [H("E-A1", m={"M-BID-1": "block",
                                                                   "M-BID-2": "review"})])),
    # adopting a recommended review changes nothing
    (O_A1, "bidding", ("M-BID-2",), expect("review", [H("E-A1", m={"M-BID-1": "review",
                                                                    "M-BID-2": "review"})])),
    # mandatory review → review; mandatory block → block
    (O_A1, "administrative_license", (), expect("review", [H("E-A1", m={"M-AL-1": "review"})])),
    (O_A1, "government_procurement", (), expect("block", [H("E-A1", m=BLOCK)])),
    # a watch list's measure: mandatory alert → alert
    (O_A2, "government_procurement", (), expect("alert", [H("E-A2", m=ALERT)])),
    # recommended alert, adopted or not → alert
    (O_A2, "bidding", (), expect("alert", [H("E-A2", m={"M-BID-3": "alert"})])),
    (O_A2, "bidding", ("M-BID-3",), expect("alert", [H("E-A2", m={"M-BID-3": "alert"})])),
    # green, recommended (not adopted) or mandatory → green
    (O_A3, "fiscal_funds", (), expect("green", [H("E-A3", m={"M-FF-1": "green"})])),
    (O_A3, "administrative_license", (), expect("green", [H("E-A3", m={"M-AL-4": "green"})])),
    (O_A3, "government_procurement", (), expect("green", [H("E-A3", m={"M-GP-3": "green"})])),
    # no measure in the scenario: hit reported, pass
    (O_A1, "customs_clearance", (), expect("pass", [H("E-A1")])),
    (O_A3, "customs_clearance", (), expect("pass", [H("E-A3")])),
], ids=["rec-block-not-adopted", "rec-block-adopted", "rec-review-adopted", "mand-review",
        "mand-block", "watch-list-measure", "rec-alert", "rec-alert-adopted", "rec-green",
        "mand-green", "rec-green-gp", "no-measure-black", "no-measure-red"])
def test_measure_actions(decide_snap: Any, subject: str, scenario: str,
                         adopted: tuple[str, ...], expected: Any) -> None:
    assert summary(run(decide_snap, subject, scenario, adopted=adopted)) == expected


@pytest.mark.parametrize("subject,scenario,expected", [
    (O_A4, "administrative_license", expect("block", [H("E-A4a", m={"M-AL-1": "review"}),
                                                      H("E-A4b", m={"M-AL-2": "block"})])),
    (O_A5, "administrative_license", expect("review", [H("E-A5a", m={"M-AL-1": "review"}),
                                                       H("E-A5b", m={"M-AL-3": "alert"})])),
    (O_A3, "administrative_license", expect("green", [H("E-A3", m={"M-AL-4": "green"})])),
    (O_UNLISTED, "administrative_license", PASS),
], ids=["block>review", "review>alert", "green>pass", "pass"])
def test_decision_precedence(decide_snap: Any, subject: str, scenario: str,
                             expected: Any) -> None:
    assert summary(run(decide_snap, subject, scenario)) == expected


@pytest.mark.parametrize("subject,tier,expected", [
    # own black hit → red suppressed
    (O_R1, "agency", expect("review", [H("E-R1b", m={"M-AL-1": "review"})],
                            [("E-R1r", "red_conflict")])),
    # own watch hit → red suppressed
    (O_R2, "agency", expect("alert", [H("E-R2w", m={"M-AL-3": "alert"})],
                            [("E-R2r", "red_conflict")])),
    # the black entry has ended: red applies
    (O_R3, "agency", expect("green", [H("E-R3r", m={"M-AL-4": "green"})])),
    # the black entry is shared: invisible to the public tier, so red applies there
    (O_R4, "public", expect("green", [H("E-R4r", m={"M-AL-4": "green"})])),
    (O_R4, "agency", expect("block", [H("E-R4b", m={"M-AL-2": "block"})],
                            [("E-R4r", "red_conflict")])),
    # the black entry is suspended by an objection: not a hit, so red applies
    (O_R5, "agency", expect("green", [H("E-R5r", m={"M-AL-4": "green"})],
                            [("E-R5b", "objection_pending")])),
    # a derived exit-to-watch entry is an own watch hit (no measure here): red suppressed
    (O_R6, "agency", expect("pass", [H("E-R6b/watch")], [("E-R6r", "red_conflict")])),
], ids=["black", "watch", "black-ended", "black-invisible", "black-visible",
        "black-suspended", "derived-watch"])
def test_red_conflict(decide_snap: Any, subject: str, tier: str, expected: Any) -> None:
    assert summary(run(decide_snap, subject, "administrative_license", tier=tier)) == expected


def test_name_match_and_mismatch_never_decide(decide_snap: Any) -> None:
    same = run(decide_snap, O_N, name="某某贸易有限公司")
    other = run(decide_snap, O_N, name="另一家贸易有限公司")
    unnamed = run(decide_snap, O_N)
    for res in (same, other, unnamed):
        assert summary(res) == expect("block", [H("E-N", m=BLOCK)])
    assert same["subject"]["name_mismatch"] is False
    assert same["hits"][0]["name_mismatch"] is False
    assert other["subject"]["name_mismatch"] is True
    assert other["hits"][0]["name_mismatch"] is True


def test_unknown_scenario_is_422(decide_snap: Any) -> None:
    with pytest.raises(ScreeningError) as err:
        run(decide_snap, O_A1, "space_launch")
    assert err.value.code == "unknown_scenario"
    assert err.value.status == 422


@pytest.mark.parametrize("raw,type,subject_type,subject_id,expected", [
    # 15-digit first-generation ID → 18 digits
    ("360426910101007", None, "person", P_I1, expect("block", [H("E-I1", m=BLOCK)])),
    ("360426910101007", "person", "person", P_I1, expect("block", [H("E-I1", m=BLOCK)])),
    # 9-character organisation code, with and without hyphen, resolves to the listed USCC
    (O_I1[8:16] + "-" + O_I1[16], None, "org", O_I1, expect("block", [H("E-I2", m=BLOCK)])),
    (O_I1[8:17], None, "org", O_I1, expect("block", [H("E-I2", m=BLOCK)])),
    (O_I1[8:17], "org", "org", O_I1, expect("block", [H("E-I2", m=BLOCK)])),
    # an entry alias resolves to that entry's subject
    (ALIAS, None, "org", O_I2, expect("block", [H("E-I3", m=BLOCK)])),
    # normalisation: blanks, hyphens, lower case, full-width
    (" 9135 0100-m000100y43 ", None, "org", ORG_A, expect("block", [H("E-I4", m=BLOCK)])),
    ("９１３５０１００Ｍ０００１００Ｙ４３", None, "org", ORG_A,
     expect("block", [H("E-I4", m=BLOCK)])),
    ("91350100M000100Y43", "org", "org", ORG_A, expect("block", [H("E-I4", m=BLOCK)])),
    # never listed
    (P_NEVER, None, "person", P_NEVER, PASS),
], ids=["id15", "id15-typed", "org-code-hyphen", "org-code", "org-code-typed", "alias",
        "normalised", "full-width", "typed-org", "never-listed"])
def test_identifier_inputs_resolve(decide_snap: Any, raw: str, type: str | None,
                                   subject_type: str, subject_id: str, expected: Any) -> None:
    res = run(decide_snap, raw, type=type)
    assert res["subject"]["type"] == subject_type
    assert res["subject"]["id"] == subject_id
    assert summary(res) == expected


def test_unknown_org_code_is_simply_pass(decide_snap: Any) -> None:
    code8 = "MB999999"
    code = code8 + org_code_check_char(code8)
    assert summary(run(decide_snap, code)) == PASS
    assert summary(run(decide_snap, code8 + "-" + code[8])) == PASS


@pytest.mark.parametrize("raw,type,code,expected_char", [
    ("91350100M000100Y44", None, "bad_check_character", "3"),
    ("110105194912310021", None, "bad_check_character", "X"),
    ("110105194912310021", "person", "bad_check_character", "X"),
    ("91350100M000100Y56", None, "bad_org_code_check", None),
    ("91350100I000100Y43", None, "bad_character", None),
    ("1101051949123100", None, "bad_length", None),
    ("110105209912310010", None, "bad_birth_date", None),   # 2099-12-31: after today
    ("110105194902310018", None, "bad_birth_date", None),   # 1949-02-31
    ("110105179912310016", None, "bad_birth_date", None),   # 1799: before 1800-01-01
    ("11010519491231002X", "company", "unknown_type", None),
], ids=["uscc-check", "id-check", "id-check-typed", "org-code-check", "uscc-character",
        "length", "birth-future", "birth-no-such-day", "birth-before-1800", "unknown-type"])
def test_bad_identifiers_are_422_with_reason(decide_snap: Any, raw: str, type: str | None,
                                             code: str, expected_char: str | None) -> None:
    with pytest.raises(ScreeningError) as err:
        run(decide_snap, raw, type=type)
    assert err.value.code == code
    assert err.value.status == 422
    if expected_char is not None:
        assert err.value.expected == expected_char


# ============================================================================================
# §5.5 — clean_years (honors: M-HON-1, clean_years 3, recommended green). Lists used here
# have no exit-to-watch except court.dishonest_debtor (E-C7).

O_C1, O_C2, O_C3, O_C4, O_C5, O_C6, O_C7 = (org() for _ in range(7))
P_C0 = person()

CLEAN_ENTRIES = [
    entry("E-C1", L_BLACK2, O_C1, vf="2020-01-01", vu="2025-06-01"),
    entry("E-C2", L_BLACK2, O_C2, vf="2028-06-01", vu=None),
    entry("E-C3", L_BLACK2, O_C3, vf="2020-01-01", vu="2025-02-28"),
    entry("E-C4", L_BLACK2, O_C4, vf="2020-01-01", vu="2025-02-28T00:00:00.000001+08:00"),
    entry("E-C5", L_BLACK2, O_C5, vf="2020-01-01", vu="2026-01-01"),
    entry("E-C6", L_TONGHUA, O_C6, vf="2020-01-01", vu="2026-01-01"),
    # watch E-C7/watch over [2023-01-01, 2024-01-01)
    entry("E-C7", L_BLACK, O_C7, vf="2020-01-01", vu="2023-01-01"),
]
CLEAN_EVENTS = [
    ev("V-C5a", "2023-12-01T00:00:00+08:00", "objection_opened", "E-C5"),
    ev("V-C5b", "2026-06-01T00:00:00+08:00", "objection_closed", "E-C5", result="rejected"),
    ev("V-C6a", "2023-12-01T00:00:00+08:00", "objection_opened", "E-C6"),
    ev("V-C6b", "2026-06-01T00:00:00+08:00", "objection_closed", "E-C6", result="rejected"),
]


@pytest.fixture(scope="module")
def clean_snap(build_snapshot: Any) -> Any:
    return build_snapshot("clean", **CATALOGUE, entries=CLEAN_ENTRIES, events=CLEAN_EVENTS)


CLEAN = expect("green", measures={"M-HON-1": "green"})


@pytest.mark.parametrize("subject,as_of,tier,expected", [
    # E-C1 ends 2025-06-01: window [as_of − 3 y, as_of] starts exactly at its end → clean
    (O_C1, "2028-06-01T00:00:00+08:00", "agency", CLEAN),
    (O_C1, "2028-05-31T23:59:59.999999+08:00", "agency", PASS),
    # E-C2 starts 2028-06-01: in effect at as_of → not clean (and an own hit, no measure)
    (O_C2, "2028-06-01T00:00:00+08:00", "agency", expect("pass", [H("E-C2")])),
    (O_C2, "2028-05-31T23:59:59.999999+08:00", "agency", CLEAN),
    # as_of 2028-02-29 → window starts 2025-02-28T00:00 (29 Feb → 28 Feb)
    (O_C3, "2028-02-29T00:00:00+08:00", "agency", CLEAN),
    (O_C4, "2028-02-29T00:00:00+08:00", "agency", PASS),
    # E-C5 suspended by an objection from 2023-12-01 to past its end: that time does not count
    (O_C5, "2027-01-01T00:00:00+08:00", "agency", CLEAN),
    (O_C5, "2026-12-01T00:00:00+08:00", "agency", CLEAN),
    (O_C5, "2026-11-30T23:59:59.999999+08:00", "agency", PASS),
    # same on a list without objection_suspends: in effect until 2026-01-01
    (O_C6, "2027-01-01T00:00:00+08:00", "agency", PASS),
    (O_C6, "2028-12-31T23:59:59.999999+08:00", "agency", PASS),
    (O_C6, "2029-01-01T00:00:00+08:00", "agency", CLEAN),
    # a derived watch counts; it is shared, so the public tier does not see it
    (O_C7, "2027-01-01T00:00:00+08:00", "agency", CLEAN),
    (O_C7, "2026-12-31T23:59:59.999999+08:00", "agency", PASS),
    (O_C7, "2026-12-31T23:59:59.999999+08:00", "public", CLEAN),
    # never listed
    (P_C0, "2026-06-01T12:00:00+08:00", "agency", CLEAN),
    (P_C0, "2026-06-01T12:00:00+08:00", "public", CLEAN),
], ids=["ended-at-window-start", "ended-1us-inside-window", "starts-at-as_of",
        "starts-1us-after-as_of", "29feb-ended-at-28feb", "29feb-ended-1us-after-28feb",
        "objection-time-not-counted", "objection-opened-at-window-start",
        "effect-1us-before-objection", "no-suspension-list", "no-suspension-list-1us-inside",
        "no-suspension-list-ended-at-window-start", "watch-ended-at-window-start",
        "watch-inside-window", "watch-invisible-to-public", "never-listed",
        "never-listed-public"])
def test_clean_years(clean_snap: Any, subject: str, as_of: str, tier: str,
                     expected: Any) -> None:
    assert summary(run(clean_snap, subject, "honors", as_of=as_of, tier=tier)) == expected


def test_clean_years_measure_only_in_its_scenario(clean_snap: Any) -> None:
    assert summary(run(clean_snap, P_C0, "government_procurement")) == PASS


# ============================================================================================
# §3 — rejects, max_rejects, .jsonl.gz

O_X1, O_X2, O_X3 = (org() for _ in range(3))
GOOD_1 = entry("E-X1", L_BLACK, O_X1, vu="2026-01-01")   # watch E-X1/watch from 2026-01-01
GOOD_2 = entry("E-X2", L_BLACK2, O_X2)


def _bad_entries() -> dict[str, dict[str, Any]]:
    return {
        "unknown_list": entry("E-X3", "no.such_list", O_X3),
        "invalid_identifier": entry("E-X4", L_BLACK2, "91350100M000100Y44"),
        "bad_date": entry("E-X5", L_BLACK2, O_X3, vf="2025-02-30"),
        # SPEC §3: a date, or a time with an offset; a time without one is no source time
        "time_without_offset": entry("E-X7", L_BLACK2, O_X3, vf="2025-02-01T10:00:00"),
        "invalid_person": entry("E-X6", L_BLACK2, O_X3,
                                persons=[{"role": "legal_rep", "id": "110105194912310021",
                                          "name": "错号"}]),
    }


def _reject_source(tmp_path: Path, *, entries: Sequence[dict[str, Any]] = (),
                   events: Sequence[dict[str, Any]] = (),
                   relations: Sequence[dict[str, Any]] = ()) -> Path:
    return write_source(tmp_path / "source", **CATALOGUE,
                        entries=[GOOD_1, GOOD_2, *entries], events=events, relations=relations)


def _tail(file: Any) -> str:
    """The folder and name of a reported file (the report may give it relative or absolute)."""
    return "/".join(str(file).replace("\\", "/").split("/")[-2:])


def _assert_one_reject(tmp_path: Path, src: Path, file: str, line: int) -> None:
    with pytest.raises(BuildFailed) as err:
        build(src, tmp_path / "out")
    rejects = err.value.rejects
    assert len(rejects) == 1, rejects
    (r,) = rejects
    assert _tail(r["file"]) == file, r
    assert r["line"] == line, r
    assert isinstance(r["reason"], str) and r["reason"], r


@pytest.mark.parametrize("kind", ["unknown_list", "invalid_identifier", "bad_date",
                                  "time_without_offset", "invalid_person"])
def test_bad_entry_fails_the_build(tmp_path: Path, kind: str) -> None:
    src = _reject_source(tmp_path, entries=[_bad_entries()[kind]])
    _assert_one_reject(tmp_path, src, "entries/entries.jsonl", 3)


def test_bad_relation_fails_the_build(tmp_path: Path) -> None:
    src = _reject_source(tmp_path, relations=[rel(O_X1, PERSON_A, "legal_rep"),
                                              rel(O_X1, "110105194912310021", "director")])
    _assert_one_reject(tmp_path, src, "relations/relations.jsonl", 2)


@pytest.mark.parametrize("bad", [
    ev("V-X2", "2025-06-01T00:00:00+08:00", "objection_opened", "E-NOPE"),
    ev("V-X2", "2026-03-01T00:00:00+08:00", "exited", "E-X1/watch", reason="repaired"),
    ev("V-X2", "2026-02-30T00:00:00+08:00", "objection_opened", "E-X2"),
    ev("V-X2", "2025-07-01T00:00:00", "objection_opened", "E-X2"),
], ids=["unknown-entry", "derived-watch-entry", "bad-date", "time-without-offset"])
def test_bad_event_fails_the_build(tmp_path: Path, bad: dict[str, Any]) -> None:
    good = ev("V-X1", "2025-06-01T00:00:00+08:00", "objection_opened", "E-X2")
    src = _reject_source(tmp_path, events=[good, bad])
    _assert_one_reject(tmp_path, src, "events/events.jsonl", 2)


def _all_rejects_source(tmp_path: Path) -> Path:
    bad = _bad_entries()
    return _reject_source(
        tmp_path,
        entries=[bad["unknown_list"], bad["invalid_identifier"], bad["bad_date"]],
        relations=[rel(O_X1, PERSON_A, "legal_rep"),
                   rel(O_X1, "110105194912310021", "director")],
        events=[ev("V-X1", "2025-06-01T00:00:00+08:00", "objection_opened", "E-NOPE"),
                ev("V-X2", "2026-03-01T00:00:00+08:00", "exited", "E-X1/watch",
                   reason="repaired")])


def test_rejects_over_max_fail_with_file_and_line(tmp_path: Path) -> None:
    src = _all_rejects_source(tmp_path)
    with pytest.raises(BuildFailed) as err:
        build(src, tmp_path / "out", max_rejects=5)
    where = sorted((_tail(r["file"]), r["line"]) for r in err.value.rejects)
    assert where == [("entries/entries.jsonl", 3), ("entries/entries.jsonl", 4),
                     ("entries/entries.jsonl", 5), ("events/events.jsonl", 1),
                     ("events/events.jsonl", 2), ("relations/relations.jsonl", 2)]
    assert all(isinstance(r["reason"], str) and r["reason"] for r in err.value.rejects)


def test_rejects_within_max_build_without_bad_records(tmp_path: Path) -> None:
    src = _all_rejects_source(tmp_path)
    result = build(src, tmp_path / "out", max_rejects=6)
    assert result.rejects == 6
    assert result.rejects_path is not None and Path(result.rejects_path).exists()
    snap = Snapshot.open(result.path)
    assert summary(run(snap, O_X2)) == expect("block", [H("E-X2", m=BLOCK)])
    # E-X3 (unknown list) and E-X5 (bad date) are not in the snapshot
    assert summary(run(snap, O_X3)) == PASS
    # the rejected `exited` event on E-X1/watch did not end the watch
    assert summary(run(snap, O_X1, as_of="2026-06-01T00:00:00+08:00")) == \
        expect("alert", [H("E-X1/watch", m=ALERT)])
    # the good relation (line 1) links PERSON_A to O_X1
    assert summary(run(snap, PERSON_A, "soe_appointment",
                       as_of="2025-06-01T00:00:00+08:00")) == \
        expect("block", [H("E-X1", "linked:legal_rep", O_X1, SOE_BLOCK)])


def test_files_saved_with_a_bom_are_read(tmp_path: Path) -> None:
    """A file saved "UTF-8 with BOM" (Windows tools) loses no record: its first line is
    read without the BOM, in the catalogue, entries and events alike."""
    root = write_source(tmp_path / "source", **CATALOGUE, entries=[GOOD_2],
                        events=[ev("V-B1", "2026-03-01T00:00:00+08:00", "exited", "E-X2",
                                   reason="repaired")])
    for path in (root / "lists.jsonl", root / "entries" / "entries.jsonl",
                 root / "events" / "events.jsonl"):
        assert path.exists(), path
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = build(root, tmp_path / "out")
    assert result.rejects == 0
    snap = Snapshot.open(result.path)
    assert summary(run(snap, O_X2, as_of="2026-02-28T00:00:00+08:00")) == \
        expect("block", [H("E-X2", m=BLOCK)])
    assert summary(run(snap, O_X2, as_of="2026-03-01T00:00:00+08:00")) == PASS


def test_jsonl_gz_files_are_read(tmp_path: Path) -> None:
    root = write_source(tmp_path / "source", **CATALOGUE, entries=[GOOD_2])
    write_jsonl(root / "entries" / "more.jsonl", [GOOD_1, entry("E-G3", L_BLACK2, O_X3)],
                gz=True)
    write_jsonl(root / "relations" / "more.jsonl", [rel(O_X1, PERSON_A, "legal_rep")],
                gz=True)
    write_jsonl(root / "events" / "more.jsonl",
                [ev("V-G1", "2026-03-01T00:00:00+08:00", "exited", "E-G3", reason="repaired")],
                gz=True)
    assert (root / "entries" / "more.jsonl.gz").exists()
    result = build(root, tmp_path / "out")
    assert result.rejects == 0
    snap = Snapshot.open(result.path)
    assert summary(run(snap, O_X2)) == expect("block", [H("E-X2", m=BLOCK)])
    assert summary(run(snap, O_X3, as_of="2026-02-28T23:59:59.999999+08:00")) == \
        expect("block", [H("E-G3", m=BLOCK)])
    assert summary(run(snap, O_X3, as_of="2026-03-01T00:00:00+08:00")) == PASS
    assert summary(run(snap, PERSON_A, "soe_appointment",
                       as_of="2025-06-01T00:00:00+08:00")) == \
        expect("block", [H("E-X1", "linked:legal_rep", O_X1, SOE_BLOCK)])
