"""Snapshot format: round trip, versioning, atomic placement, corrupt snapshots refused."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from indexer import cli as indexer_cli
from indexer.build import build
from indexer.snapshot import CorruptSnapshot, Snapshot, snapshot_folders, write

from .sourcekit import write_source

ORG = "91350100M000100Y43"
PERSON = "11010519491231002X"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    return write_source(
        root,
        lists=[{"code": "b", "name": "黑", "kind": "black", "authority": "法院",
                "exit_watch_list": "w", "exit_watch_days": 30},
               {"code": "w", "name": "关注", "kind": "watch", "publicity": "shared"}],
        scenarios=[{"code": "bidding", "name": "招标投标"}],
        measures=[{"id": "M1", "name": "限制", "lists": ["b"], "targets": ["subject"],
                   "scenarios": ["bidding"], "force": "mandatory", "effect": "block"}],
        entries=[{"id": "E1", "list": "b", "valid_from": "2025-01-01", "valid_until": "2026-01-01",
                  "subject": {"type": "org", "id": ORG, "name": "某公司", "aliases": ["350100100012345"]},
                  "persons": [{"role": "legal_rep", "id": PERSON, "name": "张三"}]}],
        relations=[{"org": ORG, "person": PERSON, "role": "principal", "name": "张三"}])


def test_round_trip_arrays(tmp_path: Path) -> None:
    arrays = {"a": np.arange(10, dtype=np.int64), "b": np.array([b"x" * 18], dtype="S18"),
              "empty": np.zeros(0, dtype=np.uint32), "pairs": np.arange(6, dtype=np.uint32).reshape(3, 2)}
    folder, version = write(tmp_path, arrays={**arrays, **_minimal_index()}, catalog={"k": [1]},
                            counts={"n": 1}, source={})
    snap = Snapshot(folder)
    assert snap.version == version and folder.name == version
    for name, arr in arrays.items():
        assert snap.arrays[name].dtype == arr.dtype
        assert np.array_equal(snap.arrays[name], arr)
    assert snap.catalog == {"k": [1]}
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def _minimal_index() -> dict[str, np.ndarray]:
    from pyroaring import FrozenBitMap
    empty = np.frombuffer(FrozenBitMap().serialize(), dtype=np.uint8)
    return {"key_hash": np.zeros(0, np.uint64), "key_subject": np.zeros(0, np.uint32),
            "key_alias": np.zeros(0, np.uint32), "key_filter": empty, "orgcode_filter": empty,
            "subject_key": np.zeros(0, "S18"), "subject_type": np.zeros(0, np.uint8),
            "subject_name": np.zeros(0, np.uint32), "strings_off": np.zeros(1, np.uint64),
            "strings_blob": np.zeros(0, np.uint8)}


def test_build_then_open_newest(tmp_path: Path, source: Path) -> None:
    first = build(source, tmp_path / "snaps")
    os.utime(first.path)
    snap = Snapshot.open(tmp_path / "snaps")
    assert snap.version == first.version
    assert snap.counts["entries"] == 2 and snap.counts["derived_entries"] == 1
    assert snap.lookup(ORG) is not None and snap.lookup("350100100012345").alias
    assert snap.lookup("91350100M000100Y4X") is None
    assert snap.lookup_org_code("M000100Y4") == snap.lookup(ORG).subject
    files = {f["path"] for f in snap.manifest["source"]["files"]}
    assert "entries/entries.jsonl" in files and "lists.jsonl" in files


def test_same_source_same_content_checksum(tmp_path: Path, source: Path) -> None:
    a = build(source, tmp_path / "a")
    b = build(source, tmp_path / "b")
    assert a.version.split("-")[-1] == b.version.split("-")[-1]


@pytest.mark.parametrize("damage", ["flip_data", "truncate_data", "drop_catalog", "bad_manifest",
                                    "other_format", "flip_manifest_offset",
                                    "flip_manifest_dtype", "old_manifest_misaligned",
                                    "old_manifest_short_array", "old_manifest_no_arrays"])
def test_corrupt_snapshot_refused(tmp_path: Path, source: Path, damage: str) -> None:
    good = build(source, tmp_path / "good").path
    result = build(source, tmp_path / "bad")
    folder = result.path
    data = folder / "data.bin"
    if damage == "flip_data":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "truncate_data":
        data.write_bytes(data.read_bytes()[:-8])
    elif damage == "drop_catalog":
        (folder / "catalog.json").unlink()
    elif damage == "bad_manifest":
        (folder / "manifest.json").write_text("{not json")
    elif damage.startswith(("flip_manifest", "old_manifest")):
        # one changed byte in the manifest's table of arrays: an array read from the wrong
        # place answers every check wrong (key_hash one byte off: everything "pass") or fails
        raw = (folder / "manifest.json").read_bytes()
        manifest = orjson.loads(raw)
        spec = manifest["arrays"]["key_hash"]
        if damage == "flip_manifest_offset":
            raw = raw.replace(b'"offset": %d,' % spec["offset"],
                              b'"offset": %d,' % (spec["offset"] + 1), 1)
        elif damage == "flip_manifest_dtype":
            raw = raw.replace(b'"dtype": "<u8"', b'"dtype": "<u4"', 1)
        else:  # a manifest of a build before it had a checksum: judged by its sense alone
            del manifest["manifest_checksum"]
            if damage == "old_manifest_misaligned":
                spec["offset"] += 1
            elif damage == "old_manifest_short_array":
                spec["shape"] = [spec["shape"][0] + 1]
            else:
                del manifest["arrays"]
            raw = orjson.dumps(manifest)
        (folder / "manifest.json").write_bytes(raw)
    else:
        manifest = orjson.loads((folder / "manifest.json").read_bytes())
        manifest["format"] = 999
        (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    with pytest.raises(CorruptSnapshot):
        Snapshot(folder)
    assert indexer_cli.main(["verify", str(folder)]) == 1
    assert indexer_cli.main(["verify", str(good)]) == 0


def test_a_manifest_without_its_checksum_still_opens(tmp_path: Path, source: Path) -> None:
    """Snapshots built before the manifest had a checksum keep being served."""
    folder = build(source, tmp_path).path
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    del manifest["manifest_checksum"]
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    assert Snapshot(folder).version == manifest["version"]
    assert indexer_cli.main(["verify", str(folder)]) == 0


def test_incomplete_folder_is_not_a_snapshot(tmp_path: Path, source: Path) -> None:
    build(source, tmp_path)
    (tmp_path / ".tmp-123").mkdir()
    (tmp_path / "half").mkdir()  # no manifest: never considered
    assert [p.name for p in snapshot_folders(tmp_path)] == [p.name for p in tmp_path.iterdir()
                                                            if (p / "manifest.json").exists()]


def test_cli_build_prints_path_and_version_last(tmp_path: Path, source: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert indexer_cli.main(["build", str(source), "--out", str(tmp_path), "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    path, version = last.split(" ")
    assert Path(path).name == version and (Path(path) / "manifest.json").is_file()


def test_cli_build_fails_on_rejects(tmp_path: Path, source: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "src"
    write_source(bad, lists=[{"code": "b", "kind": "black"}],
                 entries=[{"id": "E1", "list": "nope", "valid_from": "2025-01-01",
                           "subject": {"type": "org", "id": ORG}}])
    assert indexer_cli.main(["build", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "entries/entries.jsonl:1: unknown_list" in err
    assert indexer_cli.main(["build", str(bad), "--out", str(tmp_path / "o"), "--quiet",
                             "--max-rejects", "1"]) == 0


def test_cli_inspect(tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build(source, tmp_path)
    assert indexer_cli.main(["inspect", str(tmp_path), ORG]) == 0
    view = orjson.loads(capsys.readouterr().out)
    assert [e["entry"] for e in view["entries"]] == ["E1", "E1/watch"]
    assert view["relations"] == [{"id": PERSON, "role": "principal"}]
    assert indexer_cli.main(["inspect", str(tmp_path), "E1/watch"]) == 0
    entry = orjson.loads(capsys.readouterr().out)
    assert entry["valid_from"] == "2026-01-01T00:00:00+08:00"
    assert entry["valid_until"] == "2026-01-31T00:00:00+08:00"
    assert entry["persons"] == [{"role": "legal_rep", "id": PERSON}]
    # the 9-character organisation code of a listed USCC finds it, as a check does
    for code in (ORG[8:17], f"{ORG[8:16]}-{ORG[16]}"):
        assert indexer_cli.main(["inspect", str(tmp_path), code]) == 0, code
        assert orjson.loads(capsys.readouterr().out)["subject"]["id"] == ORG


def test_a_killed_builds_temporary_folder_is_swept(tmp_path: Path, source: Path) -> None:
    """A build killed mid-write leaves ``.tmp-<pid>-…``; the next build removes it once its
    process is gone and it has not changed for an hour (a live build's is left alone)."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".tmp-{dead}-1"
    live = tmp_path / f".tmp-{os.getpid()}-2"
    fresh = tmp_path / f".tmp-{dead}-3"
    for folder in (stale, live, fresh):
        folder.mkdir()
        (folder / "data.bin").write_bytes(b"x" * 10)
    old = time.time() - 7200
    for folder in (stale, live):
        os.utime(folder, (old, old))
    build(source, tmp_path)
    assert not stale.exists() and live.exists() and fresh.exists()
