"""Accounts (SPEC §7): one unit, one account, an API key stored as its sha256.

The accounts file is JSON Lines, one unit a line (SPEC §8)::

    {"unit": "350100-CZJ", "name": "福州市财政局", "key_sha256": "<hex>", "tier": "agency",
     "region": "350100", "adopted_measures": [], "authorities": [], "lists": [],
     "rate_per_s": null}

``Accounts.authenticate`` turns an ``Authorization`` header into an ``Account`` (401 when the
key is missing or unknown, 429 with ``retry_after`` when over the account's rate) and
``require`` checks the tier an endpoint needs (403). Tiers are ordered
``public < agency < issuer < admin``.

Without an accounts file the service is *open*: every request is the anonymous unit
``anonymous``, tier ``public``, region ``national`` — it sees public entries only, with masked
ID numbers, and nothing that needs a government tier.

Rate limits are token buckets (burst = one second of the rate, at least 1) per account and
per worker process: with ``--workers N`` a unit may reach N times its rate.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from indexer.regions import BadRegion, region_prefix

from .decision import TIERS, Caller
from .errors import Forbidden, RateLimited, Unauthorized

log = logging.getLogger(__name__)

TIER_RANK = {t: i for i, t in enumerate(TIERS)}
_HEX = frozenset("0123456789abcdef")
_SEEN_MAX = 4096  # remembered Authorization headers (valid keys only)


class AccountsError(ValueError):
    """An accounts file that cannot be used (named with its line)."""


@dataclass(frozen=True, slots=True)
class Account:
    unit: str
    name: str
    tier: str
    region: str = "national"
    adopted_measures: frozenset[str] = field(default_factory=frozenset)
    authorities: frozenset[str] = field(default_factory=frozenset)
    lists: frozenset[str] = field(default_factory=frozenset)
    rate_per_s: float | None = None
    caller: Caller = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "caller", Caller(unit=self.unit, tier=self.tier,
                                                  region=self.region,
                                                  adopted=self.adopted_measures))


ANONYMOUS = Account(unit="anonymous", name="anonymous", tier="public")


class _Bucket:
    """A token bucket: ``rate`` tokens a second, up to ``burst``."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take one token; return 0.0, or the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def _strings(obj: dict[str, Any], key: str, where: str) -> frozenset[str]:
    value = obj.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AccountsError(f"{where}: {key!r} must be a list of strings")
    return frozenset(value)


ACCOUNT_FIELDS = ("unit", "name", "key_sha256", "tier", "region", "adopted_measures",
                  "authorities", "lists", "rate_per_s")


def parse_account(obj: Any, where: str) -> tuple[str, Account]:
    """Validate one accounts line; return (key sha256, account)."""
    if not isinstance(obj, dict):
        raise AccountsError(f"{where}: an account is a JSON object")
    unknown = [k for k in obj if k not in ACCOUNT_FIELDS]
    if unknown:  # a typo (``rate_per_sec``) would otherwise start an account without it
        raise AccountsError(f"{where}: unknown field {unknown[0]!r}; the fields are "
                            f"{', '.join(ACCOUNT_FIELDS)}")
    unit, digest, tier = obj.get("unit"), obj.get("key_sha256"), obj.get("tier")
    if not isinstance(unit, str) or not unit:
        raise AccountsError(f"{where}: 'unit' must be a non-empty string")
    if not isinstance(digest, str) or len(digest) != 64 or not _HEX.issuperset(digest.lower()):
        raise AccountsError(f"{where}: 'key_sha256' must be 64 hex characters")
    if tier not in TIER_RANK:
        raise AccountsError(f"{where}: 'tier' must be one of {', '.join(TIERS)}")
    region = obj.get("region") or "national"
    try:
        region_prefix(region)
    except BadRegion as exc:
        raise AccountsError(f"{where}: {exc}") from None
    if region != "national" and len(region) != 6:  # SPEC §7: a 6-digit code or national
        raise AccountsError(f"{where}: 'region' must be a 6-digit region code or 'national', "
                            f"not {region!r}")
    rate = obj.get("rate_per_s")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not rate > 0 or not math.isfinite(rate)):
        raise AccountsError(f"{where}: 'rate_per_s' must be a positive number or null")
    name = obj.get("name") or unit
    account = Account(unit=unit, name=str(name), tier=tier, region=region,
                      adopted_measures=_strings(obj, "adopted_measures", where),
                      authorities=_strings(obj, "authorities", where),
                      lists=_strings(obj, "lists", where),
                      rate_per_s=None if rate is None else float(rate))
    return digest.lower(), account


