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
from .overlay import EntryState, Overlay

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
    purpose: str | None = None  # recorded in the audit trail (SPEC §6), not decided on


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
        self._unlisted: dict[tuple[str, frozenset[str]], tuple[int, list[dict[str, Any]]]] = {}
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
        v = snap.view
        # 1-D columns as typed memoryviews (shared with the snapshot's own lookups): indexing
        # gives Python ints ~3x faster than numpy.
        self.e_list = v("entry_list")
        self.e_from = v("entry_from")
        self.e_until = v("entry_until")
        self.e_end = v("entry_end")
        self.e_pub = v("entry_publicity")
        self.e_scope = v("entry_scope")
        self.e_subject = v("entry_subject")
        self.e_has_pieces = v("entry_has_pieces")
        self.pieces_off = v("entry_pieces_off")
        self.pieces = a["pieces"]
        self.s_entries_off = v("subject_entries_off")
        self.s_entries = v("subject_entries")
        self.s_links_off = v("subject_links_off")
        self.s_links = a["subject_links"]
        self.s_named_off = v("subject_named_off")
        self.s_named = a["subject_named"]

    def unlisted(self, scenario: str, adopted: frozenset[str]) -> tuple[int, list[dict[str, Any]]]:
        """Decision rank and top-level measures of a subject found nowhere (cached).

        Such a subject has no entries, so every ``clean_years`` measure of the scenario that
        targets the subject applies, whatever ``as_of``: the general rule, evaluated once.
        """
        key = (scenario, adopted)
        cached = self._unlisted.get(key)
        if cached is None:
            top = [_applied(m, adopted) for m in self.clean.get(scenario, ())
                   if "subject" in m["targets"] or not m["targets"]]
            cached = (max((RANK[m["action"]] for m in top), default=0), top)
            if len(self._unlisted) < 4096:
                self._unlisted[key] = cached
        return cached[0], list(cached[1])


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


def _find(snap: Snapshot, overlay: Overlay | None, key: str) -> tuple[int, int] | None:
    """(subject row, type code) of a normalised identifier or alias, snapshot or live."""
    match = snap.lookup(key)
    if match is not None:
        return match.subject, int(snap.subject_type[match.subject])
    if overlay is not None:
        row = overlay.lookup(key)
        if row is not None:
            n = len(snap.subject_key)
            stype = (int(snap.subject_type[row]) if row < n
                     else overlay.subject_info[row - n][1])
            return row, stype
    return None


def resolve(snap: Snapshot, raw: Any, type_: str | None,
            overlay: Overlay | None = None) -> Subject:
    """Resolve a request's subject (SPEC §2), raising ``Invalid`` with the reason code."""
    if not isinstance(raw, str):
        raise Invalid("bad_subject", "subject must be a string", field="subject")
    if type_ is not None and type_ not in ("org", "person"):
        raise Invalid("unknown_type", f"type must be 'org' or 'person', not {type_!r}",
                      field="type")
    key = identifiers.normalize(raw)
    found = _find(snap, overlay, key)
    if found is not None:
        stype = TYPE_CODES[found[1]]
        if type_ is None or type_ == stype:
            row = found[0]
            sid = (snap.subject_id(row) if row < len(snap.subject_key)
                   else overlay.subject_info[row - len(snap.subject_key)][0])  # type: ignore[union-attr]
            return Subject(stype, sid, row)
    try:
        ident = identifiers.parse_normalized(key, type_)
    except identifiers.IdentifierError as exc:
        raise Invalid(exc.code, exc.message, field="subject", expected=exc.expected) from None
    if ident.form == "org_code":
        code_row = snap.lookup_org_code(ident.value)
        if code_row is not None:
            return Subject("org", snap.subject_id(code_row), code_row)
        live = overlay.org_codes.get(ident.value) if overlay is not None else None
        if live is None:
            return Subject("org", ident.value, None)
        return Subject("org", overlay.subject_info[live - len(snap.subject_key)][0], live)  # type: ignore[union-attr]
    if ident.value != key:
        found = _find(snap, overlay, ident.value)
        if found is not None:
            return Subject(ident.type, ident.value, found[0])
    return Subject(ident.type, ident.value, None)


_AS_OF_MIN = clock.parse_instant("1800-01-01")
_AS_OF_MAX = clock.parse_instant("9000-01-01")


