"""SPEC §2 (Identifiers), tested exactly and independently of ``indexer.identifiers``.

The module computes check characters with an ``int(text, base)`` trick; here every rule is
re-written naively from the text of SPEC §2 (literal weight lists, literal alphabets) and
Hypothesis compares the two.  python-stdnum is used as a cross-check with its own published
test vectors; where SPEC §2 says stdnum is wrong, the disagreement is pinned explicitly.
"""

from __future__ import annotations

import datetime as dt
import operator
import types
import unicodedata

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from indexer import identifiers as ident
from indexer.identifiers import Identifier, IdentifierError, mask_ric, normalize, parse

stdnum_uscc = pytest.importorskip("stdnum.cn.uscc")
stdnum_ric = pytest.importorskip("stdnum.cn.ric")

# --------------------------------------------------------------------------------------------
# Naive reference, written from the text of SPEC §2
# --------------------------------------------------------------------------------------------

DIGITS = "0123456789"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # values 0-30 in this order
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # digits 0-9, letters A=10 ... Z=35
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RIC_REMAINDER_TO_CHECK = "10X98765432"  # remainder 0-10 of the sum mod 11
CST = dt.timezone(dt.timedelta(hours=8))
EARLIEST_BIRTH = dt.date(1800, 1, 1)

REASONS = frozenset({"bad_length", "bad_character", "bad_check_character", "bad_birth_date",
                     "bad_org_code_check", "unknown_type"})
RIC_REASONS = frozenset({"bad_length", "bad_character", "bad_check_character",
                         "bad_birth_date"})
USCC_REASONS = frozenset({"bad_length", "bad_character", "bad_check_character",
                          "bad_org_code_check"})

assert len(USCC_ALPHABET) == 31 and len(USCC_WEIGHTS) == 17
assert len(ORG_WEIGHTS) == 8 and len(RIC_WEIGHTS) == 17 and len(ORG_CHARS) == 36
assert not set("IOSVZ") & set(USCC_ALPHABET)


def naive_uscc_check(body: str) -> str:
    total = 0
    for char, weight in zip(body[:17], USCC_WEIGHTS, strict=True):
        total += USCC_ALPHABET.index(char) * weight
    return USCC_ALPHABET[(31 - total % 31) % 31]


def naive_org_check(body: str) -> str:
    total = 0
    for char, weight in zip(body[:8], ORG_WEIGHTS, strict=True):
        total += ORG_CHARS.index(char) * weight
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def naive_ric_check(body: str) -> str:
    total = 0
    for char, weight in zip(body[:17], RIC_WEIGHTS, strict=True):
        total += int(char) * weight
    return RIC_REMAINDER_TO_CHECK[total % 11]


def today_cst() -> dt.date:
    return dt.datetime.now(CST).date()


def naive_birth_ok(ymd: str, today: dt.date | None = None) -> bool:
    """Characters 7-14: a calendar date from 1800-01-01 to today (China Standard Time)."""
    if len(ymd) != 8 or not all(c in DIGITS for c in ymd):
        return False
    try:
        born = dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        return False
    return EARLIEST_BIRTH <= born <= (today or today_cst())


def naive_is_ric(s: str) -> bool:
    return (len(s) == 18 and all(c in DIGITS for c in s[:17]) and s[17] in DIGITS + "X"
            and naive_birth_ok(s[6:14]) and s[17] == naive_ric_check(s))


def naive_is_uscc(s: str) -> bool:
    return (len(s) == 18 and all(c in USCC_ALPHABET for c in s)
            and s[16] == naive_org_check(s[8:16]) and s[17] == naive_uscc_check(s))


def naive_is_org_code(s: str) -> bool:
    return (len(s) == 9 and all(c in ORG_CHARS for c in s[:8]) and s[8] in DIGITS + "X"
            and s[8] == naive_org_check(s))


def make_ric(region: str = "110105", ymd: str = "19491231", seq: str = "002") -> str:
    body = region + ymd + seq
    return body + naive_ric_check(body)


def make_uscc(head: str, org_body: str) -> str:
    body = head + org_body + naive_org_check(org_body)
    return body + naive_uscc_check(body)


def widen(ric15: str) -> str:
    body = ric15[:6] + "19" + ric15[6:]
    return body + naive_ric_check(body)


def fullwidth(s: str) -> str:
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c
                   for c in s)


def reason(raw: str, type: str | None = None) -> IdentifierError:
    with pytest.raises(IdentifierError) as info:
        parse(raw, type)
    assert info.value.code in REASONS
    return info.value


# Naive normaliser and classifier: exact for the "near identifier" characters used below.
BLANKS = " \t\n\r\f\v\u3000\u00a0\u2002\u2003\u2009\u202f\u205f"
HYPHENS = "-\uff0d\u2010\u2011\u2012\u2013\u2014\u2212\ufe63"


def naive_normalize(raw: str) -> str:
    folded = unicodedata.normalize("NFKC", raw)
    return "".join(c for c in folded if not c.isspace() and c not in HYPHENS).upper()


def ric_failures(s: str) -> tuple[set[str], str | None]:
    """Reasons a normalised string fails as an ID number, and the right check character."""
    if len(s) == 15:
        if not all(c in DIGITS for c in s):
            return {"bad_character"}, None
        return (set() if naive_birth_ok("19" + s[6:12]) else {"bad_birth_date"}), None
    if len(s) != 18:
        return {"bad_length"}, None
    if not (all(c in DIGITS for c in s[:17]) and s[17] in DIGITS + "X"):
        return {"bad_character"}, None
    reasons, expected = set(), naive_ric_check(s)
    if not naive_birth_ok(s[6:14]):
        reasons.add("bad_birth_date")
    if s[17] != expected:
        reasons.add("bad_check_character")
    return reasons, expected


def uscc_failures(s: str) -> tuple[set[str], str | None]:
    if len(s) != 18:
        return {"bad_length"}, None
    if not all(c in USCC_ALPHABET for c in s):
        return {"bad_character"}, None
    reasons, expected = set(), naive_uscc_check(s)
    if s[16] != naive_org_check(s[8:16]):
        reasons.add("bad_org_code_check")
    if s[17] != expected:
        reasons.add("bad_check_character")
    return reasons, expected


def org_code_failures(s: str) -> tuple[set[str], str | None]:
    if len(s) != 9:
        return {"bad_length"}, None
    if not (all(c in ORG_CHARS for c in s[:8]) and s[8] in DIGITS + "X"):
        return {"bad_character"}, None
    return (set() if s[8] == naive_org_check(s) else {"bad_org_code_check"}), None


def naive_parse(raw: str, type: str | None = None
                ) -> Identifier | tuple[set[str], str | None, str | None]:
    """SPEC §2 as written: an Identifier, or (acceptable reasons, form judged, expected)."""
    if type not in (None, "org", "person"):
        return {"unknown_type"}, None, None
    s = naive_normalize(raw)
    if type == "person":
        reasons, expected = ric_failures(s)
        if not reasons:
            return Identifier("ric", widen(s) if len(s) == 15 else s)
        return reasons, "ric", expected
    if type == "org" or len(s) == 9:
        if len(s) == 9:
            reasons, expected = org_code_failures(s)
            return (Identifier("org_code", s) if not reasons
                    else (reasons, "org_code", expected))
        if len(s) != 18:
            return {"bad_length"}, None, None
        reasons, expected = uscc_failures(s)
        return Identifier("uscc", s) if not reasons else (reasons, "uscc", expected)
    if len(s) == 15:
        reasons, expected = ric_failures(s)
        return Identifier("ric", widen(s)) if not reasons else (reasons, "ric", expected)
    if len(s) != 18:
        return {"bad_length"}, None, None
    if naive_is_ric(s):
        return Identifier("ric", s)
    if naive_is_uscc(s):
        return Identifier("uscc", s)
    if all(c in DIGITS for c in s[:17]) and s[17] in DIGITS + "X":  # resembles an ID number
        reasons, expected = ric_failures(s)
        return reasons, "ric", expected
    reasons, expected = uscc_failures(s)
    return reasons, "uscc", expected


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

