"""Compile ingested columns into the snapshot's arrays.

``indexer.ingest`` leaves entries, the persons they name, their aliases and relations as
columns, with strings as candidates of one ``StringStore``. ``Compiler`` removes duplicate
entry ids (the first one wins), folds events into timelines (SPEC §4), drops purged entries,
derives exit-to-watch entries, resolves subjects and the string pool, and lays out the arrays
that ``indexer.snapshot`` writes. Everything is numbered exactly as a record-at-a-time build
numbers it: subjects and strings by first appearance (see ``subjects`` and ``strings``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash
from pyroaring import BitMap

from .clock import NEVER
from .grouping import (
    csr,
    filter_bitmap,
    offsets,
    ranges,
    sorted_unique,
    starts,
    unique_relations,
)
from .ingest import EntryIngest
from .records import (
    DERIVED_SUFFIX,
    EVENT_TYPES,
    OBJECTION_RESULTS,
    ROLES,
    ListDef,
    Measure,
    Scenario,
)
from .relations import RelationIngest
from .snapshot import PUBLICITY_CODES
from .strings import NO_STRING, Pool, StringStore
from .subjects import occurrences, resolve
from .timeline import fold

_hash = xxhash.xxh3_64_intdigest
_SUFFIX = DERIVED_SUFFIX.encode()
EventRecord = tuple[int, int, str, str | None]  # (at, seq, type, result)


class Compiler:
    """Holds the ingested build state; ``dedupe`` then ``compile``."""

    def __init__(self, lists: dict[str, ListDef], measures: dict[str, Measure],
                 scenarios: dict[str, Scenario]) -> None:
        self.lists = lists
        self.measures = measures
        self.scenarios = scenarios
        self.list_codes = list(lists)
        self.list_index = {c: i for i, c in enumerate(self.list_codes)}
        self.store = StringStore()
        self.entries: EntryIngest | None = None
        self.relations: RelationIngest | None = None
        self.keep = np.zeros(0, bool)  # per accepted entry: not a duplicate
        self.row_of_seq = np.zeros(0, np.int64)
        self.events: dict[int, list[EventRecord]] = defaultdict(list)
        self.event_ids: list[str] = []

    # -- before compiling ----------------------------------------------------------------
    def dedupe(self) -> list[tuple[int, int, str, str]]:
        """Mark later entries with an id seen before; return their (file, line, reason, message)."""
        assert self.entries is not None
        c = self.entries.columns
        self._e = {name: c.get(name, dt) for name, dt in (
            ("id", np.int64), ("id_hash", np.uint64), ("list", np.uint16), ("stype", np.uint8),
            ("hi", np.uint64), ("lo", np.uint64), ("sname", np.int64), ("snamed", bool),
            ("from", np.int64), ("until", np.int64), ("pub", np.uint8), ("scope", np.uint16),
            ("auth", np.int64), ("region", np.int64), ("reason", np.int64),
            ("basis", np.int64), ("n_persons", np.int64), ("n_aliases", np.int64),
            ("file", np.int32), ("line", np.int64))}
        hashes = self._e["id_hash"]
        n = len(hashes)
        keep = np.ones(n, dtype=bool)
        rejects: list[tuple[int, int, str, str]] = []
        order = np.argsort(hashes, kind="stable")
        same = np.flatnonzero(hashes[order][1:] == hashes[order][:-1])
        if len(same):
            seen: dict[str, int] = {}
            suspects = np.unique(np.concatenate([order[same], order[same + 1]]))
            for seq in suspects.tolist():  # build order
                text = self.store.text(int(self._e["id"][seq]))
                if text in seen:
                    keep[seq] = False
                    rejects.append((int(self._e["file"][seq]), int(self._e["line"][seq]),
                                    "duplicate_id", f"entry id {text!r} appears more than once"))
                else:
                    seen[text] = seq
        self.keep = keep
        self.row_of_seq = np.cumsum(keep) - 1
        return rejects

    def entry_row(self, entry_id: Any) -> int | None:
        """The row of an accepted entry id (only ids that events name are known)."""
        assert self.entries is not None
        seq = self.entries.first_seq.get(entry_id) if isinstance(entry_id, str) else None
        return None if seq is None else int(self.row_of_seq[seq])

    def add_event(self, event_id: str, row: int | None, at: int, seq: int, etype: str,
                  result: str | None) -> None:
        """Record an accepted event; ``row`` is None for a ``listed`` event (already added)."""
        self.event_ids.append(event_id)
        if row is not None:
            self.events[row].append((at, seq, etype, result))

    # -- compilation -----------------------------------------------------------------------
    def compile(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, int]]:
        assert self.entries is not None and self.relations is not None
        store, e, keep = self.store, self._e, self.keep
        event_cands, event_hashes = store.add_hashed(self.event_ids)
        store.finish()
        p_cols, a_cols = self.entries.persons, self.entries.aliases
        self._e = {}  # the columns below replace these
        if keep.all():  # no duplicate ids: take the columns as they are (no copies)
            p = {name: p_cols.get(name, dt) for name, dt in (
                ("role", np.uint8), ("hi", np.uint64), ("lo", np.uint64), ("name", np.int64),
                ("named", bool))}
            alias_cands = a_cols.get("alias", np.int64)
        else:
            p_keep = np.repeat(keep, e["n_persons"])
            a_keep = np.repeat(keep, e["n_aliases"])
            p = {name: p_cols.get(name, dt)[p_keep] for name, dt in (
                ("role", np.uint8), ("hi", np.uint64), ("lo", np.uint64), ("name", np.int64),
                ("named", bool))}
            alias_cands = a_cols.get("alias", np.int64)[a_keep]
            del p_keep, a_keep
            e = {k: v[keep] for k, v in e.items()}
        n = len(e["id"])
        n_p, n_a = e["n_persons"], e["n_aliases"]

        # Intern positions, in the order of a record-at-a-time build (see ``strings``).
        size = 6 + n_p + n_a
        base = starts(size)
        p_start = starts(n_p)
        p_slot = np.arange(len(p["hi"]), dtype=np.int64) - np.repeat(p_start, n_p)
        p_pos = np.repeat(base, n_p) + 6 + p_slot
        a_start = starts(n_a)
        a_pos = (np.repeat(base + 6 + n_p, n_a)
                 + np.arange(len(alias_cands), dtype=np.int64) - np.repeat(a_start, n_a))
        events_at = int(size.sum())
        relations_at = events_at + len(self.event_ids)
        r = {name: self.relations.columns.get(name, dt) for name, dt in (
            ("o_hi", np.uint64), ("o_lo", np.uint64), ("p_hi", np.uint64), ("p_lo", np.uint64),
            ("role", np.uint8), ("name", np.int64), ("named", bool))}
        n_rel = len(r["role"])
        derived_at = relations_at + 2 * n_rel

        n_persons = len(p["hi"])
        subjects = resolve(occurrences(e, p, r, base, p_pos, relations_at))
        s = subjects.count
        subject_row = subjects.rows[:n + n_persons]
        entry_subject = np.zeros(n, dtype=np.uint32)
        person_subject = np.zeros(n_persons, dtype=np.uint32)
        at = np.arange(n, dtype=np.int64) + p_start
        entry_subject[:] = subject_row[at]
        person_subject[:] = subject_row[np.repeat(at + 1, n_p) + p_slot]
        rel = unique_relations(subjects.rows[n + n_persons:].reshape(-1, 2), r["role"], s)
        # Free what only the subjects needed: occurrence rows, key words, names.
        subjects.rows = np.zeros(0, np.uint32)
        del subject_row, at, p_pos, p_slot, r
        for k in ("hi", "lo", "sname", "snamed", "stype", "file", "line"):
            e.pop(k, None)
        p = {"role": p["role"]}

        # Timelines, purges and derived exit-to-watch entries (SPEC §4).
        e_from, e_until, e_list = e["from"], e["until"], e["list"]
        end = e_until.copy()
        alive = np.ones(n, dtype=bool)
        pieces: dict[int, tuple[tuple[int, int], ...]] = {}
        suspends = [self.lists[c].objection_suspends for c in self.list_codes]
        for row, evs in self.events.items():
            evs.sort(key=lambda ev: (ev[0], ev[1]))
            tl = fold(int(e_from[row]), int(e_until[row]),
                      ((at_, et, res) for at_, _, et, res in evs),
                      suspends=suspends[int(e_list[row])])
            if tl.purged:
                alive[row] = False
                continue
            end[row] = tl.end
            if tl.end > tl.valid_from and tl.pieces != ((tl.valid_from, tl.end),):
                pieces[row] = tl.pieces
        d_parent, d_list, d_until = [], [], []
        for code, listdef in self.lists.items():
            if listdef.kind != "black" or listdef.exit_watch_list is None:
                continue
            assert listdef.exit_watch_days is not None
            rows = np.flatnonzero(alive & (e_list == self.list_index[code]) & (end < NEVER))
            d_parent.append(rows)
            d_list.append(np.full(len(rows), self.list_index[listdef.exit_watch_list], np.uint16))
            d_until.append(end[rows] + listdef.exit_watch_days * 86_400_000_000)
        derived = np.concatenate(d_parent) if d_parent else np.zeros(0, np.int64)
        derived_until = np.concatenate(d_until) if d_until else np.zeros(0, np.int64)
        kept = np.flatnonzero(alive)
        parent = np.concatenate([kept, derived])
        nk, m = len(kept), len(kept) + len(derived)
        derived_text = [t + _SUFFIX for t in store.bytes_of(e["id"][derived])]
        derived_groups = store.add_late(derived_text)
        derived_hashes = np.fromiter(map(_hash, derived_text), np.uint64, len(derived_text))

        # The string pool.
        pool = Pool(store)
        named = subjects.name_pos >= 0
        pool.call(subjects.name_pos[named], subjects.name[named])
        for slot, key in enumerate(("id", "auth", "region", "reason", "basis"), 1):
            pool.call(base + slot, e[key])
        pool.call(a_pos, alias_cands)
        pool.call(events_at + np.arange(len(event_cands), dtype=np.int64), event_cands)
        pool.call_groups(derived_at + np.arange(len(derived), dtype=np.int64), derived_groups)
        pool.order()

        ids = np.concatenate([pool.lookup(e["id"][kept]), pool.lookup_groups(derived_groups)])
        lists_col = np.concatenate([e_list[kept], *d_list]).astype(np.uint16)
        valid_from = np.concatenate([e_from[kept], end[derived]])
        valid_until = np.concatenate([e_until[kept], derived_until])
        ends = np.concatenate([end[kept], derived_until])
        list_pub = np.array([PUBLICITY_CODES.index(self.lists[c].publicity)
                             for c in self.list_codes] or [0], dtype=np.uint8)
        publicity = e["pub"][parent]
        publicity[nk:] = list_pub[lists_col[nk:]]
        subject_col = entry_subject[parent]
        scope_col, scope_names = self._scopes(e["scope"])

        # Effective pieces and source events of kept entries (CSR over final rows).
        final_of = np.full(n, -1, dtype=np.int64)
        final_of[kept] = np.arange(nk)
        has_pieces = np.zeros(m, dtype=np.uint8)
        piece_counts = np.zeros(m, dtype=np.int64)
        piece_list: list[tuple[int, int]] = []
        for row in sorted(pieces):
            j = int(final_of[row])
            has_pieces[j] = 1
            piece_counts[j] = len(pieces[row])
            piece_list.extend(pieces[row])
        piece_off = offsets(piece_counts)
        piece_arr = np.asarray(piece_list, dtype=np.int64).reshape(-1, 2)
        ev_counts = np.zeros(m, dtype=np.int64)
        ev_at: list[int] = []
        ev_type: list[int] = []
        ev_result: list[int] = []
        for row in sorted(self.events):
            j = int(final_of[row])
            if j < 0 or not self.events[row]:
                continue
            ev_counts[j] = len(self.events[row])
            for at_, _, etype, result in self.events[row]:
                ev_at.append(at_)
                ev_type.append(EVENT_TYPES.index(etype))
                ev_result.append(0 if result is None else 1 + OBJECTION_RESULTS.index(result))

        # Persons named in each entry (derived entries copy their parent's).
        p_off_src = offsets(n_p)
        p_first, lens = p_off_src[parent], n_p[parent]
        take = ranges(p_first, lens)
        persons_subject = person_subject[take]
        persons_role = p["role"][take]
        persons_entry = np.repeat(np.arange(m, dtype=np.uint32), lens)

        entry_hashes = np.concatenate([e["id_hash"][kept], derived_hashes])
        entry_order = np.argsort(entry_hashes, kind="stable")
        event_order = np.argsort(event_hashes, kind="stable")
        subject_entries_off, subject_entries = csr(subject_col, np.arange(m, dtype=np.uint32), s)
        named_off, named_entries = csr(persons_subject, np.stack(
            [persons_entry, persons_role.astype(np.uint32)], 1), s)
        links_off, links = csr(np.concatenate([rel[:, 0], rel[:, 1]]), np.stack(
            [np.concatenate([rel[:, 1], rel[:, 0]]), np.concatenate([rel[:, 2], rel[:, 2]])], 1), s)

        # Lookup keys: every subject's identifier, and the aliases of kept entries.
        alias_owner = np.repeat(entry_subject, n_a)[np.repeat(alive, n_a)]
        alias_index = pool.lookup(alias_cands[np.repeat(alive, n_a)])
        alias_pairs = sorted_unique((alias_owner.astype(np.uint64) << np.uint64(32))
                                     | alias_index.astype(np.uint64))
        alias_subject = (alias_pairs >> np.uint64(32)).astype(np.uint32)
        alias_string = (alias_pairs & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        alias_hashes = _hashes(pool.encoded, alias_string)
        strings_off, strings_blob = pool.arrays()
        store.release()  # candidate bytes: every later lookup goes through pool indexes
        key_hashes = _hashes(np.ndarray.tolist, subjects.key)
        all_hashes = np.concatenate([key_hashes, alias_hashes])
        del key_hashes, alias_hashes
        order = np.argsort(all_hashes, kind="stable")
        key_hash = all_hashes[order]
        del all_hashes
        key_subject = np.concatenate([np.arange(s, dtype=np.uint32), alias_subject])[order]
        key_alias = np.concatenate([np.full(s, 0xFFFFFFFF, np.uint32), alias_string])[order]
        del order, alias_subject, alias_string
        org_rows = np.flatnonzero(subjects.type == 0)
        org_codes = np.ascontiguousarray(subjects.key[org_rows].view(np.uint8).reshape(-1, 18)[:, 8:17])
        org_hashes = _hashes(np.ndarray.tolist, org_codes.view("S9").ravel())
        del org_codes
        org_order = np.argsort(org_hashes, kind="stable")

        bitmaps: list[bytes] = []
        for li in range(len(self.list_codes)):
            bitmaps.append(BitMap(np.flatnonzero(lists_col == li).astype(np.uint32)).serialize())
        for pi in range(len(PUBLICITY_CODES)):
            bitmaps.append(BitMap(np.flatnonzero(publicity == pi).astype(np.uint32)).serialize())
        bitmap_off = offsets(np.array([len(b) for b in bitmaps], dtype=np.int64))
        subject_name = np.full(s, 0xFFFFFFFF, dtype=np.uint32)
        has_name = subjects.name != NO_STRING
        subject_name[has_name] = pool.lookup(subjects.name[has_name])
        arrays: dict[str, np.ndarray] = {
            "key_hash": key_hash,
            "key_subject": key_subject,
            "key_alias": key_alias,
            "key_filter": filter_bitmap(key_hash),
            "orgcode_hash": org_hashes[org_order],
            "orgcode_subject": org_rows.astype(np.uint32)[org_order],
            "orgcode_filter": filter_bitmap(org_hashes[org_order]),
            "subject_key": subjects.key,
            "subject_type": subjects.type,
            "subject_name": subject_name,
            "subject_entries_off": subject_entries_off,
            "subject_entries": subject_entries,
            "subject_links_off": links_off,
            "subject_links": links,
            "subject_named_off": named_off,
            "subject_named": named_entries,
            "entry_id": ids,
            "entry_list": lists_col,
            "entry_subject": subject_col,
            "entry_from": valid_from,
            "entry_until": valid_until,
            "entry_end": ends,
            "entry_publicity": publicity,
            "entry_scope": scope_col[parent],
            "entry_authority": pool.lookup(e["auth"][parent]),
            "entry_region": pool.lookup(e["region"][parent]),
            "entry_reason": pool.lookup(e["reason"][parent]),
            "entry_basis": pool.lookup(e["basis"][parent]),
            "entry_derived": np.concatenate([np.zeros(nk, np.uint8), np.ones(m - nk, np.uint8)]),
            "entry_has_pieces": has_pieces,
            "entry_pieces_off": piece_off,
            "pieces": piece_arr,
            "entryid_hash": entry_hashes[entry_order],
            "entryid_row": entry_order.astype(np.uint32),
            "entry_events_off": offsets(ev_counts),
            "events_at": np.asarray(ev_at, dtype=np.int64),
            "events_type": np.asarray(ev_type, dtype=np.uint8),
            "events_result": np.asarray(ev_result, dtype=np.uint8),
            "eventid_hash": event_hashes[event_order],
            "eventid_string": pool.lookup(event_cands)[event_order],
            "entry_persons_off": offsets(lens),
            "persons_subject": persons_subject,
            "persons_role": persons_role,
            "bitmap_off": bitmap_off,
            "bitmap_blob": np.frombuffer(b"".join(bitmaps), dtype=np.uint8),
            "strings_off": strings_off,
            "strings_blob": strings_blob,
        }
        catalog = {
            "lists": [_as_dict(self.lists[c]) for c in self.list_codes],
            "measures": [_as_dict(mm) for mm in self.measures.values()],
            "scenarios": [_as_dict(sc) for sc in self.scenarios.values()],
            "scopes": scope_names,
            "roles": list(ROLES),
            "bitmaps": ([f"list:{c}" for c in self.list_codes]
                        + [f"publicity:{p}" for p in PUBLICITY_CODES]),
        }
        counts = {"entries": m, "derived_entries": m - nk, "purged_entries": int(n - nk),
                  "source_entries": n, "subjects": s, "relations": len(rel),
                  "aliases": len(alias_pairs), "events": len(self.event_ids),
                  "lists": len(self.list_codes), "measures": len(self.measures),
                  "scenarios": len(self.scenarios)}
        return arrays, catalog, counts

    def _scopes(self, provisional: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Scope numbers by first appearance (national first), and the scope table."""
        assert self.entries is not None
        names = {v: k for k, v in self.entries.scopes.items()}
        final = np.zeros(len(names), dtype=np.uint16)
        seen, first = np.unique(provisional, return_index=True)
        others = seen[seen != 0]
        ranked = others[np.argsort(first[seen != 0], kind="stable")]
        final[ranked] = np.arange(1, len(ranked) + 1)
        return final[provisional], [""] + [names[int(v)] for v in ranked]


def _hashes(texts: Callable[[np.ndarray], list[bytes]], values: np.ndarray) -> np.ndarray:
    """xxh3-64 of ``texts(values)``, a slice at a time (no list of all the bytes at once)."""
    n = len(values)
    out = np.empty(n, dtype=np.uint64)
    step = 1 << 16
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        out[lo:hi] = np.fromiter(map(_hash, texts(values[lo:hi])), np.uint64, hi - lo)
    return out


def _as_dict(value: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in ((f, getattr(value, f)) for f in value.__slots__)}
