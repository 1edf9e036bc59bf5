"""Prometheus metrics (``GET /metrics``), cheap enough for the inline check path.

* ``screening_request_duration_seconds{route, decision}`` — histogram of request latency; its
  ``_count`` is the request count. ``decision`` is the check's decision on ``/v1/check``,
  ``batch`` on a batch, ``error`` on any 4xx/5xx, empty elsewhere.
* ``screening_responses_total{route, status}`` — responses by HTTP status.
* ``screening_checks_total{route, decision}`` — subjects decided (each batch item counts;
  ``error`` for an item refused).
* ``screening_recorder_errors_total`` — checks the recorder failed to take.
* ``screening_snapshot_info{version}`` (1), ``screening_snapshot_built_timestamp_seconds``,
  ``screening_snapshot_age_seconds``, ``screening_snapshot_loaded``,
  ``screening_snapshot_swaps_total``, ``screening_snapshot_refusals_total`` — read from the
  holder at scrape time.
* ``screening_backbone_degraded`` (1 while feedback and audit wait in the spool for an
  unreachable backbone), ``screening_backbone_spool_bytes`` (records of this process not yet
  in the backbone: a shipper falling behind shows here first),
  ``screening_live_events_age_seconds`` (since live events were last read: how stale they may
  be), ``screening_live_events_applied`` (on the snapshot being served) — given to ``render``
  by the ``/metrics`` route, which reads the backbone's status off the event loop.

An observation is a few integer additions on plain Python lists (no locks: observations are
made on the event loop's thread); prometheus-client renders them through a custom collector.
With ``--workers N`` each worker also writes its counts to ``<share>/worker-<pid>.json``
every second (``Metrics.share``), and a scrape adds the other workers' files to its own
counts; the snapshot gauges are those of the worker that answers (all watch one folder).
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.registry import Collector

from .holder import SnapshotHolder

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
Counts = dict[str, Any]


def _empty() -> Counts:
    return {"latency": {}, "responses": {}, "checks": {}, "recorder_errors": 0}


def _merge(into: Counts, other: Counts) -> None:
    for key, (buckets, total) in other["latency"].items():
        mine = into["latency"].setdefault(key, [[0] * (len(BUCKETS) + 1), 0.0])
        mine[0] = [a + b for a, b in zip(mine[0], buckets)]
        mine[1] += total
    for name in ("responses", "checks"):
        for key, n in other[name].items():
            into[name][key] = into[name].get(key, 0) + n
    into["recorder_errors"] += other["recorder_errors"]


class Metrics(Collector):
    """The metrics of one app (and, with ``share``, of its sibling workers)."""

    def __init__(self, holder: SnapshotHolder, *, share: Path | None = None) -> None:
        self.holder = holder
        self.share = share
        # key "route\x00label" -> [bucket counts (non-cumulative, last = +Inf), sum]
        self._latency: dict[str, list[Any]] = {}
        self._responses: dict[str, int] = {}
        self._checks: dict[str, int] = {}
        self.recorder_errors = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, route: str, decision: str, status: int, seconds: float,
                checks: int = 0, tally: dict[str, int] | None = None) -> None:
        """One request; ``checks`` subjects decided as ``decision``, or a batch's ``tally``."""
        key = f"{route}\x00{decision}"
        slot = self._latency.get(key)
        if slot is None:
            slot = self._latency[key] = [[0] * (len(BUCKETS) + 1), 0.0]
        slot[0][bisect_left(BUCKETS, seconds)] += 1
        slot[1] += seconds
        rkey = f"{route}\x00{status}"
        self._responses[rkey] = self._responses.get(rkey, 0) + 1
        if checks:
            self.count_checks(route, decision, checks)
        if tally:
            for label, n in tally.items():
                self.count_checks(route, label, n)

    def count_checks(self, route: str, decision: str, n: int = 1) -> None:
        key = f"{route}\x00{decision}"
        self._checks[key] = self._checks.get(key, 0) + n

    def counts(self) -> Counts:
        return {"latency": {k: [list(v[0]), v[1]] for k, v in self._latency.items()},
                "responses": dict(self._responses), "checks": dict(self._checks),
                "recorder_errors": self.recorder_errors}

    # -- sharing between workers -----------------------------------------------------------
    def write_share(self) -> None:
        """Write this worker's counts for its siblings (atomic rename)."""
        if self.share is None:
            return
        path = self.share / f"worker-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.counts()))
        os.replace(tmp, path)

    def _all_counts(self) -> Counts:
        total = _empty()
        _merge(total, self.counts())
        if self.share is not None:
            own = f"worker-{os.getpid()}.json"
            for path in self.share.glob("worker-*.json"):
                if path.name == own:
                    continue
                try:
                    _merge(total, orjson.loads(path.read_bytes()))
                except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
        return total

    # -- prometheus ------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        counts = self._all_counts()
        latency = HistogramMetricFamily("screening_request_duration_seconds",
                                        "Request latency by route and decision",
                                        labels=["route", "decision"])
        for key, (buckets, total) in sorted(counts["latency"].items()):
            cumulative, running = [], 0
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), buckets):
                running += n
                cumulative.append((bound, running))
            latency.add_metric(key.split("\x00"), cumulative, total)
        yield latency
        responses = CounterMetricFamily("screening_responses", "Responses by route and status",
                                        labels=["route", "status"])
        for key, n in sorted(counts["responses"].items()):
            responses.add_metric(key.split("\x00"), n)
        yield responses
        checks = CounterMetricFamily("screening_checks", "Subjects decided by route and "
                                     "decision", labels=["route", "decision"])
        for key, n in sorted(counts["checks"].items()):
            checks.add_metric(key.split("\x00"), n)
        yield checks
        yield CounterMetricFamily("screening_recorder_errors", "Checks the recorder failed "
                                  "to take", value=counts["recorder_errors"])
        yield from self._snapshot()
        yield from self._backbone(self._status)

    @staticmethod
    def _backbone(status: dict[str, Any] | None) -> Iterator[Metric]:
        if status is None:
            return
        backbone = status.get("backbone")
        if backbone is not None:
            yield GaugeMetricFamily("screening_backbone_degraded", "1 while the backbone is "
                                    "degraded (feedback and audit wait in the spool)",
                                    value=1 if backbone.get("degraded") else 0)
            if backbone.get("spool_bytes") is not None:
                yield GaugeMetricFamily("screening_backbone_spool_bytes", "Spooled records of "
                                        "this process not yet in the backbone (bytes)",
                                        value=backbone["spool_bytes"])
            if backbone.get("events_age_s") is not None:
                yield GaugeMetricFamily("screening_live_events_age_seconds", "Seconds since "
                                        "live events were last read from the backbone",
                                        value=backbone["events_age_s"])
        if status.get("applied") is not None:
            yield GaugeMetricFamily("screening_live_events_applied", "Live events applied to "
                                    "the snapshot being served", value=status["applied"])

    def _snapshot(self) -> Iterator[Metric]:
        loaded = self.holder.current
        info = GaugeMetricFamily("screening_snapshot_info", "Snapshot being served (1)",
                                 labels=["version"])
        built = GaugeMetricFamily("screening_snapshot_built_timestamp_seconds",
                                  "Build time of the snapshot being served (Unix seconds)")
        age = GaugeMetricFamily("screening_snapshot_age_seconds",
                                "Seconds since the snapshot being served was built")
        if loaded is not None:
            info.add_metric([loaded.version], 1)
            built.add_metric([], loaded.built_at)
            age.add_metric([], max(0.0, time.time() - loaded.built_at))
        yield info
        yield built
        yield age
        yield GaugeMetricFamily("screening_snapshot_loaded", "1 when a snapshot is loaded",
                                value=0 if loaded is None else 1)
        yield CounterMetricFamily("screening_snapshot_swaps", "Snapshots swapped in",
                                  value=self.holder.swaps)
        yield CounterMetricFamily("screening_snapshot_refusals",
                                  "Snapshot folders refused (corrupt or incomplete)",
                                  value=self.holder.refusals)

    _status: dict[str, Any] | None = None

    def render(self, status: dict[str, Any] | None = None) -> bytes:
        """The Prometheus text; ``status``: ``{"backbone": <Front.status()>, "applied": n}``
        for the backbone gauges (read by the caller, off the event loop)."""
        self._status = status
        try:
            return generate_latest(self.registry)
        finally:
            self._status = None
