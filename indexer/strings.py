"""The snapshot's string pool, built in bulk.

The pool numbers every distinct string in the order it is first *interned* (the order of
``Compiler.intern`` calls in the record-at-a-time build this replaces). Strings arrive here in
chunks as *candidates*: each ``add`` call numbers the distinct values of one column of one chunk
(low-cardinality columns share one dictionary across chunks, up to a bound), keeps their UTF-8
bytes and a 128-bit xxh3 digest, and returns candidate numbers. ``finish`` groups candidates
with equal text (by digest, confirmed on the second digest word and the length); ``Pool.order``
then gives each group its final index from the earliest position at which it is interned.
No per-string Python object outlives its chunk, except in the bounded shared dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import xxhash

_digest = xxhash.xxh3_128_digest
_hash64 = xxhash.xxh3_64_intdigest
SHARED_LIMIT = 1 << 20  # distinct values a shared dictionary holds before it stops growing
NO_STRING = -1


class StringStore:
    """Candidate strings, numbered in arrival order; see the module docstring."""

    def __init__(self) -> None:
        self._blobs: list[bytes] = []
        self._lens: list[np.ndarray] = []
        self._digests: list[bytes] = []
        self._bases: list[int] = []
        self.count = 0
        self._shared: dict[str, dict[str, int]] = {}
        self.canon: np.ndarray | None = None  # candidate -> group (after ``finish``)
        self.first: np.ndarray | None = None  # group -> a candidate of it
        self.offsets: np.ndarray | None = None
        self.blob: np.ndarray | None = None
        self._groups: dict[bytes, int] | None = None
        self._heads: np.ndarray = np.zeros(0, np.uint64)
        self._tails: np.ndarray = np.zeros(0, np.uint64)
        self._sizes: np.ndarray = np.zeros(0, np.int64)

    def _append(self, texts: list[str]) -> list[bytes]:
        encoded: list[bytes] = []
        if texts:
            encoded = texts if type(texts[0]) is bytes else list(map(str.encode, texts))  # type: ignore[arg-type]
            self._blobs.append(b"".join(encoded))
            self._lens.append(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
            self._digests.append(b"".join(map(_digest, encoded)))
            self._bases.append(self.count)
            self.count += len(texts)
        return encoded

    def add(self, values: list[Any], *, shared: str | None = None) -> np.ndarray:
        """Candidate numbers (``int64``, ``NO_STRING`` for None) of a column of str/None.

        With ``shared`` (a column name), values already seen in earlier chunks of that column
        reuse their candidate.
        """
        n = len(values)
        if shared is None:
            distinct = dict.fromkeys(values)
            distinct.pop(None, None)
            base = self.count
            self._append(list(distinct))
            numbers = dict(zip(distinct, range(base, base + len(distinct))))
            numbers[None] = NO_STRING  # type: ignore[index]
            return np.fromiter(map(numbers.__getitem__, values), dtype=np.int64, count=n)
        known = self._shared.get(shared)
        if known is None:
            known = self._shared[shared] = {None: NO_STRING}  # type: ignore[dict-item]
        try:
            return np.fromiter(map(known.__getitem__, values), dtype=np.int64, count=n)
        except KeyError:
            pass
        missing = [v for v in dict.fromkeys(values) if v not in known]
        base = self.count
        self._append(missing)
        fresh = dict(zip(missing, range(base, base + len(missing))))
        if len(known) + len(fresh) <= SHARED_LIMIT:
            known.update(fresh)
            return np.fromiter(map(known.__getitem__, values), dtype=np.int64, count=n)
        return np.fromiter(map(fresh.get, values, map(known.get, values)), dtype=np.int64,
                           count=n)

    def add_hashed(self, values: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(candidates, xxh3-64 of each) for a column of str with few repeats (entry ids)."""
        base = self.count
        encoded = self._append(values)
        hashes = np.fromiter(map(_hash64, encoded), dtype=np.uint64, count=len(values))
        return np.arange(base, base + len(values), dtype=np.int64), hashes

    def text(self, candidate: int) -> str:
        """One candidate's text (any time; for messages and rare checks)."""
        if self.offsets is not None:
            return self.bytes_of(np.array([candidate]))[0].decode()
        i = int(np.searchsorted(np.asarray(self._bases), candidate, side="right")) - 1
        lens = self._lens[i]
        k = candidate - self._bases[i]
        start = int(lens[:k].sum())
        return self._blobs[i][start:start + int(lens[k])].decode()

    def finish(self) -> None:
        """Group candidates with equal text; later strings only through ``add_late``."""
        lens = np.concatenate(self._lens) if self._lens else np.zeros(0, np.int64)
        self._lens.clear()
        self.offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=self.offsets[1:])
        # Copy the per-chunk pieces into one array each, dropping every piece once copied
        # (a ``b"".join`` would hold the pieces and the joined copy at once).
        self.blob = _gather(self._blobs, int(self.offsets[-1]))
        digests = _gather(self._digests, 16 * len(lens)).view(np.uint64).reshape(-1, 2)
        heads, first, canon = _unique_first(np.ascontiguousarray(digests[:, 0]))
        tails, sizes = digests[first, 1], lens[first]
        if (tails[canon] == digests[:, 1]).all() and (sizes[canon] == lens).all():
            self._heads, self._tails, self._sizes = heads, tails, sizes
        else:  # a 64-bit digest collision: group by the bytes themselves
            first, canon = self._exact_groups(len(lens))
        self.canon = canon.astype(np.int64, copy=False)
        self.first = first.astype(np.int64, copy=False)

    def _exact_groups(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        assert self.offsets is not None and self.blob is not None
        groups: dict[bytes, int] = {}
        first: list[int] = []
        canon = np.zeros(n, dtype=np.int64)
        blob = self.blob.tobytes()
        for i, (s, e) in enumerate(zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist())):
            g = groups.setdefault(blob[s:e], len(groups))
            if g == len(first):
                first.append(i)
            canon[i] = g
        self._groups = groups
        return np.asarray(first, dtype=np.int64), canon

    def add_late(self, encoded: list[bytes]) -> np.ndarray:
        """Groups of distinct UTF-8 strings added after ``finish`` (joined to equal ones)."""
        assert self.first is not None and self.canon is not None and self.offsets is not None
        assert self.blob is not None
        n = len(encoded)
        lens = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
        groups = np.full(n, -1, dtype=np.int64)
        if self._groups is not None:
            for i, b in enumerate(encoded):
                groups[i] = self._groups.get(b, -1)
        elif n and len(self._heads):
            digests = np.frombuffer(b"".join(map(_digest, encoded)), dtype=np.uint64).reshape(-1, 2)
            at = np.minimum(np.searchsorted(self._heads, digests[:, 0]), len(self._heads) - 1)
            same = ((self._heads[at] == digests[:, 0]) & (self._tails[at] == digests[:, 1])
                    & (self._sizes[at] == lens))
            groups[same] = at[same]
        new = np.flatnonzero(groups < 0)
        if len(new):
            base_group, base_cand = len(self.first), len(self.canon)
            groups[new] = base_group + np.arange(len(new))
            if self._groups is not None:
                for i in new.tolist():
                    self._groups[encoded[i]] = int(groups[i])
            added = [encoded[i] for i in new.tolist()]
            self.blob = np.concatenate([self.blob, np.frombuffer(b"".join(added), np.uint8)])
            ends = self.offsets[-1] + np.cumsum(lens[new])
            self.offsets = np.concatenate([self.offsets, ends])
            cands = base_cand + np.arange(len(new), dtype=np.int64)
            self.first = np.concatenate([self.first, cands])
            self.canon = np.concatenate([self.canon, groups[new]])
        return groups

    def release(self) -> None:
        """Drop the candidates' bytes and digests (no ``text``/``bytes_of``/``add_late`` after)."""
        self.blob = np.zeros(0, np.uint8)
        self.offsets = np.zeros(1, np.int64)
        self._heads = self._tails = np.zeros(0, np.uint64)
        self._sizes = np.zeros(0, np.int64)
        self._groups = None

    def bytes_of(self, candidates: np.ndarray) -> list[bytes]:
        """The UTF-8 text of candidates (after ``finish``)."""
        assert self.offsets is not None and self.blob is not None
        view = self.blob.data
        off = self.offsets
        return [bytes(view[s:e]) for s, e in zip(off[candidates].tolist(),
                                                 off[candidates + 1].tolist())]


