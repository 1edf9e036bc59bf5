"""Random sources and checks for the differential tests, and the comparison itself.

The generator is written once against a tiny ``Chooser`` interface, driven either by
``random.Random`` (seeded runs, including seeds drawn by Hypothesis) or by Hypothesis draws
(small examples that shrink). Every source it produces is valid (the build must accept it
with no rejects); the randomness goes into the timings, ties and combinations the SPEC rules
have to resolve. About one source in five is "messy": events of one entry in any file order,
a second ``objection_opened``, an ``objection_closed`` with nothing open, an exit before
``valid_from``, events after a purge, a ``listed`` event after the entry's other events —
none of them a reject in SPEC §3, all of them given a meaning by its sentences.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tests.naive import CST, Naive, Result, is_valid_id, make_id, make_uscc, shift_years
from tests.sourcekit import write_source

T = TypeVar("T")

PUBLICITIES = ("public", "shared", "authorized")
ROLES = ("legal_rep", "director", "principal")
SCOPES = ("national", None, "national", None, "35", "3501", "350100", "350102", "350000", "11",
          "110000")
REGIONS = ("350100", "350102", "350102", "350200", "110101", "440300")
SCENARIOS = ("government_procurement", "bidding", "honors")
TIERS = ("public", "agency", "issuer", "admin")
EFFECTS = ("block", "review", "alert", "green")
EXIT_REASONS = ("repaired", "fulfilled", "standard_changed", "expired")
OFFSETS = (dt.timedelta(hours=8), dt.timedelta(0), dt.timedelta(hours=9),
           dt.timedelta(hours=-5))
BASE = dt.datetime(2024, 1, 1, tzinfo=CST)
SPAN_DAYS = 5 * 366
SPECIAL = (dt.datetime(2024, 2, 29, tzinfo=CST), dt.datetime(2028, 2, 29, tzinfo=CST),
           dt.datetime(2025, 2, 28, tzinfo=CST), dt.datetime(2024, 3, 1, tzinfo=CST),
           dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=CST))
NUDGES = (dt.timedelta(0), dt.timedelta(0), dt.timedelta(seconds=1), dt.timedelta(seconds=-1),
          dt.timedelta(microseconds=1), dt.timedelta(microseconds=-1))


def _org_pool(n: int) -> list[str]:
    rng = random.Random(20240101)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    heads = ("91", "92", "93", "11", "12", "51", "52", "A1", "N2", "Y1", "31")
    regions = ("350100", "350102", "350200", "110105", "440300")
    out: list[str] = []
    while len(out) < n:
        body = "".join(rng.choice(alphabet) for _ in range(8))
        code = make_uscc(rng.choice(heads) + rng.choice(regions), body)
        # An all-digit USCC that also validates as an ID number would be a person (§2).
        if code in out or is_valid_id(code):
            continue
        out.append(code)
    return out


def _person_pool(n: int) -> list[str]:
    rng = random.Random(19491231)
    regions = ("110105", "350102", "350100", "440305", "360426")
    out: list[str] = []
    while len(out) < n:
        born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 60 * 365))
        if rng.random() < 0.1:
            born = dt.date(rng.choice((1960, 1980, 2000)), 2, 29)
        code = make_id(rng.choice(regions), born, f"{rng.randrange(1000):03d}")
        if code not in out:
            out.append(code)
    return out


ORG_POOL = _org_pool(40)
PERSON_POOL = _person_pool(40)


class Chooser(Protocol):
    def int(self, lo: int, hi: int) -> int: ...
    def choice(self, seq: Sequence[T]) -> T: ...
    def bool(self, p: float = 0.5) -> bool: ...


class RandomChooser:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, seq: Sequence[T]) -> T:
        return self.rng.choice(list(seq))

    def bool(self, p: float = 0.5) -> bool:
        return self.rng.random() < p


class DrawChooser:
    """Hypothesis draws; everything shrinks towards small numbers, first choices, False."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st
        self.draw = draw
        self.st = st

    # Hypothesis favours small values of wide integer ranges; sampled_from over a short range
    # is close to uniform and still shrinks towards its first element.

    def int(self, lo: int, hi: int) -> int:
        if hi - lo < 64:
            return int(self.draw(self.st.sampled_from(range(lo, hi + 1))))
        return int(self.draw(self.st.integers(lo, hi)))

    def choice(self, seq: Sequence[T]) -> T:
        return self.draw(self.st.sampled_from(list(seq)))  # type: ignore[no-any-return]

    def bool(self, p: float = 0.5) -> bool:
        yes = round(p * 20)
        return bool(self.draw(self.st.sampled_from([False] * (20 - yes) + [True] * yes)))


