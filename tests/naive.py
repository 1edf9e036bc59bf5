"""A deliberately naive evaluator of SPEC §3–§5, for differential tests.

Written from the SPEC text only, on the same plain records that ``tests.sourcekit.write_source``
writes (lists, measures, scenarios, entries, relations, events). It imports nothing from
``indexer`` or ``screening``: every rule is re-derived here in the most literal, slow way
(every check walks every entry), so that a disagreement with the core points at a real bug
in one of the two.

Deliberate simplifications: identifiers are assumed to be valid 18-character codes (a check
input is only folded to half-width, stripped of blanks and hyphens and upper-cased; no
aliases, no 15-digit forms); records are assumed valid (the build would reject the others).

Conventions the SPEC leaves open, chosen here (each is the literal reading of the text):

* A ``listed`` event's record counts exactly as if it were in the source: its ``at`` does
  not change when the entry is in effect (its ``valid_from`` does).
* An objection is open over ``[opened.at, next objection_closed.at)`` in event order (``at``,
  then file order), so an ``objection_closed`` at the same instant as the opening, after it
  in file order, leaves no open instant.
* Red conflict: every red hit of the check (own or linked) is suppressed while the checked
  subject has an own black or watch hit; a red entry that is already suppressed by an open
  objection is reported once, as ``objection_pending``.
* A ``clean_years`` measure applies when its scenario matches; its action follows §5.4 like
  any other measure (it is ``green``).
"""

from __future__ import annotations

import calendar
import unicodedata
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CST = dt.timezone(dt.timedelta(hours=8))

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK_MAP = "10X98765432"

ACTION_RANK = {"pass": 0, "green": 1, "alert": 2, "review": 3, "block": 4}
GOVERNMENT_TIERS = ("agency", "issuer", "admin")


# ---------------------------------------------------------------------------------------------
# Identifiers (only what the tests need: check characters and the person/org decision).


def uscc_check_char(first17: str) -> str:
    total = 0
    for i in range(17):
        total += USCC_ALPHABET.index(first17[i]) * USCC_WEIGHTS[i]
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    total = 0
    for i in range(8):
        c = first8[i]
        if c.isdigit():
            value = int(c)
        else:
            value = ord(c) - ord("A") + 10
        total += value * ORG_WEIGHTS[i]
    check = 11 - (total % 11)
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def id_check_char(first17: str) -> str:
    total = 0
    for i in range(17):
        total += int(first17[i]) * ID_WEIGHTS[i]
    return ID_CHECK_MAP[total % 11]


def make_uscc(prefix8: str, org_body8: str) -> str:
    """A valid USCC from its first 8 characters and the 8-character organisation-code body."""
    org = org_body8 + org_code_check_char(org_body8)
    first17 = prefix8 + org
    return first17 + uscc_check_char(first17)


def make_id(region6: str, birth: dt.date, seq3: str) -> str:
    first17 = region6 + birth.strftime("%Y%m%d") + seq3
    return first17 + id_check_char(first17)


def is_valid_id(s: str) -> bool:
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        return False
    try:
        born = dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    if born < dt.date(1800, 1, 1) or born > dt.date.today():
        return False
    return id_check_char(s[:17]) == s[17]


def is_valid_uscc(s: str) -> bool:
    if len(s) != 18 or any(c not in USCC_ALPHABET for c in s):
        return False
    if any(not (c.isdigit() or "A" <= c <= "Z") for c in s[8:16]):
        return False
    if org_code_check_char(s[8:16]) != s[16]:
        return False
    return uscc_check_char(s[:17]) == s[17]


def normalise_input(raw: str) -> str:
    """§2: full-width folded (NFKC), blanks and hyphens removed, upper-cased."""
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if not ch.isspace() and ch != "-")
    return text.upper()


def mask_id(s: str) -> str:
    """§5: for the public tier, characters 11–14 of a person ID number are masked."""
    return s[:10] + "****" + s[14:]


def subject_type(s: str) -> str:
    """SPEC §2: a string that validates as an ID number is a person, else an organisation."""
    if is_valid_id(s):
        return "person"
    return "org"


