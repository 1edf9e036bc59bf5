"""Rate limits as GCRA (generic cell rate algorithm, a token bucket without a refill loop).

A unit limited to ``rate`` requests a second may burst ``max(1, rate)`` requests (one second of
its rate) and is then paced at one request every ``1/rate`` seconds. The state is one number
per unit, the *theoretical arrival time* (TAT): a request at ``now`` is allowed when
``TAT - now <= burst_tolerance`` and moves TAT to ``max(TAT, now) + 1/rate``; otherwise it may
retry after ``TAT - burst_tolerance - now`` seconds.

``LocalLimiter`` keeps TATs in process memory (embedded backbone, and the Redis backbone's
fallback while Redis is unreachable); ``GCRA_LUA`` runs the same arithmetic inside Redis, with
Redis's clock, so that every replica shares one limit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    retry_after: float  # seconds; 0.0 when allowed

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.allowed, self.retry_after))


def parameters(rate_per_s: float) -> tuple[float, float]:
    """(emission interval, burst tolerance) in seconds."""
    if not rate_per_s > 0:
        raise ValueError("rate_per_s must be > 0")
    interval = 1.0 / rate_per_s
    return interval, max(1.0, rate_per_s) * interval - interval


class LocalLimiter:
    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, unit: str, rate_per_s: float) -> Admission:
        interval, tolerance = parameters(rate_per_s)
        with self._lock:
            now = self._clock()  # type: ignore[operator]
            tat = max(self._tat.get(unit, now), now)
            wait = tat - tolerance - now
            if wait > 1e-9:
                return Admission(False, wait)
            self._tat[unit] = tat + interval
            if len(self._tat) > 100_000:  # forget idle units (their TAT is in the past)
                self._tat = {u: t for u, t in self._tat.items() if t > now}
            return Admission(True, 0.0)


# ARGV: emission interval and burst tolerance in integer microseconds; returns {allowed, wait µs}
GCRA_LUA = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return {0, wait} end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 1)
return {1, 0}
"""