class Accounts:
    """The accounts of one service: keys by hash, and their rate buckets."""

    def __init__(self, accounts: Iterable[tuple[str, Account]] | None = None) -> None:
        """``accounts``: (key sha256, account) pairs, one unit and one key each, as ``load``
        checks them (naming the line); None: the open service."""
        self.open = accounts is None
        self._by_hash: dict[str, Account] = dict(accounts or ())
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._seen: dict[str | bytes, Account] = {}  # header -> account, known keys only
        # shared limiter (the backbone's ``take``): (unit, rate) -> seconds to wait, 0.0 if
        # admitted; None: the per-process token buckets below
        self.limiter: Callable[[str, float], float] | None = None

    @classmethod
    def load(cls, path: Path | None) -> Accounts:
        """Read an accounts file; ``None`` gives the open (anonymous public) service."""
        if path is None:
            return cls(None)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise AccountsError(f"{path}: {exc.strerror or exc}") from None
        rows: list[tuple[str, Account]] = []
        units: dict[str, int] = {}
        digests: dict[str, int] = {}
        for n, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise AccountsError(f"{path}:{n}: not JSON: {exc}") from None
            digest, account = parse_account(obj, f"{path}:{n}")
            if account.unit in units:  # one unit, one account (SPEC §7)
                raise AccountsError(f"{path}:{n}: unit {account.unit!r} appears more than "
                                    f"once (first at line {units[account.unit]})")
            if digest in digests:
                raise AccountsError(f"{path}:{n}: unit {account.unit!r} shares a key with "
                                    f"line {digests[digest]}")
            units[account.unit], digests[digest] = n, n
            if account.tier == "issuer" and not account.lists:
                log.warning("accounts.issuer_without_lists %s:%d: issuer %r can post no "
                            "event", path, n, account.unit)
            if account.tier == "issuer" and not account.authorities:
                log.warning("accounts.issuer_without_authorities %s:%d: issuer %r has no "
                            "feed to read", path, n, account.unit)
            rows.append((digest, account))
        if not rows:
            raise AccountsError(f"{path}: no account (a service with an accounts file and "
                                "no account would refuse every request)")
        return cls(rows)

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, authorization: str | bytes | None) -> Account:
        """The account of an ``Authorization: Bearer <key>`` header, within its rate."""
        if self.open:
            return ANONYMOUS
        account = self._seen.get(authorization) if authorization else None
        if account is None:
            account = self._lookup(authorization)
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen[authorization] = account  # type: ignore[index]
        if account.rate_per_s is not None:
            self._take(account)
        return account

    def _lookup(self, authorization: str | bytes | None) -> Account:
        if not authorization:
            raise Unauthorized("missing_key", "send the unit's API key as "
                               "'Authorization: Bearer <key>'")
        if isinstance(authorization, str):
            authorization = authorization.encode("utf-8", "surrogateescape")
        scheme, _, key = authorization.strip().partition(b" ")
        key = key.strip()
        if scheme.lower() != b"bearer" or not key:
            raise Unauthorized("missing_key", "the Authorization header must be "
                               "'Bearer <key>'")
        account = self._by_hash.get(hashlib.sha256(key).hexdigest())
        if account is None:
            raise Unauthorized("bad_key", "the API key is not known")
        return account

    def _take(self, account: Account) -> None:
        rate = account.rate_per_s
        assert rate is not None
        if self.limiter is not None:
            wait = self.limiter(account.unit, rate)
            if wait:
                raise RateLimited("rate_limited",
                                  f"unit {account.unit!r} is over its rate of {rate:g} "
                                  "requests a second", retry_after=wait)
            return
        with self._lock:
            bucket = self._buckets.get(account.unit)
            if bucket is None:
                bucket = self._buckets[account.unit] = _Bucket(rate)
            wait = bucket.take()
        if wait:
            raise RateLimited("rate_limited",
                              f"unit {account.unit!r} is over its rate of {rate:g} requests "
                              "a second", retry_after=wait)


def require(account: Account, tier: str) -> Account:
    """403 unless the account's tier is at least ``tier``."""
    if TIER_RANK[account.tier] < TIER_RANK[tier]:
        raise Forbidden("tier_forbidden",
                        f"this endpoint needs the {tier!r} tier; the unit "
                        f"{account.unit!r} is {account.tier!r}")
    return account