# ---------------------------------------------------------------------------------------------
# Times.


def parse_time(value: Any) -> dt.datetime:
    """A SPEC time: ``YYYY-MM-DD`` is 00:00 CST; ISO-8601 without offset is CST."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=CST)
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=CST)
    text = str(value)
    if len(text) == 10:
        d = dt.date.fromisoformat(text)
        return dt.datetime(d.year, d.month, d.day, tzinfo=CST)
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=CST)
    return t


def shift_years(t: dt.datetime, years: int) -> dt.datetime:
    """Move ``t`` by whole calendar years in CST; 29 Feb becomes 28 Feb in a common year."""
    local = t.astimezone(CST)
    year = local.year + years
    day = local.day
    if local.month == 2 and local.day == 29 and not calendar.isleap(year):
        day = 28
    return local.replace(year=year, day=day)


# ---------------------------------------------------------------------------------------------
# Regions.


def strip_region(code: str) -> str:
    while len(code) >= 2 and code.endswith("00"):
        code = code[:-2]
    return code


def scope_covers(scope: str, region: str) -> bool:
    if scope == "national":
        return True
    if region == "national":
        return False
    return region.startswith(strip_region(scope))


# ---------------------------------------------------------------------------------------------
# Entries.


@dataclass
class Entry:
    id: str
    list: str
    kind: str
    subject_type: str
    subject_id: str
    persons: list[tuple[str, str]]          # (person id, role)
    scope: str
    publicity: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    suspends: bool
    exits: list[dt.datetime] = field(default_factory=list)
    objections: list[tuple[dt.datetime, dt.datetime | None]] = field(default_factory=list)
    purged: bool = False
    derived: bool = False

    def valid_at(self, t: dt.datetime) -> bool:
        """§4 conditions 1–3 (everything except the objection)."""
        if self.purged:
            return False
        if t < self.valid_from:
            return False
        if self.valid_until is not None and not t < self.valid_until:
            return False
        for x in self.exits:
            if x <= t:
                return False
        return True

    def suspended_at(self, t: dt.datetime) -> bool:
        if not self.suspends:
            return False
        for opened, closed in self.objections:
            if opened <= t and (closed is None or not closed <= t):
                return True
        return False

    def in_effect(self, t: dt.datetime) -> bool:
        return self.valid_at(t) and not self.suspended_at(t)

    def end(self) -> dt.datetime | None:
        """The earlier of valid_until and the first exit (None: no end)."""
        candidates = list(self.exits)
        if self.valid_until is not None:
            candidates.append(self.valid_until)
        if not candidates:
            return None
        return min(candidates)

    def in_effect_within(self, start: dt.datetime, stop: dt.datetime) -> bool:
        """Is the entry in effect at any instant of the closed interval [start, stop]?

        The in-effect set is a union of half-open intervals, each starting at valid_from or at
        the close of an objection; so it meets [start, stop] exactly when the entry is in
        effect at ``start`` or at one of those starting instants inside the interval.
        """
        candidates = [start, self.valid_from]
        for _opened, closed in self.objections:
            if closed is not None:
                candidates.append(closed)
        for t in candidates:
            if start <= t <= stop and self.in_effect(t):
                return True
        return False


@dataclass
class Hit:
    entry: str
    list: str
    kind: str
    path: str
    via: str | None
    measures: list[tuple[str, str]]         # (measure id, action)


@dataclass
class Result:
    decision: str
    hits: list[Hit]
    measures: list[tuple[str, str]]         # top-level (clean_years) measures: (id, action)
    suppressed: list[tuple[str, str, str | None, str]]   # (entry, path, via, reason)
    subject: tuple[str, str] = ("", "")                  # (type, id as output)

    def hit_keys(self) -> set[tuple[str, str, str | None]]:
        return {(h.entry, h.path, h.via) for h in self.hits}


class Naive:
    """All source records in memory; ``check`` answers one SPEC §5 check."""

    def __init__(self, *, lists: Iterable[Mapping[str, Any]],
                 measures: Iterable[Mapping[str, Any]] = (),
                 scenarios: Iterable[Mapping[str, Any]] = (),
                 entries: Iterable[Mapping[str, Any]] = (),
                 relations: Iterable[Mapping[str, Any]] = (),
                 events: Iterable[Mapping[str, Any]] = ()) -> None:
        self.lists = {r["code"]: dict(r) for r in lists}
        self.measures = [dict(m) for m in measures]
        self.scenarios = {s["code"] for s in scenarios}
        self.relations = [dict(r) for r in relations]
        events = [dict(e) for e in events]

        records = [dict(e) for e in entries]
        for ev in events:
            if ev["type"] == "listed":
                records.append(dict(ev["record"]))

        self.entries: list[Entry] = []
        by_id: dict[str, Entry] = {}
        for rec in records:
            lst = self.lists[rec["list"]]
            subject = rec["subject"]
            persons = [(p["id"], p["role"]) for p in rec.get("persons") or []]
            vu = rec.get("valid_until")
            e = Entry(
                id=rec["id"], list=rec["list"], kind=lst["kind"],
                subject_type=subject.get("type") or subject_type(subject["id"]),
                subject_id=subject["id"], persons=persons,
                scope=rec.get("scope") or "national",
                publicity=rec.get("publicity") or lst.get("publicity") or "public",
                valid_from=parse_time(rec["valid_from"]),
                valid_until=None if vu is None else parse_time(vu),
                suspends=lst.get("objection_suspends", True) is not False,
            )
            self.entries.append(e)
            by_id[e.id] = e

        # Events of one entry in order of `at`, then file order.
        ordered = []
        for index, ev in enumerate(events):
            if ev["type"] == "listed":
                continue
            ordered.append((parse_time(ev["at"]), index, ev))
        ordered.sort(key=lambda item: (item[0], item[1]))
        open_since: dict[str, list[dt.datetime]] = {}
        for at, _index, ev in ordered:
            e = by_id[ev["entry"]]
            kind = ev["type"]
            if kind == "revoked":
                e.purged = True
            elif kind == "exited":
                e.exits.append(at)
            elif kind == "objection_opened":
                open_since.setdefault(e.id, []).append(at)
            elif kind == "objection_closed":
                for opened in open_since.pop(e.id, []):
                    e.objections.append((opened, at))
                if ev.get("result") == "upheld":
                    e.purged = True
            else:
                raise ValueError(f"unknown event type {kind!r}")
        for entry_id, opens in open_since.items():
            for opened in opens:
                by_id[entry_id].objections.append((opened, None))

        # Exit to watch (§4).
        derived = []
        for e in self.entries:
            lst = self.lists[e.list]
            if e.purged or e.kind != "black" or not lst.get("exit_watch_list"):
                continue
            x = e.end()
            if x is None:
                continue
            watch = self.lists[lst["exit_watch_list"]]
            days = int(lst["exit_watch_days"])
            derived.append(Entry(
                id=e.id + "/watch", list=watch["code"], kind=watch["kind"],
                subject_type=e.subject_type, subject_id=e.subject_id,
                persons=list(e.persons), scope=e.scope,
                publicity=watch.get("publicity") or "public",
                valid_from=x, valid_until=x + dt.timedelta(days=days),
                suspends=False, derived=True,
            ))
        self.entries.extend(derived)

    # -----------------------------------------------------------------------------------------

    def visible(self, e: Entry, tier: str, consent: str | None, region: str) -> bool:
        if e.publicity == "public":
            ok = True
        elif e.publicity == "shared":
            ok = tier in GOVERNMENT_TIERS
        elif e.publicity == "authorized":
            ok = bool(consent)
        else:
            raise ValueError(e.publicity)
        return ok and scope_covers(e.scope, region)

    def applying(self, e: Entry, path: str, scenario: str) -> list[dict[str, Any]]:
        out = []
        for m in self.measures:
            if m.get("clean_years") is not None:
                continue
            if e.list in m.get("lists", []) and scenario in m.get("scenarios", []) \
                    and path in m.get("targets", []):
                out.append(m)
        return out

    @staticmethod
    def action(m: Mapping[str, Any], adopted: frozenset[str]) -> str:
        if m["effect"] == "block":
            if m["force"] == "mandatory" or m["id"] in adopted:
                return "block"
            return "review"
        return m["effect"]

    def check(self, subject: str, scenario: str, *, as_of: Any, tier: str = "agency",
              caller_region: str = "national", region: str | None = None,
              consent: str | None = None, adopted: Iterable[str] = (),
              type: str | None = None) -> Result:
        t = parse_time(as_of)
        adopted = frozenset(adopted)
        subject = normalise_input(subject)
        kind = type or subject_type(subject)
        check_region = region if region is not None else caller_region

        def vis(e: Entry) -> bool:
            return self.visible(e, tier, consent, check_region)

        hits: list[Hit] = []
        suppressed: list[tuple[str, str, str | None, str]] = []

        # Own hits: every visible entry in effect, with or without measures.
        own = [e for e in self.entries
               if e.subject_type == kind and e.subject_id == subject and vis(e)]
        for e in own:
            if not e.valid_at(t):
                continue
            if e.suspended_at(t):
                suppressed.append((e.id, "subject", None, "objection_pending"))
                continue
            ms = self.applying(e, "subject", scenario)
            hits.append(Hit(e.id, e.list, e.kind, "subject", None,
                            [(m["id"], self.action(m, adopted)) for m in ms]))

        # Link candidates: (entry, path, via).
        links: set[tuple[str, str, str]] = set()
        by_id = {e.id: e for e in self.entries}
        if kind == "person":
            for r in self.relations:
                if r["person"] == subject:
                    for e in self.entries:
                        if e.subject_type == "org" and e.subject_id == r["org"]:
                            links.add((e.id, "linked:" + r["role"], r["org"]))
            for e in self.entries:
                if e.subject_type != "org":
                    continue
                for pid, role in e.persons:
                    if pid == subject:
                        links.add((e.id, "linked:" + role, e.subject_id))
        else:
            for r in self.relations:
                if r["org"] == subject:
                    for e in self.entries:
                        if e.subject_type == "person" and e.subject_id == r["person"]:
                            links.add((e.id, "org_of:" + r["role"], r["person"]))
        for entry_id, path, via_id in sorted(links):
            e = by_id[entry_id]
            # Output: person ID numbers are masked for the public tier (§5).
            via = mask_id(via_id) if tier == "public" and path.startswith("org_of:") else via_id
            if not vis(e) or not e.valid_at(t):
                continue
            ms = self.applying(e, path, scenario)
            if not ms:
                continue
            if e.suspended_at(t):
                suppressed.append((e.id, path, via, "objection_pending"))
                continue
            hits.append(Hit(e.id, e.list, e.kind, path, via,
                            [(m["id"], self.action(m, adopted)) for m in ms]))

        # Red conflict.
        bad = any(h.path == "subject" and h.kind in ("black", "watch") for h in hits)
        if bad:
            kept = []
            for h in hits:
                if h.kind == "red":
                    suppressed.append((h.entry, h.path, h.via, "red_conflict"))
                else:
                    kept.append(h)
            hits = kept

        # clean_years.
        top: list[tuple[str, str]] = []
        for m in self.measures:
            years = m.get("clean_years")
            if years is None or scenario not in m.get("scenarios", []):
                continue
            start = shift_years(t, -int(years))
            dirty = any(e.kind in ("black", "watch") and e.in_effect_within(start, t)
                        for e in own)
            if not dirty:
                top.append((m["id"], self.action(m, adopted)))

        actions = [a for h in hits for _mid, a in h.measures] + [a for _mid, a in top]
        decision = "pass"
        for a in actions:
            if ACTION_RANK[a] > ACTION_RANK[decision]:
                decision = a
        shown = mask_id(subject) if tier == "public" and kind == "person" else subject
        return Result(decision=decision, hits=hits, measures=top, suppressed=suppressed,
                      subject=(kind, shown))
