"""SPEC §2 identifiers as numpy arrays: many 18-character keys validated and hashed at once.

A window of keys is an ``(n, 18)`` ``uint8`` matrix of ASCII codes. ``classify`` validates each
row as an ID number (17 digits, a real birth date from 1800-01-01 to today, the MOD 11-2
check) and as a USCC (alphabet, organisation-code check, MOD 31 check) with the precedence of
``identifiers.parse``; ``xxh3_18`` computes the xxh3-64 hash the snapshot's ``key_hash`` is
made of; ``in_keys`` intersects hashes with that sorted array. The scalar code in
``indexer.identifiers`` stays the reference: the tests compare both with Hypothesis, and the
hash is checked against the ``xxhash`` package when this module is imported.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

import numpy as np
import xxhash

from indexer import identifiers
from indexer.snapshot import Snapshot

ARANGE18 = np.arange(18)
IS_DIGIT = np.zeros(256, dtype=bool)
IS_DIGIT[ord("0"):ord("9") + 1] = True
IS_LOWER = np.zeros(256, dtype=bool)
IS_LOWER[ord("a"):ord("z") + 1] = True
IS_ALNUM = IS_DIGIT | IS_LOWER
IS_ALNUM[ord("A"):ord("Z") + 1] = True
UPPER = np.arange(256, dtype=np.uint8)
UPPER[ord("a"):ord("z") + 1] -= 32

_USCC_VALUE = np.full(256, -1, dtype=np.int32)
_USCC_VALUE[np.frombuffer(identifiers.USCC_ALPHABET.encode(), np.uint8)] = np.arange(31)
_ORG_VALUE = np.zeros(256, dtype=np.int32)  # GB 11714: digits 0-9, A=10 … Z=35
for _c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _ORG_VALUE[ord(_c)] = int(_c, 36)
_USCC_CHARS = np.frombuffer(identifiers.USCC_ALPHABET.encode(), dtype=np.uint8)
_RIC_CHECK = np.frombuffer(identifiers.ID_CHECK.encode(), dtype=np.uint8)
_ORG_CHECK = np.frombuffer(b"0X987654321", dtype=np.uint8)  # by Σ mod 11: 11 - r, 10→X, 11→0
_RIC_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int32)
_USCC_W = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28],
                   dtype=np.int32)
_ORG_W = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int32)
_MONTH_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)
_YEAR_W = np.array([1000, 100, 10, 1], dtype=np.int32)

FORM_NONE, FORM_RIC, FORM_USCC = 0, 1, 2
TYPE_ANY, TYPE_PERSON, TYPE_ORG, TYPE_BAD = 0, 1, 2, -1


def type_code(t: object) -> int:
    """A request's ``type`` as a code; ``TYPE_BAD`` for anything but None, person, org."""
    if t is None:
        return TYPE_ANY
    if t == "person":
        return TYPE_PERSON
    if t == "org":
        return TYPE_ORG
    return TYPE_BAD


def _today() -> int:
    return int(_dt.datetime.now(identifiers.CST).strftime("%Y%m%d"))


def _valid_ric(m: np.ndarray) -> np.ndarray:
    """Rows (17 digits and a digit or X) with a real birth date and the right check."""
    d = m.astype(np.int32) - ord("0")
    year = d[:, 6:10] @ _YEAR_W
    month = d[:, 10] * 10 + d[:, 11]
    day = d[:, 12] * 10 + d[:, 13]
    month_ok = (month >= 1) & (month <= 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok = month_ok & (day >= 1) & (day <= _MONTH_DAYS[np.where(month_ok, month, 0)])
    ok &= ~((month == 2) & (day == 29) & ~leap)
    ymd = year * 10000 + month * 100 + day
    ok &= (ymd >= 18000101) & (ymd <= _today())
    return ok & (_RIC_CHECK[(d[:, :17] @ _RIC_W) % 11] == m[:, 17])


def _valid_uscc(m: np.ndarray) -> np.ndarray:
    """Rows in the USCC alphabet with the right organisation-code and whole-code checks."""
    values = _USCC_VALUE[m]
    ok = (values >= 0).all(axis=1)
    ok &= _ORG_CHECK[(_ORG_VALUE[m[:, 8:16]] @ _ORG_W) % 11] == m[:, 16]
    return ok & (_USCC_CHARS[(31 - (values[:, :17] @ _USCC_W) % 31) % 31] == m[:, 17])


def classify(m: np.ndarray, types: np.ndarray) -> np.ndarray:
    """For an ``(n, 18)`` matrix of normalised ASCII keys and their type codes: ``FORM_RIC``,
    ``FORM_USCC`` or ``FORM_NONE`` (invalid, or not the form the type asks for)."""
    forms = np.zeros(len(m), dtype=np.int8)
    if len(m) == 0:
        return forms
    digit = IS_DIGIT[m]
    ric_like = digit[:, :17].all(axis=1) & (digit[:, 17] | (m[:, 17] == ord("X")))
    # An ID number where the type allows one; untyped, an ID number comes first (SPEC §2).
    rows = np.flatnonzero(ric_like & (types != TYPE_ORG))
    forms[rows[_valid_ric(m[rows])]] = FORM_RIC
    rows = np.flatnonzero((forms == FORM_NONE) & (types != TYPE_PERSON))
    forms[rows[_valid_uscc(m[rows])]] = FORM_USCC
    return forms


def classify18(keys: Sequence[bytes], types: Sequence[object]) -> np.ndarray:
    """``classify`` for a list of normalised 18-byte keys (for tests and small callers)."""
    m = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 18)
    return classify(m, np.fromiter(map(type_code, types), dtype=np.int8, count=len(keys)))


