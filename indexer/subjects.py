"""Subjects from their occurrences: rows in order of first appearance, type and name.

Every place a subject appears (an entry's subject, a person named in an entry, both sides of
a relation) is an *occurrence*, in build order. A subject's row is the rank of its first
occurrence; its type is the type of that occurrence; its name is the first occurrence's name
when that one has a name field (even an empty one), else the first later non-empty name —
the rules of the record-at-a-time ``Compiler.subject`` this replaces. Keys are the exact
``columns.pack_keys`` word pairs, grouped through a 64-bit mix and confirmed on the words.

Only the key words and the "has a non-empty name" flag are laid out per occurrence; type,
name candidate and intern position are gathered from the entry, person and relation columns
for the few occurrences that need them (first occurrences, first named ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .columns import key_mix, unpack_keys
from .grouping import starts
from .strings import NO_STRING


@dataclass(frozen=True, slots=True)
class Occurrences:
    """Subject occurrences in build order.

    Occurrence ``at[i]`` is entry ``i``'s subject, ``at[i] + 1 + k`` its ``k``-th person;
    occurrences from ``total`` on are relations' (organisation, person) sides in turn.
    """

    hi: np.ndarray  # uint64 key words
    lo: np.ndarray
    named: np.ndarray  # bool: the name is a non-empty string
    at: np.ndarray  # int64 occurrence of each entry's subject
    p_start: np.ndarray  # int64 first person of each entry
    total: int  # occurrences from entries and their persons
    e_type: np.ndarray
    e_name: np.ndarray
    e_pos: np.ndarray  # int64 intern position of each entry's subject name
    p_name: np.ndarray
    p_pos: np.ndarray
    r_name: np.ndarray
    relations_at: int

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(type uint8, name candidate int64, intern position int64) of occurrences ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        k = len(idx)
        typ = np.ones(k, dtype=np.uint8)
        name = np.full(k, NO_STRING, dtype=np.int64)
        pos = np.empty(k, dtype=np.int64)
        src = idx < self.total
        rel = np.flatnonzero(~src)
        if len(rel):
            j = idx[rel] - self.total
            pos[rel] = self.relations_at + j
            org = (j & 1) == 0
            typ[rel[org]] = 0
            per = ~org
            name[rel[per]] = self.r_name[j[per] >> 1]
        own = np.flatnonzero(src)
        if len(own):
            o = idx[own]
            i = np.searchsorted(self.at, o, side="right") - 1
            slot = o - self.at[i]
            ent = slot == 0
            ei, eo = i[ent], own[ent]
            typ[eo] = self.e_type[ei]
            name[eo] = self.e_name[ei]
            pos[eo] = self.e_pos[ei]
            pe = ~ent
            pj = self.p_start[i[pe]] + slot[pe] - 1
            po = own[pe]
            name[po] = self.p_name[pj]
            pos[po] = self.p_pos[pj]
        return typ, name, pos


@dataclass(slots=True)
class Subjects:
    rows: np.ndarray  # uint32 subject row of every occurrence
    count: int
    key: np.ndarray  # S18 key by row
    type: np.ndarray  # uint8 by row
    name_pos: np.ndarray  # int64 position of the name's intern call, by row (-1: no name)
    name: np.ndarray  # int64 name candidate by row (NO_STRING: no name)


def _group(mix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first occurrence by group, group of each occurrence in sorted order, the sort
    order) with groups numbered by ascending ``mix`` — what ``np.unique`` with
    ``return_index`` and ``return_inverse`` gives, with fewer temporaries."""
    n = len(mix)
    order = np.argsort(mix, kind="stable")
    sm = mix[order]
    flag = np.empty(n, dtype=bool)
    flag[0] = True
    np.not_equal(sm[1:], sm[:-1], out=flag[1:])
    del sm
    first = order[flag]  # stable sort: the earliest occurrence of each group
    gid = np.cumsum(flag, dtype=np.uint32 if n < (1 << 32) else np.int64)
    np.subtract(gid, 1, out=gid)
    return first, gid, order


