"""Grouping over numpy arrays for the snapshot layout: CSR offsets, ranges, sorted uniques,
distinct relation triples and the roaring pre-filter of a sorted hash index."""

from __future__ import annotations

import numpy as np
from pyroaring import FrozenBitMap


def unique_relations(rows: np.ndarray, roles: np.ndarray, s: int) -> np.ndarray:
    """Distinct (org row, person row, role) triples, sorted."""
    if not len(rows):
        return np.zeros((0, 3), np.uint32)
    if s < (1 << 30):
        packed = ((rows[:, 0].astype(np.uint64) << np.uint64(34))
                  | (rows[:, 1].astype(np.uint64) << np.uint64(4)) | roles.astype(np.uint64))
        u = sorted_unique(packed)
        return np.stack([(u >> np.uint64(34)).astype(np.uint32),
                         ((u >> np.uint64(4)) & np.uint64((1 << 30) - 1)).astype(np.uint32),
                         (u & np.uint64(15)).astype(np.uint32)], 1)
    triples = np.stack([rows[:, 0], rows[:, 1], roles.astype(np.int64)], 1).astype(np.uint32)
    return np.unique(triples, axis=0)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of a 1-d array, by sorting."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def filter_bitmap(hashes: np.ndarray) -> np.ndarray:
    """Roaring bitmap of the distinct high 32 bits of sorted hashes."""
    high = (hashes >> np.uint64(32)).astype(np.uint32)
    if len(high) > 1:
        high = high[np.concatenate([[True], high[1:] != high[:-1]])]
    return np.frombuffer(FrozenBitMap(high).serialize(), dtype=np.uint8)


def starts(counts: np.ndarray) -> np.ndarray:
    """Exclusive prefix sums (where each run of ``counts`` starts)."""
    out = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=out[1:])
    return out


def offsets(counts: np.ndarray) -> np.ndarray:
    off = np.zeros(len(counts) + 1, dtype=np.uint64)
    np.cumsum(counts, out=off[1:])
    return off


def ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate ``range(start, start + len)`` for each pair, vectorised."""
    starts = np.asarray(starts, dtype=np.int64)
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum()) if len(lens) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return np.arange(total, dtype=np.int64) + offsets


def csr(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Group ``values`` by ``keys`` (0..n-1): offsets of length n+1 and the grouped values."""
    keys = np.asarray(keys, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    off = np.zeros(n + 1, dtype=np.uint64)
    if len(keys):
        np.cumsum(np.bincount(keys, minlength=n), out=off[1:])
    return off, np.ascontiguousarray(values[order])
