"""Organisations and persons as pure functions of an integer index (nothing is stored).

Every attribute of organisation ``k`` or person ``j`` comes from a 64-bit hash of the index
and the seed, so an entry can name "organisation 12 345" at any time, and a later entry can
list the same organisation again, without a table in memory. Uniqueness comes from affine
permutations: the 8-character body of the 组织机构代码 (USCC characters 9–16) is a bijection
of ``k``, the (region, birth date, 顺序码) triple of an ID number a bijection of ``j``.

Person indices: ``8k + s`` are the people of organisation ``k`` — ``s = 0`` the candidate
legal representative, ``1..5`` further registered roles, ``6`` a person named only in a
listing — and ``8p + 7`` is the ``p``-th person listed on their own.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
from dataclasses import dataclass

import numpy as np

from indexer.identifiers import ID_CHECK, USCC_ALPHABET

from . import vocabulary as V

U64 = np.uint64

# (registration authority, type, name style, weight, may use a new-style "M?" code prefix)
CLASSES: tuple[tuple[str, str, str, int, str], ...] = (
    ("9", "1", "company", 850, "MA"), ("9", "2", "shop", 40, "MA"), ("9", "3", "coop", 20, "MA"),
    ("1", "2", "institution", 25, ""), ("1", "1", "institution", 5, ""),
    ("5", "1", "society", 15, "MJ"), ("5", "2", "nonprofit", 25, "MJ"),
    ("5", "3", "foundation", 5, "MJ"), ("3", "1", "lawfirm", 5, ""),
    ("N", "2", "village", 5, ""), ("Y", "1", "other", 5, ""),
)
ROLE_NAMES = ("legal_rep", "principal", "actual_controller", "director", "supervisor",
              "senior_manager", "shareholder")
# Role of each extra relation slot (1..5) with weights, so one organisation never gets two
# principals or two actual controllers.
SLOT_ROLES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("supervisor", 35), ("shareholder", 35), ("actual_controller", 30)),
    (("director", 50), ("senior_manager", 30), ("principal", 20)),
    (("director", 50), ("shareholder", 50)),
    (("senior_manager", 60), ("director", 40)),
    (("shareholder", 100),),
)
_EPOCH = dt.date(1950, 1, 1)
BIRTH_DATES = tuple((_EPOCH + dt.timedelta(days=i)).strftime("%Y%m%d")
                    for i in range((dt.date(2004, 12, 31) - _EPOCH).days + 1))
M_OLD = 10 ** 8
M_NEW = 31 ** 6


def table(weights: list[int] | tuple[int, ...], size: int = 4096) -> np.ndarray:
    """A lookup table: ``table[h % size]`` picks category i with probability ∝ weights[i]."""
    total = sum(weights)
    edges = np.cumsum(np.array(weights, dtype=np.float64)) / total * size
    return np.searchsorted(edges, np.arange(size) + 0.5).astype(np.intp)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over a uint64 array (wraps, vectorised)."""
    z = x + U64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
    return z ^ (z >> U64(31))


def bits(h: np.ndarray, shift: int, n: int) -> np.ndarray:
    """``n``-way choice from bits ``shift..`` of a hash (``n`` ≤ 2^20)."""
    return (((h >> U64(shift)) & U64(0xFFFFF)) % U64(n)).astype(np.intp)


