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
duplicate listing, list of the event) without changing the state. ``Overlay.stage()`` judges
the events of one request *in order*, each against the state the events before it (in the log,
then earlier in the same request) produce, still without changing the overlay: an event may
name an entry listed earlier in its request, a second listing of one entry id is a duplicate,
and an event naming an entry that an earlier event purged is refused (as it is once the purge
is applied, and once a build has dropped the entry). ``Overlay.accepted`` remembers every event
read from the log (content and owner), so a re-posted id can be compared and authorised.
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
        # every event read from the log (applied, already folded, or not applicable), by id
        self.accepted: dict[str, Accepted] = {}
        self._listed_owner: dict[str, Owner] = {}  # entry id -> owner, of logged listings

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
        if event.type == "listed" and self._known(event.id):
            entry = records.parse_entry(event.record, self.lists)
            return event, entry.list, entry.authority or self.lists[entry.list].authority
        return judge_new(event, self.lists, self._target)

    def _target(self, entry_id: str) -> tuple[str, str | None, bool] | None:
        """(list code, authority, purged) of an entry, or None when it is unknown."""
        row = self.entry_row(entry_id)
        if row is None:
            return None
        st = self.state(row)
        return self.list_codes[st.list], st.authority, st.purged

    def _known(self, event_id: str) -> bool:
        return event_id in self._applied_ids or self.snap.has_event(event_id)

    def stage(self) -> Staging:
        """A scratch view for judging one request's events in order (see ``Staging``)."""
        return Staging(self)

    def owner(self, event: records.Event) -> Owner | None:
        """The list and authority an event is about, as far as this overlay knows (an entry
        purged and dropped by a build, or a listing that does not parse: None)."""
        if event.type == "listed":
            return listing_owner(event.record, self.lists)
        target = self._target(event.entry or "")
        if target is not None:
            return target[0], target[1]
        return self._listed_owner.get(event.entry or "")

    # -- applying ------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> bool:
        """Apply one accepted event; False when it was already applied or folded.

        Raises ``RecordError`` (and changes nothing) for an event the log holds but that cannot
        apply: an entry unknown here, or a second listing of an entry id (the first listing
        wins, on every replica alike)."""
        event = records.parse_event(obj)
        if event.id not in self.accepted:
            owner = self.owner(event)
            self.accepted[event.id] = Accepted(obj, owner)
            if event.type == "listed" and owner is not None:
                self._listed_owner.setdefault(str(event.record.get("id")), owner)  # type: ignore[union-attr]
        if self._known(event.id):
            return False
        if event.type == "listed":
            entry = records.parse_entry(event.record, self.lists)
            if self.entry_row(entry.id) is not None:
                raise RecordError("duplicate_id", f"entry {entry.id!r} is already listed")
            self._add_listed(entry)
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


Owner = tuple[str, str | None]  # (list code, entry authority)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An event as the log holds it, and whom it concerns (None: no longer known here)."""

    event: dict[str, Any]
    owner: Owner | None


