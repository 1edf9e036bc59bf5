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
    assert "HEALTHCHECK" in text and "/readyz" in text  # healthy once a snapshot is loaded
    assert 'ENTRYPOINT ["screening", "serve"]' in text
    # a named volume mounted at /data/audit (docker-compose.yml) takes the image's owner
    assert re.search(r"mkdir -p [^\n]*/data/audit", text)
    assert re.search(r"chown screening:screening [^\n]*/data/audit", text)


def test_load_balancer_does_not_take_replicas_out_for_their_503s() -> None:
    """The service's own 503s (Redis away for reads, no snapshot yet) must not mark replicas
    down: nginx would then answer every check 502 for as long as Redis is away."""
    text = (REPO / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    servers = re.findall(r"^\s*server (screening-\d+:\d+)([^;]*);", text, re.MULTILINE)
    assert len(servers) == 2
    assert all("max_fails=0" in options for _, options in servers), servers
    compose = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "deploy/accounts.jsonl" in compose.split("services:")[0]  # say to fill it first


def test_openapi_declares_every_parameter_and_body(tmp_path: Path) -> None:
    """The routes that read their query parameters themselves (to refuse unknown ones) and
    their raw bodies still show them on the OpenAPI page."""
    app = create_app(Settings(snapshot=tmp_path, data=tmp_path / "data"),
                     holder=SnapshotHolder(tmp_path), watch=False, backbone=False)
    paths = app.openapi()["paths"]

    def params(path: str, method: str) -> set[str]:
        return {p["name"] for p in paths[path][method].get("parameters", ())
                if p["in"] == "query"}

    assert params("/v1/feedback", "get") == {"authority", "since", "limit"}
    assert params("/v1/stats", "get") == {"month", "by"}
    assert params("/v1/audit", "get") == {"since", "limit", "unit"}
    assert params("/v1/screenings", "post") == {"scenario", "column", "format", "region",
                                                 "consent", "as_of"}
    assert params("/v1/screenings/{job_id}/result", "get") == {"partial"}
    for path, media in (("/v1/events", "application/json"),
                        ("/v1/checks/{check_id}/outcome", "application/json"),
                        ("/v1/screenings", "text/csv")):
        assert media in paths[path]["post"]["requestBody"]["content"], path