def _affine(r: random.Random, m: int) -> tuple[int, int]:
    while True:
        a = r.randrange(m // 3, m)
        if math.gcd(a, m) == 1:
            return a, r.randrange(m)


_CLASS_TABLE = table([c[3] for c in CLASSES])
_REGION_TABLE = table([r.weight for r in V.REGIONS])
_FORM_TABLE = table([w for _, w in V.COMPANY_FORMS])
_SURNAME_TABLE = table([w for _, w in V.SURNAMES])
_SLOT_TABLES = tuple(table([w for _, w in slot]) for slot in SLOT_ROLES)
_SLOT_ROLE_IDS = tuple(np.array([ROLE_NAMES.index(r) for r, _ in slot]) for slot in SLOT_ROLES)
_SUPERVISOR = ROLE_NAMES.index("supervisor")
_ID_REGIONS = [i for i, r in enumerate(V.REGIONS) if r.id_seqs]
_ID_SEQS = np.array([V.REGIONS[i].id_seqs for i in _ID_REGIONS], dtype=np.int64)
_ID_STARTS = np.concatenate([[0], np.cumsum(_ID_SEQS * len(BIRTH_DATES))])
M_PERSON = int(_ID_STARTS[-1])


def _city_place(r: V.Region) -> str:
    i = V.REGION_INDEX.get(r.city)
    return V.REGIONS[i].place if i is not None else r.place


CITY_PLACES = tuple(_city_place(r) for r in V.REGIONS)

# Character tables for building identifiers as (n, 18) byte arrays. The check characters are
# the SPEC §2 weighted sums, vectorised; tests compare them with ``indexer.identifiers``.
_ALPHA = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_USCC_VALUE = np.zeros(256, dtype=np.int64)
_USCC_VALUE[_ALPHA] = np.arange(31)
_ORG_VALUE = np.zeros(256, dtype=np.int64)
_ORG_VALUE[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)] = np.arange(36)
_USCC_W = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
_ORG_W = np.array([3, 7, 9, 10, 5, 8, 4, 2])
_RIC_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_RIC_CHECK = np.frombuffer(ID_CHECK.encode(), dtype=np.uint8)
_CLASS_CHARS = np.array([[ord(c[0]), ord(c[1])] for c in CLASSES], dtype=np.uint8)
_PREFIX_CHARS = np.array([list((c[4] or "00").encode()) for c in CLASSES], dtype=np.uint8)
_HAS_PREFIX = np.array([bool(c[4]) for c in CLASSES])
_KIND = np.array([c[2] for c in CLASSES])
_REGION_DIGITS = np.array([list(r.code.encode()) for r in V.REGIONS], dtype=np.uint8)
_ID_REGION_DIGITS = _REGION_DIGITS[_ID_REGIONS]
_BIRTH_DIGITS = np.frombuffer("".join(BIRTH_DATES).encode(), dtype=np.uint8).reshape(-1, 8)
_GIVEN = (V.GIVEN_FEMALE, V.GIVEN_MALE)
_GIVEN_SIZE = np.array([len(g) for g in _GIVEN])
# company name parts as object arrays, concatenated element-wise
_HEADS = np.array([("福建",) * 3 if r.code == "350000" else
                   (r.place, r.short, "福建" if r.code.startswith("35") else r.short)
                   for r in V.REGIONS], dtype=object)
_TRADE_PAIRS = np.array([a + b for a in V.TRADE_CHARS for b in V.TRADE_CHARS], dtype=object)
_INDUSTRY_NAMES = np.array([x for pool in V.INDUSTRIES for x in pool], dtype=object)
_INDUSTRY_SIZE = np.array([len(pool) for pool in V.INDUSTRIES])
_INDUSTRY_OFFSET = np.concatenate([[0], np.cumsum(_INDUSTRY_SIZE)[:-1]])
_FORMS = np.array([f for f, _ in V.COMPANY_FORMS], dtype=object)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII decimal digits of non-negative ``values`` as an (n, width) byte array."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 10 + 48).astype(np.uint8)


def _base31(values: np.ndarray) -> np.ndarray:
    """Six base-31 digits (most significant first) of ``values`` < 31**6."""
    powers = 31 ** np.arange(5, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 31).astype(np.intp)


def _strings(buf: np.ndarray) -> list[str]:
    """Rows of an ASCII byte array as strings."""
    n, w = buf.shape
    text = np.ascontiguousarray(buf).tobytes().decode("ascii")
    return [text[i:i + w] for i in range(0, n * w, w)]


@functools.cache
def _person_names() -> tuple[np.ndarray, np.ndarray]:
    """Every surname + one or two given characters, per gender; and each gender's offset."""
    names: list[str] = []
    base = []
    for pool in _GIVEN:
        base.append(len(names))
        for surname, _ in V.SURNAMES:
            for a in pool:
                names.append(surname + a)
                names.extend(surname + a + b for b in pool)
    return np.array(names, dtype=object), np.array(base)


@dataclass(frozen=True, slots=True)
class Orgs:
    """A batch of organisations: USCC, name, registration region index, 注册号 or None."""

    uscc: list[str]
    name: list[str]
    region: np.ndarray
    alias: list[str | None]


def registration_number_check(digits14: str) -> str:
    """Check digit of a 15-digit 工商注册号 (GB/T 17710, ISO 7064 MOD 11,10)."""
    p = 10
    for c in digits14:
        s = (p + int(c)) % 10 or 10
        p = (2 * s) % 11
    return str((11 - p) % 10)


