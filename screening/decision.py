"""A check (SPEC §5): pure decision logic over a loaded snapshot.

No FastAPI, Redis or click here: the HTTP route, the CLI ``check`` and bulk screening all call
``check``. The steps follow the contract literally:

1. resolve the subject (aliases first, then SPEC §2 forms);
2. collect *own* entries and *link* entries (``linked:<role>`` for a person, ``org_of:<role>``
   for an organisation), keeping only entries visible to the caller (publicity × tier × consent,
   scope × region);
3. classify each at ``as_of``: in effect → hit; inside its window but suspended by an open
   objection → suppressed ``objection_pending``;
4. apply measures by list × scenario × path, with the caller's adopted recommended measures;
5. red conflict, ``clean_years``, and the decision by precedence.
"""

from __future__ import annotations

import itertools
import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from indexer import clock, identifiers
from indexer.regions import BadRegion, covers, region_prefix
from indexer.snapshot import PUBLICITY_CODES, TYPE_CODES, Snapshot

from .errors import Forbidden, Invalid

TIERS = ("public", "agency", "issuer", "admin")
RANK = {"pass": 0, "green": 1, "alert": 2, "review": 3, "block": 4}
_PUBLIC, _SHARED, _AUTHORIZED = 0, 1, 2
_ID_PREFIX = os.urandom(4).hex()
_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Caller:
    unit: str = "cli"
    tier: str = "agency"
    region: str = "national"
    adopted: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class CheckRequest:
    subject: str
    scenario: str
    type: str | None = None
    name: str | None = None
    region: str | None = None
    as_of: str | None = None
    consent: str | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    type: str
    id: str
    row: int | None  # subject row in the snapshot, None when it appears nowhere


class Rules:
    """Per-snapshot tables for the decision, built once when a snapshot is loaded."""

    def __init__(self, snap: Snapshot) -> None:
        cat = snap.catalog
        self.list_codes: list[str] = [li["code"] for li in cat["lists"]]
        self.list_kinds: list[str] = [li["kind"] for li in cat["lists"]]
        self.scopes: list[str] = cat["scopes"]
        self.roles: list[str] = cat["roles"]
        self.scenarios: frozenset[str] = frozenset(s["code"] for s in cat["scenarios"])
        index = {c: i for i, c in enumerate(self.list_codes)}
        self.by_key: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        self.clean: dict[str, list[dict[str, Any]]] = {}
        for m in cat["measures"]:
            if m["clean_years"] is not None:
                for sc in m["scenarios"]:
                    self.clean.setdefault(sc, []).append(m)
                continue
            for code in m["lists"]:
                for sc in m["scenarios"]:
                    for target in m["targets"]:
                        self.by_key.setdefault((index[code], sc, target), []).append(m)
        a = snap.arrays
        self.e_list = a["entry_list"]
        self.e_from = a["entry_from"]
        self.e_until = a["entry_until"]
        self.e_end = a["entry_end"]
        self.e_pub = a["entry_publicity"]
        self.e_scope = a["entry_scope"]
        self.e_subject = a["entry_subject"]
        self.e_has_pieces = a["entry_has_pieces"]
        self.pieces_off = a["entry_pieces_off"]
        self.pieces = a["pieces"]
        self.s_entries_off = a["subject_entries_off"]
        self.s_entries = a["subject_entries"]
        self.s_links_off = a["subject_links_off"]
        self.s_links = a["subject_links"]
        self.s_named_off = a["subject_named_off"]
        self.s_named = a["subject_named"]


def rules_for(snap: Snapshot) -> Rules:
    rules = snap.extras.get("rules")
    if rules is None:
        rules = snap.extras["rules"] = Rules(snap)
    return rules


def action_of(m: dict[str, Any], adopted: frozenset[str]) -> str:
    effect = m["effect"]
    if effect != "block" or m["force"] == "mandatory" or m["id"] in adopted:
        return effect
    return "review"


def resolve(snap: Snapshot, raw: Any, type_: str | None) -> Subject:
    """Resolve a request's subject (SPEC §2), raising ``Invalid`` with the reason code."""
    if not isinstance(raw, str):
        raise Invalid("bad_subject", "subject must be a string", field="subject")
    if type_ is not None and type_ not in ("org", "person"):
        raise Invalid("unknown_type", f"type must be 'org' or 'person', not {type_!r}",
                      field="type")
    key = identifiers.normalize(raw)
    match = snap.lookup(key)
    if match is not None:
        stype = TYPE_CODES[int(snap.subject_type[match.subject])]
        if type_ is None or type_ == stype:
            return Subject(stype, snap.subject_id(match.subject), match.subject)
    try:
        ident = identifiers.parse(key, type_)
    except identifiers.IdentifierError as exc:
        raise Invalid(exc.code, exc.message, field="subject", expected=exc.expected) from None
    if ident.form == "org_code":
        row = snap.lookup_org_code(ident.value)
        if row is None:
            return Subject("org", ident.value, None)
        return Subject("org", snap.subject_id(row), row)
    if ident.value != key:
        match = snap.lookup(ident.value)
        if match is not None:
            return Subject(ident.type, ident.value, match.subject)
    return Subject(ident.type, ident.value, None)