def _text(alphabet: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=size, max_size=size)


def _letter_first(size: int) -> st.SearchStrategy[str]:
    """Starts with a registration-authority letter (A 编制, N 农业, Y 其他)."""
    return st.builds(operator.add, st.sampled_from("ANY"), _text(USCC_ALPHABET, size - 1))


uscc_bodies = st.one_of(_text(USCC_ALPHABET, 17), _letter_first(17))
org_bodies = st.one_of(
    _text(ORG_CHARS, 8),
    st.builds(lambda s, i: s[:i] + "Z" + s[i:], _text(ORG_CHARS, 7), st.integers(0, 7)),
)
ric_bodies = _text(DIGITS, 17)
heads = st.one_of(_text(DIGITS, 8), _text(USCC_ALPHABET, 8), _letter_first(8))
uscc_org_bodies = st.one_of(_text(DIGITS, 8), _text(USCC_ALPHABET, 8))
valid_usccs = st.builds(make_uscc, heads, uscc_org_bodies)
digit_head_usccs = st.builds(make_uscc, _text(DIGITS, 8), uscc_org_bodies)
letter_first_usccs = st.builds(make_uscc, _letter_first(8), uscc_org_bodies)
birth_dates = st.dates(min_value=EARLIEST_BIRTH, max_value=today_cst()).map(
    lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}")
valid_rics = st.builds(make_ric, _text(DIGITS, 6), birth_dates, _text(DIGITS, 3))
valid_rics15 = st.builds(
    lambda region, d, seq: region + f"{d.year % 100:02d}{d.month:02d}{d.day:02d}" + seq,
    _text(DIGITS, 6), st.dates(dt.date(1900, 1, 1), dt.date(1999, 12, 31)), _text(DIGITS, 3))
valid_org_codes = org_bodies.map(lambda body: body + naive_org_check(body))
valid_codes = st.one_of(valid_usccs, valid_rics, valid_rics15, valid_org_codes)
types_ = st.sampled_from([None, "org", "person"])
# One character anywhere: alphabet, letters the USCC alphabet lacks, lower case, full width,
# blanks, hyphens, punctuation, or any code point at all.
replacement_chars = st.one_of(
    st.sampled_from(ORG_CHARS + "abcdefghijklmnopqrstuvwxyz*#./_+" + BLANKS + HYPHENS),
    st.sampled_from(ORG_CHARS).map(fullwidth),
    st.characters(),
)


@st.composite
def decorated(draw: st.DrawFn, code: str) -> str:
    """``code`` as a person might type it: blanks, hyphens, lower case, full-width forms."""
    out = [draw(st.sampled_from(["", " ", "\u3000", "\t", " \n"]))]
    for char in code:
        char = char.lower() if draw(st.booleans()) else char
        char = fullwidth(char) if draw(st.booleans()) else char
        out.append(char)
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(BLANKS + HYPHENS)))
    out.append(draw(st.sampled_from(["", " ", "\u3000", "\r\n"])))
    return "".join(out)


@st.composite
def near_identifiers(draw: st.DrawFn) -> str:
    """Valid codes, one-character changes of them, and random strings, all decorated."""
    code = draw(st.one_of(valid_codes, st.text(ORG_CHARS, max_size=20),
                          _text(DIGITS, 18), _text(DIGITS, 15), _text(USCC_ALPHABET, 18)))
    if code and draw(st.booleans()):
        i = draw(st.integers(0, len(code) - 1))
        code = code[:i] + draw(st.sampled_from(ORG_CHARS + "*")) + code[i + 1:]
    return draw(decorated(code))


SETTINGS = settings(max_examples=300, deadline=None)


# --------------------------------------------------------------------------------------------
# The naive reference itself, against SPEC §2's worked examples
# --------------------------------------------------------------------------------------------

def test_naive_reference_reproduces_the_standard_examples() -> None:
    assert naive_org_check("M000100Y") == "4"
    assert naive_uscc_check("91350100M000100Y4") == "3"
    assert naive_ric_check("11010519491231002") == "X"
    assert widen("360426910101007") == "360426199101010071"
    # "a sum ≡ 0 gives 0" / "10 → X, 11 → 0"
    assert naive_uscc_check("0" * 17) == "0"
    assert naive_org_check("00000000") == "0"
    assert naive_org_check("00000001") == "9"  # 11 - 2
    assert [naive_org_check("0000000" + c) for c in "0123456789ABCDEF"].count("X") >= 1


# --------------------------------------------------------------------------------------------
# Check characters: module vs naive reference
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(uscc_bodies)
@example("A" * 17)
@example("N1110000600037341")
@example("Y1110000600037341")
@example("Y" * 17)
@example("0" * 17)
def test_uscc_check_char_matches_naive(body: str) -> None:
    assert ident.uscc_check_char(body) == naive_uscc_check(body)
    assert stdnum_uscc.calc_check_digit(body) == naive_uscc_check(body)  # same formula


@SETTINGS
@given(org_bodies)
@example("Z" * 8)
@example("ZZZZZZZ0")
@example("0000000Z")
@example("A0000000")
@example("Y" * 8)
@example("M000100Y")
def test_org_code_check_char_matches_naive(body: str) -> None:
    assert ident.org_code_check_char(body) == naive_org_check(body)


@SETTINGS
@given(ric_bodies)
@example("0" * 17)
@example("9" * 17)
@example("11010519491231002")
def test_ric_check_char_matches_naive(body: str) -> None:
    assert ident.ric_check_char(body) == naive_ric_check(body)
    # stdnum's calc_check_digit takes the number with a check position appended.
    assert stdnum_ric.calc_check_digit(body + "0") == naive_ric_check(body)


@pytest.mark.parametrize("remainder, check", list(enumerate("10X98765432")))
def test_ric_every_remainder_maps_as_specified(remainder: int, check: str) -> None:
    # body "0"*16 + d has sum 2d (weight 2 on digit 17); find a body for each remainder.
    body = next(b for b in (f"{n:017d}" for n in range(200))
                if sum(int(c) * w for c, w in zip(b, RIC_WEIGHTS)) % 11 == remainder)
    assert ident.ric_check_char(body) == check


@pytest.mark.parametrize("target", list(USCC_ALPHABET))
def test_uscc_every_check_character_is_reachable(target: str) -> None:
    body = next(b for b in ("0" * 16 + c for c in USCC_ALPHABET) if naive_uscc_check(b) == target)
    assert ident.uscc_check_char(body) == target


# --------------------------------------------------------------------------------------------
# Standard examples (SPEC §2) and mask
# --------------------------------------------------------------------------------------------

def test_standard_uscc_example() -> None:
    assert parse("91350100M000100Y43") == Identifier("uscc", "91350100M000100Y43")
    assert parse("91350100M000100Y43", "org") == Identifier("uscc", "91350100M000100Y43")
    assert parse("91350100M000100Y43").type == "org"
    assert ident.validate_uscc("91350100M000100Y43") == "91350100M000100Y43"


def test_standard_ric_example() -> None:
    assert parse("11010519491231002X") == Identifier("ric", "11010519491231002X")
    assert parse("11010519491231002X", "person") == Identifier("ric", "11010519491231002X")
    assert parse("11010519491231002x") == Identifier("ric", "11010519491231002X")
    assert parse("11010519491231002X").type == "person"
    assert ident.validate_ric("11010519491231002X") == "11010519491231002X"