def subset(c: Chooser, seq: Sequence[T], p: float = 0.5, *, nonempty: bool = False) -> list[T]:
    out = [x for x in seq if c.bool(p)]
    if nonempty and not out:
        out = [c.choice(seq)]
    return out


# ---------------------------------------------------------------------------------------------
# Times.


class Clock:
    """Instants for one source: fresh ones on a coarse grid, or ties with earlier ones."""

    def __init__(self, c: Chooser) -> None:
        self.c = c
        self.used: list[dt.datetime] = []

    def fresh(self) -> dt.datetime:
        c = self.c
        if c.bool(0.05):
            t = c.choice(SPECIAL)
        else:
            t = BASE + dt.timedelta(days=c.int(0, SPAN_DAYS))
            if c.bool(0.5):
                t += dt.timedelta(seconds=c.choice((43200, 1, 86399, c.int(0, 86399))))
            if c.bool(0.1):
                t += dt.timedelta(microseconds=c.int(1, 999999))
        self.used.append(t)
        return t

    def any(self, p_tie: float = 0.3) -> dt.datetime:
        if self.used and self.c.bool(p_tie):
            return self.c.choice(self.used)
        return self.fresh()

    def after(self, t: dt.datetime) -> dt.datetime:
        c = self.c
        later = [u for u in self.used if u > t]
        if later and c.bool(0.3):
            return c.choice(later)
        step = c.choice((dt.timedelta(microseconds=1), dt.timedelta(seconds=1),
                         dt.timedelta(days=1), dt.timedelta(days=c.int(1, 900)),
                         dt.timedelta(days=365), dt.timedelta(days=c.int(1, 60))))
        u = t + step
        self.used.append(u)
        return u

    def fmt(self, t: dt.datetime, *, date_ok: bool = True) -> str:
        c = self.c
        local = t.astimezone(CST)
        if date_ok and local.time() == dt.time(0) and c.bool(0.6):
            return local.date().isoformat()
        offset = c.choice(OFFSETS)
        return t.astimezone(dt.timezone(offset)).isoformat()


# ---------------------------------------------------------------------------------------------
# Sources.


@dataclass
class Source:
    lists: list[dict[str, Any]]
    measures: list[dict[str, Any]]
    scenarios: list[dict[str, Any]]
    entries: list[dict[str, Any]]
    relations: list[dict[str, Any]]
    events: list[dict[str, Any]]
    orgs: list[str]
    persons: list[str]
    times: list[dt.datetime] = field(default_factory=list, repr=False)

    def records(self) -> dict[str, list[dict[str, Any]]]:
        return {"lists": self.lists, "measures": self.measures, "scenarios": self.scenarios,
                "entries": self.entries, "relations": self.relations, "events": self.events}

    def naive(self) -> Naive:
        return Naive(**self.records())

    def dumps(self) -> str:
        return json.dumps(self.records(), ensure_ascii=False, indent=1)