def _as_of(value: str | None) -> int:
    if value is None:
        return clock.now()
    try:
        instant = clock.parse_instant(value)
    except clock.BadTime as exc:
        raise Invalid("bad_as_of", str(exc), field="as_of") from None
    if not _AS_OF_MIN <= instant < _AS_OF_MAX:
        raise Invalid("bad_as_of", f"as_of {value!r} is outside 1800-01-01 .. 9000-01-01",
                      field="as_of")
    return instant


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


Facts = tuple[int, int, str, int, int, "tuple[tuple[int, int], ...] | None"]
"""(list index, publicity, scope prefix, valid_from, end, pieces or None)."""


class _Check:
    """The state of one check; a class only to keep the steps readable."""

    def __init__(self, snap: Snapshot, rules: Rules, caller: Caller, scenario: str,
                 region: str, as_of: int, consent: bool, overlay: Overlay | None) -> None:
        self.snap = snap
        self.rules = rules
        self.caller = caller
        self.scenario = scenario
        self.region = region
        self.t = as_of
        self.public = caller.tier == "public"
        self.consent = consent
        self.overlay = overlay if overlay else None
        self.n_entries = len(rules.e_list)
        self.n_subjects = len(snap.subject_key)

    def live(self, e: int) -> EntryState | None:
        ov = self.overlay
        if ov is not None and (e >= self.n_entries or e in ov.changed):
            return ov.state(e)
        return None

    def facts(self, e: int) -> Facts | None:
        """What the decision needs of entry ``e``; None when a live event purged it."""
        st = self.live(e)
        if st is not None:
            if st.purged:
                return None
            return (st.list, st.publicity, st.scope, st.valid_from, st.end, st.pieces)
        r = self.rules
        pieces = None
        if r.e_has_pieces[e]:
            lo, hi = int(r.pieces_off[e]), int(r.pieces_off[e + 1])
            pieces = tuple((s, x) for s, x in r.pieces[lo:hi].tolist())
        return (int(r.e_list[e]), int(r.e_pub[e]), r.scopes[int(r.e_scope[e])],
                int(r.e_from[e]), int(r.e_end[e]), pieces)

    def visible(self, f: Facts) -> bool:
        pub = f[1]
        if pub == _SHARED and self.public or pub == _AUTHORIZED and not self.consent:
            return False
        return covers(f[2], self.region)

    def state(self, f: Facts) -> int:
        """1 in effect, 0 suspended by objection (inside its window), -1 neither."""
        t = self.t
        if not (f[3] <= t < f[4]):
            return -1
        pieces = f[5]
        if pieces is None:
            return 1
        return 1 if any(s <= t < end for s, end in pieces) else 0

    @staticmethod
    def effective_within(f: Facts, start: int, stop: int) -> bool:
        """Is the entry in effect at any instant of the closed interval [start, stop]?"""
        pieces = f[5] if f[5] is not None else ((f[3], f[4]),)
        return any(s < end and s <= stop and end > start for s, end in pieces)

    def entries_of(self, row: int) -> list[int]:
        r = self.rules
        out = (r.s_entries[int(r.s_entries_off[row]):int(r.s_entries_off[row + 1])].tolist()
               if row < self.n_subjects else [])
        if self.overlay is not None:
            out.extend(self.overlay.extra_entries.get(row, ()))
        return out

    def entry_subject(self, e: int) -> int:
        st = self.live(e)
        return st.subject if st is not None else int(self.rules.e_subject[e])

    def link_candidates(self, subject: Subject) -> dict[tuple[int, str, int], None]:
        """(entry, path, via subject row) for every link, deduplicated, in a stable order."""
        r, row = self.rules, subject.row
        assert row is not None
        out: dict[tuple[int, str, int], None] = {}
        prefix = "linked:" if subject.type == "person" else "org_of:"
        if row < self.n_subjects:
            links = r.s_links[int(r.s_links_off[row]):int(r.s_links_off[row + 1])].tolist()
            for other, role in links:
                path = prefix + r.roles[role]
                for e in self.entries_of(other):
                    out[(e, path, other)] = None
        if subject.type == "person":
            named: list[Any] = []
            if row < self.n_subjects:
                named = r.s_named[int(r.s_named_off[row]):int(r.s_named_off[row + 1])].tolist()
            if self.overlay is not None:
                named.extend(self.overlay.extra_named.get(row, ()))
            for e, role in named:
                out[(e, "linked:" + r.roles[role], self.entry_subject(e))] = None
        return out

    # -- subjects --------------------------------------------------------------------------
    def subject_id(self, row: int) -> str:
        if row < self.n_subjects:
            return self.snap.subject_id(row)
        assert self.overlay is not None
        return self.overlay.subject_info[row - self.n_subjects][0]

    def subject_name(self, row: int) -> str | None:
        if row < self.n_subjects:
            return self.snap.subject_name_of(row)
        assert self.overlay is not None
        return self.overlay.subject_info[row - self.n_subjects][2]

    def subject_is_person(self, row: int) -> bool:
        if row < self.n_subjects:
            return int(self.snap.subject_type[row]) == 1
        assert self.overlay is not None
        return self.overlay.subject_info[row - self.n_subjects][1] == 1


