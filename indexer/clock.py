"""Instants (SPEC §3, §5): parse, render and shift times in China Standard Time.

An instant is an ``int`` of microseconds since the Unix epoch; ``NEVER`` stands for "no end".
A bare ``YYYY-MM-DD`` is 00:00 China Standard Time; an ISO-8601 time without an offset is
China Standard Time too.
"""

from __future__ import annotations

import datetime as _dt
import functools
import time as _time

CST = _dt.timezone(_dt.timedelta(hours=8))
NEVER = 2**63 - 1
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_CST = _EPOCH.astimezone(CST)
_US = _dt.timedelta(microseconds=1)
_US_PER_S = 1_000_000


class BadTime(ValueError):
    """Not a ``YYYY-MM-DD`` date or an ISO-8601 time."""


def parse_instant(text: str, *, naive: bool = True) -> int:
    """Parse a date or ISO-8601 time into microseconds since the epoch. A time without an
    offset is China Standard Time (``as_of``, SPEC §8), unless ``naive=False`` (source data,
    SPEC §3: a date, or a time *with* an offset), which refuses it."""
    if not isinstance(text, str):
        raise BadTime(f"expected a date or ISO-8601 time string, got {type(text).__name__}")
    s = text.strip()
    try:
        if len(s) == 10:
            d = _dt.date.fromisoformat(s)
            moment = _dt.datetime(d.year, d.month, d.day, tzinfo=CST)
        else:
            if s.endswith(("z", "Z")):
                s = s[:-1] + "+00:00"
            moment = _dt.datetime.fromisoformat(s)
    except ValueError:
        raise BadTime(f"{text!r} is not a YYYY-MM-DD date or an ISO-8601 time") from None
    if moment.tzinfo is None:
        if not naive:
            raise BadTime(f"{text!r} has no offset: a source time is a YYYY-MM-DD date or an "
                          "ISO-8601 time with an offset (+08:00)")
        moment = moment.replace(tzinfo=CST)
    return (moment - _EPOCH) // _US


def to_datetime(instant: int) -> _dt.datetime:
    return _EPOCH_CST + _dt.timedelta(microseconds=instant)


@functools.lru_cache(maxsize=4096)
def _format_second(second: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` in CST of a whole second since the epoch."""
    return to_datetime(second * _US_PER_S).isoformat()[:-6]


def format_instant(instant: int) -> str:
    """Render an instant as ISO-8601 in +08:00 (microseconds only when not zero), exactly as
    ``datetime.isoformat`` does; the date and time of day are formatted once per second."""
    second, micro = divmod(instant, _US_PER_S)
    head = _format_second(second)
    return f"{head}.{micro:06d}+08:00" if micro else head + "+08:00"


def now() -> int:
    return _time.time_ns() // 1000


def minus_years(instant: int, years: int) -> int:
    """The same wall-clock time ``years`` calendar years earlier in CST (29 Feb → 28 Feb)."""
    moment = to_datetime(instant)
    year = moment.year - years
    day = moment.day
    if moment.month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 or year % 400 == 0)):
        day = 28
    if year < 1:
        return -(2**62)
    earlier = moment.replace(year=year, day=day)
    return (earlier - _EPOCH) // _US


def plus_days(instant: int, days: int) -> int:
    return instant + days * 86_400_000_000
