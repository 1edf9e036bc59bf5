"""Schemathesis over the OpenAPI schema, in process: no input gives a 5xx (bounded run).

Bodies are generated both to fit the schema and to break it (negative mode); every answer
must be below 500 and, when it is an error, have the one error shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from indexer.build import build
from screening.app import create_app
from screening.holder import SnapshotHolder
from screening.settings import Settings
from tests.servicekit import (AS_OF, ORG_BLACK, ORG_CLEAN, PERSON_BLACK, PERSON_REP, SCENARIOS,
                              auth, write_accounts, write_fixture_source)

MAX_EXAMPLES = 100


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("schema")
    build(write_fixture_source(root / "source"), root / "snapshots")
    settings_ = Settings(snapshot=root / "snapshots",
                         accounts=write_accounts(root / "accounts.jsonl"), max_batch=50,
                         data=root / "data")  # the lifespan opens the backbone here
    holder = SnapshotHolder(settings_.snapshot)
    holder.refresh()
    app = create_app(settings_, holder=holder, watch=False)
    _steer(app.openapi())
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    max_examples=MAX_EXAMPLES, deterministic=True)
    return schema


def _steer(document: dict[str, Any]) -> None:
    """Test-only: make generated subjects, scenarios, regions and times often real ones, so
    runs reach the decision and not only the first validation error (negative mode still
    sends everything else)."""
    known = [ORG_BLACK, ORG_CLEAN, PERSON_BLACK, PERSON_REP, "91350100M000100Y43",
             "360426910101007", ORG_BLACK[8:17]]
    components = document["components"]["schemas"]
    for model in ("CheckBody", "BatchBody"):
        props = components[model]["properties"]
        props["scenario"] = {"enum": [s["code"] for s in SCENARIOS]}  # negative: any other
        props["region"] = {"anyOf": [{"enum": ["350100", "350102", "3501"]},
                                     {"type": "string"}, {"type": "null"}]}
        props["as_of"] = {"anyOf": [{"enum": [AS_OF, "2026-01-01", "2020-02-29T12:00:00"]},
                                    {"type": "string"}, {"type": "null"}]}
    for model in ("CheckBody", "BatchItem"):
        components[model]["properties"]["subject"] = {"anyOf": [{"enum": known},
                                                                {"type": "string"}]}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error(case: Any) -> None:
    response = case.call(headers=auth("agency"))
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and case.path.startswith("/v1/"):
        body = response.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])


def test_schema_run_is_bounded() -> None:
    assert MAX_EXAMPLES <= 100  # keep the run well under a minute
    assert Path(__file__).name == "test_schema.py"
