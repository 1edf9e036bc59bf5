"""Entries in chunks: bulk checks, exact fallback, compact columns.

A chunk of decoded records is checked field by field over the whole chunk (``columns``). A
record that passes every check is one that ``records.parse_entry`` / ``parse_relation`` would
accept, and its values are exactly what they would return. Every other record goes through
those exact functions, so its reject reason (or its normalised values) is theirs. Accepted
records become rows of ``Columns``: numbers, packed identifier keys and string candidates
(``strings.StringStore``), never per-record Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, repeat
from operator import is_, is_not, itemgetter
from typing import Any

import numpy as np

from . import identifiers
from .clock import NEVER
from .columns import fast_identifiers, fast_instants, pack_keys, pack_strings
from .records import (
    DERIVED_SUFFIX,
    PUBLICITIES,
    ROLE_INDEX,
    Entry,
    ListDef,
    RecordError,
    parse_entry,
)
from .regions import BadRegion, region_prefix
from .strings import StringStore

_ENTRY = itemgetter("id", "list", "subject", "authority", "region", "scope", "valid_from",
                    "valid_until", "reason", "basis", "publicity")
_ENTRY_KEYS = ("id", "list", "subject", "authority", "region", "scope", "valid_from",
               "valid_until", "reason", "basis", "publicity")
_SUBJECT = itemgetter("type", "id", "name")
_PERSON = itemgetter("role", "id", "name")
_TYPE = {"org": 0, "person": 1}
_PUB = {p: i for i, p in enumerate(PUBLICITIES)}
_PUB_OR_NONE: dict[Any, int] = {None: -2, **_PUB}  # -2: the list's default
STR_OR_NONE: frozenset[type] = frozenset((str, type(None)))
_SCALARS: frozenset[type] = frozenset((str, bytes, type(None)))
_NO_ALIASES: tuple[str, ...] = ()  # the default of a missing ``aliases`` (compared by identity)
Reject = tuple[int, str, str]  # (line, reason, message)


class Columns:
    """Growing columns: ``add(name, array)`` per chunk, ``get(name)`` concatenated."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        self._parts.setdefault(name, []).append(values)

    def get(self, name: str, dtype: Any) -> np.ndarray:
        parts = self._parts.pop(name, [])
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def fields(objs: Sequence[Any], getter: itemgetter, keys: Sequence[str]
            ) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """(is-dict mask, one tuple per key) — ``obj.get(key)`` of every record."""
    n = len(objs)
    try:
        if set(map(type, objs)) == {dict}:
            return np.ones(n, bool), list(zip(*map(getter, objs))) or [()] * len(keys)
    except KeyError:
        pass
    is_dict = np.fromiter((type(o) is dict for o in objs), dtype=bool, count=n)
    cols = [tuple(o.get(k) if type(o) is dict else None for o in objs) for k in keys]
    return is_dict, cols


def typed(col: Sequence[Any], types: frozenset[type]) -> np.ndarray | None:
    """None when every value's type is in ``types``, else the per-value mask."""
    if set(map(type, col)) <= types:
        return None
    return np.fromiter((type(v) in types for v in col), dtype=bool, count=len(col))


def narrow(ok: np.ndarray, mask: np.ndarray | None) -> None:
    if mask is not None:
        ok &= mask


def _nonblank(col: Sequence[Any]) -> np.ndarray | None:
    """None when every value is a non-blank str, else the per-value mask."""
    if set(map(type, col)) == {str} and all(map(str.strip, col)):
        return None
    return np.fromiter((type(v) is str and bool(v.strip()) for v in col), dtype=bool,
                       count=len(col))


def code_numbers(col: Sequence[Any], table: dict[Any, int], missing: int) -> np.ndarray:
    """``table.get(value, missing)`` of every value (unhashable values give ``missing``)."""
    if set(map(type, col)) <= _SCALARS:
        return np.fromiter(map(table.get, col, repeat(missing)), dtype=np.int64, count=len(col))
    return np.fromiter((table.get(v, missing) if type(v) in STR_OR_NONE else missing
                        for v in col), dtype=np.int64, count=len(col))


def take(col: Sequence[Any], idx: np.ndarray, n: int) -> list[Any]:
    return list(col) if len(idx) == n else [col[i] for i in idx.tolist()]


