"""Lifecycle events of generated entries (SPEC §3 ``events/*.jsonl``).

A share of entries gets one story: an objection rejected, upheld (the entry is purged) or
still open; an exit (履行完毕, 信用修复, 标准变更, 到期); an objection followed by an exit; or a
revocation. Each story's events are strictly increasing in time, start after ``valid_from``
and end before ``valid_until`` (``expired`` exits fall exactly on it). Derived ``…/watch``
entries never get events.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

DAY0 = dt.date(2018, 1, 1)
DATES = tuple((DAY0 + dt.timedelta(days=i)).isoformat()
              for i in range((dt.date(2041, 1, 1) - DAY0).days))
OPEN_SPAN = 1500  # days an entry without valid_until is assumed to run, for event timing

# (story, weight) for black and watch lists, then for red lists.
BLACK_STORIES = (("objection_rejected", 30), ("objection_upheld", 8), ("objection_open", 5),
                 ("exited", 33), ("objection_then_exit", 12), ("revoked", 6),
                 ("objection_twice", 6))
RED_STORIES = (("exited", 70), ("revoked", 20), ("objection_rejected", 10))
COURT_EXITS = (("fulfilled", 60), ("repaired", 25), ("standard_changed", 5), ("expired", 10))
OTHER_EXITS = (("repaired", 60), ("standard_changed", 15), ("expired", 25))
RED_EXITS = (("standard_changed", 50), ("expired", 50))


def at(day: int, second: int) -> str:
    """ISO-8601 instant in China Standard Time."""
    return f"{DATES[day]}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+08:00"


def _weighted(options: tuple[tuple[str, int], ...], r: int) -> str:
    total = sum(w for _, w in options)
    r %= total
    for name, w in options:
        if r < w:
            return name
        r -= w
    return options[-1][0]


class EventWriter:
    """Numbers events ``V-1, V-2 …`` and turns an entry's story into event records."""

    def __init__(self) -> None:
        self.count = 0

    def _event(self, day: int, second: int, entry: str | None, type_: str,
               **fields: Any) -> dict[str, Any]:
        self.count += 1
        rec: dict[str, Any] = {"id": f"V-{self.count}", "at": at(day, second)}
        if entry is not None:
            rec["entry"] = entry
        rec["type"] = type_
        rec.update(fields)
        return rec

    def listed(self, day: int, second: int, record: dict[str, Any]) -> dict[str, Any]:
        return self._event(day, second, None, "listed", record=record)

    def story(self, entry: str, kind: str, court: bool, start: int, until: int | None,
              r: list[int]) -> list[dict[str, Any]]:
        """Events of one entry valid over day ``start`` to ``until`` (None: no end).

        ``r`` holds six random non-negative integers that drive the choices.
        """
        span = (until - start) if until is not None else OPEN_SPAN
        story = _weighted(RED_STORIES if kind == "red" else BLACK_STORIES, r[0])
        out: list[dict[str, Any]] = []
        day = start

        def sec(i: int) -> int:
            return 8 * 3600 + 1800 + r[i] % (9 * 3600)

        if story.startswith("objection"):
            rounds = 2 if story == "objection_twice" else 1
            for n in range(rounds):
                day += 1 + r[1 + n] % max(1, min(90, span // 4))
                out.append(self._event(day, sec(2), entry, "objection_opened"))
                if story == "objection_open":
                    return out
                day += 10 + r[3] % 25  # 15–20 working days to verify
                result = "upheld" if story == "objection_upheld" else "rejected"
                out.append(self._event(day, sec(4), entry, "objection_closed", result=result))
            if story != "objection_then_exit":
                return out
            story = "exited"
        if story == "revoked":
            day += 1 + r[5] % max(1, min(180, span - 1))
            out.append(self._event(day, sec(4), entry, "revoked"))
            return out
        exits = RED_EXITS if kind == "red" else COURT_EXITS if court else OTHER_EXITS
        reason = _weighted(exits, r[5])
        if reason == "expired" and until is None:
            reason = "repaired" if kind != "red" else "standard_changed"
        if reason == "expired":
            assert until is not None
            out.append(self._event(until, 0, entry, "exited", reason="expired"))
            return out
        left = (until if until is not None else start + OPEN_SPAN) - day - 1
        day += 1 + r[5] % max(1, left)
        out.append(self._event(day, sec(2), entry, "exited", reason=reason))
        return out
