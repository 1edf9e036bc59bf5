"""Live events over a snapshot answer exactly like a snapshot built with those events."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest

from indexer.records import RecordError
from screening.overlay import Overlay

from .differential import (RandomChooser, build_snapshot, core_check, gen_checks, gen_source,
                           normalise_core)
from .naive import Naive


def _split_live(seed: int) -> None:
    source = gen_source(RandomChooser(seed))
    if not source.events:
        return
    rng = random.Random(seed)
    cut = rng.randint(0, len(source.events))
    early, live = source.events[:cut], source.events[cut:]
    # A listing that earlier events refer to must be in the base too.
    needed = {ev.get("entry") for ev in early}
    moved = [ev for ev in live if ev["type"] == "listed" and ev["record"]["id"] in needed]
    live = [ev for ev in live if ev not in moved]
    base = type(source)(**{**source.__dict__, "events": early + moved})
    checks = gen_checks(RandomChooser(seed + 1), source, Naive(**source.records()), 40)
    with tempfile.TemporaryDirectory() as tmp:
        full = build_snapshot(source, Path(tmp) / "full")
        partial = build_snapshot(base, Path(tmp) / "partial")
        overlay = Overlay(partial)
        # An issuer lists an entry before posting events about it; listings commute.
        for event in sorted(live, key=lambda ev: ev["type"] != "listed"):
            try:
                overlay.validate(event)
            except RecordError as exc:
                # Live, an event on a purged entry is refused; in a build it changes nothing.
                assert exc.reason == "unknown_entry" and full.entry_row(event["entry"]) is None
                continue
            assert overlay.apply(event)
            assert not overlay.apply(event), "an event applies once"
        for chk in checks:
            expected = normalise_core(core_check(full, chk))
            from screening.decision import Caller, CheckRequest, check
            got = normalise_core(check(partial, CheckRequest(
                subject=chk.subject, scenario=chk.scenario, type=chk.type, region=chk.region,
                as_of=chk.as_of, consent=chk.consent), Caller(
                unit="t", tier=chk.tier, region=chk.caller_region,
                adopted=frozenset(chk.adopted)), overlay=overlay))
            assert got == expected, (chk, cut, live)


@pytest.mark.parametrize("seed", range(40))
def test_live_events_equal_rebuilt_snapshot(seed: int) -> None:
    _split_live(seed)


def test_events_folded_into_snapshot_are_skipped() -> None:
    source = gen_source(RandomChooser(7))
    with tempfile.TemporaryDirectory() as tmp:
        snap = build_snapshot(source, Path(tmp))
        overlay = Overlay(snap)
        for event in source.events:
            assert not overlay.apply(event)
        assert not overlay


def test_validate_refuses_unknown_and_derived_entries() -> None:
    source = gen_source(RandomChooser(3))
    with tempfile.TemporaryDirectory() as tmp:
        overlay = Overlay(build_snapshot(source, Path(tmp)))
        with pytest.raises(RecordError) as unknown:
            overlay.validate({"id": "L-1", "at": "2026-01-01", "entry": "NOPE",
                              "type": "revoked"})
        assert unknown.value.reason == "unknown_entry"
        with pytest.raises(RecordError) as derived:
            overlay.validate({"id": "L-2", "at": "2026-01-01", "entry": "X/watch",
                              "type": "revoked"})
        assert derived.value.reason == "derived_entry"
