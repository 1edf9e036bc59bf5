"""Cooperative yielding for the shipper process, which shares a core with the checks it records.

The kernel's fair scheduler (EEVDF since Linux 6.6) lets a running task finish its slice
(``RUN_TO_PARITY``; ~1.5 ms on two CPUs) before a task that just woke up gets the CPU, whatever
their nice values. A shipper applying a second's batch is CPU-bound for tens of milliseconds:
each time the serving process's socket wakes it inside such a slice, its checks waited up to a
slice for the core — the tail of the check latency at half of peak load. Giving the CPU up
every few hundred microseconds (``os.sched_yield``: a no-op when nothing else wants the CPU)
bounds that wait by the work between two ``step`` calls instead.

``step`` costs a decrement until ``every`` steps have passed; only a process that called
``courteous`` yields at all (a serving process calling the same code does not).
"""

from __future__ import annotations

import os

_every = 0
_left = 0


def courteous(every: int) -> None:
    """Yield the CPU every ``every`` steps from now on (0: never)."""
    global _every, _left
    _every = _left = max(0, every)


def step() -> None:
    """One unit of work done (a spool line read, a record filed)."""
    global _left
    if _every:
        _left -= 1
        if _left <= 0:
            _left = _every
            os.sched_yield()