def resolve(occ: Occurrences) -> Subjects:
    n = len(occ.hi)
    if not n:
        empty = np.zeros(0, np.int64)
        return Subjects(np.zeros(0, np.uint32), 0, np.zeros(0, "S18"), np.zeros(0, np.uint8),
                        empty, empty)
    hi, lo = occ.hi, occ.lo
    mix = key_mix(hi, lo)
    first, gid, order = _group(mix)
    del mix
    groups = len(first)
    # rows: rank of each group's first occurrence
    by_row = np.argsort(first, kind="stable")  # row -> group
    row_of_group = np.empty(groups, dtype=np.uint32)
    row_of_group[by_row] = np.arange(groups, dtype=np.uint32)
    rows = np.empty(n, dtype=np.uint32)
    rows[order] = row_of_group[gid]
    del gid, order, row_of_group
    firsts = first[by_row]  # row -> first occurrence
    del first, by_row
    f_hi, f_lo = hi[firsts], lo[firsts]
    if not (_same(f_hi, rows, hi) and _same(f_lo, rows, lo)):
        pairs = np.stack([hi, lo], axis=1)
        _, first, inv = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        del pairs
        inv = inv.ravel()
        groups = len(first)
        by_row = np.argsort(first, kind="stable")
        row_of_group = np.empty(groups, dtype=np.uint32)
        row_of_group[by_row] = np.arange(groups, dtype=np.uint32)
        rows = row_of_group[inv]
        firsts = first[by_row]
        f_hi, f_lo = hi[firsts], lo[firsts]
    typ, name, f_pos = occ.take(firsts)
    name_pos = np.where(name != NO_STRING, f_pos, -1)
    del f_pos
    unnamed = name == NO_STRING
    if unnamed.any():
        named = np.flatnonzero(occ.named)
        later_rows, at = np.unique(rows[named], return_index=True)
        take = unnamed[later_rows]
        sel_rows, occs = later_rows[take], named[at[take]]
        _, o_name, o_pos = occ.take(occs)
        name[sel_rows] = o_name
        name_pos[sel_rows] = o_pos
    key = unpack_keys(f_hi, f_lo)
    return Subjects(rows, groups, key, typ, name_pos, name)


def _same(by_row: np.ndarray, rows: np.ndarray, words: np.ndarray) -> bool:
    """Every occurrence's word equals its row's, checked in slices (bounded temporaries)."""
    step = 1 << 22
    for lo in range(0, len(rows), step):
        if not np.array_equal(by_row[rows[lo:lo + step]], words[lo:lo + step]):
            return False
    return True


def occurrences(e: dict[str, np.ndarray], p: dict[str, np.ndarray], r: dict[str, np.ndarray],
                base: np.ndarray, p_pos: np.ndarray, relations_at: int) -> Occurrences:
    """Subject occurrences in build order: each entry's subject then its persons; then each
    relation's organisation and person. Takes the key-word columns out of ``e``, ``p``, ``r``."""
    n, n_p = len(e["id"]), e["n_persons"]
    n_persons = len(p["hi"])
    total = n + n_persons
    p_start = starts(n_p)
    at = np.arange(n, dtype=np.int64) + p_start
    p_at = np.repeat(at + 1, n_p)
    p_at += np.arange(n_persons, dtype=np.int64)
    p_at -= np.repeat(p_start, n_p)
    n_rel = len(r["role"])

    def column(entry: np.ndarray, person: np.ndarray, org_side: Any, person_side: np.ndarray,
               dtype: Any) -> np.ndarray:
        out = np.empty(total + 2 * n_rel, dtype=dtype)
        out[at], out[p_at] = entry, person
        out[total::2], out[total + 1::2] = org_side, person_side
        return out

    # The key words are moved out of ``e``, ``p`` and ``r`` (nothing else needs them).
    hi = column(e.pop("hi"), p.pop("hi"), r.pop("o_hi"), r.pop("p_hi"), np.uint64)
    lo = column(e.pop("lo"), p.pop("lo"), r.pop("o_lo"), r.pop("p_lo"), np.uint64)
    return Occurrences(
        hi=hi, lo=lo,
        named=column(e["snamed"], p["named"], False, r["named"], bool),
        at=at, p_start=p_start, total=total,
        e_type=e["stype"], e_name=e["sname"], e_pos=base,
        p_name=p["name"], p_pos=p_pos, r_name=r["name"], relations_at=relations_at)