def listing_owner(record: Any, lists: dict[str, ListDef]) -> Owner | None:
    """(list, authority) of a ``listed`` event's record, or None when it does not parse."""
    try:
        entry = records.parse_entry(record, lists)
    except (RecordError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return entry.list, entry.authority or lists[entry.list].authority


def judge_new(event: records.Event, lists: dict[str, ListDef],
              target: Any) -> tuple[records.Event, str, str | None]:
    """The state checks of a new event (``target(entry_id)`` gives (list, authority, purged)
    or None): a listing of an entry id that exists (purged ones too) is a duplicate, an event
    on an unknown or purged entry names an unknown entry. Returns (event, list, authority)."""
    if event.type == "listed":
        entry = records.parse_entry(event.record, lists)
        if target(entry.id) is not None:
            raise RecordError("duplicate_id", f"entry {entry.id!r} is already listed")
        return event, entry.list, entry.authority or lists[entry.list].authority
    found = target(event.entry or "")
    if found is None:
        raise RecordError("unknown_entry", f"event names unknown entry {event.entry!r}")
    list_code, authority, purged = found
    if purged:
        raise RecordError("unknown_entry", f"entry {event.entry!r} has been purged")
    return event, list_code, authority


@dataclass(slots=True)
class Judged:
    """One event of a request, judged by ``Staging.judge``.

    ``owners``: every (list, authority) the event concerns — the posted event's, and for a
    re-posted id the accepted event's too; the caller must manage all of them (None: not known
    here, e.g. an unknown entry). ``repeat``: the id was accepted before (or earlier in the
    request) with the same content: nothing to add. ``conflict``: the id was accepted before
    (or earlier in the request) with other content, or its content is not known here (an event
    of the source): the request must be refused. ``stage`` (only when neither) makes the event
    part of the state the next events of the request are judged against, and raises
    ``RecordError`` when it is invalid in that state."""

    event: records.Event
    owners: list[Owner | None]
    repeat: bool = False
    conflict: str | None = None


class Staging:
    """The events of one request judged in order over an overlay that is never changed: each
    against the state the log and the request's earlier events produce — the state every
    replica reaches by applying the log in order, and the build by folding it.

    Only what validation reads is staged: which entries the request listed (list, authority)
    and which it purged (``revoked``, ``objection_closed`` upheld). A purge holds whatever the
    events' ``at`` (``indexer.timeline.fold``), so file order cannot undo it."""

    def __init__(self, overlay: Overlay) -> None:
        self.overlay = overlay
        self.listed: dict[str, Owner] = {}  # entry id -> owner, listed earlier in the request
        self.purged: set[str] = set()  # entries purged earlier in the request
        self.seen: dict[str, dict[str, Any]] = {}  # event id -> content, earlier in the request
        self.events: list[dict[str, Any]] = []  # the events to append, in order (no repeats)

    def _target(self, entry_id: str) -> tuple[str, str | None, bool] | None:
        owner = self.listed.get(entry_id)
        if owner is not None:
            return owner[0], owner[1], entry_id in self.purged
        found = self.overlay._target(entry_id)
        if found is None:
            return None
        return found[0], found[1], found[2] or entry_id in self.purged

    def owner(self, event: records.Event) -> Owner | None:
        if event.type == "listed":
            return listing_owner(event.record, self.overlay.lists)
        found = self._target(event.entry or "")
        if found is not None:
            return found[0], found[1]
        return self.overlay.owner(event)

    def judge(self, obj: Any) -> Judged:
        """Parse one event (``RecordError``: bad shape) and classify it; see ``Judged``."""
        event = records.parse_event(obj)
        judged = Judged(event, [self.owner(event)])
        earlier = self.seen.get(event.id)
        accepted = self.overlay.accepted.get(event.id)
        if earlier is not None:
            if earlier == obj:
                judged.repeat = True
            else:
                judged.conflict = (f"event id {event.id!r} appears earlier in this request "
                                   "with other content")
        elif accepted is not None:
            judged.owners.append(accepted.owner)
            if accepted.event == obj:
                judged.repeat = True
            else:
                judged.conflict = (f"event id {event.id!r} was accepted before with other "
                                   "content; an accepted event is never replaced")
        elif self.overlay.snap.has_event(event.id):
            judged.conflict = (f"event id {event.id!r} is already in the snapshot (from the "
                               "source); event ids are never reused")
        return judged

    def stage(self, judged: Judged, obj: dict[str, Any]) -> tuple[str, str | None]:
        """Judge a new event against the staged state and add it (``RecordError``: invalid);
        returns its (list, authority)."""
        event = judged.event
        _, list_code, authority = judge_new(event, self.overlay.lists, self._target)
        if event.type == "listed":
            self.listed[str(event.record.get("id"))] = (list_code, authority)  # type: ignore[union-attr]
        elif event.type == "revoked" or (event.type == "objection_closed"
                                         and event.result == "upheld"):
            self.purged.add(event.entry or "")
        self.seen[event.id] = obj
        self.events.append(obj)
        return list_code, authority


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
