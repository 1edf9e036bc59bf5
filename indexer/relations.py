"""Relations in chunks (SPEC §3 ``relations/*.jsonl``): bulk checks, exact fallback, columns.

Most relation lines of a real export have one compact form,
``{"org":"…","person":"…","role":"…","name":"…"}`` with no escapes; ``raw_chunk`` takes a run of
such lines straight from the bytes (a regular expression, then the identifier checks of
``columns``) without decoding JSON. Any other run is decoded and checked as records
(``chunk``); a record that fails a bulk check goes through ``records.parse_relation``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from .columns import (
    KEY_WIDTH,
    fast_identifiers,
    pack_keys,
    pack_strings,
    valid_ric_rows,
    valid_uscc_rows,
)
from .ingest import (
    STR_OR_NONE,
    Columns,
    Reject,
    code_numbers,
    fields,
    narrow,
    take,
    typed,
)
from .records import ROLE_INDEX, RecordError, parse_relation
from .strings import StringStore

_RELATION = itemgetter("org", "person", "role", "name")
_ROLE_BYTES = {r.encode(): i for r, i in ROLE_INDEX.items()}
_RELATION_LINE = re.compile(
    rb'^\{"org":"([0-9A-Z]{18})","person":"([0-9]{17}[0-9X])","role":"([a-z_]{1,32})",'
    rb'"name":"([^"\\\x00-\x1f]*)"\}[ \t\r]*$', re.MULTILINE)


class RelationIngest:
    """Checks chunks of relation records and appends the accepted ones to ``columns``."""

    def __init__(self, store: StringStore) -> None:
        self.store = store
        self.columns = Columns()

    def raw_chunk(self, group: list[bytes], first: int, *, newline: bool) -> list[Reject] | None:
        """Ingest raw lines when every one is a relation in the compact one-line form
        ``{"org":"…","person":"…","role":"…","name":"…"}`` (no escapes, valid UTF-8), which
        decodes to exactly the captured text; None (nothing done) otherwise."""
        raw = b"\n".join(group)
        found = _RELATION_LINE.findall(raw)
        if len(found) != len(group) or not found:
            return None
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        orgs, persons, roles, names = zip(*found)
        n = len(found)
        mat_o = np.frombuffer(b"".join(orgs), dtype=np.uint8).reshape(n, KEY_WIDTH)
        mat_p = np.frombuffer(b"".join(persons), dtype=np.uint8).reshape(n, KEY_WIDTH)
        role_no = code_numbers(roles, _ROLE_BYTES, -1)
        ok = (role_no >= 0) & valid_uscc_rows(mat_o) & valid_ric_rows(mat_p)
        o_hi, o_lo = pack_keys(mat_o)
        p_hi, p_lo = pack_keys(mat_p)
        names_: Sequence[Any] = names
        rejects: list[Reject] = []
        if not ok.all():
            idx, rejects = _exact(
                ok, lambda i: orjson.loads(group[i] + b"\n" if newline or i < n - 1 else group[i]),
                lambda i: first + i, o_hi, o_lo, p_hi, p_lo, role_no)
            o_hi, o_lo, p_hi, p_lo, role_no = (a[idx] for a in (o_hi, o_lo, p_hi, p_lo, role_no))
            names_ = take(names, idx, n)
        self._emit(o_hi, o_lo, p_hi, p_lo, role_no, names_, shared="relation_name_utf8")
        return rejects

    def chunk(self, objs: list[Any], lines: np.ndarray) -> list[Reject]:
        """Ingest a chunk of decoded records; return its rejects in line order."""
        n = len(objs)
        names: Sequence[Any]
        ok, (orgs, persons, roles, names) = fields(objs, _RELATION,
                                                    ("org", "person", "role", "name"))
        role_no = code_numbers(roles, ROLE_INDEX, -1)
        ok &= role_no >= 0
        narrow(ok, typed(names, STR_OR_NONE))
        good_o, mat_o = fast_identifiers(list(orgs), "org")
        good_p, mat_p = fast_identifiers(list(persons), "person")
        ok &= good_o & good_p
        o_hi, o_lo = pack_keys(mat_o)
        p_hi, p_lo = pack_keys(mat_p)
        rejects: list[Reject] = []
        if not ok.all():
            idx, rejects = _exact(ok, objs.__getitem__, lambda i: int(lines[i]),
                                  o_hi, o_lo, p_hi, p_lo, role_no)
            o_hi, o_lo, p_hi, p_lo, role_no = (a[idx] for a in (o_hi, o_lo, p_hi, p_lo, role_no))
            names = take(names, idx, n)
        self._emit(o_hi, o_lo, p_hi, p_lo, role_no, list(names), shared="person_name")
        return rejects

    def _emit(self, o_hi: np.ndarray, o_lo: np.ndarray, p_hi: np.ndarray, p_lo: np.ndarray,
              role_no: np.ndarray, names: Sequence[Any], *, shared: str) -> None:
        c = self.columns
        c.add("o_hi", o_hi)
        c.add("o_lo", o_lo)
        c.add("p_hi", p_hi)
        c.add("p_lo", p_lo)
        c.add("role", role_no.astype(np.uint8))
        c.add("name", self.store.add(list(names), shared=shared))
        c.add("named", np.fromiter(map(bool, names), dtype=bool, count=len(names)))


def _exact(ok: np.ndarray, record: Callable[[int], Any], line: Callable[[int], int],
           o_hi: np.ndarray, o_lo: np.ndarray, p_hi: np.ndarray, p_lo: np.ndarray,
           role_no: np.ndarray) -> tuple[np.ndarray, list[Reject]]:
    """Rows the bulk checks refused go through ``parse_relation``, the exact rule: fill in
    the ones it accepts (in place), reject the others; return the kept rows and the rejects."""
    keep = ok.copy()
    rejects: list[Reject] = []
    for i in np.flatnonzero(~ok).tolist():
        try:
            org, person, role, _ = parse_relation(record(i))
        except RecordError as exc:
            rejects.append((line(i), exc.reason, exc.message))
            continue
        keep[i] = True
        (o_hi[i],), (o_lo[i],) = pack_strings([org])
        (p_hi[i],), (p_lo[i],) = pack_strings([person])
        role_no[i] = ROLE_INDEX[role]
    return np.flatnonzero(keep), rejects
