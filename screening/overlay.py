"""Live events over an immutable snapshot (SPEC §3 events, §6 live events).

A snapshot never changes; live events accepted after it was built are applied to an
``Overlay`` that the decision reads through. The overlay is pure (no I/O): the service feeds it
events from the backbone's log, in log order, and every replica that applies the same log
reaches the same state. Rules are those of the build, re-used, not re-written:

* an event already folded into the snapshot (its id is in the snapshot) is skipped;
* events on a snapshot entry are merged with the entry's source events and re-folded with
  ``indexer.timeline.fold`` (live events come after all source events in "file order");
* a ``listed`` event adds a *virtual* entry (rows ``>= snapshot entries``); a subject unknown
  to the snapshot gets a virtual subject row (``>= snapshot subjects``);
* exit-to-watch entries are derived again whenever a black entry's end changes.

``Overlay.validate`` checks an event before it is accepted (unknown entry, derived entry,
duplicate listing, list of the event) without changing the state.
"""

from __future__ import annotations

import builtins

from dataclasses import dataclass, field
from typing import Any

from indexer import records
from indexer.clock import NEVER, plus_days
from indexer.records import DERIVED_SUFFIX, EVENT_TYPES, OBJECTION_RESULTS, ListDef, RecordError
from indexer.snapshot import PUBLICITY_CODES, Snapshot
from indexer.timeline import fold

Interval = tuple[int, int]


@dataclass(slots=True)
class EntryState:
    """Everything the decision reads of one entry."""

    id: str
    list: int
    subject: int
    valid_from: int
    valid_until: int
    end: int
    pieces: tuple[Interval, ...] | None  # None: in effect over the whole window
    publicity: int
    scope: str
    authority: str | None
    region: str | None
    reason: str | None
    basis: str | None
    # builtins: the class has a field named 'list'; (subject row, role index)
    persons: builtins.list[tuple[int, int]] = field(default_factory=builtins.list)
    purged: bool = False


