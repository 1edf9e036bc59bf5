"""Docs that can't drift: every route, error code and metric of the HTTP service is in
docs/http-api.md, and the Dockerfile keeps its promises (slim base, non-root, volume,
health check)."""

from __future__ import annotations

import re
from pathlib import Path

from screening.app import create_app
from screening.holder import SnapshotHolder
from screening.settings import Settings
from tests.test_api_errors import ERRORS

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "http-api.md").read_text(encoding="utf-8")


def test_every_route_is_documented(tmp_path: Path) -> None:
    app = create_app(Settings(snapshot=tmp_path), holder=SnapshotHolder(tmp_path), watch=False)
    paths = {getattr(r, "path", "") for r in app.routes} - {"/docs/oauth2-redirect", "/redoc"}
    for path in paths:
        assert f"`{path}" in DOC or f" {path}`" in DOC, path


def test_every_error_code_is_documented() -> None:
    codes = {case[6] for case in ERRORS} | {"bad_item", "rate_limited", "no_snapshot",
                                            "tier_forbidden", "bad_content_length"}
    for code in codes:
        assert f"`{code}`" in DOC, code


def test_every_metric_is_documented(tmp_path: Path) -> None:
    app = create_app(Settings(snapshot=tmp_path), holder=SnapshotHolder(tmp_path), watch=False)
    text = app.service.metrics.render().decode()
    names = set(re.findall(r"^# TYPE (\w+)", text, re.M))
    assert names
    for name in names:
        documented = name if name in DOC else name + "_total"
        assert documented in DOC, name


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert '"/snapshots"' in text and "SCREENING_SNAPSHOT=/snapshots" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["screening", "serve"]' in text