def gen_lists(c: Chooser, n_lists: tuple[int, int] = (2, 4),
              all_kinds: bool = False) -> list[dict[str, Any]]:
    n = c.int(*n_lists)
    kinds = [c.choice(("black", "watch", "red", "black")) for _ in range(n)]
    if all_kinds:
        kinds[:3] = ["black", "watch", "red"]
    lists: list[dict[str, Any]] = []
    for i, kind in enumerate(kinds):
        lst: dict[str, Any] = {"code": f"L{i}.{kind}", "name": f"名单{i}", "kind": kind,
                               "authority": f"机关{i}"}
        if c.bool(0.8):
            lst["publicity"] = c.choice(PUBLICITIES)
        if c.bool(0.7):
            lst["objection_suspends"] = c.bool(0.6)
        lists.append(lst)
    watch = [x["code"] for x in lists if x["kind"] == "watch"]
    for lst in lists:
        if lst["kind"] == "black" and watch and c.bool(0.7):
            lst["exit_watch_list"] = c.choice(watch)
            lst["exit_watch_days"] = c.choice((1, 30, 365, 366, c.int(1, 800)))
    return lists


def gen_measures(c: Chooser, lists: list[dict[str, Any]], scenarios: Sequence[str],
                 n_measures: tuple[int, int], n_clean: tuple[int, int]) -> list[dict[str, Any]]:
    codes = [x["code"] for x in lists]
    targets = ["subject"] + [f"linked:{r}" for r in ROLES] + [f"org_of:{r}" for r in ROLES]
    out: list[dict[str, Any]] = []
    for i in range(c.int(*n_measures)):
        out.append({
            "id": f"M-{i}", "name": f"措施{i}",
            "lists": subset(c, codes, 0.5, nonempty=True),
            "targets": subset(c, targets, 0.35, nonempty=True),
            "scenarios": subset(c, scenarios, 0.6, nonempty=True),
            "force": c.choice(("mandatory", "recommended")),
            "effect": c.choice(EFFECTS), "implementer": "某部门", "basis": f"依据{i}"})
    for i in range(c.int(*n_clean)):
        out.append({
            "id": f"M-CLEAN-{i}", "name": f"连续无不良{i}", "lists": [], "targets": ["subject"],
            "scenarios": subset(c, scenarios, 0.6, nonempty=True),
            "force": c.choice(("mandatory", "recommended")), "effect": "green",
            "clean_years": c.choice((1, 2, 3)), "basis": "守信激励"})
    return out