def _as_of(value: str | None) -> int:
    if value is None:
        return clock.now()
    try:
        return clock.parse_instant(value)
    except clock.BadTime as exc:
        raise Invalid("bad_as_of", str(exc), field="as_of") from None


def check_region(requested: str | None, caller: Caller) -> str:
    """The check's region prefix; 422 if malformed, 403 if outside the caller's region."""
    try:
        account = region_prefix(caller.region)
    except BadRegion as exc:
        raise Forbidden("region_forbidden", f"account region is unusable: {exc}") from None
    if requested is None:
        return account
    try:
        prefix = region_prefix(requested)
    except BadRegion as exc:
        raise Invalid("bad_region", str(exc), field="region") from None
    if not covers(account, prefix):
        raise Forbidden("region_forbidden",
                        f"region {requested!r} is not within the account's region "
                        f"{caller.region!r}", field="region")
    return prefix


def _norm_name(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split())


class _Check:
    """The state of one check; a class only to keep the steps readable."""

    def __init__(self, snap: Snapshot, rules: Rules, caller: Caller, scenario: str,
                 region: str, as_of: int, consent: bool) -> None:
        self.snap = snap
        self.rules = rules
        self.caller = caller
        self.scenario = scenario
        self.region = region
        self.t = as_of
        self.public = caller.tier == "public"
        self.consent = consent

    def visible(self, e: int) -> bool:
        r = self.rules
        pub = int(r.e_pub[e])
        if pub == _SHARED and self.public or pub == _AUTHORIZED and not self.consent:
            return False
        return covers(r.scopes[int(r.e_scope[e])], self.region)

    def state(self, e: int) -> int:
        """1 in effect, 0 suspended by objection (inside its window), -1 neither."""
        r, t = self.rules, self.t
        if not (int(r.e_from[e]) <= t < int(r.e_end[e])):
            return -1
        if not r.e_has_pieces[e]:
            return 1
        lo, hi = int(r.pieces_off[e]), int(r.pieces_off[e + 1])
        for s, end in r.pieces[lo:hi].tolist():
            if s <= t < end:
                return 1
        return 0

    def effective_within(self, e: int, start: int, stop: int) -> bool:
        """Is entry ``e`` in effect at any instant of the closed interval [start, stop]?"""
        r = self.rules
        if not r.e_has_pieces[e]:
            lo, hi = int(r.e_from[e]), int(r.e_end[e])
            return lo < hi and lo <= stop and hi > start
        a, b = int(r.pieces_off[e]), int(r.pieces_off[e + 1])
        return any(s <= stop and end > start for s, end in r.pieces[a:b].tolist())

    def entries_of(self, row: int) -> list[int]:
        r = self.rules
        return r.s_entries[int(r.s_entries_off[row]):int(r.s_entries_off[row + 1])].tolist()

    def link_candidates(self, subject: Subject) -> dict[tuple[int, str, int], None]:
        """(entry, path, via subject row) for every link, deduplicated, in a stable order."""
        r, row = self.rules, subject.row
        assert row is not None
        out: dict[tuple[int, str, int], None] = {}
        links = r.s_links[int(r.s_links_off[row]):int(r.s_links_off[row + 1])].tolist()
        prefix = "linked:" if subject.type == "person" else "org_of:"
        for other, role in links:
            path = prefix + r.roles[role]
            for e in self.entries_of(other):
                out[(e, path, other)] = None
        if subject.type == "person":
            named = r.s_named[int(r.s_named_off[row]):int(r.s_named_off[row + 1])].tolist()
            for e, role in named:
                out[(e, "linked:" + r.roles[role], int(r.e_subject[e]))] = None
        return out


def check(snap: Snapshot, request: CheckRequest, caller: Caller) -> dict[str, Any]:
    """Decide one check; raise ``ScreeningError`` subclasses for bad input."""
    rules = rules_for(snap)
    if request.scenario not in rules.scenarios:
        raise Invalid("unknown_scenario", f"unknown scenario {request.scenario!r}",
                      field="scenario")
    region = check_region(request.region, caller)
    as_of = _as_of(request.as_of)
    subject = resolve(snap, request.subject, request.type)
    c = _Check(snap, rules, caller, request.scenario, region, as_of, bool(request.consent))
    return decide(c, subject, request.name)


