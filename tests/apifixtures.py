"""Fixtures and helpers of the in-process HTTP tests (imported by the test modules)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.build import build
from screening.app import create_app
from screening.holder import SnapshotHolder
from screening.settings import Settings
from tests.servicekit import AS_OF, ASGIClient, auth, write_accounts, write_fixture_source


@pytest.fixture(scope="module")
def fixture_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("api")
    build(write_fixture_source(root / "source"), root / "snapshots")
    return root / "snapshots", write_accounts(root / "accounts.jsonl")


MakeClient = Callable[..., ASGIClient]


@pytest.fixture
def make_client(fixture_dirs: tuple[Path, Path]) -> Iterator[MakeClient]:
    snapshots, accounts = fixture_dirs

    def make(*, fastpath: bool = True, loaded: bool = True, recorder: Any = None,
             **settings: Any) -> ASGIClient:
        s = Settings(snapshot=snapshots, accounts=accounts, **settings)
        holder = SnapshotHolder(snapshots if loaded else snapshots / "missing")
        holder.refresh()
        app = create_app(s, holder=holder, recorder=recorder, fastpath=fastpath, watch=False)
        return ASGIClient(app)

    yield make


@pytest.fixture(params=[True, False], ids=["fastpath", "route"])
def fastpath(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def client(make_client: MakeClient, fastpath: bool) -> ASGIClient:
    return make_client(fastpath=fastpath)


def post_check(client: ASGIClient, who: str = "agency", **body: Any) -> Any:
    body.setdefault("scenario", "government_procurement")
    body.setdefault("as_of", AS_OF)
    return client.post("/v1/check", json=body, headers=auth(who))


def decision(client: ASGIClient, who: str, subject: str, **body: Any) -> str:
    r = post_check(client, who, subject=subject, **body)
    assert r.status_code == 200, r.text
    return str(r.json()["decision"])
