"""Compile validated records into the snapshot's columnar arrays.

Records arrive one at a time (``add_entry``, ``add_relation``, ``add_event``) and are kept in
compact columns (``array`` / interned strings), never as per-entry Python objects. ``compile``
folds events into timelines (SPEC §4), drops purged entries, derives exit-to-watch entries and
lays out the arrays that ``indexer.snapshot`` writes.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from typing import Any

import numpy as np
import xxhash
from pyroaring import BitMap, FrozenBitMap

from .clock import NEVER, plus_days
from .records import (DERIVED_SUFFIX, EVENT_TYPES, OBJECTION_RESULTS, ROLE_INDEX, ROLES, Entry,
                      ListDef, Measure, Scenario)
from .snapshot import NONE32, PUBLICITY_CODES, TYPE_CODES
from .timeline import fold

_hash = xxhash.xxh3_64_intdigest
_PUB = {p: i for i, p in enumerate(PUBLICITY_CODES)}
_TYPE = {t: i for i, t in enumerate(TYPE_CODES)}


class DuplicateId(ValueError):
    pass


class Compiler:
    def __init__(self, lists: dict[str, ListDef], measures: dict[str, Measure],
                 scenarios: dict[str, Scenario]) -> None:
        self.lists = lists
        self.measures = measures
        self.scenarios = scenarios
        self.list_codes = list(lists)
        self.list_index = {c: i for i, c in enumerate(self.list_codes)}
        self._pool: dict[str, int] = {}
        self._strings: list[str] = []
        self.scopes: dict[str, int] = {"": 0}
        self.subjects: dict[str, int] = {}
        self.subject_type = bytearray()
        self.subject_name = array("I")
        self.entry_index: dict[str, int] = {}
        self.e_id = array("I")
        self.e_list = array("H")
        self.e_subject = array("I")
        self.e_from = array("q")
        self.e_until = array("q")
        self.e_publicity = bytearray()
        self.e_scope = array("H")
        self.e_authority = array("I")
        self.e_region = array("I")
        self.e_reason = array("I")
        self.e_basis = array("I")
        self.e_persons_off = array("Q", [0])
        self.p_subject = array("I")
        self.p_role = bytearray()
        self.aliases: list[tuple[int, int, int]] = []  # (entry row, subject row, alias string)
        self.r_org = array("I")
        self.r_person = array("I")
        self.r_role = bytearray()
        self.events: dict[int, list[tuple[int, int, str, str | None]]] = defaultdict(list)
        self.event_ids: list[int] = []  # every accepted event (string pool), incl. ``listed``

    # -- ingestion -------------------------------------------------------------------------
    def intern(self, text: str | None) -> int:
        if text is None:
            return NONE32
        index = self._pool.get(text)
        if index is None:
            index = self._pool[text] = len(self._strings)
            self._strings.append(text)
        return index

    def subject(self, key: str, type_: str, name: str | None) -> int:
        row = self.subjects.get(key)
        if row is None:
            row = self.subjects[key] = len(self.subject_type)
            self.subject_type.append(_TYPE[type_])
            self.subject_name.append(self.intern(name))
        elif name and self.subject_name[row] == NONE32:
            self.subject_name[row] = self.intern(name)
        return row

    def add_entry(self, e: Entry) -> int:
        if e.id in self.entry_index:
            raise DuplicateId(f"entry id {e.id!r} appears more than once")
        row = self.entry_index[e.id] = len(self.e_id)
        subject = self.subject(e.subject_id, e.subject_type, e.subject_name)
        listdef = self.lists[e.list]
        self.e_id.append(self.intern(e.id))
        self.e_list.append(self.list_index[e.list])
        self.e_subject.append(subject)
        self.e_from.append(e.valid_from)
        self.e_until.append(e.valid_until)
        self.e_publicity.append(_PUB[e.publicity or listdef.publicity])
        self.e_scope.append(self.scopes.setdefault(e.scope, len(self.scopes)))
        self.e_authority.append(self.intern(e.authority or listdef.authority))
        self.e_region.append(self.intern(e.region))
        self.e_reason.append(self.intern(e.reason))
        self.e_basis.append(self.intern(e.basis))
        for p in e.persons:
            self.p_subject.append(self.subject(p.id, "person", p.name))
            self.p_role.append(ROLE_INDEX[p.role])
        self.e_persons_off.append(len(self.p_subject))
        for alias in e.aliases:
            self.aliases.append((row, subject, self.intern(alias)))
        return row

    def add_relation(self, org: str, person: str, role: str, name: str | None) -> None:
        self.r_org.append(self.subject(org, "org", None))
        self.r_person.append(self.subject(person, "person", name))
        self.r_role.append(ROLE_INDEX[role])

    def add_event(self, event_id: str, row: int | None, at: int, seq: int, etype: str,
                  result: str | None) -> None:
        """Record an accepted event; ``row`` is None for a ``listed`` event (already added)."""
        self.event_ids.append(self.intern(event_id))
        if row is not None:
            self.events[row].append((at, seq, etype, result))

    # -- compilation -----------------------------------------------------------------------
    def compile(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, int]]:
        n = len(self.e_id)
        e_from = np.frombuffer(self.e_from, dtype=np.int64).copy() if n else np.zeros(0, np.int64)
        e_until = np.frombuffer(self.e_until, dtype=np.int64).copy() if n else np.zeros(0, np.int64)
        e_list = np.frombuffer(self.e_list, dtype=np.uint16).copy() if n else np.zeros(0, np.uint16)
        end = e_until.copy()
        keep = np.ones(n, dtype=bool)
        pieces: dict[int, tuple[tuple[int, int], ...]] = {}
        suspends = [self.lists[c].objection_suspends for c in self.list_codes]
        for row, evs in self.events.items():
            evs.sort(key=lambda ev: (ev[0], ev[1]))
            tl = fold(int(e_from[row]), int(e_until[row]),
                      ((at, et, res) for at, _, et, res in evs),
                      suspends=suspends[int(e_list[row])])
            if tl.purged:
                keep[row] = False
                continue
            end[row] = tl.end
            if tl.end > tl.valid_from and tl.pieces != ((tl.valid_from, tl.end),):
                pieces[row] = tl.pieces
        # Derived exit-to-watch entries (SPEC §4).
        derived_parent: list[int] = []
        derived_list: list[int] = []
        derived_from: list[int] = []
        derived_until: list[int] = []
        for code, listdef in self.lists.items():
            if listdef.kind != "black" or listdef.exit_watch_list is None:
                continue
            idx = self.list_index[code]
            rows = np.nonzero(keep & (e_list == idx) & (end < NEVER))[0]
            watch_idx = self.list_index[listdef.exit_watch_list]
            assert listdef.exit_watch_days is not None
            for row in rows.tolist():
                x = int(end[row])
                derived_parent.append(row)
                derived_list.append(watch_idx)
                derived_from.append(x)
                derived_until.append(plus_days(x, listdef.exit_watch_days))
        kept = np.nonzero(keep)[0]
        parent = np.concatenate([kept, np.asarray(derived_parent, dtype=np.int64)])
        is_derived = np.concatenate([np.zeros(len(kept), bool), np.ones(len(derived_parent), bool)])
        m = len(parent)

        def column(values: Any, dtype: Any) -> np.ndarray:
            arr = np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype)
            return arr[parent] if m else np.zeros(0, dtype)

        ids = column(self.e_id, np.uint32).copy()
        for j, row in enumerate(derived_parent):
            ids[len(kept) + j] = self.intern(self._strings[self.e_id[row]] + DERIVED_SUFFIX)
        lists_col = column(self.e_list, np.uint16).copy()
        lists_col[len(kept):] = derived_list
        valid_from = e_from[parent].copy() if m else np.zeros(0, np.int64)
        valid_from[len(kept):] = derived_from
        valid_until = e_until[parent].copy() if m else np.zeros(0, np.int64)
        valid_until[len(kept):] = derived_until
        ends = end[parent].copy() if m else np.zeros(0, np.int64)
        ends[len(kept):] = derived_until
        publicity = column(self.e_publicity, np.uint8).copy()
        for j, li in enumerate(derived_list):
            publicity[len(kept) + j] = _PUB[self.lists[self.list_codes[li]].publicity]
        subject_col = column(self.e_subject, np.uint32)

        # Effective pieces for suspended entries (CSR over final rows).
        piece_off = np.zeros(m + 1, dtype=np.uint64)
        piece_list: list[tuple[int, int]] = []
        counts = np.zeros(m, dtype=np.uint64)
        for j, row in enumerate(kept.tolist()):
            p = pieces.get(row)
            if p is not None:
                counts[j] = len(p) if p else 0
        # Rows with an empty piece list still need the flag: store a sentinel count.
        has_pieces = np.zeros(m, dtype=np.uint8)
        for j, row in enumerate(kept.tolist()):
            p = pieces.get(row)
            if p is not None:
                has_pieces[j] = 1
                piece_list.extend(p)
        np.cumsum(counts, out=piece_off[1:])
        piece_arr = np.asarray(piece_list, dtype=np.int64).reshape(-1, 2)

        # Persons named in each entry (derived entries copy their parent's).
        p_off_src = np.frombuffer(self.e_persons_off, dtype=np.uint64)
        p_sub_src = np.frombuffer(self.p_subject, dtype=np.uint32) if len(self.p_subject) else np.zeros(0, np.uint32)
        p_role_src = np.frombuffer(bytes(self.p_role), dtype=np.uint8)
        starts = p_off_src[parent] if m else np.zeros(0, np.uint64)
        stops = p_off_src[parent + 1] if m else np.zeros(0, np.uint64)
        lens = (stops - starts).astype(np.int64)
        persons_off = np.zeros(m + 1, dtype=np.uint64)
        np.cumsum(lens, out=persons_off[1:])
        take = _ranges(starts.astype(np.int64), lens)
        persons_subject = p_sub_src[take]
        persons_role = p_role_src[take]
        persons_entry = np.repeat(np.arange(m, dtype=np.uint32), lens)

        # Each kept entry's source events, in application order, for live re-folding.
        ev_counts = np.zeros(m, dtype=np.int64)
        ev_at: list[int] = []
        ev_type: list[int] = []
        ev_result: list[int] = []
        for j, row in enumerate(kept.tolist()):
            evs = self.events.get(row)
            if evs:
                ev_counts[j] = len(evs)
                for at, _, etype, result in evs:
                    ev_at.append(at)
                    ev_type.append(EVENT_TYPES.index(etype))
                    ev_result.append(0 if result is None else 1 + OBJECTION_RESULTS.index(result))
        events_off = np.zeros(m + 1, dtype=np.uint64)
        np.cumsum(ev_counts, out=events_off[1:])
        entry_hashes = np.asarray([_hash(self._strings[i].encode()) for i in ids.tolist()],
                                  dtype=np.uint64)
        entry_order = np.argsort(entry_hashes, kind="stable")
        event_hashes = np.asarray([_hash(self._strings[i].encode()) for i in self.event_ids],
                                  dtype=np.uint64)
        event_order = np.argsort(event_hashes, kind="stable")

        s = len(self.subject_type)
        subject_entries_off, subject_entries = _csr(subject_col, np.arange(m, dtype=np.uint32), s)
        named_off, named = _csr(persons_subject, np.stack([persons_entry, persons_role.astype(np.uint32)], 1), s)
        r_org = np.frombuffer(self.r_org, dtype=np.uint32) if len(self.r_org) else np.zeros(0, np.uint32)
        r_person = np.frombuffer(self.r_person, dtype=np.uint32) if len(self.r_person) else np.zeros(0, np.uint32)
        r_role = np.frombuffer(bytes(self.r_role), dtype=np.uint8).astype(np.uint32)
        rel = np.unique(np.stack([r_org, r_person, r_role], 1), axis=0) if len(r_org) else np.zeros((0, 3), np.uint32)
        link_from = np.concatenate([rel[:, 0], rel[:, 1]])
        link_to = np.stack([np.concatenate([rel[:, 1], rel[:, 0]]),
                            np.concatenate([rel[:, 2], rel[:, 2]])], 1)
        links_off, links = _csr(link_from, link_to, s)

        # Lookup keys: every subject's identifier, and the aliases of kept entries.
        keys = sorted(self.subjects.items(), key=lambda kv: kv[1])
        subject_key = np.array([k for k, _ in keys], dtype="S18") if keys else np.zeros(0, "S18")
        kept_set = set(kept.tolist())
        alias_rows = sorted({(subj, alias) for row, subj, alias in self.aliases if row in kept_set})
        key_hashes = [_hash(k.encode()) for k, _ in keys] + [_hash(self._strings[a].encode()) for _, a in alias_rows]
        key_subject = list(range(s)) + [subj for subj, _ in alias_rows]
        key_alias = [NONE32] * s + [a for _, a in alias_rows]
        order = np.argsort(np.asarray(key_hashes, dtype=np.uint64), kind="stable")
        key_hash = np.asarray(key_hashes, dtype=np.uint64)[order]
        subject_type = np.frombuffer(bytes(self.subject_type), dtype=np.uint8)
        org_rows = [r for k, r in keys if self.subject_type[r] == 0]
        org_hashes = np.asarray([_hash(keys[r][0][8:17].encode()) for r in org_rows], dtype=np.uint64)
        org_order = np.argsort(org_hashes, kind="stable")

        bitmaps: list[bytes] = []
        for li in range(len(self.list_codes)):
            bitmaps.append(BitMap(np.nonzero(lists_col == li)[0].astype(np.uint32)).serialize())
        for pi in range(len(PUBLICITY_CODES)):
            bitmaps.append(BitMap(np.nonzero(publicity == pi)[0].astype(np.uint32)).serialize())
        bitmap_off = np.zeros(len(bitmaps) + 1, dtype=np.uint64)
        np.cumsum([len(b) for b in bitmaps], out=bitmap_off[1:])

        strings = [t.encode() for t in self._strings]
        strings_off = np.zeros(len(strings) + 1, dtype=np.uint64)
        np.cumsum([len(b) for b in strings], out=strings_off[1:])
        arrays: dict[str, np.ndarray] = {
            "key_hash": key_hash,
            "key_subject": np.asarray(key_subject, dtype=np.uint32)[order],
            "key_alias": np.asarray(key_alias, dtype=np.uint32)[order],
            "key_filter": _filter(key_hash),
            "orgcode_hash": org_hashes[org_order],
            "orgcode_subject": np.asarray(org_rows, dtype=np.uint32)[org_order],
            "orgcode_filter": _filter(org_hashes),
            "subject_key": subject_key,
            "subject_type": subject_type,
            "subject_name": np.frombuffer(self.subject_name, dtype=np.uint32) if s else np.zeros(0, np.uint32),
            "subject_entries_off": subject_entries_off,
            "subject_entries": subject_entries,
            "subject_links_off": links_off,
            "subject_links": links,
            "subject_named_off": named_off,
            "subject_named": named,
            "entry_id": ids,
            "entry_list": lists_col,
            "entry_subject": subject_col,
            "entry_from": valid_from,
            "entry_until": valid_until,
            "entry_end": ends,
            "entry_publicity": publicity,
            "entry_scope": column(self.e_scope, np.uint16),
            "entry_authority": column(self.e_authority, np.uint32),
            "entry_region": column(self.e_region, np.uint32),
            "entry_reason": column(self.e_reason, np.uint32),
            "entry_basis": column(self.e_basis, np.uint32),
            "entry_derived": is_derived.astype(np.uint8),
            "entry_has_pieces": has_pieces,
            "entry_pieces_off": piece_off,
            "pieces": piece_arr,
            "entryid_hash": entry_hashes[entry_order],
            "entryid_row": entry_order.astype(np.uint32),
            "entry_events_off": events_off,
            "events_at": np.asarray(ev_at, dtype=np.int64),
            "events_type": np.asarray(ev_type, dtype=np.uint8),
            "events_result": np.asarray(ev_result, dtype=np.uint8),
            "eventid_hash": event_hashes[event_order],
            "eventid_string": np.asarray(self.event_ids, dtype=np.uint32)[event_order],
            "entry_persons_off": persons_off,
            "persons_subject": persons_subject,
            "persons_role": persons_role,
            "bitmap_off": bitmap_off,
            "bitmap_blob": np.frombuffer(b"".join(bitmaps), dtype=np.uint8),
            "strings_off": strings_off,
            "strings_blob": np.frombuffer(b"".join(strings), dtype=np.uint8),
        }
        catalog = {
            "lists": [_as_dict(self.lists[c]) for c in self.list_codes],
            "measures": [_as_dict(mm) for mm in self.measures.values()],
            "scenarios": [_as_dict(sc) for sc in self.scenarios.values()],
            "scopes": sorted(self.scopes, key=self.scopes.__getitem__),
            "roles": list(ROLES),
            "bitmaps": ([f"list:{c}" for c in self.list_codes]
                        + [f"publicity:{p}" for p in PUBLICITY_CODES]),
        }
        counts = {"entries": m, "derived_entries": len(derived_parent),
                  "purged_entries": int(n - len(kept)), "source_entries": n,
                  "subjects": s, "relations": int(len(rel)), "aliases": len(alias_rows),
                  "events": len(self.event_ids),
                  "lists": len(self.list_codes), "measures": len(self.measures),
                  "scenarios": len(self.scenarios)}
        return arrays, catalog, counts


def _as_dict(value: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in ((f, getattr(value, f)) for f in value.__slots__)}


def _filter(hashes: np.ndarray) -> np.ndarray:
    high = np.unique((hashes >> np.uint64(32)).astype(np.uint32))
    return np.frombuffer(FrozenBitMap(high).serialize(), dtype=np.uint8)


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate ``range(start, start + len)`` for each pair, vectorised."""
    total = int(lens.sum()) if len(lens) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return np.arange(total, dtype=np.int64) + offsets


def _csr(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Group ``values`` by ``keys`` (0..n-1): offsets of length n+1 and the grouped values."""
    keys = np.asarray(keys, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    off = np.zeros(n + 1, dtype=np.uint64)
    if len(keys):
        np.cumsum(np.bincount(keys, minlength=n), out=off[1:])
    return off, np.ascontiguousarray(values[order])