def gen_source(c: Chooser, *, n_subjects: tuple[int, int] = (3, 8),
               n_entries: tuple[int, int] = (0, 12), n_relations: tuple[int, int] = (0, 8),
               n_measures: tuple[int, int] = (1, 6), n_clean: tuple[int, int] = (0, 1),
               n_lists: tuple[int, int] = (2, 4),
               all_kinds: bool = False) -> Source:
    clock = Clock(c)
    messy = c.bool(0.2)
    lists = gen_lists(c, n_lists, all_kinds)
    scen_codes = list(SCENARIOS[:c.int(2, 3)])
    scenarios = [{"code": s, "name": s} for s in scen_codes]
    measures = gen_measures(c, lists, scen_codes, n_measures, n_clean)
    orgs = ORG_POOL[:c.int(*n_subjects)]
    persons = PERSON_POOL[:c.int(*n_subjects)]

    entries: list[dict[str, Any]] = []
    listed: set[str] = set()
    spans: dict[str, tuple[dt.datetime, dt.datetime | None]] = {}
    for i in range(c.int(*n_entries)):
        lst = c.choice(lists)
        is_org = c.bool(0.55)
        sid = c.choice(orgs if is_org else persons)
        vf = clock.any(0.3)
        vu = None if c.bool(0.25) else clock.after(vf)
        rec: dict[str, Any] = {
            "id": f"E-{i:04d}", "list": lst["code"],
            "subject": {"type": "org" if is_org else "person", "id": sid, "name": f"主体{sid[-4:]}"},
            "authority": f"发布机关{i % 3}", "region": "350100",
            "valid_from": clock.fmt(vf),
            "valid_until": None if vu is None else clock.fmt(vu),
            "reason": "理由", "basis": f"文书{i}"}
        scope = c.choice(SCOPES)
        if scope is not None:
            rec["scope"] = scope
        if c.bool(0.3):
            rec["publicity"] = c.choice(PUBLICITIES)
        if is_org and c.bool(0.4):
            people = []
            for _ in range(c.int(1, 2)):
                people.append({"role": c.choice(ROLES), "id": c.choice(persons), "name": "某人"})
            rec["persons"] = people
        entries.append(rec)
        spans[rec["id"]] = (vf, vu)
        if c.bool(0.2):
            listed.add(rec["id"])

    # Per-entry event sequences with non-decreasing `at`; types assigned in that order.
    sequences: list[list[dict[str, Any]]] = []
    counter = 0

    def next_id() -> str:
        nonlocal counter
        counter += 1
        return f"V-{counter}"

    for rec in entries:
        vf, vu = spans[rec["id"]]
        seq: list[dict[str, Any]] = []
        k = c.int(0, 5) if c.bool(0.7) else 0
        times = []
        for _ in range(k):
            pick = c.int(0, 4)
            if pick == 0:
                t = vf
            elif pick == 1 and vu is not None:
                t = vu
            elif pick == 2 and times:
                t = times[-1]
            elif pick == 3:
                t = clock.after(vf)
            else:
                t = clock.any(0.4)
            times.append(t)
        times.sort()
        is_open = False
        for j, t in enumerate(times):
            last = j == len(times) - 1
            if messy and c.bool(0.3):
                # Anything goes: a second opening, a close with nothing open, an exit before
                # valid_from, a purge followed by more events.
                etype = c.choice(("objection_opened", "objection_closed", "exited", "revoked"))
            else:
                options = ["objection_closed" if is_open else "objection_opened"]
                if t >= vf:
                    options.append("exited")
                etype = c.choice(options)
                if last and c.bool(0.12):
                    etype = "revoked"
            ev: dict[str, Any] = {"id": next_id(), "at": clock.fmt(t, date_ok=False),
                                  "entry": rec["id"], "type": etype}
            if etype == "objection_closed":
                ev["result"] = "upheld" if (last or messy) and c.bool(0.2) else "rejected"
                is_open = False
            elif etype == "objection_opened":
                is_open = True
            elif etype == "exited":
                ev["reason"] = c.choice(EXIT_REASONS)
            seq.append(ev)
        if rec["id"] in listed:
            first = times[0] if times else None
            at = clock.any(0.3)
            if first is not None and at > first and not messy:
                at = first
            seq.insert(0, {"id": next_id(), "at": clock.fmt(at, date_ok=False),
                           "type": "listed", "record": rec})
        sequences.append(seq)
    entries = [r for r in entries if r["id"] not in listed]

    # Interleave the sequences, keeping each one's order (ties in `at` keep file order);
    # a messy source shuffles them all (its ties then follow the shuffled file order).
    events: list[dict[str, Any]] = []
    pending = [s for s in sequences if s]
    while pending:
        i = c.int(0, len(pending) - 1)
        j = c.int(0, len(pending[i]) - 1) if messy else 0
        events.append(pending[i].pop(j))
        if not pending[i]:
            pending.pop(i)

    relations: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for _ in range(c.int(*n_relations)):
        key = (c.choice(orgs), c.choice(persons), c.choice(ROLES))
        if key in seen:
            continue
        seen.add(key)
        relations.append({"org": key[0], "person": key[1], "role": key[2], "name": "某人"})

    return Source(lists=lists, measures=measures, scenarios=scenarios, entries=entries,
                  relations=relations, events=events, orgs=orgs, persons=persons,
                  times=list(clock.used))


# ---------------------------------------------------------------------------------------------
# Checks.