class EntryIngest:
    """Checks chunks of entry records and appends the accepted ones to ``columns``."""

    def __init__(self, lists: dict[str, ListDef], store: StringStore,
                 referenced: set[str]) -> None:
        self.lists = lists
        self.list_index = {c: i for i, c in enumerate(lists)}
        self.list_authority = [d.authority for d in lists.values()]
        self.list_publicity = np.array([_PUB[d.publicity] for d in lists.values()] or [0],
                                       dtype=np.uint8)
        self.store = store
        self.columns = Columns()
        self.persons = Columns()
        self.aliases = Columns()
        self.scopes: dict[str, int] = {"": 0}  # scope prefix -> provisional number
        self._scope_no: dict[Any, int] = {None: 0}  # raw scope -> provisional number or -1
        self.referenced = referenced  # entry ids that events name
        self.first_seq: dict[str, int] = {}  # referenced id -> sequence of its first entry
        self.count = 0  # entries accepted so far (duplicates included)

    # -- chunks of source records -----------------------------------------------------------
    def chunk(self, objs: list[Any], lines: np.ndarray, file: int) -> list[Reject]:
        """Ingest a chunk of decoded records; return its rejects in line order."""
        n = len(objs)
        ok, f = self._check(objs)
        fast = np.flatnonzero(ok)
        rejects: list[Reject] = []
        slow: list[tuple[int, Entry]] = []
        if len(fast) < n:
            for i in np.flatnonzero(~ok).tolist():
                try:
                    slow.append((i, parse_entry(objs[i], self.lists)))
                except RecordError as exc:
                    rejects.append((int(lines[i]), exc.reason, exc.message))
        batch = self._fast_batch(f, fast, n) if len(fast) else None
        if slow:
            other = self._entry_batch([e for _, e in slow], np.array([i for i, _ in slow]))
            batch = other if batch is None else _merge(batch, other)
        if batch is not None:
            self._emit(batch, lines[batch["rec"]], file)
        return rejects

    def entries(self, entries: list[Entry], lines: np.ndarray, files: np.ndarray) -> None:
        """Ingest entries parsed elsewhere (``listed`` events), in order."""
        if entries:
            self._emit(self._entry_batch(entries, np.arange(len(entries))), lines, files)

    # -- the bulk checks ----------------------------------------------------------------------
    def _check(self, objs: list[Any]) -> tuple[np.ndarray, dict[str, Any]]:
        n = len(objs)
        ok, cols = fields(objs, _ENTRY, _ENTRY_KEYS)
        is_dicts = bool(ok.all())
        ids, codes, subjects, auth, region, scope, vfrom, vuntil, reason, basis, pub = cols
        narrow(ok, _nonblank(ids))
        if not (set(map(type, ids)) == {str} and "/watch" not in "\n".join(ids)):
            narrow(ok, np.fromiter((not (type(v) is str and v.endswith(DERIVED_SUFFIX))
                                  for v in ids), dtype=bool, count=n))
        list_no = code_numbers(codes, self.list_index, -1)
        ok &= list_no >= 0
        for col in (auth, region, reason, basis):
            narrow(ok, typed(col, STR_OR_NONE))
        pub_code = code_numbers(pub, _PUB_OR_NONE, -1)
        ok &= pub_code != -1
        s_ok, (stype, sid, sname) = fields(subjects, _SUBJECT, ("type", "id", "name"))
        ok &= s_ok
        narrow(ok, typed(sname, STR_OR_NONE))
        type_no = code_numbers(stype, _TYPE, -1)
        org, person = type_no == 0, type_no == 1
        ok &= org | person
        hi = np.zeros(n, np.uint64)
        lo = np.zeros(n, np.uint64)
        for mask, type_ in ((org, "org"), (person, "person")):
            idx = np.flatnonzero(mask)
            if len(idx):
                good, mat = fast_identifiers(take(sid, idx, n), type_)
                ok[idx[~good]] = False
                hi[idx], lo[idx] = pack_keys(mat)
        raw_aliases = (list(map(dict.get, subjects, repeat("aliases"), repeat(_NO_ALIASES)))
                       if s_ok.all() else [s.get("aliases", _NO_ALIASES) if type(s) is dict
                                           else _NO_ALIASES for s in subjects])
        aliases: dict[int, list[str]] = {}
        has_aliases = np.fromiter(map(is_not, raw_aliases, repeat(_NO_ALIASES)), dtype=bool,
                                  count=n)
        for i in np.flatnonzero(has_aliases).tolist():
            normalized = _aliases(raw_aliases[i])
            if normalized is None:
                ok[i] = False
            elif normalized:
                aliases[i] = normalized
        t_from, v_from = fast_instants(list(vfrom))
        ok &= t_from
        open_end = np.fromiter(map(is_, vuntil, repeat(None)), dtype=bool, count=n)
        t_until, v_until = fast_instants(list(vuntil))
        v_until[open_end] = NEVER
        ok &= (t_until | open_end) & (v_until > v_from)
        scope_no = self._scope_numbers(scope)
        ok &= scope_no >= 0
        persons = (list(map(dict.get, objs, repeat("persons"))) if is_dicts
                   else [o.get("persons") if type(o) is dict else None for o in objs])
        p = self._persons(persons, ok)
        return ok, {"ids": ids, "list": list_no, "stype": person.astype(np.uint8), "hi": hi,
                    "lo": lo, "sname": sname, "auth": auth, "region": region, "reason": reason,
                    "basis": basis, "pub": pub_code, "scope": scope_no, "from": v_from,
                    "until": v_until, "aliases": aliases, "persons": p}

    def _scope_numbers(self, col: Sequence[Any]) -> np.ndarray:
        """Provisional scope numbers of raw ``scope`` values; -1 where the exact path must
        judge (not a str, or not a region code)."""
        known = self._scope_no
        fresh: dict[Any, int] = {}
        for value in dict.fromkeys(v for v in col if type(v) is str and v not in known):
            try:
                prefix = region_prefix(value)
            except BadRegion:
                fresh[value] = -1
                continue
            fresh[value] = self.scopes.setdefault(prefix, len(self.scopes))
        if fresh:
            if len(known) < 100_000:
                known.update(fresh)
            else:
                known = {**known, **fresh}
        return code_numbers(col, known, -1)

    def _persons(self, persons: list[Any], ok: np.ndarray) -> dict[str, Any]:
        n = len(persons)
        kinds = set(map(type, persons))
        if not kinds <= {list, type(None)}:
            ok &= np.fromiter((type(p) in (list, type(None)) for p in persons), dtype=bool,
                              count=n)
            persons = [p if type(p) is list else None for p in persons]
        counts = np.zeros(n, np.int64)
        if list in kinds:
            nonempty = np.fromiter(map(bool, persons), dtype=bool, count=n)
            counts[nonempty] = np.fromiter(map(len, filter(None, persons)), dtype=np.int64,
                                           count=int(nonempty.sum()))
        flat = list(chain.from_iterable(filter(None, persons)))
        m = len(flat)
        owner = np.repeat(np.arange(n), counts)
        if not m:
            return {"counts": counts, "owner": owner, "role": np.zeros(0, np.uint8),
                    "hi": np.zeros(0, np.uint64), "lo": np.zeros(0, np.uint64), "name": []}
        p_ok, (role, pid, name) = fields(flat, _PERSON, ("role", "id", "name"))
        roles = code_numbers(role, ROLE_INDEX, -1)
        p_ok &= roles >= 0
        narrow(p_ok, typed(name, STR_OR_NONE))
        good, mat = fast_identifiers(list(pid), "person")
        p_ok &= good
        ok[owner[~p_ok]] = False
        hi, lo = pack_keys(mat)
        return {"counts": counts, "owner": owner, "role": roles.astype(np.uint8), "hi": hi,
                "lo": lo, "name": name}

    # -- batches: accepted records as columns ---------------------------------------------------
    def _fast_batch(self, f: dict[str, Any], idx: np.ndarray, n: int) -> dict[str, Any]:
        list_no = f["list"][idx]
        auth = take(f["auth"], idx, n)
        if not all(auth):
            auth = [a or self.list_authority[li] for a, li in zip(auth, list_no.tolist())]
        pub = f["pub"][idx]
        pub = np.where(pub < 0, self.list_publicity[list_no], pub)
        p = f["persons"]
        keep_person = np.isin(p["owner"], idx) if len(idx) < n else np.ones(len(p["owner"]), bool)
        pk = np.flatnonzero(keep_person)
        ok = np.zeros(n, dtype=bool)
        ok[idx] = True
        alias_recs = [i for i in f["aliases"] if ok[i]]
        n_aliases = np.zeros(n, dtype=np.int64)
        for i in alias_recs:
            n_aliases[i] = len(f["aliases"][i])
        return {"rec": idx, "ids": take(f["ids"], idx, n), "list": list_no,
                "stype": f["stype"][idx], "hi": f["hi"][idx], "lo": f["lo"][idx],
                "sname": take(f["sname"], idx, n), "from": f["from"][idx],
                "until": f["until"][idx], "pub": pub, "scope": f["scope"][idx], "auth": auth,
                "region": take(f["region"], idx, n), "reason": take(f["reason"], idx, n),
                "basis": take(f["basis"], idx, n), "n_persons": p["counts"][idx],
                "p_owner": p["owner"][pk], "p_role": p["role"][pk], "p_hi": p["hi"][pk],
                "p_lo": p["lo"][pk], "p_name": take(p["name"], pk, len(p["owner"])),
                "n_aliases": n_aliases[idx],
                "a_owner": np.repeat(np.array(alias_recs, dtype=np.int64),
                                     [len(f["aliases"][i]) for i in alias_recs]),
                "aliases": [a for i in alias_recs for a in f["aliases"][i]]}

    def _entry_batch(self, entries: list[Entry], rec: np.ndarray) -> dict[str, Any]:
        list_no = np.array([self.list_index[e.list] for e in entries], dtype=np.int64)
        hi, lo = pack_strings([e.subject_id for e in entries])
        persons = [(r, p) for r, e in zip(rec.tolist(), entries) for p in e.persons]
        p_hi, p_lo = pack_strings([p.id for _, p in persons])
        aliases = [(r, a) for r, e in zip(rec.tolist(), entries) for a in e.aliases]
        return {"rec": rec, "ids": [e.id for e in entries], "list": list_no,
                "stype": np.array([_TYPE[e.subject_type] for e in entries], dtype=np.uint8),
                "hi": hi, "lo": lo, "sname": [e.subject_name for e in entries],
                "from": np.array([e.valid_from for e in entries], dtype=np.int64),
                "until": np.array([e.valid_until for e in entries], dtype=np.int64),
                "pub": np.array([_PUB[e.publicity or self.lists[e.list].publicity]
                                 for e in entries], dtype=np.int64),
                "scope": np.array([self.scopes.setdefault(e.scope, len(self.scopes))
                                   for e in entries], dtype=np.int64),
                "auth": [e.authority or self.lists[e.list].authority for e in entries],
                "region": [e.region for e in entries], "reason": [e.reason for e in entries],
                "basis": [e.basis for e in entries],
                "n_persons": np.array([len(e.persons) for e in entries], dtype=np.int64),
                "p_owner": np.array([r for r, _ in persons], dtype=np.int64),
                "p_role": np.array([ROLE_INDEX[p.role] for _, p in persons], dtype=np.uint8),
                "p_hi": p_hi, "p_lo": p_lo, "p_name": [p.name for _, p in persons],
                "n_aliases": np.array([len(e.aliases) for e in entries], dtype=np.int64),
                "a_owner": np.array([r for r, _ in aliases], dtype=np.int64),
                "aliases": [a for _, a in aliases]}

    def _emit(self, b: dict[str, Any], lines: np.ndarray, file: int | np.ndarray) -> None:
        store, c = self.store, self.columns
        ids = b["ids"]
        cands, hashes = store.add_hashed(ids)
        if self.referenced and not self.referenced.isdisjoint(ids):
            for j, v in enumerate(ids):
                if v in self.referenced:
                    self.first_seq.setdefault(v, self.count + j)
        self.count += len(ids)
        c.add("id", cands)
        c.add("id_hash", hashes)
        c.add("list", b["list"].astype(np.uint16))
        c.add("stype", b["stype"].astype(np.uint8))
        c.add("hi", b["hi"])
        c.add("lo", b["lo"])
        c.add("sname", store.add(b["sname"]))
        c.add("snamed", np.fromiter(map(bool, b["sname"]), dtype=bool, count=len(ids)))
        c.add("from", b["from"])
        c.add("until", b["until"])
        c.add("pub", b["pub"].astype(np.uint8))
        c.add("scope", b["scope"].astype(np.uint16))
        c.add("auth", store.add(b["auth"], shared="authority"))
        c.add("region", store.add(b["region"], shared="region"))
        c.add("reason", store.add(b["reason"], shared="reason"))
        c.add("basis", store.add(b["basis"]))
        c.add("n_persons", b["n_persons"].astype(np.int32))
        c.add("n_aliases", b["n_aliases"].astype(np.int32))
        c.add("file", np.broadcast_to(np.asarray(file, dtype=np.int32), (len(ids),)).copy())
        c.add("line", np.asarray(lines, dtype=np.int64))
        p = self.persons
        p.add("role", b["p_role"])
        p.add("hi", b["p_hi"])
        p.add("lo", b["p_lo"])
        p.add("name", store.add(b["p_name"], shared="person_name"))
        p.add("named", np.fromiter(map(bool, b["p_name"]), dtype=bool, count=len(b["p_name"])))
        self.aliases.add("alias", store.add(b["aliases"]))


def _aliases(raw: Any) -> list[str] | None:
    """``parse_entry``'s aliases, or None when they make the record a reject."""
    if type(raw) is not list or not all(type(a) is str for a in raw):
        return None
    normalized = [identifiers.normalize(a) for a in raw]
    return None if any(not a for a in normalized) else normalized


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two batches of one chunk merged in record order (persons and aliases too)."""
    order = np.argsort(np.concatenate([a["rec"], b["rec"]]), kind="stable")
    p_order = np.argsort(np.concatenate([a["p_owner"], b["p_owner"]]), kind="stable")
    a_order = np.argsort(np.concatenate([a["a_owner"], b["a_owner"]]), kind="stable")
    out: dict[str, Any] = {}
    for key, va in a.items():
        perm = p_order if key.startswith("p_") else a_order if key in ("a_owner", "aliases") \
            else order
        vb = b[key]
        if isinstance(va, np.ndarray):
            out[key] = np.concatenate([va, np.asarray(vb, dtype=va.dtype)])[perm]
        else:
            joined = list(va) + list(vb)
            out[key] = [joined[i] for i in perm.tolist()]
    return out
