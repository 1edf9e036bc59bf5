"""Every 4xx (and the 503) of the HTTP service has the one error shape, through the fast path
and through the FastAPI route alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.servicekit import ORG_BLACK, ORG_CLEAN, auth
from tests.apifixtures import (MakeClient, fastpath, fixture_dirs,  # noqa: F401 (fixtures)
                               make_client, post_check)

def _body(obj: Any) -> bytes:
    return orjson.dumps(obj)


GOOD = {"subject": ORG_BLACK, "scenario": "government_procurement"}
ERRORS: list[tuple[str, str, str, dict[str, str] | None, bytes, int, str, str | None,
                   str | None]] = [
    # (id, method, path, headers (None = agency key), body, status, code, field, expected)
    ("malformed_json", "POST", "/v1/check", None, b'{"subject": ', 400, "malformed_json",
     None, None),
    ("not_utf8", "POST", "/v1/check", None, b'{"subject": "\xff"}', 400, "malformed_json",
     None, None),
    ("empty_body", "POST", "/v1/check", None, b"", 400, "malformed_json", None, None),
    ("array_body", "POST", "/v1/check", None, b"[1, 2]", 400, "bad_body", None, None),
    ("missing_subject", "POST", "/v1/check", None, _body({"scenario": "bidding"}), 422,
     "missing_field", "subject", None),
    ("missing_scenario", "POST", "/v1/check", None, _body({"subject": ORG_BLACK}), 422,
     "missing_field", "scenario", None),
    ("subject_number", "POST", "/v1/check", None, _body({**GOOD, "subject": 913501}), 422,
     "bad_type", "subject", "string"),
    ("subject_null", "POST", "/v1/check", None, _body({**GOOD, "subject": None}), 422,
     "bad_type", "subject", "string"),
    ("as_of_number", "POST", "/v1/check", None, _body({**GOOD, "as_of": 20260601}), 422,
     "bad_type", "as_of", "string"),
    ("unknown_field", "POST", "/v1/check", None, _body({**GOOD, "asof": "2026-01-01"}), 422,
     "unknown_field", "asof", None),
    ("unknown_scenario", "POST", "/v1/check", None, _body({**GOOD, "scenario": "nope"}), 422,
     "unknown_scenario", "scenario", None),
    ("bad_length", "POST", "/v1/check", None, _body({**GOOD, "subject": "1234"}), 422,
     "bad_length", "subject", None),
    ("bad_character", "POST", "/v1/check", None,
     _body({**GOOD, "subject": "91350100I000100Y43"}), 422, "bad_character", "subject", None),
    ("bad_check_character", "POST", "/v1/check", None,
     _body({**GOOD, "subject": "91350100M000100Y44"}), 422, "bad_check_character", "subject",
     "3"),
    ("bad_birth_date", "POST", "/v1/check", None,
     _body({**GOOD, "subject": "110105194913310021"}), 422, "bad_birth_date", "subject", None),
    ("bad_org_code_check", "POST", "/v1/check", None,
     _body({**GOOD, "subject": "91350100M000100X43"}), 422, "bad_org_code_check", "subject",
     "6"),
    ("unknown_type", "POST", "/v1/check", None, _body({**GOOD, "type": "company"}), 422,
     "unknown_type", "type", None),
    ("bad_as_of", "POST", "/v1/check", None, _body({**GOOD, "as_of": "yesterday"}), 422,
     "bad_as_of", "as_of", None),
    ("bad_region", "POST", "/v1/check", None, _body({**GOOD, "region": "35a"}), 422,
     "bad_region", "region", None),
    ("region_forbidden", "POST", "/v1/check", None, _body({**GOOD, "region": "110105"}), 403,
     "region_forbidden", "region", None),
    ("body_too_large", "POST", "/v1/check", None, _body({**GOOD, "name": "x" * 5000}), 413,
     "body_too_large", None, None),
    ("missing_key", "POST", "/v1/check", {}, _body(GOOD), 401, "missing_key", None, None),
    ("not_bearer", "POST", "/v1/check", {"Authorization": "Basic abc"}, _body(GOOD), 401,
     "missing_key", None, None),
    ("bad_key", "POST", "/v1/check", {"Authorization": "Bearer nope"}, _body(GOOD), 401,
     "bad_key", None, None),
    ("batch_missing_key", "POST", "/v1/check/batch", {}, _body({"scenario": "bidding",
                                                                "subjects": []}), 401,
     "missing_key", None, None),
    ("batch_malformed", "POST", "/v1/check/batch", None, b"{", 400, "malformed_json", None,
     None),
    ("batch_missing_subjects", "POST", "/v1/check/batch", None, _body({"scenario": "bidding"}),
     422, "missing_field", "subjects", None),
    ("batch_unknown_field", "POST", "/v1/check/batch", None,
     _body({"scenario": "bidding", "subjects": [], "consent": "x"}), 422, "unknown_field",
     "consent", None),
    ("batch_purpose_number", "POST", "/v1/check/batch", None,
     _body({"scenario": "bidding", "subjects": [], "purpose": 7}), 422, "bad_type",
     "purpose", "string"),
    ("batch_bad_as_of", "POST", "/v1/check/batch", None,
     _body({"scenario": "bidding", "subjects": [], "as_of": "2026-13-01"}), 422, "bad_as_of",
     "as_of", None),
    ("batch_too_large", "POST", "/v1/check/batch", None,
     _body({"scenario": "bidding", "subjects": [{"subject": ORG_CLEAN}] * 11}), 413,
     "batch_too_large", "subjects", None),
    ("batch_body_too_large", "POST", "/v1/check/batch", None,
     _body({"scenario": "bidding", "subjects": [{"subject": "x" * 5000}]}), 413,
     "body_too_large", None, None),
    ("not_found", "GET", "/v1/nope", None, b"", 404, "not_found", None, None),
    ("method_not_allowed", "GET", "/v1/check", None, b"", 405, "method_not_allowed", None,
     None),
]


@pytest.mark.parametrize("case", ERRORS, ids=[e[0] for e in ERRORS])
def test_error_shape(make_client: MakeClient, fastpath: bool, case: tuple[Any, ...]) -> None:
    _, method, path, headers, body, status, code, field, expected = case
    client = make_client(fastpath=fastpath, max_body=4096, max_batch=10)
    r = client.request(method, path, content=body,
                       headers=auth("agency") if headers is None else headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    payload = r.json()
    assert set(payload) == {"error"}
    error = payload["error"]
    assert set(error) <= {"code", "message", "field", "expected"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error.get("field") == field
    assert error.get("expected") == expected
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_rate_limit_429_with_retry_after(make_client: MakeClient, fastpath: bool) -> None:
    client = make_client(fastpath=fastpath)
    assert post_check(client, "slow", subject=ORG_CLEAN).status_code == 200
    r = post_check(client, "slow", subject=ORG_CLEAN)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert set(r.json()["error"]) == {"code", "message"}
    assert int(r.headers["retry-after"]) >= 1
    assert post_check(client, "agency", subject=ORG_CLEAN).status_code == 200  # per account


def test_no_snapshot_is_503_with_the_shape(make_client: MakeClient, fastpath: bool) -> None:
    client = make_client(fastpath=fastpath, loaded=False)
    for path, body in (("/v1/check", GOOD), ("/v1/check/batch",
                                             {"scenario": "bidding", "subjects": []})):
        r = client.post(path, json=body, headers=auth("agency"))
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "no_snapshot"


def test_chunked_body_over_the_limit(make_client: MakeClient, fastpath: bool) -> None:
    client = make_client(fastpath=fastpath, max_body=4096)

    def chunks() -> Iterator[bytes]:
        yield b'{"subject": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'", "scenario": "bidding"}'

    r = client.post("/v1/check", content=chunks(), headers=auth("agency"))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


_ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                         max_leaves=6)
_TIMES = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                      timezones=st.sampled_from([dt.timezone(dt.timedelta(hours=h))
                                                 for h in (-12, 0, 8, 14)]))
_EDGES = ["0001-01-01", "0001-01-01T00:00:00+14:00", "9999-12-31", "9999-12-31T23:59:59-12:00",
          "1799-12-31", "8999-12-31T23:00:00-12:00"]
_FIELD = st.one_of(st.text(max_size=24), st.sampled_from(["national", "350100", "35", "org",
                                                          "person", "honors", "bidding",
                                                          ORG_BLACK, ORG_CLEAN, *_EDGES]),
                   _TIMES.map(lambda d: d.isoformat()), st.dates().map(str), _ANY_JSON)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.dictionaries(st.sampled_from(["subject", "scenario", "type", "name", "region",
                                             "as_of", "consent", "subjects", "other"]),
                            _FIELD, max_size=7),
       batch=st.booleans())
@example(body={"subject": ORG_CLEAN, "scenario": "honors", "as_of": _EDGES[3]}, batch=False)
@example(body={"subject": ORG_CLEAN, "scenario": "honors", "as_of": _EDGES[1]}, batch=True)
def test_no_500_for_any_field_value(make_client: MakeClient, body: dict[str, Any],
                                    batch: bool) -> None:
    client = make_client(max_batch=10)
    if batch:
        items = [{k: v for k, v in body.items() if k in ("subject", "type", "name")}]
        payload: dict[str, Any] = {"scenario": body.get("scenario", "bidding"),
                                   "subjects": items, **{k: v for k, v in body.items()
                                                         if k in ("region", "as_of")}}
        r = client.post("/v1/check/batch", json=payload, headers=auth("agency"))
    else:
        r = client.post("/v1/check", json=body, headers=auth("agency"))
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert set(r.json()) == {"error"}