def disguise(c: Chooser, code: str) -> str:
    """The same identifier as a person might type it (§2 normalisation undoes it)."""
    how = c.int(0, 3)
    if how == 0:
        return code.lower()
    if how == 1:
        return f" {code[:6]} {code[6:14]}-{code[14:]} "
    if how == 2:
        return "".join(chr(ord(ch) + 0xFEE0) for ch in code)     # full-width
    return f"{code[:9]}-{code[9:]}\t"


@dataclass(frozen=True)
class Check:
    subject: str
    scenario: str
    as_of: str
    tier: str = "agency"
    caller_region: str = "national"
    region: str | None = None
    consent: str | None = None
    adopted: tuple[str, ...] = ()
    type: str | None = None


def _instants(entries: Sequence[Any]) -> set[dt.datetime]:
    points: set[dt.datetime] = set()
    for e in entries:
        points.add(e.valid_from)
        if e.valid_until is not None:
            points.add(e.valid_until)
        points.update(e.exits)
        for opened, closed in e.objections:
            points.add(opened)
            if closed is not None:
                points.add(closed)
    return points


def _with_years(points: set[dt.datetime], source: Source) -> list[dt.datetime]:
    years = {m["clean_years"] for m in source.measures if m.get("clean_years")}
    out = set(points)
    for t in points:
        for n in years:
            out.add(shift_years(t, n))
    return sorted(out)


def boundaries(source: Source, naive: Naive) -> list[dt.datetime]:
    """Every instant at which some answer may change, and N years after each one."""
    return _with_years(set(source.times) | _instants(naive.entries) | set(SPECIAL), source)


def related(source: Source, naive: Naive, subject: str) -> list[Any]:
    """Entries that can reach ``subject``: its own, and those of linked orgs or persons."""
    ids = {subject}
    for r in source.relations:
        if r["person"] == subject:
            ids.add(r["org"])
        if r["org"] == subject:
            ids.add(r["person"])
    out = []
    for e in naive.entries:
        if e.subject_id in ids or any(pid == subject for pid, _role in e.persons):
            out.append(e)
    return out


def gen_checks(c: Chooser, source: Source, naive: Naive, n: int) -> list[Check]:
    points = boundaries(source, naive)
    recommended = [m["id"] for m in source.measures if m["force"] == "recommended"]
    clean = [m for m in source.measures if m.get("clean_years")]
    subjects = source.orgs + source.persons + [ORG_POOL[-1], PERSON_POOL[-1]]
    touched = sorted({e.subject_id for e in naive.entries}
                     | {pid for e in naive.entries for pid, _role in e.persons}
                     | {r["person"] for r in source.relations}
                     | {r["org"] for r in source.relations})
    near: dict[str, list[dt.datetime]] = {}
    out = []
    for _ in range(n):
        if touched and c.bool(0.75):
            subject = c.choice(touched)
        else:
            subject = c.choice(subjects)
        if subject not in near:
            near[subject] = _with_years(_instants(related(source, naive, subject)), source)
        mine = related(source, naive, subject)
        scenario = c.choice(source.scenarios)["code"]
        bad = [e for e in mine if e.subject_id == subject and e.kind in ("black", "watch")]
        pick = c.int(0, 9)
        if clean and bad and pick >= 8:
            # as_of − N years exactly on (or 1 µs / 1 s around) a bound of a black/watch entry.
            m = c.choice(clean)
            scenario = c.choice(m["scenarios"])
            e = c.choice(bad)
            bounds = sorted(_instants([e]))
            t = shift_years(c.choice(bounds), m["clean_years"]) + c.choice(NUDGES)
        elif mine and pick <= 1:
            # Somewhere inside one related entry's validity (not on a boundary).
            e = c.choice(mine)
            end = e.end() or e.valid_from + dt.timedelta(days=900)
            t = e.valid_from + (end - e.valid_from) * c.int(1, 9) / 10
        elif near[subject] and pick <= 6:
            t = c.choice(near[subject]) + c.choice(NUDGES)
        else:
            t = c.choice(points) + c.choice(NUDGES)
        style = c.int(0, 5)
        if style == 0:
            as_of = t.astimezone(CST).replace(tzinfo=None).isoformat()   # no offset: CST
        elif style == 1 and t.astimezone(CST).time() == dt.time(0):
            as_of = t.astimezone(CST).date().isoformat()
        else:
            as_of = t.astimezone(dt.timezone(c.choice(OFFSETS))).isoformat()
        where = c.int(0, 7)
        if where <= 1:
            caller_region, region = "national", None
        elif where <= 3:
            caller_region, region = "national", c.choice(REGIONS)
        elif where == 4:
            caller_region = c.choice(REGIONS)
            region = None
        elif where == 5:
            caller_region = c.choice(REGIONS)
            region = caller_region
        elif where == 6:
            caller_region, region = "national", "national"
        else:
            caller_region, region = c.choice((("350000", "350102"), ("350100", "350102"),
                                              ("350000", "350200"), ("110000", "110101")))
        typ = None
        if c.bool(0.2):
            typ = "org" if subject in ORG_POOL else "person"
        if c.bool(0.1):
            subject = disguise(c, subject)
        out.append(Check(subject=subject, scenario=scenario,
                         as_of=as_of, tier=c.choice(TIERS), caller_region=caller_region,
                         region=region, consent="CONSENT-1" if c.bool(0.3) else None,
                         adopted=tuple(subset(c, recommended, 0.5)), type=typ))
    return out


