"""Shared fixtures: real snapshots built once per session from small hand-written sources."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sourcekit import write_source


@pytest.fixture(scope="session", autouse=True)
def _own_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The command line reads the service's data folder (its live events) by default: the
    tests' default is an empty folder of their own, not whatever ``./screening-data`` the
    working directory has (tests that need one name it)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SCREENING_DATA", str(tmp_path_factory.mktemp("screening-data")))
    mp.delenv("SCREENING_REDIS", raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def build_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """``build_snapshot(name, lists=..., entries=..., ...)``: write the source, build it with
    ``indexer.build.build`` (no rejects allowed) and return the opened ``Snapshot``.

    Built once per name for the whole session, so module fixtures can share a snapshot.
    """
    cache: dict[str, Any] = {}

    def _build(name: str, **source: Any) -> Any:
        if name not in cache:
            from indexer.build import build
            from indexer.snapshot import Snapshot

            root: Path = tmp_path_factory.mktemp(name)
            src = write_source(root / "source", **source)
            result = build(src, root / "out")
            cache[name] = Snapshot.open(result.path)
        return cache[name]

    return _build
