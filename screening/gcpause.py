"""``paused_gc()``: pause the cyclic garbage collector around work that makes many short-lived,
acyclic objects (a batch of check results, a chunk of bulk rows).

Reference counting frees them all; the collector would only walk them again and again as they
pile up (measured: a 10,000-subject batch 1.3–1.5 times, a bulk chunk 2.3 times slower with
it). Process-wide but safe in threads: whoever paused a running collector restarts it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