def test_standard_15_digit_example_is_widened() -> None:
    assert parse("360426910101007") == Identifier("ric", "360426199101010071")
    assert parse("360426910101007", "person") == Identifier("ric", "360426199101010071")
    assert ident.validate_ric("360426910101007") == "360426199101010071"


def test_organisation_code_of_the_standard_example() -> None:
    for raw in ("M000100Y-4", "M000100Y4", "m000100y-4", " M000100Y 4 ", fullwidth("M000100Y-4")):
        assert parse(raw) == Identifier("org_code", "M000100Y4"), raw
        assert parse(raw, "org") == Identifier("org_code", "M000100Y4"), raw
    assert parse("91350100M000100Y43").value[8:17] == "M000100Y4"


def test_mask_ric() -> None:
    assert mask_ric("11010519491231002X") == "1101051949****002X"


@SETTINGS
@given(valid_rics)
def test_mask_ric_hides_characters_11_to_14_only(code: str) -> None:
    masked = mask_ric(code)
    assert len(masked) == 18
    assert masked[:10] == code[:10] and masked[10:14] == "****" and masked[14:] == code[14:]


# --------------------------------------------------------------------------------------------
# python-stdnum's published test vectors
# --------------------------------------------------------------------------------------------

# tests/test_cn_uscc.doctest of python-stdnum: "found online and should all be valid numbers".
STDNUM_VALID_USCCS = (
    "121200004013590816", "91110000600037341L", "91110000710926094P", "91120224064012553U",
    "911522010783710635", "91152201078371135X", "911522010783762860", "91152201078376307G",
    "91152201078377449P", "9115220107837757XE", "9115220107837941X1", "91152201078382010M",
    "911522010783887624", "911522010783897302", "911522010783898533", "91152201078389925U",
    "9115220107839138X8", "911522010783917502", "91152201078391769Y", "91152201078394644D",
    "91152201078395081D", "91152201078395188Q", "91152201078397730B", "91152201082151522J",
    "91310000631696382C", "91310000797046224D", "91310112087994932F", "913101127033980359",
    "913101145852519045", "913101153325803473", "91310115MA1K3BTP2B", "91310116052958608G",
    "91310116076409427L", "913101203509708598", "9131012056010553X5", "91320214745555318W",
    "913205056082348768", "913304007429141869", "91340600MA2PBM9HXD", "91340600MA2PBMA74B",
    "91340600MA2PBMBL5H", "91340600MA2PBMDH5R", "91340600MA2PBMQB9E", "91340600MA2PBN188W",
    "91340600MA2PBN831R", "91340600MA2PBNE723", "91340600MA2PBNR24J", "91340600MA2PBP2120",
    "91340600MA2PBP6A1W", "91340600MA2PBP6D6F", "91340600MA2PBPAG69", "91340600MA2PENCC7K",
    "91340600MA2PENWF9P", "91340600MA2PEP3Y54", "91340600MA2PEP518T", "91340600MA2PEP7F5B",
    "91340600MA2PEPM918", "91340600MA2PERLJ2D", "91340600MA2UJY987H", "91340600MA2UJYG49B",
    "91340602MA2UJY0D0T", "91340602MA2UJY3J9W", "91340602MA2UJYD90G", "91340603MA2UJXXCXF",
    "91340603MA2UJY1D7L", "91340603MA2UJYBQ7Q", "91340603MA2UJYN78Q", "91340603MA2UJYNU67",
    "91340603MA2UJYUN35", "91340604MA2PBQBH3P", "91340604MA2PEL1X3M", "91340621MA2PBNXR7P",
    "91340621MA2PBPDT1J", "91340621MA2PBPLU08", "91340621MA2PBPM015", "91340621MA2PBPM36P",
    "91340621MA2PBPM608", "91340621MA2PBPM870", "91340621MA2PELDF2U", "91340621MA2PEM704P",
    "91340621MA2PEMUHX8", "91340621MA2PEMWN1C", "91340621MA2PEN6Q3Y", "91340621MA2PEN8W5L",
    "91340621MA2PEP2U6U", "91340621MA2PEPJB9F", "913505007821784439", "91371082775260043P",
    "914112810713741814", "91420684MA4927PJ7B", "91440300568520498A", "9144030071526726XG",
    "9144060573144633XL", "91442000696462712R", "91620100719023721L", "91620105224521729E",
    "91620105325333735M", "91620105551270533Y", "91620105556273987U", "9162010555628132X1",
    "91620105556284969Y", "91620105556287545F", "91620105566408785F", "91620105571627966C",
    "91620105571630591E", "9162010558590643X0", "91620105585923360D", "91620105660017457X",
    "91620105665404165K", "91620105670820315R", "9162010567592034XQ", "91620105686055670F",
    "91620105686057422K", "9162010569564942X9", "91620105710219971E", "91620105719099574H",
    "91620105720233128P", "91620105750906995R", "91620105750935948X", "91620105756558274W",
    "91620105756580826D", "91620105767707650L", "91620105767728304H", "91620105773422168Y",
    "91620105784023285J", "91620105789620900B", "91620105789634843P", "91620105794891756D",
    "91620105L015101280", "91620105MA71T4YW8Q", "91620105MA73NBBLXE", "92340602MA2PBMEM24",
    "92340602MA2PBMG99Q", "92340602MA2PBMHF45", "92340602MA2PBQAH7E", "92340602MA2PEL3T3X",
    "92340602MA2PEL453X", "92340602MA2PEL605A", "92340602MA2PEL7F4C", "92340602MA2PEL8AXA",
    "92340602MA2PEP745R", "92340602MA2UK2TH6F", "92340602MA2UK33127", "92340603MA2PBMCG0U",
    "92340603MA2PBMD304", "92340603MA2PBMJB45", "92340603MA2PBMN509", "92340603MA2PBMQL04",
    "92340603MA2PBMUF7M", "92340603MA2PBMYMX1", "92340603MA2PBMYN81", "92340603MA2PBN161D",
    "92340603MA2PBN17X5", "92340603MA2PBN2W0N", "92340603MA2PBN508K", "92340603MA2PBNDM9R",
    "92340603MA2PBNJA9T", "92340603MA2PBNK461", "92340603MA2PBNLR0R", "92340603MA2PBPB95W",
    "92340603MA2PBQ16XJ", "92340603MA2PBQ653D", "92340603MA2PBQ7J4K", "92340603MA2PBQ7X9E",
    "92340603MA2PBQA912", "92340603MA2PBQBC2X", "92340603MA2PBQFT7J", "92340603MA2PBQGB6M",
    "92340603MA2PBQHB2Y", "92340603MA2PBQHD9N", "92340603MA2PBQUC3U", "92340603MA2PBQX04X",
    "92340603MA2PBQY862", "92340603MA2PEL322G", "92340603MA2PEL613K", "92340603MA2PELAF3Q",
    "92340603MA2PELBT4W", "92340603MA2PELD18T", "92340603MA2PELE65C", "92340603MA2PELFF5B",
    "92340603MA2PELHL72", "92340603MA2PELKB4T", "92340603MA2PELQK6M", "92340603MA2PELUD4A",
    "92340603MA2PEM480D", "92340603MA2PEN731K", "92340603MA2PEN8A5W", "92340603MA2PEN9F2E",
    "92340603MA2PENAP06", "92340603MA2PENCQ1M", "92340603MA2PEP42XF", "92340603MA2PEPBN6L",
    "92340603MA2PEPE82T", "92340603MA2PEPM83M", "92340603MA2UJXYJ3P", "92340603MA2UJY0W68",
    "92340603MA2UJY2M7F", "92340603MA2UJY9J74", "92340603MA2UJYN358", "92340603MA2UJYUM57",
    "92340603MA2UK0CN1M", "92340603MA2UK0E06R", "92340603MA2UK0KQ72", "92340603MA2UK0ME1G",
    "92340603MA2UK0N546", "92340603MA2UK0Q026", "92340603MA2UK0QX24", "92340603MA2UK0T79E",
    "92340603MA2UK1NC4L", "92340603MA2UK1PX9B", "92340603MA2UK1TD00", "92340603MA2UK1UE56",
    "92340603MA2UK2002C", "92340603MA2UK215XT", "92340603MA2UK23F43", "92340603MA2UK26D7B",
    "92340603MA2UK27Y5C", "92340603MA2UK28G4G", "92340603MA2UK2C171", "92340603MA2UK2ECXU",
    "92340603MA2UK2P79U", "92340603MA2UK2QAXJ", "92340603MA2UK2QT5Q", "92340603MA2UK2R393",
    "92340603MA2UK2TA90", "92340603MA2UK2TK0D", "92340603MA2UK2UE8N", "92340603MA2UK2WX6M",
    "92340603MA2UK2XD94", "92340603MA2UK2Y09C", "92340603MA2UK2YX9A", "92340603MA2UK31A3N",
    "92340603MA2UK32C6P", "92340603MA2UK37U5G", "92340603MA2UK3CP6U", "92340603MA2UK3CW3P",
    "92340603MA2UK3D673", "92340603MA2UK3DB8B", "92340603MA2UK3DF0N", "92340603MA2UK3DT5H",
    "92340604MA2PBME53K", "92340604MA2PBMQK2P", "92340604MA2PBMXF6C", "92340604MA2PBN5675",
    "92340604MA2PBNDT64", "92340604MA2PBNKM3P", "92340604MA2PBNKR4Y", "92340604MA2PBNP21L",
    "92340604MA2PBNQNXM", "92340604MA2PBNR83C", "92340604MA2PBNUL9N", "92340604MA2PBNWH99",
    "92340604MA2PBNXH5J", "92340604MA2PBP1U3Y", "92340604MA2PBP7U1T", "92340604MA2PBPHC8R",
    "92340604MA2PBPXJ71", "92340604MA2PELFQ53", "92340604MA2PEM4L7X", "92340604MA2PEM5Q4E",
    "92340604MA2PEMEE34", "92340604MA2PENA300", "92340604MA2UJYCE59", "92340604MA2UJYPN1K",
    "92340604MA2UK0015N", "92340604MA2UK03G7D", "92340604MA2UK04L4X", "92340604MA2UK07529",
    "92340604MA2UK07M1N", "92340604MA2UK08Y65", "92340604MA2UK0GC73", "92340604MA2UK1GD8E",
    "92340604MA2UK2B104", "92340621MA2PBKRXXG", "92340621MA2PBL318W", "92340621MA2PBLW63G",
    "92340621MA2PBLWF76", "92340621MA2PBLWK8D", "92340621MA2PBLWT1Y", "92340621MA2PBLX27E",
    "92340621MA2PBM6286", "92340621MA2PBMA318", "92340621MA2PBMKK45", "92340621MA2PBMNMXM",
    "92340621MA2PBMPF5T", "92340621MA2PBMQD5E", "92340621MA2PBMUH3D", "92340621MA2PBN0KXX",
    "92340621MA2PBN145R", "92340621MA2PBN1962", "92340621MA2PBN1H1T", "92340621MA2PBN4YX0",
    "92340621MA2PBN559X", "92340621MA2PBNFH07", "92340621MA2PBNGC6A", "92340621MA2PBNJ232",
    "92340621MA2PBNTY9Y", "92340621MA2PBP431L", "92340621MA2PBP4A9L", "92340621MA2PBP4T4M",
    "92340621MA2PBQ2QXW", "92340621MA2PELD34J", "92340621MA2PELFR3H", "92340621MA2UJRKE7N",
    "92340621MA2UJRL762", "92340621MA2UJT9WXP", "92340621MA2UJTCK0M", "92340621MA2UJTM785",
    "92340621MA2UJTP42T", "92340621MA2UJTQ22E", "92340621MA2UJTT13U", "92340621MA2UJTTF8R",
    "92340621MA2UJTY74U", "92340621MA2UJUR13D", "92340621MA2UJUUC21", "92340621MA2UJUW4X2",
    "92340621MA2UJW3P2B", "92340621MA2UJW4UXQ", "92340621MA2UJW690P", "92340621MA2UJW703D",
    "92340621MA2UJW8C8Y", "92340621MA2UJW9L8W", "92340621MA2UJWA961", "92340621MA2UJWAE79",
    "92340621MA2UJWBN77", "92340621MA2UJWCT2H", "92340621MA2UJWE83D", "92340621MA2UJWEE2G",
    "92340621MA2UJWFB49", "92340621MA2UJWG6X7", "92340621MA2UJWGB0J", "92340621MA2UJWH58T",
    "92340621MA2UJWQ634", "92340621MA2UJWTX37", "92340621MA2UJWYPX8", "92340621MA2UJX6C8T",
    "92340621MA2UJX968M", "92340621MA2UJXB52D", "92340621MA2UJXEU6H", "92340621MA2UJXF159",
    "92340621MA2UJXGY1G", "92340621MA2UJXLD1M", "92340621MA2UJY477E", "92340621MA2UJYE11E",
    "92340621MA2UJYG57G", "92340621MA2UJYJPXJ", "92340621MA2UJYLF0U", "92340621MA2UJYP62R",
    "92340621MA2UK02XXW", "92340621MA2UK08G9K", "92340621MA2UK0DA11", "92340621MA2UK0DJ5M",
    "92340621MA2UK0G256", "92340621MA2UK0GD5H", "92340621MA2UK0J08Q", "92340621MA2UK0JH77",
    "92340621MA2UK0JX8N", "92340621MA2UK0KR5Y", "92340621MA2UK1229A", "92340621MA2UK14Q89",
    "92340621MA2UK14T2Q", "92340621MA2UK1JY92", "92340621MA2UK1L38E", "92340621MA2UK1MK35",
    "92340621MA2UK1MN8P", "92340621MA2UK1PRX7", "92340621MA2UK1W97Y", "92340621MA2UK22G6N",
    "92340621MA2UK25H3F", "92340621MA2UK2BU8B", "92340621MA2UK2CD59", "92340621MA2UK2EP62",
    "92340621MA2UK2GJXF", "92340621MA2UK2Q24Y", "92340621MA2UK2XE71", "92340621MA2UK2XX21",
    "92340621MA2UK30C35", "92340621MA2UK31K58", "92340621MA2UK338XJ", "92340621MA2UK33Y2M",
    "92340621MA2UK3C369", "92340621MA2UK3CE6L", "92340621MA2UK3PJXE",
)