def decide(c: _Check, subject: Subject, name: str | None) -> dict[str, Any]:
    snap, rules, adopted = c.snap, c.rules, c.caller.adopted
    hits: list[dict[str, Any]] = []
    suppressed: list[dict[str, Any]] = []
    top: list[dict[str, Any]] = []
    decision = 0
    own_bad: list[int] = []  # visible own black/watch entries (for clean_years)
    mismatch: bool | None = None
    if subject.row is not None:
        listed_name = snap.subject_name_of(subject.row) if name is not None else None
        if name is not None and listed_name is not None:
            mismatch = _norm_name(name) != _norm_name(listed_name)
        found: list[tuple[int, str, int | None, list[dict[str, Any]]]] = []
        for e in c.entries_of(subject.row):
            if not c.visible(e):
                continue
            li = int(rules.e_list[e])
            if rules.list_kinds[li] != "red":
                own_bad.append(e)
            state = c.state(e)
            if state < 0:
                continue
            measures = rules.by_key.get((li, c.scenario, "subject"), [])
            if state == 0:
                suppressed.append(_suppressed(c, e, "subject", None, "objection_pending"))
            else:
                found.append((e, "subject", None, measures))
        for e, path, via in c.link_candidates(subject):
            li = int(rules.e_list[e])
            measures = rules.by_key.get((li, c.scenario, path))
            if not measures or not c.visible(e):
                continue
            state = c.state(e)
            if state == 0:
                suppressed.append(_suppressed(c, e, path, via, "objection_pending"))
            elif state == 1:
                found.append((e, path, via, measures))
        conflict = any(p == "subject" and rules.list_kinds[int(rules.e_list[e])] != "red"
                       for e, p, _, _ in found)
        for e, path, via, measures in found:
            if conflict and rules.list_kinds[int(rules.e_list[e])] == "red":
                suppressed.append(_suppressed(c, e, path, via, "red_conflict"))
                continue
            applied = [_applied(m, adopted) for m in measures]
            for m in applied:
                decision = max(decision, RANK[m["action"]])
            hit = _hit(c, e, path, via, applied)
            if path == "subject":
                hit["name_mismatch"] = mismatch
            hits.append(hit)
    clean = rules.clean.get(c.scenario)
    if clean:
        qualifies: dict[int, bool] = {}
        for m in clean:
            years = m["clean_years"]
            if years not in qualifies:
                start = clock.minus_years(c.t, years)
                qualifies[years] = not any(c.effective_within(e, start, c.t) for e in own_bad)
            if qualifies[years] and ("subject" in m["targets"] or not m["targets"]):
                applied = _applied(m, adopted)
                decision = max(decision, RANK[applied["action"]])
                top.append(applied)
    sid = subject.id
    if c.public and subject.type == "person":
        sid = identifiers.mask_ric(sid)
    return {
        "check_id": f"{_ID_PREFIX}-{next(_counter):x}",
        "decision": _DECISIONS[decision],
        "subject": {"type": subject.type, "id": sid, "name": name, "name_mismatch": mismatch},
        "hits": hits,
        "measures": top,
        "suppressed": suppressed,
        "snapshot": snap.version,
        "as_of": clock.format_instant(c.t),
    }


_DECISIONS = sorted(RANK, key=RANK.__getitem__)


def _applied(m: dict[str, Any], adopted: frozenset[str]) -> dict[str, Any]:
    return {"id": m["id"], "name": m["name"], "force": m["force"], "effect": m["effect"],
            "action": action_of(m, adopted), "basis": m["basis"]}


def _via(c: _Check, row: int | None) -> dict[str, Any] | None:
    if row is None:
        return None
    snap = c.snap
    vid = snap.subject_id(row)
    if c.public and int(snap.subject_type[row]) == 1:
        vid = identifiers.mask_ric(vid)
    return {"id": vid, "name": snap.subject_name_of(row)}


def _suppressed(c: _Check, e: int, path: str, via: int | None, reason: str) -> dict[str, Any]:
    r = c.rules
    li = int(r.e_list[e])
    return {"entry": c.snap.string(int(c.snap.arrays["entry_id"][e])),
            "list": r.list_codes[li], "kind": r.list_kinds[li], "path": path,
            "via": _via(c, via), "reason": reason}


def _hit(c: _Check, e: int, path: str, via: int | None,
         measures: list[dict[str, Any]]) -> dict[str, Any]:
    snap, r, a = c.snap, c.rules, c.snap.arrays
    li = int(r.e_list[e])
    until = int(r.e_until[e])
    scope = r.scopes[int(r.e_scope[e])]
    return {
        "entry": snap.string(int(a["entry_id"][e])),
        "list": r.list_codes[li],
        "kind": r.list_kinds[li],
        "path": path,
        "via": _via(c, via),
        "authority": snap.string(int(a["entry_authority"][e])),
        "region": snap.string(int(a["entry_region"][e])),
        "scope": scope or "national",
        "valid_from": clock.format_instant(int(r.e_from[e])),
        "valid_until": None if until == clock.NEVER else clock.format_instant(until),
        "reason": snap.string(int(a["entry_reason"][e])),
        "basis": snap.string(int(a["entry_basis"][e])),
        "publicity": PUBLICITY_CODES[int(r.e_pub[e])],
        "measures": measures,
    }