# ---------------------------------------------------------------------------------------------
# Running the core and comparing.


def normalise_core(resp: dict[str, Any]) -> dict[str, Any]:
    hits = []
    for h in resp["hits"]:
        via = h.get("via")
        hits.append(((h["entry"], h["path"], via["id"] if via else None), h["list"],
                     h["kind"], sorted((m["id"], m["action"]) for m in h["measures"])))
    suppressed = []
    for s in resp["suppressed"]:
        via = s.get("via")
        suppressed.append((s["entry"], s.get("path"), via["id"] if via else None, s["reason"]))
    return {"decision": resp["decision"],
            "subject": (resp["subject"]["type"], resp["subject"]["id"]),
            "hits": sorted(hits, key=repr),
            "measures": sorted((m["id"], m["action"]) for m in resp["measures"]),
            "suppressed": sorted(suppressed, key=repr)}


def normalise_naive(result: Result) -> dict[str, Any]:
    return {"decision": result.decision,
            "subject": result.subject,
            "hits": sorted((((h.entry, h.path, h.via), h.list, h.kind, sorted(h.measures))
                            for h in result.hits), key=repr),
            "measures": sorted(result.measures),
            "suppressed": sorted(result.suppressed, key=repr)}


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What differs, named by the comparisons of the differential test."""
    out = []
    if expected["decision"] != actual["decision"]:
        out.append(f"decision: naive {expected['decision']} core {actual['decision']}")
    if expected["subject"] != actual["subject"]:
        out.append(f"subject: naive {expected['subject']} core {actual['subject']}")
    exp_hits = {h[0]: h for h in expected["hits"]}
    act_hits = {h[0]: h for h in actual["hits"]}
    if len(act_hits) != len(actual["hits"]):
        out.append(f"core reports duplicate hits: {actual['hits']}")
    for key in sorted(set(exp_hits) | set(act_hits), key=repr):
        if key not in act_hits:
            out.append(f"hit missing in core: {exp_hits[key]}")
        elif key not in exp_hits:
            out.append(f"hit only in core: {act_hits[key]}")
        elif exp_hits[key] != act_hits[key]:
            out.append(f"hit differs: naive {exp_hits[key]} core {act_hits[key]}")
    if expected["measures"] != actual["measures"]:
        out.append(f"top-level measures: naive {expected['measures']} "
                   f"core {actual['measures']}")
    exp_s = {(s[0], s[3]) for s in expected["suppressed"]}
    act_s = {(s[0], s[3]) for s in actual["suppressed"]}
    if exp_s != act_s:
        out.append(f"suppressed (entry, reason): naive {sorted(exp_s)} core {sorted(act_s)}")
    elif expected["suppressed"] != actual["suppressed"]:    # sorted lists: duplicates count
        out.append(f"suppressed (entry, path, via, reason): naive {expected['suppressed']} "
                   f"core {actual['suppressed']}")
    return out


def core_check(snap: Any, chk: Check) -> dict[str, Any]:
    from screening.decision import Caller, CheckRequest, check
    caller = Caller(unit="diff", tier=chk.tier, region=chk.caller_region,
                    adopted=frozenset(chk.adopted))
    request = CheckRequest(subject=chk.subject, scenario=chk.scenario, type=chk.type,
                           region=chk.region, as_of=chk.as_of, consent=chk.consent)
    return check(snap, request, caller)  # type: ignore[no-any-return]


def naive_check(naive: Naive, chk: Check) -> Result:
    return naive.check(chk.subject, chk.scenario, as_of=chk.as_of, tier=chk.tier,
                       caller_region=chk.caller_region, region=chk.region,
                       consent=chk.consent, adopted=chk.adopted, type=chk.type)


def build_snapshot(source: Source, workdir: Path) -> Any:
    from indexer.build import build
    from indexer.snapshot import Snapshot
    root = write_source(workdir / "source", **source.records())
    result = build(root, workdir / "out")
    assert result.rejects == 0, result.rejects_path
    return Snapshot.open(result.path)


@dataclass
class Mismatch:
    check: Check
    diffs: list[str]
    expected: dict[str, Any]
    actual: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.check}\n  " + "\n  ".join(self.diffs)


def compare_all(snap: Any, naive: Naive, checks: Sequence[Check]) -> list[Mismatch]:
    out = []
    for chk in checks:
        expected = normalise_naive(naive_check(naive, chk))
        actual = normalise_core(core_check(snap, chk))
        diffs = differences(expected, actual)
        if diffs:
            out.append(Mismatch(chk, diffs, expected, actual))
    return out


def run(source: Source, checks: Sequence[Check]) -> list[Mismatch]:
    naive = source.naive()
    with tempfile.TemporaryDirectory(prefix="diff-") as tmp:
        snap = build_snapshot(source, Path(tmp))
        try:
            return compare_all(snap, naive, checks)
        finally:
            close = getattr(snap, "close", None)
            if close is not None:
                close()


def report(source: Source, mismatches: Sequence[Mismatch], limit: int = 5) -> str:
    lines = [f"{len(mismatches)} disagreement(s) between the core and tests/naive.py"]
    for m in mismatches[:limit]:
        lines.append(str(m))
    lines.append("source: " + source.dumps())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Minimising a disagreement (used by hand, and for the regression cases).


def minimise(source: Source, chk: Check) -> Source:
    """Drop records one at a time while the check still disagrees (greedy, slow)."""

    def fails(s: Source) -> bool:
        try:
            return bool(run(s, [chk]))
        except Exception:   # an invalid reduction (e.g. an event without its entry)
            return False

    assert fails(source), "the check does not disagree on this source"
    current = source
    changed = True
    while changed:
        changed = False
        for name in ("events", "relations", "entries", "measures", "lists"):
            items = getattr(current, name)
            i = 0
            while i < len(items):
                trial_items = items[:i] + items[i + 1:]
                trial = Source(**{**current.__dict__, name: trial_items})
                if name == "entries":
                    gone = items[i]["id"]
                    trial.events = [e for e in trial.events if e.get("entry") != gone]
                if fails(trial):
                    current, items, changed = trial, trial_items, True
                else:
                    i += 1
    return current