def check(snap: Snapshot, request: CheckRequest, caller: Caller, *,
          overlay: Overlay | None = None) -> dict[str, Any]:
    """Decide one check; raise ``ScreeningError`` subclasses for bad input."""
    rules = rules_for(snap)
    if request.scenario not in rules.scenarios:
        raise Invalid("unknown_scenario", f"unknown scenario {request.scenario!r}",
                      field="scenario")
    region = check_region(request.region, caller)
    as_of = _as_of(request.as_of)
    subject = resolve(snap, request.subject, request.type, overlay)
    c = _Check(snap, rules, caller, request.scenario, region, as_of, bool(request.consent),
               overlay)
    return decide(c, subject, request.name)


def decide(c: _Check, subject: Subject, name: str | None) -> dict[str, Any]:
    rules, adopted = c.rules, c.caller.adopted
    kinds = rules.list_kinds
    hits: list[dict[str, Any]] = []
    suppressed: list[dict[str, Any]] = []
    top: list[dict[str, Any]] = []
    decision = 0
    own_bad: list[Facts] = []  # visible own black/watch entries (for clean_years)
    mismatch: bool | None = None
    if subject.row is not None:
        listed_name = c.subject_name(subject.row) if name is not None else None
        if name is not None and listed_name is not None:
            mismatch = _norm_name(name) != _norm_name(listed_name)
        found: list[tuple[int, Facts, str, int | None, list[dict[str, Any]]]] = []
        for e in c.entries_of(subject.row):
            f = c.facts(e)
            if f is None or not c.visible(f):
                continue
            if kinds[f[0]] != "red":
                own_bad.append(f)
            state = c.state(f)
            if state == 0:
                suppressed.append(_suppressed(c, e, f, "subject", None, "objection_pending"))
            elif state == 1:
                found.append((e, f, "subject", None,
                              rules.by_key.get((f[0], c.scenario, "subject"), [])))
        for e, path, link in c.link_candidates(subject):
            f = c.facts(e)
            if f is None:
                continue
            measures = rules.by_key.get((f[0], c.scenario, path))
            if not measures or not c.visible(f):
                continue
            state = c.state(f)
            if state == 0:
                suppressed.append(_suppressed(c, e, f, path, link, "objection_pending"))
            elif state == 1:
                found.append((e, f, path, link, measures))
        conflict = any(p == "subject" and kinds[f[0]] != "red" for _, f, p, _, _ in found)
        for e, f, path, via, measures in found:
            if conflict and kinds[f[0]] == "red":
                suppressed.append(_suppressed(c, e, f, path, via, "red_conflict"))
                continue
            applied = [_applied(m, adopted) for m in measures]
            for m in applied:
                decision = max(decision, RANK[m["action"]])
            hit = _hit(c, e, f, path, via, applied)
            if path == "subject":
                hit["name_mismatch"] = mismatch
            hits.append(hit)
    clean = rules.clean.get(c.scenario)
    if subject.row is None:
        decision, top = rules.unlisted(c.scenario, adopted)
    elif clean:
        qualifies: dict[int, bool] = {}
        for m in clean:
            years = m["clean_years"]
            if years not in qualifies:
                start = clock.minus_years(c.t, years)
                qualifies[years] = not any(c.effective_within(f, start, c.t) for f in own_bad)
            if qualifies[years] and ("subject" in m["targets"] or not m["targets"]):
                measure = _applied(m, adopted)
                decision = max(decision, RANK[measure["action"]])
                top.append(measure)
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
        "snapshot": c.snap.version,
        "as_of": clock.format_instant(c.t),
    }