def test_stdnum_published_usccs_are_valid_for_both() -> None:
    assert len(STDNUM_VALID_USCCS) == 383
    assert [v for v in STDNUM_VALID_USCCS if not naive_is_uscc(v)] == []
    assert [v for v in STDNUM_VALID_USCCS if not stdnum_uscc.is_valid(v)] == []
    wrong = []
    for v in STDNUM_VALID_USCCS:
        expected_form = "ric" if naive_is_ric(v) else "uscc"
        if parse(v) != Identifier(expected_form, v) or parse(v, "org") != Identifier("uscc", v):
            wrong.append(v)
    assert wrong == []


def test_stdnum_published_usccs_normalised() -> None:
    # stdnum: validate('91 110000 600037341L') and format('9 1 110000 600037341L')
    assert parse("91 110000 600037341L") == Identifier("uscc", "91110000600037341L")
    assert parse("9 1 110000 600037341L") == Identifier("uscc", "91110000600037341L")
    assert stdnum_uscc.compact("91 110000 600037341L") == normalize("91 110000 600037341L")


def test_stdnum_published_invalid_usccs() -> None:
    # '12345' InvalidLength
    assert reason("12345").code == "bad_length"
    assert reason("12345", "org").code == "bad_length"
    # '9111000060003IOZSV' InvalidFormat: I, O, Z, S, V are not in the alphabet
    err = reason("9111000060003IOZSV")
    assert (err.code, err.form) == ("bad_character", "uscc")
    # '91110000600037341N' InvalidChecksum: the right check character is L
    err = reason("91110000600037341N")
    assert (err.code, err.expected, err.form) == ("bad_check_character", "L", "uscc")
    assert not stdnum_uscc.is_valid("91110000600037341N")


