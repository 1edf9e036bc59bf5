"""Subjects from their occurrences: rows in order of first appearance, type and name.

Every place a subject appears (an entry's subject, a person named in an entry, both sides of
a relation) is an *occurrence*, in build order. A subject's row is the rank of its first
occurrence; its type is the type of that occurrence; its name is the first occurrence's name
when that one has a name field (even an empty one), else the first later non-empty name —
the rules of the record-at-a-time ``Compiler.subject`` this replaces. Keys are the exact
``columns.pack_keys`` word pairs, grouped through a 64-bit mix and confirmed on the words.
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
    """Subject occurrences in build order."""

    hi: np.ndarray  # uint64 key words
    lo: np.ndarray
    type: np.ndarray  # uint8: 0 org, 1 person
    name: np.ndarray  # int64 string candidate, NO_STRING when the name is None
    named: np.ndarray  # bool: the name is a non-empty string
    pos: np.ndarray  # int64 intern position of this occurrence's name


@dataclass(frozen=True, slots=True)
class Subjects:
    rows: np.ndarray  # int64 subject row of every occurrence
    count: int
    key: np.ndarray  # S18 key by row
    type: np.ndarray  # uint8 by row
    name_pos: np.ndarray  # int64 position of the name's intern call, by row (-1: no name)
    name: np.ndarray  # int64 name candidate by row (NO_STRING: no name)


def resolve(occ: Occurrences) -> Subjects:
    n = len(occ.hi)
    if not n:
        empty = np.zeros(0, np.int64)
        return Subjects(empty, 0, np.zeros(0, "S18"), np.zeros(0, np.uint8), empty, empty)
    _, first, inv = np.unique(key_mix(occ.hi, occ.lo), return_index=True, return_inverse=True)
    inv = inv.ravel()
    rep = first[inv]
    if not ((occ.hi[rep] == occ.hi).all() and (occ.lo[rep] == occ.lo).all()):
        pairs = np.stack([occ.hi, occ.lo], axis=1)
        _, first, inv = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
        inv = inv.ravel()
    groups = len(first)
    by_row = np.argsort(first, kind="stable")  # row -> group
    row_of_group = np.empty(groups, dtype=np.int64)
    row_of_group[by_row] = np.arange(groups, dtype=np.int64)
    firsts = first[by_row]  # row -> first occurrence
    name = occ.name[firsts].copy()
    name_pos = np.where(name != NO_STRING, occ.pos[firsts], -1)
    unnamed = name == NO_STRING
    if unnamed.any():
        named = np.flatnonzero(occ.named)
        later_groups, at = np.unique(inv[named], return_index=True)
        later_rows = row_of_group[later_groups]
        take = unnamed[later_rows]
        rows, occs = later_rows[take], named[at[take]]
        name[rows] = occ.name[occs]
        name_pos[rows] = occ.pos[occs]
    key = unpack_keys(occ.hi[firsts], occ.lo[firsts])
    return Subjects(row_of_group[inv], groups, key, occ.type[firsts].astype(np.uint8),
                    name_pos, name)


def occurrences(e: dict[str, np.ndarray], p: dict[str, np.ndarray], r: dict[str, np.ndarray],
                 base: np.ndarray, p_pos: np.ndarray, relations_at: int) -> Occurrences:
    """Subject occurrences in build order: each entry's subject then its persons; then each
    relation's organisation and person."""
    n, n_p = len(e["id"]), e["n_persons"]
    total = n + len(p["hi"])
    p_start = starts(n_p)
    at = np.arange(n, dtype=np.int64) + p_start
    p_at = np.repeat(at + 1, n_p) + (np.arange(len(p["hi"])) - np.repeat(p_start, n_p))
    n_rel = len(r["role"])

    def column(entry: np.ndarray, person: np.ndarray, org_side: Any, person_side: np.ndarray,
               dtype: Any) -> np.ndarray:
        out = np.empty(total + 2 * n_rel, dtype=dtype)
        out[at], out[p_at] = entry, person
        out[total::2], out[total + 1::2] = org_side, person_side
        return out

    rel_pos = relations_at + np.arange(2 * n_rel, dtype=np.int64)
    return Occurrences(
        hi=column(e["hi"], p["hi"], r["o_hi"], r["p_hi"], np.uint64),
        lo=column(e["lo"], p["lo"], r["o_lo"], r["p_lo"], np.uint64),
        type=column(e["stype"], np.ones(len(p["hi"]), np.uint8), 0,
                    np.ones(n_rel, np.uint8), np.uint8),
        name=column(e["sname"], p["name"], NO_STRING, r["name"], np.int64),
        named=column(e["snamed"], p["named"], False, r["named"], bool),
        pos=column(base, p_pos, rel_pos[0::2], rel_pos[1::2], np.int64))