class Pool:
    """Final pool indexes from intern calls given as (positions, candidates) columns."""

    def __init__(self, store: StringStore) -> None:
        assert store.canon is not None and store.first is not None
        self.store = store
        self._first_pos = np.full(len(store.first), np.iinfo(np.int64).max, dtype=np.int64)
        self.index: np.ndarray | None = None  # group -> final pool index
        self.groups: np.ndarray | None = None  # final pool index -> group

    def call(self, positions: np.ndarray, candidates: np.ndarray) -> None:
        """Record intern calls at ``positions`` (``NO_STRING`` candidates are no calls)."""
        assert self.store.canon is not None
        sel = candidates != NO_STRING
        if not sel.all():
            positions, candidates = positions[sel], candidates[sel]
        self.call_groups(positions, self.store.canon[candidates])

    def call_groups(self, positions: np.ndarray, groups: np.ndarray) -> None:
        """``call`` for groups (strings added with ``StringStore.add_late``)."""
        if len(self._first_pos) < len(self.store.first):  # type: ignore[arg-type]
            grown = np.full(len(self.store.first), np.iinfo(np.int64).max, dtype=np.int64)  # type: ignore[arg-type]
            grown[:len(self._first_pos)] = self._first_pos
            self._first_pos = grown
        if len(groups):
            np.minimum.at(self._first_pos, groups, np.asarray(positions, dtype=np.int64))

    def order(self) -> None:
        """Number the called groups by first position."""
        called = np.flatnonzero(self._first_pos != np.iinfo(np.int64).max)
        groups = called[np.argsort(self._first_pos[called], kind="stable")]
        index = np.full(len(self._first_pos), -1, dtype=np.int64)
        index[groups] = np.arange(len(groups), dtype=np.int64)
        self.index, self.groups = index, groups

    def lookup(self, candidates: np.ndarray) -> np.ndarray:
        """Pool indexes (``uint32``; NONE32 for ``NO_STRING``) of candidates."""
        assert self.index is not None and self.store.canon is not None
        out = np.full(len(candidates), 0xFFFFFFFF, dtype=np.uint32)
        sel = candidates != NO_STRING
        out[sel] = self.index[self.store.canon[candidates[sel]]]
        return out

    def lookup_groups(self, groups: np.ndarray) -> np.ndarray:
        assert self.index is not None
        return self.index[groups].astype(np.uint32)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(strings_off, strings_blob) of the final pool."""
        store = self.store
        assert self.groups is not None and store.first is not None
        assert store.offsets is not None and store.blob is not None
        cands = store.first[self.groups]
        starts = store.offsets[cands]
        lens = store.offsets[cands + 1] - starts
        off = np.zeros(len(cands) + 1, dtype=np.uint64)
        np.cumsum(lens, out=off[1:])
        blob = np.empty(int(off[-1]), dtype=np.uint8)
        step = 1 << 18  # strings a slice: bounds the byte-index temporaries
        for lo in range(0, len(cands), step):
            hi = min(lo + step, len(cands))
            blob[int(off[lo]):int(off[hi])] = store.blob[_ranges(starts[lo:hi], lens[lo:hi])]
        return off, blob

    def encoded(self, indexes: np.ndarray) -> list[bytes]:
        """UTF-8 text of final strings by pool index."""
        assert self.groups is not None and self.store.first is not None
        return self.store.bytes_of(self.store.first[self.groups[indexes]])

    def texts(self, indexes: Iterable[int]) -> list[str]:
        """Final strings by pool index (for the few strings the compiler needs as text)."""
        store = self.store
        assert self.groups is not None and store.first is not None
        assert store.offsets is not None and store.blob is not None
        out = []
        for i in indexes:
            c = int(store.first[self.groups[i]])
            out.append(store.blob[int(store.offsets[c]):int(store.offsets[c + 1])].tobytes().decode())
        return out


def _gather(pieces: list[bytes], size: int) -> np.ndarray:
    """The concatenation of ``pieces`` as a ``uint8`` array; empties the list as it goes."""
    out = np.empty(size, dtype=np.uint8)
    at = 0
    pieces.reverse()
    while pieces:
        piece = pieces.pop()
        out[at:at + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        at += len(piece)
        del piece
    assert at == size
    return out


def _unique_first(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_index=True, return_inverse=True)`` of a 1-d array, with
    fewer temporaries (one stable argsort)."""
    n = len(values)
    if not n:
        return values[:0], np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    flag = np.empty(n, dtype=bool)
    flag[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=flag[1:])
    unique = ordered[flag]
    del ordered
    first = order[flag]
    gid = np.cumsum(flag, dtype=np.int64)
    gid -= 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = gid
    return unique, first, inverse


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate ``range(start, start + len)`` for each pair, vectorised."""
    total = int(lens.sum()) if len(lens) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return np.arange(total, dtype=np.int64) + offsets
