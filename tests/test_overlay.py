"""Live events over a snapshot answer exactly like a snapshot built with those events."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import pytest

from indexer.records import RecordError
from screening.overlay import Overlay

from .differential import (RandomChooser, build_snapshot, core_check, gen_checks, gen_source,
                           normalise_core)
from .naive import Naive


def _split(seed: int) -> tuple[Any, Any, list[dict[str, Any]], list[Any], int] | None:
    """A generated source, its base (the events before a random cut), the live events after
    it, checks, and the cut; None when the source has no events."""
    source = gen_source(RandomChooser(seed))
    if not source.events:
        return None
    rng = random.Random(seed)
    cut = rng.randint(0, len(source.events))
    early, live = source.events[:cut], source.events[cut:]
    # A listing that earlier events refer to must be in the base too.
    needed = {ev.get("entry") for ev in early}
    moved = [ev for ev in live if ev["type"] == "listed" and ev["record"]["id"] in needed]
    live = [ev for ev in live if ev not in moved]
    base = type(source)(**{**source.__dict__, "events": early + moved})
    checks = gen_checks(RandomChooser(seed + 1), source, Naive(**source.records()), 40)
    return source, base, live, checks, cut


def _split_live(seed: int) -> None:
    split = _split(seed)
    if split is None:
        return
    source, base, live, checks, cut = split
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


def _staged_equals_one_by_one(seed: int) -> None:
    """The events of one request, judged in file order by ``Overlay.stage`` (each against the
    state its predecessors produce), are accepted or refused exactly as when posted one at a
    time (validate, then apply), and the accepted ones apply to the same answers."""
    from screening.decision import Caller, CheckRequest, check

    split = _split(seed)
    if split is None:
        return
    source, base, live, checks, cut = split
    with tempfile.TemporaryDirectory() as tmp:
        partial = build_snapshot(base, Path(tmp) / "partial")
        one, staged = Overlay(partial), Overlay(partial)
        taken = []
        for event in live:  # posted one at a time, in file order
            try:
                one.validate(event)
            except RecordError:
                continue
            assert one.apply(event)
            taken.append(event["id"])
        stage = staged.stage()
        for event in live:  # one request, in file order (refused events left out)
            judged = stage.judge(event)
            assert not judged.repeat and judged.conflict is None
            assert judged.owners[0] is not None or event["type"] != "listed"
            try:
                stage.stage(judged, event)
            except RecordError:
                continue
        assert [ev["id"] for ev in stage.events] == taken
        assert not staged, "staging changes nothing"
        for event in stage.events:
            assert staged.apply(event)
        full = build_snapshot(source, Path(tmp) / "full") if len(taken) == len(live) else None
        for chk in checks:
            request = CheckRequest(subject=chk.subject, scenario=chk.scenario, type=chk.type,
                                   region=chk.region, as_of=chk.as_of, consent=chk.consent)
            caller = Caller(unit="t", tier=chk.tier, region=chk.caller_region,
                            adopted=frozenset(chk.adopted))
            got = normalise_core(check(partial, request, caller, overlay=staged))
            assert got == normalise_core(check(partial, request, caller, overlay=one)), chk
            if full is not None:
                assert got == normalise_core(core_check(full, chk)), (chk, cut, live)


@pytest.mark.parametrize("seed", range(40))
def test_staged_request_equals_events_posted_one_at_a_time(seed: int) -> None:
    _staged_equals_one_by_one(seed)


def test_staging_sees_earlier_events_of_the_request() -> None:
    source = gen_source(RandomChooser(3))
    listing = next((ev for ev in source.events if ev["type"] == "listed"), None)
    if listing is None:
        pytest.skip("no listing in this source")
    record = dict(listing["record"], id="NEW-1")
    with tempfile.TemporaryDirectory() as tmp:
        overlay = Overlay(build_snapshot(source, Path(tmp)))
        stage = overlay.stage()
        new = {"id": "L-1", "at": "2026-01-01", "type": "listed", "record": record}
        stage.stage(stage.judge(new), new)
        opened = {"id": "L-2", "at": "2026-02-01", "entry": "NEW-1", "type": "objection_opened"}
        stage.stage(stage.judge(opened), opened)
        revoked = {"id": "L-3", "at": "2026-01-15", "entry": "NEW-1", "type": "revoked"}
        stage.stage(stage.judge(revoked), revoked)
        after = {"id": "L-4", "at": "2026-03-01", "entry": "NEW-1", "type": "objection_closed",
                 "result": "rejected"}
        with pytest.raises(RecordError) as purged:
            stage.stage(stage.judge(after), after)
        assert purged.value.reason == "unknown_entry"
        again = dict(new, id="L-5")
        with pytest.raises(RecordError) as duplicate:
            stage.stage(stage.judge(again), again)
        assert duplicate.value.reason == "duplicate_id"
        assert stage.judge(new).repeat and stage.judge(dict(new, at="2026-01-02")).conflict
        assert [ev["id"] for ev in stage.events] == ["L-1", "L-2", "L-3"]
        # the overlay itself is untouched until the events are applied from the log
        assert not overlay and overlay.entry_row("NEW-1") is None
        for event in stage.events:
            assert overlay.apply(event)
        row = overlay.entry_row("NEW-1")
        assert row is not None and overlay.state(row).purged
        # a second listing of an id in the log (two replicas racing) applies on none
        with pytest.raises(RecordError) as raced:
            overlay.apply(again)
        assert raced.value.reason == "duplicate_id" and overlay.entry_row("NEW-1") == row
        assert overlay.accepted["L-5"].event == again  # known, so a re-post is judged
        assert overlay.accepted["L-1"].owner == (record["list"], overlay.owner(
            stage.judge(new).event)[1])  # type: ignore[index]