class Overlay:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        cat = snap.catalog
        self.lists: dict[str, ListDef] = {li["code"]: ListDef(**li) for li in cat["lists"]}
        self.list_codes = [li["code"] for li in cat["lists"]]
        self.list_index = {c: i for i, c in enumerate(self.list_codes)}
        self.n_entries = len(snap.arrays["entry_id"])
        self.n_subjects = len(snap.subject_key)
        self.applied: list[dict[str, Any]] = []
        self._applied_ids: set[str] = set()
        self.changed: dict[int, EntryState] = {}  # snapshot rows with a new state
        self.virtual: list[EntryState] = []  # rows n_entries + i
        self.virtual_ids: dict[str, int] = {}
        self.subject_keys: dict[str, int] = {}  # virtual subjects and aliases of new entries
        self.subject_info: list[tuple[str, int, str | None]] = []  # (key, type, name)
        self.org_codes: dict[str, int] = {}  # 组织机构代码 of virtual organisations
        self.extra_entries: dict[int, list[int]] = {}
        self.extra_named: dict[int, list[tuple[int, int]]] = {}
        self.live: dict[int, list[tuple[int, str, str | None]]] = {}  # row -> (at, type, result)

    def __bool__(self) -> bool:
        return bool(self.applied)

    # -- reading -------------------------------------------------------------------------
    def entry_row(self, entry_id: str) -> int | None:
        row = self.virtual_ids.get(entry_id)
        return row if row is not None else self.snap.entry_row(entry_id)

    def state(self, row: int) -> EntryState:
        if row >= self.n_entries:
            return self.virtual[row - self.n_entries]
        changed = self.changed.get(row)
        return changed if changed is not None else snapshot_state(self.snap, row)

    def lookup(self, key: str) -> int | None:
        return self.subject_keys.get(key)

    # -- validation ----------------------------------------------------------------------
    def validate(self, obj: Any) -> tuple[records.Event, str, str | None]:
        """Parse an event and find its list and entry authority; raise ``RecordError``."""
        event = records.parse_event(obj)
        if event.type == "listed":
            entry = records.parse_entry(event.record, self.lists)
            if self.entry_row(entry.id) is not None and not self._known(event.id):
                raise RecordError("duplicate_id", f"entry {entry.id!r} is already listed")
            return event, entry.list, entry.authority or self.lists[entry.list].authority
        row = self.entry_row(event.entry or "")
        if row is None:
            raise RecordError("unknown_entry", f"event names unknown entry {event.entry!r}")
        st = self.state(row)
        if st.purged:
            raise RecordError("unknown_entry", f"entry {event.entry!r} has been purged")
        return event, self.list_codes[st.list], st.authority

    def _known(self, event_id: str) -> bool:
        return event_id in self._applied_ids or self.snap.has_event(event_id)

    # -- applying ------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> bool:
        """Apply one accepted event; False when it was already applied or folded."""
        event = records.parse_event(obj)
        if self._known(event.id):
            return False
        if event.type == "listed":
            self._add_listed(records.parse_entry(event.record, self.lists))
        else:
            row = self.entry_row(event.entry or "")
            if row is None:
                raise RecordError("unknown_entry", f"event names unknown entry {event.entry!r}")
            self.live.setdefault(row, []).append((event.at, event.type, event.result))
            self._refold(row)
        self._applied_ids.add(event.id)
        self.applied.append({"id": event.id, "type": event.type, "at": obj.get("at"),
                             "entry": event.entry or (event.record or {}).get("id")})
        return True

    def _subject(self, key: str, type_: str, name: str | None) -> int:
        match = self.snap.lookup(key)
        if match is not None and not match.alias:
            return match.subject
        row = self.subject_keys.get(key)
        if row is None:
            row = self.subject_keys[key] = self.n_subjects + len(self.subject_info)
            self.subject_info.append((key, 0 if type_ == "org" else 1, name))
            if type_ == "org":
                self.org_codes.setdefault(key[8:17], row)
        return row

    def _add_listed(self, e: records.Entry) -> None:
        listdef = self.lists[e.list]
        subject = self._subject(e.subject_id, e.subject_type, e.subject_name)
        for alias in e.aliases:
            self.subject_keys.setdefault(alias, subject)
        row = self.n_entries + len(self.virtual)
        persons = [(self._subject(p.id, "person", p.name), records.ROLE_INDEX[p.role])
                   for p in e.persons]
        state = EntryState(
            id=e.id, list=self.list_index[e.list], subject=subject, valid_from=e.valid_from,
            valid_until=e.valid_until, end=e.valid_until, pieces=None,
            publicity=PUBLICITY_CODES.index(e.publicity or listdef.publicity), scope=e.scope,
            authority=e.authority or listdef.authority, region=e.region, reason=e.reason,
            basis=e.basis, persons=persons)
        self.virtual.append(state)
        self.virtual_ids[e.id] = row
        self.extra_entries.setdefault(subject, []).append(row)
        for person, role in persons:
            self.extra_named.setdefault(person, []).append((row, role))
        self._refold(row)

    def _source_events(self, row: int) -> list[tuple[int, str, str | None]]:
        if row >= self.n_entries:
            return []
        a = self.snap.arrays
        lo, hi = int(a["entry_events_off"][row]), int(a["entry_events_off"][row + 1])
        return [(int(at), EVENT_TYPES[int(t)], None if r == 0 else OBJECTION_RESULTS[int(r) - 1])
                for at, t, r in zip(a["events_at"][lo:hi], a["events_type"][lo:hi],
                                    a["events_result"][lo:hi])]

    def _refold(self, row: int) -> None:
        base = self.state(row)
        if row < self.n_entries and row not in self.changed:
            base = EntryState(**{f: getattr(base, f) for f in EntryState.__slots__})
        listdef = self.lists[self.list_codes[base.list]]
        events = self._source_events(row) + self.live.get(row, [])
        events.sort(key=lambda ev: ev[0])  # stable: source order, then live order
        tl = fold(base.valid_from, base.valid_until, events, suspends=listdef.objection_suspends)
        base.purged = tl.purged
        base.end = tl.end
        window = ((tl.valid_from, tl.end),) if tl.end > tl.valid_from else ()
        base.pieces = None if tl.pieces == window else tl.pieces
        if row < self.n_entries:
            self.changed[row] = base
        self._derive(base)

    def _derive(self, parent: EntryState) -> None:
        listdef = self.lists[self.list_codes[parent.list]]
        if listdef.kind != "black" or listdef.exit_watch_list is None:
            return
        assert listdef.exit_watch_days is not None
        watch_id = parent.id + DERIVED_SUFFIX
        row = self.entry_row(watch_id)
        alive = not parent.purged and parent.end < NEVER
        if row is None:
            if not alive:
                return
            watch = self.lists[listdef.exit_watch_list]
            row = self.n_entries + len(self.virtual)
            self.virtual.append(EntryState(
                id=watch_id, list=self.list_index[watch.code], subject=parent.subject,
                valid_from=parent.end, valid_until=NEVER, end=NEVER, pieces=None,
                publicity=PUBLICITY_CODES.index(watch.publicity), scope=parent.scope,
                authority=parent.authority, region=parent.region, reason=parent.reason,
                basis=parent.basis, persons=list(parent.persons)))
            self.virtual_ids[watch_id] = row
            self.extra_entries.setdefault(parent.subject, []).append(row)
            for person, role in parent.persons:
                self.extra_named.setdefault(person, []).append((row, role))
        derived = self.state(row)
        if row < self.n_entries and row not in self.changed:
            derived = EntryState(**{f: getattr(derived, f) for f in EntryState.__slots__})
            self.changed[row] = derived
        derived.purged = not alive
        if alive:
            derived.valid_from = parent.end
            derived.valid_until = derived.end = plus_days(parent.end, listdef.exit_watch_days)


def snapshot_state(snap: Snapshot, row: int) -> EntryState:
    """An entry's state as the snapshot holds it."""
    a = snap.arrays
    pieces = None
    if a["entry_has_pieces"][row]:
        lo, hi = int(a["entry_pieces_off"][row]), int(a["entry_pieces_off"][row + 1])
        pieces = tuple((int(s), int(e)) for s, e in a["pieces"][lo:hi].tolist())
    plo, phi = int(a["entry_persons_off"][row]), int(a["entry_persons_off"][row + 1])
    return EntryState(
        id=snap.entry_id(row), list=int(a["entry_list"][row]),
        subject=int(a["entry_subject"][row]), valid_from=int(a["entry_from"][row]),
        valid_until=int(a["entry_until"][row]), end=int(a["entry_end"][row]), pieces=pieces,
        publicity=int(a["entry_publicity"][row]),
        scope=snap.catalog["scopes"][int(a["entry_scope"][row])],
        authority=snap.string(int(a["entry_authority"][row])),
        region=snap.string(int(a["entry_region"][row])),
        reason=snap.string(int(a["entry_reason"][row])),
        basis=snap.string(int(a["entry_basis"][row])),
        persons=[(int(p), int(r)) for p, r in zip(a["persons_subject"][plo:phi].tolist(),
                                                  a["persons_role"][plo:phi].tolist())])
