"""Field checks over whole columns (numpy): identifiers and instants in bulk.

The build reads records in chunks and checks each field for the whole chunk at once. These
checks are a *fast path* only: a value passes when it is already in canonical form and valid
(an 18-character ASCII identifier whose check characters are right, a ``YYYY-MM-DD`` date or a
``YYYY-MM-DDTHH:MM:SS±HH:MM`` time). Anything else is left to the exact per-record functions of
``indexer.identifiers`` / ``indexer.clock`` (through ``indexer.records``), so reject reasons and
normalisation stay exactly theirs. Identifiers travel as 18-byte rows of a ``uint8`` matrix and
as two ``uint64`` words (base 31 over ``USCC_ALPHABET``, nine characters a word): every valid
normalised key is 18 characters of that alphabet, so the pair is an exact, compact key.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .clock import CST
from .identifiers import ID_CHECK, USCC_ALPHABET, _today_str

KEY_WIDTH = 18
_BAD = 255
_USCC_LUT = np.full(256, _BAD, dtype=np.uint8)
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_LUT[ord(_c)] = _i
_ORG_LUT = np.full(256, _BAD, dtype=np.uint8)  # organisation-code values: 0-9, A=10 … Z=35
for _i, _c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    _ORG_LUT[ord(_c)] = _i
_ALPHABET = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_RIC_CHECK = np.frombuffer(ID_CHECK.encode(), dtype=np.uint8)
_ORG_CHECK = np.frombuffer(b"#123456789X0", dtype=np.uint8)  # index 11 - (sum mod 11), 1..11
_RIC_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_USCC_W = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_ORG_W = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_POW31 = 31 ** np.arange(8, -1, -1, dtype=np.int64)
_TRIPLE = 31 ** 3
_TRIPLES = _ALPHABET[np.stack([np.arange(_TRIPLE) // 961, np.arange(_TRIPLE) // 31 % 31,
                               np.arange(_TRIPLE) % 31], 1)]  # three characters of 0..29790
_DATE_W = 10 ** np.arange(7, -1, -1, dtype=np.int64)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0, 0, 0], dtype=np.int64)
_ZERO, _NINE, _X = ord("0"), ord("9"), ord("X")
_US_DAY = 86_400_000_000
_CST_US = int(CST.utcoffset(None).total_seconds()) * 1_000_000


def ascii_matrix(values: list[Any], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(ok, matrix): rows of upper-cased bytes for values that are ASCII letters and digits only
    and exactly ``width`` long (``identifiers.normalize`` leaves such text upper-cased only)."""
    n = len(values)
    ok = np.zeros(n, dtype=bool)
    mat = np.zeros((n, width), dtype=np.uint8)
    if not n:
        return ok, mat
    lens = _lengths(values)
    sel = np.flatnonzero(lens == width)
    if not len(sel):
        return ok, mat
    chosen = values if len(sel) == n else [values[i] for i in sel.tolist()]
    joined = "".join(chosen)
    if not (joined.isascii() and joined.isalnum()):
        good = np.fromiter((v.isascii() and v.isalnum() for v in chosen), dtype=bool,
                           count=len(chosen))
        sel = sel[good]
        joined = "".join(v for v, g in zip(chosen, good.tolist()) if g)
    if len(sel):
        mat[sel] = np.frombuffer(joined.upper().encode("ascii"), dtype=np.uint8).reshape(-1, width)
        ok[sel] = True
    return ok, mat


_NONE_AS_EMPTY: dict[Any, str] = {None: ""}


def _lengths(values: list[Any]) -> np.ndarray:
    """Length of each str value; 0 for None, -1 for other types."""
    n = len(values)
    types = set(map(type, values))
    if types == {str}:
        return np.fromiter(map(len, values), dtype=np.int64, count=n)
    if types <= {str, type(None)}:
        as_text = map(_NONE_AS_EMPTY.get, values, values)
        return np.fromiter(map(len, as_text), dtype=np.int64, count=n)  # type: ignore[arg-type]
    return np.fromiter((len(v) if type(v) is str else -1 for v in values), dtype=np.int64,
                       count=n)


def _today() -> int:
    return int(_today_str())


def valid_ric_rows(mat: np.ndarray) -> np.ndarray:
    """Rows of an (n, 18) matrix that are valid 18-digit ID numbers (SPEC §2)."""
    digits = mat.astype(np.int64) - _ZERO
    body_ok = ((digits[:, :17] >= 0) & (digits[:, :17] <= 9)).all(axis=1)
    last = mat[:, 17]
    body_ok &= ((last >= _ZERO) & (last <= _NINE)) | (last == _X)
    ymd = digits[:, 6:14] @ _DATE_W
    year, month, day = ymd // 10000, (ymd // 100) % 100, ymd % 100
    month_ok = (month >= 1) & (month <= 12)
    mdays = _MONTH_DAYS[np.where(month_ok, month, 0)]
    mdays = mdays + ((month == 2) & _leap(year))
    date_ok = month_ok & (day >= 1) & (day <= mdays) & (ymd >= 18000101) & (ymd <= _today())
    check = _RIC_CHECK[(digits[:, :17] @ _RIC_W) % 11]
    return body_ok & date_ok & (check == last)


def _leap(year: np.ndarray) -> np.ndarray:
    return (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))


