"""Snapshot rollout (SPEC §6): verify beside the old, swap one reference, refuse corrupt ones."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

import pytest

from indexer.build import build
from screening.decision import Caller, CheckRequest, check
from screening.errors import Unavailable
from screening.holder import SnapshotHolder
from tests.servicekit import ENTRIES, ORG_BLACK, ORG_CLEAN, write_fixture_source

AGENCY = Caller(tier="agency", region="350100")


def _decide(holder: SnapshotHolder, subject: str) -> str:
    loaded = holder.require()
    return str(check(loaded.snapshot, CheckRequest(subject=subject,
                                                   scenario="government_procurement",
                                                   as_of="2026-06-01"), AGENCY)["decision"])


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Source A (the fixture) and source B (ORG_BLACK delisted, ORG_CLEAN listed)."""
    root = tmp_path_factory.mktemp("sources")
    a = write_fixture_source(root / "a")
    swapped = [dict(e, subject=dict(e["subject"], id=ORG_CLEAN)) if e["id"] == "E-1" else e
               for e in ENTRIES]
    b = write_fixture_source(root / "b", swapped)
    return a, b


def test_empty_folder_is_not_ready(tmp_path: Path) -> None:
    holder = SnapshotHolder(tmp_path / "snapshots")
    assert holder.refresh() is None
    with pytest.raises(Unavailable):
        holder.require()


def test_swap_to_newer_and_in_flight_finish_on_old(tmp_path: Path,
                                                   sources: tuple[Path, Path]) -> None:
    out = tmp_path / "snapshots"
    first = build(sources[0], out)
    holder = SnapshotHolder(out)
    old = holder.refresh()
    assert old is not None and old.version == first.version
    assert holder.refresh() is None  # nothing newer
    second = build(sources[1], out)
    new = holder.refresh()
    assert new is not None and new.version == second.version
    assert holder.current is new and holder.swaps == 2
    assert _decide(holder, ORG_BLACK) == "pass" and _decide(holder, ORG_CLEAN) == "block"
    # a request that took the old reference before the swap still decides on the old data
    result = check(old.snapshot, CheckRequest(subject=ORG_BLACK,
                                              scenario="government_procurement"), AGENCY)
    assert result["decision"] == "block" and result["snapshot"] == first.version


def test_corrupt_snapshot_is_refused_and_old_keeps_serving(tmp_path: Path,
                                                           sources: tuple[Path, Path]) -> None:
    out = tmp_path / "snapshots"
    first = build(sources[0], out)
    holder = SnapshotHolder(out)
    holder.refresh()
    bad = build(sources[1], out)
    data = bad.path / "data.bin"
    original = data.read_bytes()
    data.write_bytes(original[:100] + bytes([original[100] ^ 0xFF]) + original[101:])
    assert holder.refresh() is None
    assert holder.require().version == first.version
    assert bad.path.name in holder.refused and "checksum" in holder.refused[bad.path.name]
    assert holder.refusals == 1
    assert holder.refresh() is None and holder.refusals == 1  # not tried again unchanged
    data.write_bytes(original)  # repaired: its stamps change, so it is tried again
    os.utime(data, ns=(1, 1))
    loaded = holder.refresh()
    assert loaded is not None and loaded.version == bad.version
    assert bad.path.name not in holder.refused


@pytest.mark.parametrize("damage", ["no_data", "no_catalog", "bad_manifest", "truncated"])
def test_incomplete_snapshot_is_refused(tmp_path: Path, sources: tuple[Path, Path],
                                        damage: str) -> None:
    out = tmp_path / "snapshots"
    first = build(sources[0], out)
    holder = SnapshotHolder(out)
    holder.refresh()
    bad = build(sources[1], out).path
    if damage == "no_data":
        (bad / "data.bin").unlink()
    elif damage == "no_catalog":
        (bad / "catalog.json").unlink()
    elif damage == "bad_manifest":
        (bad / "manifest.json").write_text("{not json")
    else:
        with (bad / "data.bin").open("r+b") as f:
            f.truncate(16)
    assert holder.refresh() is None
    assert holder.require().version == first.version
    assert bad.name in holder.refused


def test_first_load_skips_a_corrupt_newest(tmp_path: Path, sources: tuple[Path, Path]) -> None:
    out = tmp_path / "snapshots"
    good = build(sources[0], out)
    bad = build(sources[1], out).path
    (bad / "catalog.json").write_text("[]")
    loaded = SnapshotHolder(out).refresh()
    assert loaded is not None and loaded.version == good.version


def test_order_is_by_build_time_not_folder_name(tmp_path: Path,
                                                sources: tuple[Path, Path]) -> None:
    out = tmp_path / "snapshots"
    build(sources[0], out)
    newer = build(sources[1], out)
    renamed = out / "0-sorts-first"
    shutil.move(newer.path, renamed)
    loaded = SnapshotHolder(out).refresh()
    assert loaded is not None and loaded.version == newer.version and loaded.folder == renamed


def test_a_snapshot_folder_itself_is_accepted(tmp_path: Path,
                                              sources: tuple[Path, Path]) -> None:
    result = build(sources[0], tmp_path / "snapshots")
    loaded = SnapshotHolder(result.path).refresh()
    assert loaded is not None and loaded.version == result.version


def test_watch_swaps_in_the_background(tmp_path: Path, sources: tuple[Path, Path]) -> None:
    out = tmp_path / "snapshots"
    build(sources[0], out)
    holder = SnapshotHolder(out)

    async def scenario() -> str:
        task = asyncio.create_task(holder.watch(0.02))
        try:
            for _ in range(250):
                if holder.current is not None:
                    break
                await asyncio.sleep(0.02)
            first = holder.require().version
            newer = await asyncio.to_thread(build, sources[1], out)
            for _ in range(250):
                if holder.require().version != first:
                    break
                await asyncio.sleep(0.02)
            assert holder.require().version == newer.version
            return first
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert holder.swaps == 2