def test_stdnum_rejects_letter_first_format_we_judge_by_check_character() -> None:
    # stdnum: validate('A1110000600037341L') is InvalidFormat. Under SPEC §2 'A' is a valid
    # first character, so it is judged by its check character (K, not L).
    assert not stdnum_uscc.is_valid("A1110000600037341L")
    err = reason("A1110000600037341L")
    assert (err.code, err.expected, err.form) == ("bad_check_character", "K", "uscc")
    assert parse("A1110000600037341K") == Identifier("uscc", "A1110000600037341K")


# tests/test_cn_ric.doctest and the stdnum.cn.ric docstring.
@pytest.mark.parametrize("raw, value", [
    ("360426199101010071", "360426199101010071"),
    ("44011320141005001x", "44011320141005001X"),
    ("412723199010050012", "412723199010050012"),
    ("110102199101010078", "110102199101010078"),
    ("120110198012010073", "120110198012010073"),
    ("120110199212010072", "120110199212010072"),
])
def test_stdnum_published_valid_rics_agree(raw: str, value: str) -> None:
    assert stdnum_ric.is_valid(raw)
    assert stdnum_ric.compact(raw) == value
    assert parse(raw) == Identifier("ric", value)
    assert parse(raw, "person") == Identifier("ric", value)
    assert naive_is_ric(value)


@pytest.mark.parametrize("raw", [
    "990426199112010074",  # stdnum: unknown birth place code
    "110111198012010078",  # stdnum: county was not registered yet at birth year
    "110201199312010077",  # stdnum: county was deregistered at birth year
])
def test_stdnum_rejects_region_codes_we_accept(raw: str) -> None:
    # SPEC §2: "Do not reject an ID number for its region code."
    assert not stdnum_ric.is_valid(raw)
    assert naive_is_ric(raw)
    assert parse(raw) == Identifier("ric", raw)
    assert parse(raw, "person") == Identifier("ric", raw)


def test_stdnum_published_invalid_rics_agree() -> None:
    # 'T60426199101010078' InvalidFormat
    assert not stdnum_ric.is_valid("T60426199101010078")
    err = reason("T60426199101010078", "person")
    assert (err.code, err.form) == ("bad_character", "ric")
    # Untyped it is not 18 digits, so it is judged as a USCC (T is in the alphabet).
    err = reason("T60426199101010078")
    assert err.form == "uscc" and err.code in USCC_REASONS - {"bad_length", "bad_character"}
    # '360426199113010079' InvalidComponent (month 13)
    assert not stdnum_ric.is_valid("360426199113010079")
    for type_ in (None, "person"):
        err = reason("360426199113010079", type_)
        assert (err.code, err.form) == ("bad_birth_date", "ric")
    # '36042619910102009X' InvalidChecksum
    assert not stdnum_ric.is_valid("36042619910102009X")
    for type_ in (None, "person"):
        err = reason("36042619910102009X", type_)
        assert (err.code, err.form) == ("bad_check_character", "ric")
        assert err.expected == naive_ric_check("36042619910102009X") == "3"


def test_stdnum_has_no_15_digit_form() -> None:
    assert not stdnum_ric.is_valid("360426910101007")
    assert parse("360426910101007") == Identifier("ric", "360426199101010071")


@pytest.mark.parametrize("ymd", ["20990101", "17000101"])
def test_stdnum_accepts_birth_dates_outside_1800_to_today(ymd: str) -> None:
    code = make_ric("110102", ymd, "007")
    assert stdnum_ric.is_valid(code)  # stdnum only checks that it is a calendar date
    err = reason(code)
    assert (err.code, err.form) == ("bad_birth_date", "ric")


# Disagreements SPEC §2 names: letter-first USCCs and the organisation-code check.

@pytest.mark.parametrize("code", ["N11100006000373417", "Y1110000600037341Y",
                                  "A1110000600037341K", make_uscc("N2110000", "MA2PBM9H"),
                                  make_uscc("Y1440300", "MA5FXXXX")])
def test_letter_first_uscc_we_accept_and_stdnum_rejects(code: str) -> None:
    assert naive_is_uscc(code)
    assert parse(code) == Identifier("uscc", code)
    assert parse(code, "org") == Identifier("uscc", code)
    assert not stdnum_uscc.is_valid(code)


def test_wrong_org_code_check_stdnum_accepts_and_we_reject() -> None:
    body = "91110000600037342"  # organisation code 60003734-1 given as ...-2
    code = body + naive_uscc_check(body)
    assert code == "91110000600037342P"
    assert stdnum_uscc.is_valid(code)
    for type_ in (None, "org"):
        err = reason(code, type_)
        assert (err.code, err.form) == ("bad_org_code_check", "uscc")
        assert err.expected in (None, "1")


@SETTINGS
@given(digit_head_usccs)
def test_stdnum_agrees_on_valid_digit_head_usccs(code: str) -> None:
    assert stdnum_uscc.is_valid(code)
    assert parse(code, "org") == Identifier("uscc", code)


@SETTINGS
@given(letter_first_usccs)
def test_stdnum_rejects_valid_letter_first_usccs(code: str) -> None:
    assert parse(code) == Identifier("uscc", code)
    assert not stdnum_uscc.is_valid(code)


@SETTINGS
@given(_text(DIGITS, 8), uscc_org_bodies, st.sampled_from(USCC_ALPHABET))
def test_stdnum_accepts_wrong_org_code_checks_we_reject(head: str, org: str, wrong: str) -> None:
    assume(wrong != naive_org_check(org))
    body = head + org + wrong
    code = body + naive_uscc_check(body)
    assert stdnum_uscc.is_valid(code)
    err = reason(code, "org")
    assert (err.code, err.form) == ("bad_org_code_check", "uscc")
    assert err.expected in (None, naive_org_check(org))


@SETTINGS
@given(_text(DIGITS, 8), _text(USCC_ALPHABET, 10))
def test_stdnum_agrees_where_it_is_right(head: str, rest: str) -> None:
    code = head + rest
    ours = naive_is_uscc(code)
    assert ident.is_valid_uscc(code) == ours
    if ours:
        assert stdnum_uscc.is_valid(code)
    elif code[16] == naive_org_check(code[8:16]):
        assert not stdnum_uscc.is_valid(code)


@SETTINGS
@given(valid_rics)
def test_stdnum_ric_checksum_agrees_on_valid_rics(code: str) -> None:
    assert stdnum_ric.calc_check_digit(code) == code[17]
    assert stdnum_ric.get_birth_date(code) == dt.date(
        int(code[6:10]), int(code[10:12]), int(code[12:14]))


