"""行政区划 coverage (SPEC §3 scope, §5.1 visibility).

A region or scope is ``national`` or a code of 2, 4 or 6 digits. Its *prefix* is the code with
trailing ``00`` pairs removed (``350000`` → ``35``, ``350100`` → ``3501``); a code covers another
when its prefix is a prefix of the other's. ``national`` scope covers every region, and a
``national`` region is covered only by ``national`` scope. The national prefix is ``""``.
"""

from __future__ import annotations

from functools import lru_cache

NATIONAL = "national"


class BadRegion(ValueError):
    """Not ``national`` or a 2-, 4- or 6-digit 行政区划 code."""


def region_prefix(code: str) -> str:
    """Normalise a region/scope to its prefix; ``national`` → ``""``."""
    if not isinstance(code, str):
        raise BadRegion(f"a region is a string, not {type(code).__name__}")
    return _prefix(code)


@lru_cache(maxsize=4096)  # every check asks for its caller's region: a few thousand codes
def _prefix(code: str) -> str:
    if code == NATIONAL:
        return ""
    if len(code) not in (2, 4, 6) or not code.isascii() or not code.isdigit():
        raise BadRegion(f"{code!r} is not 'national' or a 2-, 4- or 6-digit region code")
    prefix = code
    while prefix.endswith("00"):
        prefix = prefix[:-2]
    if not prefix:
        raise BadRegion(f"{code!r} is not a region code")
    return prefix


def covers(scope_prefix: str, region_prefix_: str) -> bool:
    """Does a scope (as prefix) cover a check region (as prefix)?"""
    if not scope_prefix:
        return True
    if not region_prefix_:
        return False
    return region_prefix_.startswith(scope_prefix)