# XXH3-64 (seed 0) for inputs of 17-32 bytes: acc = len·P1 + mix16(0) + mix16(len-16); avalanche.
_SECRET = np.frombuffer(bytes([
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
]), dtype="<u8")
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ACC18 = np.uint64(18 * 0x9E3779B185EBCA87 % 2**64)


def _mul128_fold64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    alo, ahi, blo, bhi = a & _M32, a >> _S32, b & _M32, b >> _S32
    ll, hl, lh, hh = alo * blo, ahi * blo, alo * bhi, ahi * bhi
    cross = (ll >> _S32) + (hl & _M32) + lh
    upper = (hl >> _S32) + (cross >> _S32) + hh
    return ((cross << _S32) | (ll & _M32)) ^ upper


def _xxh3_18_numpy(m: np.ndarray) -> np.ndarray:
    def word(at: int) -> np.ndarray:
        return np.ascontiguousarray(m[:, at:at + 8]).view("<u8")[:, 0]

    acc = np.full(len(m), _ACC18, dtype=np.uint64)
    acc += _mul128_fold64(word(0) ^ _SECRET[0], word(8) ^ _SECRET[1])
    acc += _mul128_fold64(word(2) ^ _SECRET[2], word(10) ^ _SECRET[3])
    acc ^= acc >> np.uint64(37)
    acc *= np.uint64(0x165667919E3779F9)
    acc ^= acc >> _S32
    return acc


def _xxh3_18_scalar(m: np.ndarray) -> np.ndarray:
    data = np.ascontiguousarray(m).tobytes()
    h = xxhash.xxh3_64_intdigest
    return np.fromiter((h(data[i:i + 18]) for i in range(0, len(data), 18)), dtype=np.uint64,
                       count=len(m))


def _self_check() -> bool:
    probe = np.frombuffer(b"91350100M000100Y4311010519491231002X", np.uint8).reshape(2, 18)
    with np.errstate(over="ignore"):
        return bool((_xxh3_18_numpy(probe) == _xxh3_18_scalar(probe)).all())


_NUMPY_HASH_OK = _self_check()


def xxh3_18(m: np.ndarray) -> np.ndarray:
    """xxh3-64 of each row of an ``(n, 18)`` uint8 matrix, as ``snapshot.key_hash`` has it."""
    if len(m) == 0:
        return np.zeros(0, dtype=np.uint64)
    if not _NUMPY_HASH_OK:  # pragma: no cover - a different xxhash: hash row by row
        return _xxh3_18_scalar(m)
    with np.errstate(over="ignore"):
        return _xxh3_18_numpy(m)


def in_keys(snap: Snapshot, hashes: np.ndarray) -> np.ndarray:
    """Which ``hashes`` occur in the snapshot's sorted ``key_hash`` (exact, no false hits)."""
    keys = snap.key_hash
    if len(keys) == 0 or len(hashes) == 0:
        return np.zeros(len(hashes), dtype=bool)
    order = np.argsort(hashes)  # sorted queries keep searchsorted's probes cache-friendly
    wanted = hashes[order]
    pos = np.searchsorted(keys, wanted)
    np.minimum(pos, len(keys) - 1, out=pos)
    found = np.empty(len(hashes), dtype=bool)
    found[order] = keys[pos] == wanted
    return found
