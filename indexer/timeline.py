"""When an entry is in effect (SPEC §4): fold lifecycle events into effective intervals.

An entry's *window* is ``[valid_from, end)`` where ``end`` is the earlier of ``valid_until`` and
its first ``exited`` event. Its *pieces* are the window minus the time an objection is open
(only when its list suspends on objection). The entry is in effect at ``t`` iff ``t`` lies in a
piece; it is suppressed (``objection_pending``) iff ``t`` lies in the window but in no piece.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .clock import NEVER

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Timeline:
    valid_from: int
    valid_until: int
    end: int
    purged: bool
    pieces: tuple[Interval, ...]  # effective intervals, half-open, sorted, disjoint


def fold(valid_from: int, valid_until: int,
         events: Iterable[tuple[int, str, str | None]], *, suspends: bool) -> Timeline:
    """Fold one entry's events, given as (at, type, result) already in application order."""
    exit_at = NEVER
    purged = False
    open_at: int | None = None
    objections: list[Interval] = []
    for at, etype, result in events:
        if etype == "revoked":
            purged = True
        elif etype == "exited":
            exit_at = min(exit_at, at)
        elif etype == "objection_opened":
            if open_at is None:
                open_at = at
        elif etype == "objection_closed":
            if result == "upheld":
                purged = True
            if open_at is not None:
                objections.append((open_at, at))
                open_at = None
    if open_at is not None:
        objections.append((open_at, NEVER))
    end = min(valid_until, exit_at)
    pieces: list[Interval] = []
    if not purged and end > valid_from:
        pieces = [(valid_from, end)]
        if suspends:
            for lo, hi in objections:
                pieces = _subtract(pieces, lo, hi)
    return Timeline(valid_from, valid_until, end, purged, tuple(pieces))


def _subtract(pieces: list[Interval], lo: int, hi: int) -> list[Interval]:
    if hi <= lo:
        return pieces
    out: list[Interval] = []
    for s, e in pieces:
        if e <= lo or s >= hi:
            out.append((s, e))
            continue
        if s < lo:
            out.append((s, lo))
        if e > hi:
            out.append((hi, e))
    return out