class Population:
    """The seeded universe of organisations and persons the generator draws from."""

    def __init__(self, seed: int, *, persons_per_org: float = 2.0) -> None:
        r = random.Random(f"bench.population/{seed}")
        self.salts = [U64(r.getrandbits(64)) for _ in range(12)]
        self.old = _affine(r, M_OLD)
        self.new = _affine(r, M_NEW)
        self.reg = _affine(r, M_OLD)
        self.person = _affine(r, M_PERSON)
        extra = min(max(persons_per_org - 1.0, 0.0), 5.0) / 5.0
        self.slot_threshold = U64(int(extra * 1024))

    def _hash(self, idx: np.ndarray, salt: int) -> np.ndarray:
        return mix(idx.astype(U64) ^ self.salts[salt])

    # -- organisations ----------------------------------------------------------------

    def orgs(self, ks: np.ndarray, sectors: np.ndarray) -> Orgs:
        """Identity and name of organisations ``ks`` (int64) of the given sectors (uint8)."""
        n = len(ks)
        h1, h2 = self._hash(ks, 0), self._hash(ks, 1)
        cls = _CLASS_TABLE[(h1 & U64(4095)).astype(np.intp)]
        cls[sectors > 0] = 0
        region = _REGION_TABLE[((h1 >> U64(12)) & U64(4095)).astype(np.intp)]
        new = (((h1 >> U64(24)) & U64(1023)) < U64(666)) & _HAS_PREFIX[cls]
        nt = len(V.TRADE_CHARS)
        t1 = bits(h1, 34, nt)
        t2 = bits(h1, 44, nt - 1)
        trade = t1 * nt + t2 + (t2 >= t1)
        industry = bits(h2, 0, 7560)   # 7560 divides evenly by every pool size
        form = _FORM_TABLE[((h2 >> U64(14)) & U64(4095)).astype(np.intp)]
        style = ((h2 >> U64(26)) & U64(15)).astype(np.intp)
        alias = (((h2 >> U64(30)) & U64(1023)) < U64(420)) & ~new & (cls < 3)
        extra = bits(h2, 40, 2520)
        # USCC: authority, type, region, 8-character organisation code body, two checks
        buf = np.empty((n, 18), dtype=np.uint8)
        buf[:, 0:2] = _CLASS_CHARS[cls]
        buf[:, 2:8] = _REGION_DIGITS[region]
        a, b = self.old
        old_body = _digits((ks * a + b) % M_OLD, 8)
        a, b = self.new
        v = (ks * a + b) % M_NEW
        new_body = np.concatenate([_PREFIX_CHARS[cls], _ALPHA[_base31(v)]], axis=1)
        buf[:, 8:16] = np.where(new[:, None], new_body, old_body)
        c = 11 - (_ORG_VALUE[buf[:, 8:16]] @ _ORG_W) % 11
        buf[:, 16] = np.where(c == 10, ord("X"), np.where(c == 11, ord("0"), c + 48))
        buf[:, 17] = _ALPHA[(31 - (_USCC_VALUE[buf[:, :17]] @ _USCC_W) % 31) % 31]
        usccs = _strings(buf)
        # names: companies by array concatenation, the few other kinds one by one
        sector_pool = _INDUSTRY_OFFSET[sectors] + industry % _INDUSTRY_SIZE[sectors]
        head = np.where(style >= 14, 2, np.where(style >= 10, 1, 0))
        names_arr = (_HEADS[region, head] + _TRADE_PAIRS[trade] + _INDUSTRY_NAMES[sector_pool]
                     + _FORMS[form])
        others = np.flatnonzero(_KIND[cls] != "company")
        for i, c_, r, t, ind, e in zip(others.tolist(), cls[others].tolist(),
                                       region[others].tolist(), trade[others].tolist(),
                                       industry[others].tolist(), extra[others].tolist()):
            names_arr[i] = _other_name(CLASSES[c_][2], V.REGIONS[r], r, _TRADE_PAIRS[t], ind, e)
        # 工商注册号 (15 digits) of organisations registered before the USCC
        aliases: list[str | None] = [None] * n
        rows = np.flatnonzero(alias)
        if len(rows):
            a, b = self.reg
            d = np.concatenate([_REGION_DIGITS[region[rows]],
                                _digits((ks[rows] * a + b) % M_OLD, 8)], axis=1)
            p = np.full(len(rows), 10, dtype=np.int64)
            for col in range(14):
                t_ = (p + d[:, col] - 48) % 10
                p = 2 * np.where(t_ == 0, 10, t_) % 11
            d = np.concatenate([d, ((11 - p) % 10 + 48).astype(np.uint8)[:, None]], axis=1)
            for i, reg_no in zip(rows.tolist(), _strings(d)):
                aliases[i] = reg_no
        return Orgs(usccs, names_arr.tolist(), region, aliases)

    def legal_reps(self, ks: np.ndarray) -> np.ndarray:
        """Person index of each organisation's legal representative.

        Mostly the organisation's own person ``8k``; one in ten is the person ``8k'`` of an
        earlier organisation ``k' < k``, so one person represents several organisations.
        """
        h = self._hash(ks, 2)
        own = ((h & U64(1023)) < U64(920)) | (ks == 0)
        other = ((h >> U64(10)) % np.maximum(ks, 1).astype(U64)).astype(np.int64)
        return np.where(own, ks, other) * 8

    def relations(self, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Registered roles of organisations ``ks``: (position in ks, role index, person).

        Rows are grouped by organisation, legal representative first.
        """
        n = len(ks)
        present = np.zeros((n, 6), dtype=bool)
        roles = np.zeros((n, 6), dtype=np.intp)
        persons = np.zeros((n, 6), dtype=np.int64)
        present[:, 0] = True
        rep = self.legal_reps(ks)
        persons[:, 0] = rep
        span = np.maximum(ks, 1).astype(U64)
        for s in range(1, 6):
            h = self._hash(ks, 2 + s)
            present[:, s] = (h & U64(1023)) < self.slot_threshold
            role = _SLOT_ROLE_IDS[s - 1][_SLOT_TABLES[s - 1][((h >> U64(10)) & U64(4095))
                                                             .astype(np.intp)]]
            roles[:, s] = role
            who = (h >> U64(22)) & U64(1023)
            other = ((h >> U64(32)) % span).astype(np.int64) * 8
            person = np.where(who < U64(790), ks * 8 + s, np.where(who < U64(910), rep, other))
            persons[:, s] = np.where(role == _SUPERVISOR, ks * 8 + s, person)
            for t in range(1, s):  # the same person twice in the same role: keep one row
                present[:, s] &= ~(present[:, t] & (roles[:, t] == role)
                                   & (persons[:, t] == persons[:, s]))
        pos = np.broadcast_to(np.arange(n)[:, None], (n, 6))
        return pos[present], roles[present], persons[present]

    # -- persons ----------------------------------------------------------------------

    def persons(self, js: np.ndarray) -> tuple[list[str], list[str]]:
        """ID numbers and names of persons ``js`` (int64)."""
        n = len(js)
        if n and int(js.max()) >= M_PERSON:
            raise ValueError(f"person index {int(js.max())} exceeds the ID space {M_PERSON}")
        a, b = self.person
        jp = (js * a + b) % M_PERSON
        slot = np.searchsorted(_ID_STARTS, jp, side="right") - 1
        within = jp - _ID_STARTS[slot]
        seqs = _ID_SEQS[slot]
        seq = within % seqs + 1
        buf = np.empty((n, 18), dtype=np.uint8)
        buf[:, 0:6] = _ID_REGION_DIGITS[slot]
        buf[:, 6:14] = _BIRTH_DIGITS[within // seqs]
        buf[:, 14:17] = _digits(seq, 3)
        buf[:, 17] = _RIC_CHECK[((buf[:, :17] - 48).astype(np.int64) @ _RIC_W) % 11]
        h = self._hash(js, 8)
        male = (seq % 2).astype(np.intp)   # odd 顺序码: male
        size = _GIVEN_SIZE[male]
        sur = _SURNAME_TABLE[(h & U64(4095)).astype(np.intp)]
        two = ((h >> U64(12)) & U64(3)) != U64(0)
        g1 = bits(h, 14, 3 * 7 * 43) % size
        g2 = bits(h, 34, 3 * 7 * 43) % size
        names, base = _person_names()
        at = base[male] + (sur * size + g1) * (size + 1) + np.where(two, g2 + 1, 0)
        return _strings(buf), names[at].tolist()


def _other_name(kind: str, reg: V.Region, r: int, trade: str, industry: int,
                extra: int) -> str:
    """Name of an organisation that is not a company (个体工商户, 事业单位, 社会组织 …)."""
    place = reg.place
    if kind == "shop":
        return f"{place}{trade}{V.SHOPS[extra % len(V.SHOPS)]}"
    if kind == "coop":
        return f"{place}{trade}{V.COOPS[extra % len(V.COOPS)]}"
    if kind == "institution":
        return f"{place}{V.INSTITUTIONS[extra % len(V.INSTITUTIONS)]}"
    if kind == "society":
        pool = V.INDUSTRIES[0]
        return f"{CITY_PLACES[r]}{pool[industry % len(pool)]}{V.SOCIETIES[extra % len(V.SOCIETIES)]}"
    if kind == "nonprofit":
        return f"{place}{trade}{V.NONPROFITS[extra % len(V.NONPROFITS)]}"
    if kind == "foundation":
        return f"{'福建省' if reg.code.startswith('35') else place}{trade}慈善基金会"
    if kind == "lawfirm":
        return f"{'福建' if reg.code.startswith('35') else reg.short}{trade}律师事务所"
    if kind == "village":
        return f"{place}{trade}村股份经济合作社"
    return f"{place}{trade}联谊会"