# --------------------------------------------------------------------------------------------
# Reason codes
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, type_", [
    ("", None), ("1", None), ("12345678", None), ("1234567890", None),
    ("36042691010100", None), ("3604269101010071", None), ("9135010 0M000100Y4", None),
    ("91350100M000100Y431", None), ("1" * 40, None),
    ("", "org"), ("9135010M000100Y43", "org"), ("360426910101007", "org"),
    ("11010519491231002X1", "org"),
    ("", "person"), ("M000100Y4", "person"), ("1101051949123100", "person"),
    ("11010519491231002X0", "person"),
])
def test_bad_length(raw: str, type_: str | None) -> None:
    assert reason(raw, type_).code == "bad_length"


@SETTINGS
@given(st.text(USCC_ALPHABET + "-xyz ", max_size=30), types_)
def test_bad_length_is_any_other_length(raw: str, type_: str | None) -> None:
    n = len(naive_normalize(raw))
    allowed = {None: {9, 15, 18}, "org": {9, 18}, "person": {15, 18}}[type_]
    assume(n not in allowed)
    assert reason(raw, type_).code == "bad_length"


@pytest.mark.parametrize("raw, type_, form", [
    ("91350100I000100Y43", None, "uscc"),  # I, O, S, V, Z are not in the USCC alphabet
    ("91350100O000100Y43", "org", "uscc"),
    ("9135010SM000100Y43", None, "uscc"),
    ("91350100M000100V43", None, "uscc"),
    ("Z1350100M000100Y43", None, "uscc"),
    ("91350100M00*100Y43", None, "uscc"),
    ("91350100M000100Y4\u00e9", None, "uscc"),
    ("1101051949123100IX", None, "uscc"),  # not 18 digits: judged as a USCC
    ("11010519491231002Y", "person", "ric"),
    ("1101051949123100AX", "person", "ric"),
    ("91350100M000100Y43", "person", "ric"),
    ("3604269101010A7", None, "ric"),  # 15 characters: a first-generation ID number
    ("36042691010100X", None, "ric"),
    ("3604269101010\u0661\u0660", None, "ric"),  # Arabic-Indic digits are not digits here
    ("M000*00Y4", None, "org_code"),
    ("M000100YA", None, "org_code"),  # org check is 0-9 or X
    ("M000100Y\u00e9", "org", "org_code"),
])
def test_bad_character(raw: str, type_: str | None, form: str) -> None:
    err = reason(raw, type_)
    assert (err.code, err.form) == ("bad_character", form)


@SETTINGS
@given(valid_usccs, st.data())
def test_bad_check_character_uscc_names_the_right_character(code: str, data: st.DataObject
                                                            ) -> None:
    wrong = data.draw(st.sampled_from(USCC_ALPHABET).filter(lambda c: c != code[17]))
    raw = code[:17] + wrong
    err = reason(raw, "org")
    assert (err.code, err.expected, err.form) == ("bad_check_character", code[17], "uscc")
    assert err.expected == naive_uscc_check(raw)
    if not (all(c in DIGITS for c in raw[:17]) and raw[17] in DIGITS + "X"):
        untyped = reason(raw)  # (18 digits would be judged as an ID number)
        assert (untyped.code, untyped.expected) == ("bad_check_character", code[17])


@SETTINGS
@given(valid_rics, st.data())
def test_bad_check_character_ric_names_the_right_character(code: str, data: st.DataObject
                                                           ) -> None:
    wrong = data.draw(st.sampled_from(DIGITS + "X").filter(lambda c: c != code[17]))
    raw = code[:17] + wrong
    err = reason(raw, "person")
    assert (err.code, err.expected, err.form) == ("bad_check_character", code[17], "ric")
    if not naive_is_uscc(raw):
        untyped = reason(raw)
        assert (untyped.code, untyped.expected, untyped.form) == (
            "bad_check_character", code[17], "ric")


def test_bad_check_character_fixed_examples() -> None:
    err = reason("91350100M000100Y44")
    assert (err.code, err.expected, err.form) == ("bad_check_character", "3", "uscc")
    err = reason("110105194912310021")
    assert (err.code, err.expected, err.form) == ("bad_check_character", "X", "ric")
    err = reason("360426199101010070", "person")
    assert (err.code, err.expected) == ("bad_check_character", "1")


def _tomorrow_cst() -> str:
    return (today_cst() + dt.timedelta(days=1)).strftime("%Y%m%d")


BAD_BIRTH_DATES = [
    "19491331",  # month 13
    "19490001",  # month 0
    "19490100",  # day 0
    "19490132",
    "19490230",
    "19490431",
    "19010229",  # not a leap year
    "19000229",  # century, not a leap year
    "21000229",
    "17991231",  # before 1800-01-01
    "00000000",
    "99991231",  # future
]
GOOD_BIRTH_DATES = ["20000229", "19960229", "18040229", "18000101", "19491231", "19991231",
                    "20000101"]


@pytest.mark.parametrize("ymd", BAD_BIRTH_DATES + ["tomorrow"])
def test_bad_birth_date(ymd: str) -> None:
    ymd = _tomorrow_cst() if ymd == "tomorrow" else ymd
    code = make_ric("110105", ymd, "002")  # right check character: only the date is wrong
    err = reason(code, "person")
    assert (err.code, err.form) == ("bad_birth_date", "ric")
    if not naive_is_uscc(code):
        err = reason(code)
        assert (err.code, err.form) == ("bad_birth_date", "ric")


@pytest.mark.parametrize("ymd", GOOD_BIRTH_DATES + ["today"])
def test_good_birth_date(ymd: str) -> None:
    ymd = today_cst().strftime("%Y%m%d") if ymd == "today" else ymd
    code = make_ric("110105", ymd, "002")
    assert parse(code) == Identifier("ric", code)
    assert parse(code, "person") == Identifier("ric", code)


@pytest.mark.parametrize("raw, ok", [
    ("360426000229007", False),  # 1900-02-29: 1900 is not a leap year
    ("360426960229007", True),
    ("360426910230007", False),
    ("360426911301007", False),
    ("360426990101007", True),
    ("360426000101007", True),
])
def test_birth_date_of_15_digit_numbers(raw: str, ok: bool) -> None:
    if ok:
        assert parse(raw) == Identifier("ric", widen(raw))
    else:
        assert (reason(raw).code, reason(raw, "person").code) == ("bad_birth_date",) * 2


@SETTINGS
@given(st.one_of(_text(DIGITS, 8),
                 st.dates(dt.date(1700, 1, 1), dt.date(2200, 12, 31)).map(
                     lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}"),
                 st.builds(lambda y, md: y + md, st.sampled_from(
                     ["1800", "1900", "2000", "2004", "2023", "2024", "2100"]),
                     st.sampled_from(["0229", "0228", "0230", "0131", "0431", "1231", "1301"]))))
def test_birth_date_rule(ymd: str) -> None:
    code = make_ric("110105", ymd, "002")
    if naive_birth_ok(ymd):
        assert parse(code, "person") == Identifier("ric", code)
    else:
        err = reason(code, "person")
        assert (err.code, err.form) == ("bad_birth_date", "ric")