def valid_uscc_rows(mat: np.ndarray) -> np.ndarray:
    """Rows of an (n, 18) matrix that are valid USCCs: alphabet, organisation code, check."""
    values = _USCC_LUT[mat]
    ok = (values != _BAD).all(axis=1)
    vals = values.astype(np.int64)
    org = _ORG_LUT[mat[:, 8:16]].astype(np.int64) @ _ORG_W
    org_ok = _ORG_CHECK[11 - org % 11] == mat[:, 16]
    check = _ALPHABET[(31 - (vals[:, :17] @ _USCC_W) % 31) % 31]
    return ok & org_ok & (check == mat[:, 17])


def fast_identifiers(values: list[Any], type_: str) -> tuple[np.ndarray, np.ndarray]:
    """(ok, matrix) for raw identifier values of one type (``org`` or ``person``).

    ``ok`` marks values that ``records._identifier`` accepts unchanged but for upper-casing;
    their normalised bytes are the matrix rows. Others need the exact per-value path.
    """
    ok, mat = ascii_matrix(values, KEY_WIDTH)
    if ok.any():
        ok &= valid_ric_rows(mat) if type_ == "person" else valid_uscc_rows(mat)
    return ok, mat


def pack_keys(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two exact ``uint64`` words per normalised 18-character key (base 31, nine a word)."""
    vals = _USCC_LUT[mat].astype(np.int64)
    return ((vals[:, :9] @ _POW31).astype(np.uint64), (vals[:, 9:] @ _POW31).astype(np.uint64))


def pack_strings(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``pack_keys`` for a list of already normalised, valid keys."""
    if not keys:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    mat = np.frombuffer("".join(keys).encode("ascii"), dtype=np.uint8).reshape(-1, KEY_WIDTH)
    return pack_keys(mat)


def unpack_keys(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The ``S18`` keys of ``pack_keys`` words."""
    n = len(hi)
    out = np.zeros((n, KEY_WIDTH), dtype=np.uint8)
    for word, start in ((hi, 0), (lo, 9)):
        # three base-31 digits at a time: 31**9 == 29791**3
        word, low = np.divmod(word.astype(np.int64), _TRIPLE)
        top, mid = np.divmod(word, _TRIPLE)
        out[:, start:start + 3] = _TRIPLES[top]
        out[:, start + 3:start + 6] = _TRIPLES[mid]
        out[:, start + 6:start + 9] = _TRIPLES[low]
    return out.view("S18").reshape(n)


def key_mix(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """A 64-bit mix of a packed key, for grouping (equality is confirmed on the words)."""
    with np.errstate(over="ignore"):
        h = hi * np.uint64(0x9E3779B97F4A7C15) ^ lo
        h ^= h >> np.uint64(29)
        return h * np.uint64(0xBF58476D1CE4E5B9)


def fast_instants(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(ok, instants) for ``YYYY-MM-DD`` dates (00:00 CST) and ``YYYY-MM-DDTHH:MM:SS±HH:MM``
    times; other values (and impossible dates) are left to ``clock.parse_instant``."""
    n = len(values)
    ok = np.zeros(n, dtype=bool)
    out = np.zeros(n, dtype=np.int64)
    if not n:
        return ok, out
    lens = _lengths(values)
    for width in (10, 25):
        sel = np.flatnonzero(lens == width)
        if not len(sel):
            continue
        chosen = values if len(sel) == n else [values[i] for i in sel.tolist()]
        joined = "".join(chosen)
        if not joined.isascii():
            good = np.fromiter(map(str.isascii, chosen), dtype=bool, count=len(chosen))
            sel = sel[good]
            joined = "".join(v for v, g in zip(chosen, good.tolist()) if g)
            if not len(sel):
                continue
        mat = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, width)
        good, instants = _parse_matrix(mat)
        ok[sel] = good
        out[sel] = instants
    return ok, out


def _number(mat: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    digits = mat[:, lo:hi].astype(np.int64) - _ZERO
    good = np.asarray(((digits >= 0) & (digits <= 9)).all(axis=1))
    return good, digits @ (10 ** np.arange(hi - lo - 1, -1, -1, dtype=np.int64))


def _parse_matrix(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    width = mat.shape[1]
    g1, year = _number(mat, 0, 4)
    g2, month = _number(mat, 5, 7)
    g3, day = _number(mat, 8, 10)
    good = g1 & g2 & g3 & (mat[:, 4] == ord("-")) & (mat[:, 7] == ord("-"))
    month_ok = (month >= 1) & (month <= 12)
    mdays = _MONTH_DAYS[np.where(month_ok, month, 0)] + ((month == 2) & _leap(year))
    good &= (year >= 1) & month_ok & (day >= 1) & (day <= mdays)
    micros = _days_from_civil(year, month, day) * _US_DAY
    if width == 10:
        return good, micros - _CST_US
    g4, hour = _number(mat, 11, 13)
    g5, minute = _number(mat, 14, 16)
    g6, second = _number(mat, 17, 19)
    g7, off_h = _number(mat, 20, 22)
    g8, off_m = _number(mat, 23, 25)
    sign = np.where(mat[:, 19] == ord("-"), -1, 1)
    good &= (g4 & g5 & g6 & g7 & g8 & (mat[:, 10] == ord("T")) & (mat[:, 13] == ord(":"))
             & (mat[:, 16] == ord(":")) & ((mat[:, 19] == ord("+")) | (mat[:, 19] == ord("-")))
             & (mat[:, 22] == ord(":")) & (hour <= 23) & (minute <= 59) & (second <= 59)
             & (off_h <= 23) & (off_m <= 59))
    offset = sign * (off_h * 3600 + off_m * 60) * 1_000_000
    return good, micros + (hour * 3600 + minute * 60 + second) * 1_000_000 - offset


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * np.where(m > 2, m - 3, m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468