_DECISIONS = sorted(RANK, key=RANK.__getitem__)


def _applied(m: dict[str, Any], adopted: frozenset[str]) -> dict[str, Any]:
    return {"id": m["id"], "name": m["name"], "force": m["force"], "effect": m["effect"],
            "action": action_of(m, adopted), "basis": m["basis"]}


def _via(c: _Check, row: int | None) -> dict[str, Any] | None:
    if row is None:
        return None
    vid = c.subject_id(row)
    if c.public and c.subject_is_person(row):
        vid = identifiers.mask_ric(vid)
    return {"id": vid, "name": c.subject_name(row)}


def _entry_id(c: _Check, e: int) -> str:
    st = c.live(e)
    return st.id if st is not None else c.snap.entry_id(e)


def _suppressed(c: _Check, e: int, f: Facts, path: str, via: int | None,
                reason: str) -> dict[str, Any]:
    r = c.rules
    return {"entry": _entry_id(c, e), "list": r.list_codes[f[0]], "kind": r.list_kinds[f[0]],
            "path": path, "via": _via(c, via), "reason": reason}


def _hit(c: _Check, e: int, f: Facts, path: str, via: int | None,
         measures: list[dict[str, Any]]) -> dict[str, Any]:
    snap, r = c.snap, c.rules
    st = c.live(e)
    if st is not None:
        until, authority, region, reason, basis = (st.valid_until, st.authority, st.region,
                                                   st.reason, st.basis)
    else:
        a = snap.arrays
        until = int(r.e_until[e])
        authority = snap.string(int(a["entry_authority"][e]))
        region = snap.string(int(a["entry_region"][e]))
        reason = snap.string(int(a["entry_reason"][e]))
        basis = snap.string(int(a["entry_basis"][e]))
    return {
        "entry": _entry_id(c, e),
        "list": r.list_codes[f[0]],
        "kind": r.list_kinds[f[0]],
        "path": path,
        "via": _via(c, via),
        "authority": authority,
        "region": region,
        "scope": f[2] or "national",
        "valid_from": clock.format_instant(f[3]),
        "valid_until": None if until == clock.NEVER else clock.format_instant(until),
        "reason": reason,
        "basis": basis,
        "publicity": PUBLICITY_CODES[f[1]],
        "measures": measures,
    }


def check_batch(snap: Snapshot, scenario: str, items: list[Any], caller: Caller, *,
                region: str | None = None, as_of: str | None = None, consent: str | None = None,
                overlay: Overlay | None = None) -> list[dict[str, Any]]:
    """Check many subjects in one scenario: one result or one ``{"error": …}`` per item.

    Request-level problems (unknown scenario, bad region or ``as_of``) raise, since they
    concern every item; a bad item never fails the batch.
    """
    rules = rules_for(snap)
    if scenario not in rules.scenarios:
        raise Invalid("unknown_scenario", f"unknown scenario {scenario!r}", field="scenario")
    check_region_prefix = check_region(region, caller)
    instant = _as_of(as_of)
    out: list[dict[str, Any]] = []
    contexts: dict[bool, _Check] = {}
    for item in items:
        raw: Any
        try:
            if isinstance(item, str):
                raw, type_, name = item, None, None
            elif isinstance(item, dict):
                raw, type_, name = item.get("subject"), item.get("type"), item.get("name")
                if name is not None and not isinstance(name, str):
                    raise Invalid("bad_name", "name must be a string", field="name")
            else:
                raise Invalid("bad_item", "each item is an object with 'subject' or a string")
            subject = resolve(snap, raw, type_, overlay)
            with_consent = bool(item.get("consent", consent) if isinstance(item, dict)
                                else consent)
            c = contexts.get(with_consent)
            if c is None:
                c = contexts[with_consent] = _Check(snap, rules, caller, scenario,
                                                    check_region_prefix, instant, with_consent,
                                                    overlay)
            out.append(decide(c, subject, name))
        except Invalid as exc:
            out.append(exc.body())
    return out