class _Clock:
    def __init__(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """Fake the module's clock (and start with an empty "today" cache)."""
    fake = _Clock(dt.datetime(2030, 6, 30, 12, tzinfo=dt.timezone.utc))
    monkeypatch.setattr(ident, "_time", types.SimpleNamespace(time=fake.time))
    monkeypatch.setattr(ident, "_today_cache", [0.0, ""])
    return fake


def test_today_is_the_date_in_china_standard_time(clock: _Clock) -> None:
    # 2030-06-30 16:30 UTC is 2030-07-01 00:30 in China: born "today" is valid there.
    clock.now = dt.datetime(2030, 6, 30, 16, 30, tzinfo=dt.timezone.utc).timestamp()
    assert parse(make_ric(ymd="20300701")).value == make_ric(ymd="20300701")
    assert reason(make_ric(ymd="20300702")).code == "bad_birth_date"


def test_today_rolls_over_at_midnight_china_standard_time(clock: _Clock) -> None:
    clock.now = dt.datetime(2030, 7, 1, 23, 59, 59, tzinfo=CST).timestamp()
    assert parse(make_ric(ymd="20300701")).form == "ric"
    assert reason(make_ric(ymd="20300702")).code == "bad_birth_date"
    clock.now = dt.datetime(2030, 7, 2, 0, 0, 0, tzinfo=CST).timestamp()
    assert parse(make_ric(ymd="20300702")).form == "ric"
    assert reason(make_ric(ymd="20300703")).code == "bad_birth_date"


@pytest.mark.parametrize("raw", ["12345678-9", "123456789", "M000100Y-5", "M000100YX"])
def test_bad_org_code_check_for_organisation_codes(raw: str) -> None:
    expected = naive_org_check(raw.replace("-", ""))
    for type_ in (None, "org"):
        err = reason(raw, type_)
        assert (err.code, err.form) == ("bad_org_code_check", "org_code")
        assert err.expected in (None, expected)
    assert expected == ("8" if raw.startswith("1") else "4")


def test_bad_org_code_check_inside_a_uscc() -> None:
    body = "91350100M000100Y5"
    raw = body + naive_uscc_check(body)  # whole-code check is right, org-code check is not
    err = reason(raw)
    assert (err.code, err.form) == ("bad_org_code_check", "uscc")
    assert err.expected in (None, "4")


@pytest.mark.parametrize("type_", ["", "ORG", "Person", "organisation", "company", "uscc",
                                   "ric", "individual", " org", "org ", "人"])
@pytest.mark.parametrize("raw", ["91350100M000100Y43", "11010519491231002X", "", "garbage"])
def test_unknown_type(type_: str, raw: str) -> None:
    err = reason(raw, type_)
    assert err.code == "unknown_type"


# --------------------------------------------------------------------------------------------
# Untyped inputs: which form, and which form a failure is judged as
# --------------------------------------------------------------------------------------------

def test_18_digit_valid_uscc_that_is_not_a_valid_id_is_an_org() -> None:
    # Valid birth date, wrong ID check character (would be 4), right USCC checks.
    assert naive_is_uscc("110105199001010185") and not naive_is_ric("110105199001010185")
    assert parse("110105199001010185") == Identifier("uscc", "110105199001010185")
    # Not a date at all (year 0040).
    assert parse("121200004013590816") == Identifier("uscc", "121200004013590816")
    assert reason("110105199001010185", "person").code == "bad_check_character"


def test_18_digit_string_valid_as_both_is_a_person_unless_typed_org() -> None:
    code = "110105199001011304"
    assert naive_is_ric(code) and naive_is_uscc(code)
    assert parse(code) == Identifier("ric", code)
    assert parse(code, "person") == Identifier("ric", code)
    assert parse(code, "org") == Identifier("uscc", code)


def test_valid_id_typed_org_is_judged_as_a_uscc() -> None:
    err = reason("11010519491231002X", "org")
    assert err.form == "uscc" and err.code in USCC_REASONS


@SETTINGS
@given(ric_bodies, st.sampled_from(DIGITS + "X"))
def test_untyped_18_digit_failures_are_judged_as_id_numbers(body: str, last: str) -> None:
    raw = body + last
    assume(not naive_is_ric(raw) and not naive_is_uscc(raw))
    err = reason(raw)
    reasons, expected = ric_failures(raw)
    assert err.form == "ric" and err.code in reasons
    if err.code == "bad_check_character":
        assert err.expected == expected


@SETTINGS
@given(_text(USCC_ALPHABET + "IOSVZ*", 18))
def test_untyped_other_18_character_failures_are_judged_as_usccs(raw: str) -> None:
    assume(not (all(c in DIGITS for c in raw[:17]) and raw[17] in DIGITS + "X"))
    assume(not naive_is_uscc(raw))
    err = reason(raw)
    reasons, expected = uscc_failures(raw)
    assert err.form == "uscc" and err.code in reasons
    if err.code == "bad_check_character":
        assert err.expected == expected


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

USCC_SPELLINGS = [
    " 91350100M000100Y43 ",
    "\u300091350100M000100Y43\u3000",
    "\t91350100M000100Y43\n",
    "9135 0100 M000 100Y 43",
    "9135\u30000100\u3000M000100Y43",
    "9135\t0100M000100Y43",
    "91350100-M000100Y-43",
    "91350100-M000100Y4-3",
    "9135-0100-M000-100Y-43",
    "91350100m000100y43",
    "91350100m000100Y43",
    fullwidth("91350100M000100Y43"),
    fullwidth("91350100m000100y43"),
    fullwidth("9135 0100-M000100Y 43"),
    "９１３５０１００Ｍ０００１００Ｙ４３",
    "９１３５０１００ｍ０００１００ｙ４３",
    "\u00a0913501\u202f00M000100Y43\u2003",
]


@pytest.mark.parametrize("raw", USCC_SPELLINGS)
def test_normalised_uscc_spellings(raw: str) -> None:
    assert normalize(raw) == "91350100M000100Y43"
    assert parse(raw) == Identifier("uscc", "91350100M000100Y43")
    assert parse(raw, "org") == Identifier("uscc", "91350100M000100Y43")


@pytest.mark.parametrize("raw, value", [
    ("110105 19491231 002x", "11010519491231002X"),
    ("110105-19491231-002X", "11010519491231002X"),
    ("\u3000１１０１０５１９４９１２３１００２ｘ\u3000", "11010519491231002X"),
    ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X"),
    ("\t110105\t19491231\t002X\t", "11010519491231002X"),
    ("360426 910101 007", "360426199101010071"),
    ("360426-910101-007", "360426199101010071"),
    ("３６０４２６９１０１０１００７", "360426199101010071"),
])
def test_normalised_ric_spellings(raw: str, value: str) -> None:
    assert parse(raw) == Identifier("ric", value)
    assert parse(raw, "person") == Identifier("ric", value)


@pytest.mark.parametrize("sep", list(HYPHENS) + list(BLANKS))
def test_each_blank_and_hyphen_is_removed(sep: str) -> None:
    raw = sep + "9135" + sep + "0100M000100Y" + sep + sep + "43" + sep
    assert normalize(raw) == "91350100M000100Y43"
    assert parse(raw) == Identifier("uscc", "91350100M000100Y43")
    assert parse("M000100Y" + sep + "4") == Identifier("org_code", "M000100Y4")


def test_nine_character_organisation_code_forms() -> None:
    code = "12345678" + naive_org_check("12345678")
    assert code == "123456788"
    for raw in ("12345678-8", "123456788", " 12345678 - 8 ", fullwidth("12345678-8")):
        assert parse(raw) == Identifier("org_code", "123456788"), raw
        assert parse(raw, "org") == Identifier("org_code", "123456788"), raw
        assert parse(raw).type == "org"
    assert reason("12345678-8", "person").code == "bad_length"


def test_type_forces_the_form() -> None:
    assert parse("91350100M000100Y43", "org").form == "uscc"
    err = reason("91350100M000100Y43", "person")
    assert (err.code, err.form) == ("bad_character", "ric")
    assert parse("11010519491231002X", "person").form == "ric"
    assert reason("360426910101007", "org").code == "bad_length"
    assert parse("360426910101007", "person") == Identifier("ric", "360426199101010071")
    assert parse("M000100Y4", "org") == Identifier("org_code", "M000100Y4")


@SETTINGS
@given(st.text(st.sampled_from(ORG_CHARS + "abcdefghijklmnopqrstuvwxyz*#" + BLANKS + HYPHENS
                               + fullwidth(ORG_CHARS + "abcxyz-"))))
def test_normalisation_of_typed_input_is_idempotent_and_clean(raw: str) -> None:
    once = normalize(raw)
    assert normalize(once) == once
    assert once == naive_normalize(raw)
    assert once.isascii() and not any(c.isspace() or c == "-" or c.islower() for c in once)


@SETTINGS
@given(st.text())
@example("a\u00a8")
@example("a -\u0301")
@example("\u0390")
@example("e-\u0301")
@example("A \u0308")
def test_normalisation_is_idempotent_for_any_text(raw: str) -> None:
    once = normalize(raw)
    assert not any(c.isspace() for c in once) and "-" not in once
    # SPEC §2 folds input by NFKC; the normalised value must itself be NFKC and a fixed point.
    # Regression guard: a normalize() that runs NFKC once, before dropping blanks/hyphens and
    # upper-casing, gives "a\u00a8" -> "A\u0308" (NFKC composes that to "\u00c4"), so
    # normalize(normalize(x)) != normalize(x).
    assert unicodedata.normalize("NFKC", once) == once, (raw, once)
    assert normalize(once) == once, (raw, once, normalize(once))


# --------------------------------------------------------------------------------------------
# Hypothesis: whole-module properties
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(valid_usccs)
@example("N11100006000373417")
@example("110105199001011304")
def test_valid_usccs_parse_to_themselves(code: str) -> None:
    assert ident.validate_uscc(code) == code
    assert parse(code, "org") == Identifier("uscc", code)
    # Untyped, an 18-digit code that is also a valid ID number is a person.
    assert parse(code) == Identifier("ric" if naive_is_ric(code) else "uscc", code)


@SETTINGS
@given(valid_rics)
def test_valid_rics_parse_to_themselves(code: str) -> None:
    assert ident.validate_ric(code) == code
    assert parse(code) == Identifier("ric", code)
    assert parse(code, "person") == Identifier("ric", code)
    assert parse(code.lower()) == Identifier("ric", code)


@SETTINGS
@given(valid_rics15)
def test_valid_15_digit_rics_are_widened(code: str) -> None:
    wide = widen(code)
    assert naive_is_ric(wide) and wide[6:8] == "19"
    assert parse(code) == Identifier("ric", wide)
    assert parse(code, "person") == Identifier("ric", wide)
    assert parse(wide) == Identifier("ric", wide)


@SETTINGS
@given(valid_org_codes)
def test_valid_org_codes_parse_to_themselves(code: str) -> None:
    assert ident.validate_org_code(code) == code
    assert parse(code) == Identifier("org_code", code)
    assert parse(code[:8] + "-" + code[8], "org") == Identifier("org_code", code)


def _mutate(code: str, i: int, char: str) -> str:
    return code[:i] + char + code[i + 1:]


@SETTINGS
@given(valid_usccs, st.data())
def test_single_character_change_to_a_uscc(code: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, 17), label="position")
    char = data.draw(replacement_chars.filter(lambda c: c != code[i]), label="char")
    mutant = _mutate(code, i, char)
    if normalize(mutant) == code:  # an equivalent spelling (lower case, full width)
        assert parse(mutant, "org") == Identifier("uscc", code)
        return
    err = reason(mutant, "org")
    assert err.code in USCC_REASONS
    if err.code == "bad_check_character":
        assert err.expected == naive_uscc_check(normalize(mutant))
    try:
        other = parse(mutant)
    except IdentifierError as e:
        assert e.code in REASONS
    else:  # only possible: the change made an 18-digit string that is a valid ID number
        assert other.form == "ric" and naive_is_ric(other.value)


