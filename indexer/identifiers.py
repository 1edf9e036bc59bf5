"""Identifiers (SPEC §2): normalisation and validation with exact reason codes.

Three forms are known:

* 统一社会信用代码 (USCC, GB 32100-2015): 18 characters from ``USCC_ALPHABET``; characters
  9–17 are a 组织机构代码 with its own check character; character 18 checks the whole.
* 居民身份证号码 (GB 11643-1999): 17 digits and a check character (ISO 7064 MOD 11-2); a
  15-digit first-generation number is widened to 18.
* 组织机构代码 (GB 11714): 9 characters, resolved by the caller to a listed USCC.

The check-character sums use ``int(text, base)`` (C speed) instead of a Python loop: the
weights are powers (ID: 2^k mod 11, USCC: 3^k mod 31, organisation code: 2^k mod 11), so a
base congruent to the weight ratio gives the same sum modulo the check modulus. The naive
weighted loops of the standard live in the tests and are compared by Hypothesis.
"""

from __future__ import annotations

import datetime as _dt
import re
import time as _time
import unicodedata
from dataclasses import dataclass
from typing import Literal

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ID_CHECK = "10X98765432"
CST = _dt.timezone(_dt.timedelta(hours=8), "CST")

IdentifierType = Literal["org", "person"]

