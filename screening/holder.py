"""The snapshot being served, and the watcher that rolls a new one in (SPEC §6).

``SnapshotHolder.current`` is one reference to a ``Loaded`` snapshot. A request reads it once
and decides everything on that object, so a swap never mixes two versions in one answer and
in-flight requests finish on the old snapshot (its memory map is released when the last
reference goes). ``refresh`` looks in the folder for snapshots built after the current one,
newest first; each is verified (manifest, checksums, array bounds) and warmed (the decision's
per-snapshot tables) *beside* the serving one, and only then swapped in. A corrupt or
incomplete folder is refused, remembered with its file stamps (tried again only if they
change), logged and counted; the old snapshot keeps serving.

Snapshots are ordered by the ``built_at`` of their manifests (then by folder name), not by
folder name alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer import clock
from indexer.snapshot import CorruptSnapshot, Snapshot, read_manifest, snapshot_folders

from .decision import rules_for
from .errors import Unavailable

log = logging.getLogger(__name__)
_STAMPED = ("manifest.json", "catalog.json", "data.bin")


@dataclass(frozen=True, slots=True)
class Loaded:
    """A verified snapshot and when it came into service."""

    snapshot: Snapshot
    folder: Path
    version: str
    built_at: float
    loaded_at: float
    counts: dict[str, int]
    applied_events: tuple[dict[str, Any], ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        """The body of ``GET /v1/snapshot``."""
        return {"version": self.version,
                "built_at": clock.format_instant(int(self.built_at * 1_000_000)),
                "loaded_at": clock.format_instant(int(self.loaded_at * 1_000_000)),
                "age_s": round(max(0.0, time.time() - self.built_at), 3),
                "counts": dict(self.counts),
                "applied_events": list(self.applied_events)}


def _stamp(folder: Path) -> tuple[int, ...]:
    out: list[int] = []
    for name in _STAMPED:
        try:
            st = os.stat(folder / name)
            out.extend((st.st_mtime_ns, st.st_size))
        except OSError:
            out.extend((-1, -1))
    return tuple(out)


def load(folder: Path) -> Loaded:
    """Open, verify and warm one snapshot folder; raise ``CorruptSnapshot`` if unusable."""
    try:
        snap = Snapshot(folder)
        rules_for(snap)
    except CorruptSnapshot:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CorruptSnapshot(f"{folder}: {type(exc).__name__}: {exc}") from None
    return Loaded(snapshot=snap, folder=folder, version=snap.version,
                  built_at=float(snap.built_at), loaded_at=time.time(),
                  counts=dict(snap.counts))


class SnapshotHolder:
    """The current snapshot of one process, and its refresh from ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._current: Loaded | None = None
        self._built: dict[Path, tuple[tuple[int, ...], float | None]] = {}
        self.refused: dict[str, str] = {}  # folder name -> reason
        self.swaps = 0
        self.refusals = 0
        self._refused_stamp: dict[Path, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        # called with a loaded snapshot before it is swapped in (live events replay into it)
        self.prepare: Callable[[Loaded], None] | None = None

    @property
    def current(self) -> Loaded | None:
        return self._current

    def require(self) -> Loaded:
        loaded = self._current
        if loaded is None:
            raise Unavailable("no_snapshot", "no snapshot is loaded yet; try again shortly")
        return loaded

    def set(self, loaded: Loaded) -> None:
        """Swap in an already loaded snapshot (one reference assignment)."""
        previous, self._current = self._current, loaded
        self.swaps += 1
        log.info("snapshot.swap version=%s previous=%s folder=%s", loaded.version,
                 previous.version if previous else None, loaded.folder)

    def _built_at(self, folder: Path) -> float | None:
        """The manifest's ``built_at``; None (and refused) when unreadable. Cached by stamp."""
        stamp = _stamp(folder)
        cached = self._built.get(folder)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            built = float(read_manifest(folder)["built_at"])
        except (CorruptSnapshot, KeyError, TypeError, ValueError) as exc:
            self._refuse(folder, str(exc))
            built = None
        self._built[folder] = (stamp, built)
        return built

    def _refuse(self, folder: Path, reason: str) -> None:
        self.refused[folder.name] = reason
        self.refusals += 1
        log.warning("snapshot.refused folder=%s reason=%s", folder, reason)

    def candidates(self) -> list[Path]:
        """Snapshot folders built after the current one, newest first."""
        current = self._current
        found: list[tuple[float, str, Path]] = []
        for folder in snapshot_folders(self.root):
            if current is not None and folder == current.folder:
                continue
            built = self._built_at(folder)
            if built is None:
                continue
            if current is None or (built, folder.name) > (current.built_at, current.folder.name):
                found.append((built, folder.name, folder))
        found.sort(reverse=True)
        return [f for _, _, f in found]

    def refresh(self) -> Loaded | None:
        """Load and swap in the newest usable snapshot newer than the current one."""
        with self._lock:
            for folder in self.candidates():
                stamp = _stamp(folder)
                if self._refused_stamp.get(folder) == stamp:
                    continue  # refused before, unchanged since
                try:
                    loaded = load(folder)
                except CorruptSnapshot as exc:
                    self._refused_stamp[folder] = stamp
                    self._refuse(folder, str(exc))
                    continue
                self.refused.pop(folder.name, None)
                self._refused_stamp.pop(folder, None)
                if self.prepare is not None:
                    try:
                        self.prepare(loaded)
                    except Exception:  # never refuse a good snapshot over its overlay
                        log.exception("snapshot.prepare_failed folder=%s", folder)
                self.set(loaded)
                return loaded
            return None

    async def watch(self, interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled (runs in each worker)."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the watcher die: log and look again
                log.exception("snapshot.watch_failed root=%s", self.root)
            await asyncio.sleep(interval)