@SETTINGS
@given(valid_rics, st.data())
def test_single_character_change_to_a_ric(code: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, 17), label="position")
    char = data.draw(replacement_chars.filter(lambda c: c != code[i]), label="char")
    mutant = _mutate(code, i, char)
    if normalize(mutant) == code:
        assert parse(mutant, "person") == Identifier("ric", code)
        assert parse(mutant) == Identifier("ric", code)
        return
    err = reason(mutant, "person")
    assert err.code in RIC_REASONS and err.form == "ric"
    if err.code == "bad_check_character":
        assert err.expected == naive_ric_check(normalize(mutant))
    try:
        other = parse(mutant)
    except IdentifierError as e:
        assert e.code in REASONS
    else:  # only possible: the change made a valid USCC
        assert other.form == "uscc" and naive_is_uscc(other.value)


@SETTINGS
@given(valid_org_codes, st.data())
def test_single_character_change_to_an_org_code(code: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, 8), label="position")
    char = data.draw(replacement_chars.filter(lambda c: c != code[i]), label="char")
    mutant = _mutate(code, i, char)
    norm = normalize(mutant)
    # GB 11714's mod-11 check cannot see a change of 11 or 22 in a value (0 <-> B, 1 <-> C,
    # ...): such a mutant is valid, and must be handled exactly as the naive rule says.
    if naive_is_org_code(norm):
        assert parse(mutant) == Identifier("org_code", norm)
    else:
        assert reason(mutant).code in {"bad_length", "bad_character", "bad_org_code_check"}


@SETTINGS
@given(near_identifiers(), types_)
def test_parse_matches_naive_spec_reading(raw: str, type_: str | None) -> None:
    expected = naive_parse(raw, type_)
    if isinstance(expected, Identifier):
        assert parse(raw, type_) == expected
        return
    reasons, form, check = expected
    err = reason(raw, type_)
    assert err.code in reasons, (raw, err.code, err.message)
    if form is not None:
        assert err.form == form
    if err.code == "bad_check_character":
        assert err.expected == check


@SETTINGS
@given(st.text(), st.one_of(types_, st.text(max_size=8)))
@example("", None)
@example("\u3000", None)
@example("-", "org")
@example("\u0390" * 18, None)
@example("\ufb00" * 9, "org")
@example("\x00" * 18, "person")
@example("0" * 18, None)
@example("X" * 18, None)
@example("1_2345678", None)
@example("+1234567890123456", None)
@example("1" * 16 + "_1", "person")
@example("\u0661" * 18, None)
@example("\u0661" * 15, None)
@example("\u0131" + "2345678" + "X", None)
def test_parse_only_raises_identifier_error(raw: str, type_: str | None) -> None:
    try:
        result = parse(raw, type_)
    except IdentifierError as err:
        assert err.code in REASONS
        assert isinstance(err.message, str) and err.message
        if type_ not in (None, "org", "person"):
            assert err.code == "unknown_type"
        return
    assert type_ in (None, "org", "person")
    valid = {"uscc": naive_is_uscc, "ric": naive_is_ric, "org_code": naive_is_org_code}
    assert valid[result.form](result.value), result
    assert {"org": {"uscc", "org_code"}, "person": {"ric"}, None: set(valid)}[type_] >= {
        result.form}


# -- rendering instants (indexer.clock) --------------------------------------------------------
@given(st.integers(min_value=-5_364_691_200_000_000, max_value=218_937_600_000_000_000))
@example(0)
@example(-1)
@example(1_000_000)
@example(-5_364_691_200_000_000)  # 1800-01-01 CST, the lowest as_of
def test_format_instant_is_isoformat_in_cst(instant: int) -> None:
    from indexer import clock

    expected = (clock._EPOCH_CST + dt.timedelta(microseconds=instant)).isoformat()
    assert clock.format_instant(instant) == expected
    assert clock.parse_instant(expected) == instant