# USCC character -> base-36 digit whose value is the character's index in USCC_ALPHABET.
_USCC_TO_B36 = str.maketrans(USCC_ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTU")
_USCC_SET = frozenset(USCC_ALPHABET)
_ORG_BODY_SET = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS = frozenset("0123456789")
_DROP = re.compile(r"[\s\-\u2010\u2011\u2012\u2013\u2014\u2212\u00ad\u200b\ufeff]+")


class IdentifierError(ValueError):
    """An identifier that is not valid, with a SPEC §2 reason code."""

    def __init__(self, code: str, message: str, *, expected: str | None = None,
                 form: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.expected = expected
        self.form = form


@dataclass(frozen=True, slots=True)
class Identifier:
    """A normalised identifier: ``form`` is ``uscc``, ``ric`` or ``org_code``."""

    form: Literal["uscc", "ric", "org_code"]
    value: str

    @property
    def type(self) -> IdentifierType:
        return "person" if self.form == "ric" else "org"


def normalize(raw: str) -> str:
    """Fold full-width to half-width (NFKC), drop blanks and hyphens, upper-case."""
    if raw.isascii():
        if raw.isalnum():
            return raw.upper()
        return _DROP.sub("", raw).upper()
    # Folding can compose or split characters again: repeat until nothing changes (a few
    # rounds at most; such text is never a valid identifier anyway).
    for _ in range(8):
        folded = _DROP.sub("", unicodedata.normalize("NFKC", raw)).upper()
        if folded == raw:
            break
        raw = folded
    return raw


def uscc_check_char(body: str) -> str:
    """Check character of a USCC from its first 17 characters (already in the alphabet)."""
    # sum(v_i * 3^(i-1)) mod 31 == int(reversed, 34) mod 31, since 34 ≡ 3 (mod 31).
    total = int(body[16::-1].translate(_USCC_TO_B36), 34) % 31
    return USCC_ALPHABET[(31 - total) % 31]


def org_code_check_char(body: str) -> str:
    """Check character of a 组织机构代码 from its first 8 characters (0-9, A-Z)."""
    if "Z" in body:  # base 35 has no digit for Z (value 35): use the weighted sum.
        total = sum(w * int(c, 36) for w, c in zip((3, 7, 9, 10, 5, 8, 4, 2), body))
    else:
        # sum(v_i * 2^(9-i)) == 2 * int(body, 35) (mod 11), since 35 ≡ 2 (mod 11).
        total = 2 * int(body[:8], 35)
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def ric_check_char(body: str) -> str:
    """Check character of an 18-digit ID number from its first 17 digits."""
    # sum(d_i * 2^(18-i)) == 2 * int(body, 13) (mod 11), since 13 ≡ 2 (mod 11).
    return ID_CHECK[2 * int(body[:17], 13) % 11]


_MONTH_DAYS = frozenset(
    f"{d.month:02d}{d.day:02d}"
    for d in (_dt.date(2000, 1, 1) + _dt.timedelta(days=i) for i in range(366)))
_today_cache: list[object] = [0.0, ""]  # [valid until (epoch s), "YYYYMMDD" today in CST]


def _today_str() -> str:
    now = _time.time()
    if now >= _today_cache[0]:  # type: ignore[operator]
        today = _dt.datetime.fromtimestamp(now, CST)
        midnight = _dt.datetime(today.year, today.month, today.day, tzinfo=CST)
        _today_cache[0] = (midnight + _dt.timedelta(days=1)).timestamp()
        _today_cache[1] = today.strftime("%Y%m%d")
    return _today_cache[1]  # type: ignore[return-value]


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _check_birth_date(body: str) -> None:
    ymd = body[6:14]
    mmdd = ymd[4:]
    ok = ("18000101" <= ymd <= _today_str() and mmdd in _MONTH_DAYS
          and (mmdd != "0229" or _is_leap(int(ymd[:4]))))
    if not ok:
        raise IdentifierError(
            "bad_birth_date",
            f"characters 7-14 ({body[6:14]}) are not a birth date from 1800-01-01 to today",
            form="ric")


def validate_ric(s: str) -> str:
    """Validate a normalised ID number (15 or 18 digits); return the 18-digit form."""
    n = len(s)
    if n == 15:
        if not s.isdigit() or not s.isascii():
            bad = next(c for c in s if c not in _DIGITS)
            raise IdentifierError("bad_character",
                                  f"a 15-digit ID number has only digits; found {bad!r}",
                                  form="ric")
        body = s[:6] + "19" + s[6:]
        _check_birth_date(body)
        return body + ric_check_char(body)
    if n != 18:
        raise IdentifierError("bad_length",
                              f"an ID number has 18 (or 15) characters, not {n}", form="ric")
    if not (s.isascii() and s[:17].isdigit() and (s[17] == "X" or s[17].isdigit())):
        wrong = next((c for c in s[:17] if c not in _DIGITS), None)
        if wrong is None:
            msg = f"the last character of an ID number is a digit or X, not {s[17]!r}"
        else:
            msg = f"characters 1-17 of an ID number are digits; found {wrong!r}"
        raise IdentifierError("bad_character", msg, form="ric")
    _check_birth_date(s)
    expected = ric_check_char(s)
    if s[17] != expected:
        raise IdentifierError("bad_check_character",
                              f"check character is {s[17]!r}, expected {expected!r}",
                              expected=expected, form="ric")
    return s


def validate_org_code(s: str) -> str:
    """Validate a normalised 9-character 组织机构代码."""
    if len(s) != 9:
        raise IdentifierError("bad_length",
                              f"an organisation code has 9 characters, not {len(s)}",
                              form="org_code")
    bad = next((c for c in s[:8] if c not in _ORG_BODY_SET), None)
    if bad is None and s[8] not in _DIGITS and s[8] != "X":
        bad = s[8]
    if bad is not None:
        raise IdentifierError("bad_character",
                              f"{bad!r} is not allowed in an organisation code", form="org_code")
    expected = org_code_check_char(s)
    if s[8] != expected:
        raise IdentifierError("bad_org_code_check",
                              f"organisation code check character is {s[8]!r}, "
                              f"expected {expected!r}", expected=expected, form="org_code")
    return s


def validate_uscc(s: str) -> str:
    """Validate a normalised 18-character USCC: alphabet, organisation code, check."""
    if len(s) != 18:
        raise IdentifierError("bad_length",
                              f"a USCC has 18 characters, not {len(s)}", form="uscc")
    if not _USCC_SET.issuperset(s):
        bad = next(c for c in s if c not in _USCC_SET)
        raise IdentifierError("bad_character",
                              f"{bad!r} is not in the USCC alphabet {USCC_ALPHABET}",
                              form="uscc")
    org_expected = org_code_check_char(s[8:16])
    if s[16] != org_expected:
        raise IdentifierError("bad_org_code_check",
                              f"character 17 (organisation code check) is {s[16]!r}, "
                              f"expected {org_expected!r}", expected=org_expected, form="uscc")
    expected = uscc_check_char(s)
    if s[17] != expected:
        raise IdentifierError("bad_check_character",
                              f"check character is {s[17]!r}, expected {expected!r}",
                              expected=expected, form="uscc")
    return s


def parse(raw: str, type: str | None = None) -> Identifier:
    """Normalise and validate ``raw`` as SPEC §2 says (aliases are resolved by the caller).

    ``type`` is ``"org"``, ``"person"`` or ``None`` (decide by form).
    """
    if type is not None and type not in ("org", "person"):
        raise IdentifierError("unknown_type", f"type must be 'org' or 'person', not {type!r}")
    return parse_normalized(normalize(raw), type)


def parse_normalized(s: str, type: str | None = None) -> Identifier:
    """``parse`` for a string already through ``normalize`` (and a checked ``type``)."""
    n = len(s)
    if type == "person":
        return Identifier("ric", validate_ric(s))
    if type == "org":
        if n == 9:
            return Identifier("org_code", validate_org_code(s))
        if n != 18:
            raise IdentifierError("bad_length",
                                  f"an organisation is identified by an 18-character USCC "
                                  f"or a 9-character organisation code, not {n} characters",
                                  form="uscc")
        return Identifier("uscc", validate_uscc(s))
    if n == 18:
        if s.isascii() and s[:17].isdigit() and (s[17] == "X" or s[17].isdigit()):
            try:
                return Identifier("ric", validate_ric(s))
            except IdentifierError as as_person:
                try:
                    return Identifier("uscc", validate_uscc(s))
                except IdentifierError:
                    raise as_person from None
        return Identifier("uscc", validate_uscc(s))
    if n == 15:
        return Identifier("ric", validate_ric(s))
    if n == 9:
        return Identifier("org_code", validate_org_code(s))
    raise IdentifierError("bad_length",
                          f"an identifier has 18 characters (USCC or ID number), 15 "
                          f"(first-generation ID number) or 9 (organisation code), not {n}")


def is_valid_ric(s: str) -> bool:
    try:
        return validate_ric(s) == s
    except IdentifierError:
        return False


def is_valid_uscc(s: str) -> bool:
    try:
        validate_uscc(s)
        return True
    except IdentifierError:
        return False


def mask_ric(s: str) -> str:
    """Mask characters 11-14 of an 18-digit ID number (public tier)."""
    return s[:10] + "****" + s[14:]
