"""The HTTP service in process (httpx over ASGI): every endpoint, tier and error.

Each check test runs twice — through the raw ASGI fast path and through the FastAPI route —
and both must answer the same.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from screening.accounts import Accounts, require
from screening.app import create_app
from screening.holder import SnapshotHolder
from screening.settings import Settings
from tests.apifixtures import (MakeClient, client, decision, fastpath,  # noqa: F401 (fixtures)
                               fixture_dirs, make_client, post_check)
from tests.servicekit import (AS_OF, ORG_AUTH, ORG_BLACK, ORG_CLEAN, ORG_LOCAL, ORG_RED,
                              ORG_SHARED, PERSON_BLACK, PERSON_REP, ASGIClient, ListRecorder,
                              auth)

HIT_KEYS = {"entry", "list", "kind", "path", "via", "authority", "valid_from", "valid_until",
            "reason", "basis", "measures"}
MEASURE_KEYS = {"id", "name", "force", "effect", "action", "basis"}
RESULT_KEYS = {"check_id", "decision", "subject", "hits", "measures", "suppressed", "snapshot",
               "as_of"}


# -- operations -----------------------------------------------------------------------------
def test_healthz_and_readyz(make_client: MakeClient) -> None:
    empty = make_client(loaded=False)
    assert empty.get("/healthz").json() == {"status": "alive"}
    r = empty.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_snapshot"
    ready = make_client().get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_snapshot_endpoint(make_client: MakeClient) -> None:
    assert make_client(loaded=False).get("/v1/snapshot").status_code == 503
    info = make_client().get("/v1/snapshot").json()
    assert re.fullmatch(r"\d{8}T\d{6}(\.\d+)?Z-[0-9a-f]{8}", info["version"])
    assert info["built_at"].endswith("+08:00")
    assert info["counts"]["source_entries"] == 6
    assert info["applied_events"] == []
    assert info["age_s"] >= 0


def test_metrics(client: ASGIClient) -> None:
    post_check(client, subject=ORG_BLACK)
    post_check(client, subject=ORG_CLEAN)
    post_check(client, subject="123")
    # refused before its subject is read: answered, but no subject counted
    client.post("/v1/check", headers=auth("agency"), content=b"{not json")
    client.post("/v1/check", json={"subject": ORG_CLEAN, "scenario": "bidding"})  # no key
    client.post("/v1/check/batch", headers=auth("agency"),
                json={"scenario": "bidding", "subjects": [{"subject": ORG_BLACK},
                                                          {"subject": "x"}]})
    text = client.get("/metrics").text
    version = client.get("/v1/snapshot").json()["version"]
    assert 'screening_request_duration_seconds_count{decision="block",route="/v1/check"} 1.0' \
        in text
    assert 'screening_request_duration_seconds_count{decision="pass",route="/v1/check"} 1.0' \
        in text
    assert 'screening_responses_total{route="/v1/check",status="422"} 1.0' in text
    assert 'screening_responses_total{route="/v1/check",status="400"} 1.0' in text
    assert 'screening_responses_total{route="/v1/check",status="401"} 1.0' in text
    assert 'screening_checks_total{decision="error",route="/v1/check"} 1.0' in text  # the 422
    assert 'screening_checks_total{decision="block",route="/v1/check/batch"} 1.0' in text
    assert 'screening_checks_total{decision="error",route="/v1/check/batch"} 1.0' in text
    assert 'screening_request_duration_seconds_count{decision="batch",route="/v1/check/batch"}' \
        in text
    assert f'screening_snapshot_info{{version="{version}"}} 1.0' in text
    assert re.search(r"^screening_snapshot_age_seconds \d", text, re.M)


def test_openapi_documents_the_check_routes(make_client: MakeClient) -> None:
    client = make_client()
    schema = client.get("/openapi.json").json()
    check = schema["paths"]["/v1/check"]["post"]
    assert check["requestBody"]["content"]["application/json"]["schema"]["$ref"] == \
        "#/components/schemas/CheckBody"
    assert check["security"] == [{"bearer": []}]
    assert {"200", "401", "422", "429"} <= set(check["responses"])
    components = schema["components"]["schemas"]
    assert components["CheckBody"]["examples"]
    assert components["CheckResult"]["examples"]
    assert {"CheckBody", "BatchBody", "BatchItem", "CheckResult", "ErrorBody"} <= set(components)
    assert set(components["CheckResult"]["properties"]) == RESULT_KEYS
    for path in ("/v1/check/batch", "/healthz", "/readyz", "/v1/snapshot", "/metrics"):
        assert path in schema["paths"]
    assert client.get("/docs").status_code == 200


# -- checks ---------------------------------------------------------------------------------
def test_block_has_the_spec_fields(client: ASGIClient) -> None:
    r = post_check(client, subject=ORG_BLACK)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert RESULT_KEYS <= set(body)
    assert body["decision"] == "block"
    assert body["subject"]["type"] == "org" and body["subject"]["id"] == ORG_BLACK
    assert body["as_of"] == AS_OF
    [hit] = body["hits"]
    assert HIT_KEYS <= set(hit)
    assert (hit["entry"], hit["list"], hit["kind"], hit["path"], hit["via"]) == \
        ("E-1", "court.dishonest_debtor", "black", "subject", None)
    [m] = hit["measures"]
    assert set(m) == MEASURE_KEYS
    assert (m["id"], m["force"], m["action"]) == ("M-GP-1", "mandatory", "block")
    assert body["snapshot"] == client.get("/v1/snapshot").json()["version"]


def test_clean_subject_passes_and_normalises(client: ASGIClient) -> None:
    spaced = f" {ORG_CLEAN[:6]}-{ORG_CLEAN[6:].lower()} "
    body = post_check(client, subject=spaced).json()
    assert body["decision"] == "pass"
    assert body["subject"] == {"type": "org", "id": ORG_CLEAN, "name": None,
                               "name_mismatch": None}
    assert body["hits"] == [] and body["measures"] == [] and body["suppressed"] == []


def test_default_as_of_is_now(client: ASGIClient) -> None:
    r = client.post("/v1/check", headers=auth("agency"),
                    json={"subject": ORG_BLACK, "scenario": "government_procurement"})
    assert r.status_code == 200
    assert r.json()["as_of"].endswith("+08:00")


def test_linked_person(client: ASGIClient) -> None:
    body = post_check(client, subject=PERSON_REP).json()
    assert body["decision"] == "block"
    [hit] = body["hits"]
    assert hit["path"] == "linked:legal_rep" and hit["via"]["id"] == ORG_BLACK


def test_tiers_see_publicity(client: ASGIClient) -> None:
    assert decision(client, "public", ORG_SHARED) == "pass"
    assert decision(client, "agency", ORG_SHARED) == "block"
    assert decision(client, "issuer", ORG_SHARED) == "block"
    assert decision(client, "admin", ORG_SHARED) == "block"


def test_authorized_entries_need_consent(make_client: MakeClient, fastpath: bool) -> None:
    recorder = ListRecorder()
    client = make_client(fastpath=fastpath, recorder=recorder)
    assert decision(client, "agency", ORG_AUTH) == "pass"
    assert decision(client, "agency", ORG_AUTH, consent="授权书-2026-001") == "block"
    assert decision(client, "public", ORG_AUTH, consent="授权书-2026-002") == "block"
    assert [req.consent for _, req, _ in recorder.seen] == \
        [None, "授权书-2026-001", "授权书-2026-002"]


def test_public_tier_masks_person_ids(client: ASGIClient) -> None:
    public = post_check(client, "public", subject=PERSON_BLACK).json()
    assert public["decision"] == "block"
    assert public["subject"]["id"] == PERSON_BLACK[:10] + "****" + PERSON_BLACK[14:]
    agency = post_check(client, "agency", subject=PERSON_BLACK).json()
    assert agency["subject"]["id"] == PERSON_BLACK


def test_adopted_recommended_measure(client: ASGIClient) -> None:
    assert decision(client, "agency", ORG_BLACK, scenario="administrative_license") == "review"
    assert decision(client, "adopter", ORG_BLACK, scenario="administrative_license") == "block"


def test_red_and_clean_years(client: ASGIClient) -> None:
    assert decision(client, "agency", ORG_RED, scenario="administrative_license") == "green"
    body = post_check(client, subject=ORG_CLEAN, scenario="honors").json()
    assert body["decision"] == "green"
    assert [m["id"] for m in body["measures"]] == ["M-HON-1"]


def test_region_scope(client: ASGIClient) -> None:
    assert decision(client, "agency", ORG_LOCAL) == "block"  # account region 350100
    assert decision(client, "agency", ORG_LOCAL, region="350102") == "block"
    assert decision(client, "public", ORG_LOCAL) == "pass"  # national region
    assert decision(client, "public", ORG_LOCAL, region="350102") == "block"
    assert decision(client, "admin", ORG_LOCAL, region="440300") == "pass"


def test_name_mismatch_is_flagged_not_decided(client: ASGIClient) -> None:
    body = post_check(client, subject=ORG_BLACK, name="别的公司").json()
    assert body["decision"] == "block"
    assert body["subject"]["name_mismatch"] is True
    assert post_check(client, subject=ORG_BLACK, name="主体1").json()["subject"][
        "name_mismatch"] is False


def test_fast_path_and_route_answer_alike(make_client: MakeClient) -> None:
    fast, route = make_client(fastpath=True), make_client(fastpath=False)
    for who, subject, scenario in [("agency", ORG_BLACK, "government_procurement"),
                                   ("public", PERSON_BLACK, "bidding"),
                                   ("agency", ORG_CLEAN, "honors"),
                                   ("agency", ORG_BLACK + "0", "bidding")]:
        a, b = (post_check(c, who, subject=subject, scenario=scenario) for c in (fast, route))
        assert a.status_code == b.status_code
        ja, jb = a.json(), b.json()
        ja.pop("check_id", None)
        jb.pop("check_id", None)
        assert ja == jb


# -- batch ----------------------------------------------------------------------------------
def test_batch_one_result_or_error_per_item(make_client: MakeClient, fastpath: bool) -> None:
    recorder = ListRecorder()
    client = make_client(fastpath=fastpath, recorder=recorder)
    items: list[Any] = [{"subject": ORG_BLACK}, {"subject": ORG_BLACK[:-1] + "0"}, 5,
                        {"type": "org"}, {"subject": ORG_CLEAN, "colour": "red"},
                        {"subject": PERSON_BLACK, "type": "person", "name": "主体6"},
                        {"subject": ORG_CLEAN, "type": "company"}]
    r = client.post("/v1/check/batch", headers=auth("agency"),
                    json={"scenario": "bidding", "subjects": items, "as_of": AS_OF})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == len(items)
    assert results[0]["decision"] == "block"
    assert results[1]["error"]["code"] == "bad_check_character"
    assert results[1]["error"]["expected"] == ORG_BLACK[-1]
    assert results[2]["error"]["code"] == "bad_item"
    assert results[3]["error"] == {"code": "missing_field", "message": "field 'subject' is "
                                   "required", "field": "subject"}
    assert results[4]["error"]["code"] == "unknown_field"
    assert results[5]["decision"] == "block" and results[5]["subject"]["name_mismatch"] is False
    assert results[6]["error"]["code"] == "unknown_type"
    assert {x["snapshot"] for x in results if "snapshot" in x} == \
        {client.get("/v1/snapshot").json()["version"]}
    assert [res["check_id"] for _, _, res in recorder.seen] == \
        [results[0]["check_id"], results[5]["check_id"]]
    assert recorder.seen[1][1].type == "person" and recorder.seen[1][1].scenario == "bidding"


def test_batch_limits_and_request_level_errors(make_client: MakeClient) -> None:
    client = make_client(max_batch=3)
    post = lambda body: client.post("/v1/check/batch", headers=auth("agency"), json=body)  # noqa: E731
    assert post({"scenario": "bidding", "subjects": []}).json() == {"results": []}
    too_many = post({"scenario": "bidding", "subjects": [{"subject": ORG_CLEAN}] * 4})
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "batch_too_large"
    unknown = post({"scenario": "nope", "subjects": [{"subject": ORG_CLEAN}]})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_scenario"
    region = post({"scenario": "bidding", "region": "110000", "subjects": [{"subject": ORG_CLEAN}]})
    assert region.status_code == 403 and region.json()["error"]["code"] == "region_forbidden"
    subjects = post({"scenario": "bidding", "subjects": {"subject": ORG_CLEAN}})
    assert subjects.status_code == 422 and subjects.json()["error"]["field"] == "subjects"


# -- the recorder seam ----------------------------------------------------------------------
def test_recorder_gets_every_completed_check(make_client: MakeClient, fastpath: bool) -> None:
    recorder = ListRecorder()
    client = make_client(fastpath=fastpath, recorder=recorder)
    ok = post_check(client, "adopter", subject=ORG_BLACK, scenario="administrative_license",
                    name="主体1").json()
    post_check(client, "adopter", subject="not an id")  # an error is not a completed check
    [(account, request, result)] = recorder.seen
    assert account.unit == "350100-SPJ" and account.tier == "agency"
    assert request.subject == ORG_BLACK and request.scenario == "administrative_license"
    assert request.name == "主体1" and request.as_of == AS_OF
    assert result == ok


def test_a_failing_recorder_does_not_fail_the_check(make_client: MakeClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def record(self, *args: Any) -> None:
            raise RuntimeError("backbone down")

    client = make_client(recorder=Broken())
    assert decision(client, "agency", ORG_BLACK) == "block"
    assert "screening_recorder_errors_total 1.0" in client.get("/metrics").text
    assert "recorder.failed" in caplog.text


# -- accounts -------------------------------------------------------------------------------
def test_open_service_without_accounts(fixture_dirs: tuple[Path, Path]) -> None:
    snapshots, _ = fixture_dirs
    holder = SnapshotHolder(snapshots)
    holder.refresh()
    client = ASGIClient(create_app(Settings(snapshot=snapshots), holder=holder, watch=False))
    body = client.post("/v1/check", json={"subject": PERSON_BLACK, "scenario": "bidding",
                                          "as_of": AS_OF}).json()
    assert body["subject"]["id"].count("*") == 4  # anonymous callers are the public tier
    assert client.post("/v1/check", json={"subject": ORG_SHARED, "scenario": "bidding",
                                          "as_of": AS_OF}).json()["decision"] == "pass"


def test_tier_requirement(fixture_dirs: tuple[Path, Path]) -> None:
    accounts = Accounts.load(fixture_dirs[1])
    public = accounts.authenticate("Bearer k-public")
    issuer = accounts.authenticate(b"Bearer k-issuer")
    assert require(issuer, "issuer") is issuer
    assert require(issuer, "agency") is issuer
    with pytest.raises(Exception) as info:
        require(public, "agency")
    assert getattr(info.value, "status") == 403
    assert getattr(info.value, "code") == "tier_forbidden"


def test_concurrent_checks_are_coalesced_and_each_answered(make_client: MakeClient) -> None:
    """Checks ready in one loop turn are decided together; each gets its own answer."""
    client = make_client()
    app = client.app
    drained: list[int] = []
    original = app.coalescer.drain

    def drain() -> None:
        drained.append(len(app.coalescer.pending))
        original()

    app.coalescer.drain = drain
    subjects = [ORG_BLACK, ORG_CLEAN, PERSON_BLACK, "bad", ORG_SHARED, ORG_RED] * 4

    async def many() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return list(await asyncio.gather(*(
                c.post("/v1/check", headers=auth("agency"),
                       json={"subject": s, "scenario": "government_procurement",
                             "as_of": AS_OF}) for s in subjects)))

    responses = asyncio.run(many())
    assert max(drained) > 1
    for subject, r in zip(subjects, responses):
        if subject == "bad":
            assert r.status_code == 422
        else:
            assert r.status_code == 200 and r.json()["subject"]["id"] == subject
            assert r.json()["decision"] == ("pass" if subject in (ORG_CLEAN, ORG_RED)
                                            else "block")


def test_large_batch_spans_chunks_in_order_at_one_instant(make_client: MakeClient) -> None:
    from screening.service import BATCH_CHUNK

    client = make_client()
    subjects = [ORG_BLACK, ORG_CLEAN, "bad", PERSON_BLACK] * (BATCH_CHUNK // 2 + 3)
    r = client.post("/v1/check/batch", headers=auth("agency"),
                    json={"scenario": "government_procurement",
                          "subjects": [{"subject": s} for s in subjects]})
    results = r.json()["results"]
    assert len(results) == len(subjects) > 2 * BATCH_CHUNK
    expected = {ORG_BLACK: "block", ORG_CLEAN: "pass", PERSON_BLACK: "block"}
    for subject, result in zip(subjects, results):
        if subject == "bad":
            assert result["error"]["code"] == "bad_length"
        else:
            assert result["decision"] == expected[subject]
            assert result["subject"]["id"] == subject
    assert len({x["as_of"] for x in results if "as_of" in x}) == 1
    assert len({x["snapshot"] for x in results if "snapshot" in x}) == 1


@pytest.mark.parametrize("lines,reason", [
    (['{"unit": "U1", "key_sha256": "%s", "tier": "agency", "rate_per_sec": 1}'],
     "unknown field 'rate_per_sec'"),
    (['{"unit": "U1", "key_sha256": "%s", "tier": "agency", "region": "3501"}'],
     "6-digit region code"),
    (['{"unit": "U1", "key_sha256": "%s", "tier": "agency"}',
      '{"unit": "U1", "key_sha256": "%s", "tier": "public"}'],
     "accounts.jsonl:2: unit 'U1' appears more than once (first at line 1)"),
    (['{"unit": "U1", "key_sha256": "%s", "tier": "agency"}', "",
      '{"unit": "U2", "key_sha256": "%s", "tier": "public"}'],
     "accounts.jsonl:3: unit 'U2' shares a key with line 1"),
    (["", "  "], "no account"),
], ids=["unknown-field", "region-not-6-digits", "unit-twice", "key-twice", "empty"])
def test_a_bad_accounts_file_is_refused_naming_its_line(tmp_path: Path, lines: list[str],
                                                        reason: str) -> None:
    from screening.accounts import AccountsError

    digest = "ab" * 32
    path = tmp_path / "accounts.jsonl"
    path.write_text("\n".join(line.replace("%s", digest) for line in lines) + "\n")
    with pytest.raises(AccountsError) as err:
        Accounts.load(path)
    assert reason in str(err.value)


def test_an_issuer_that_can_do_nothing_is_warned_of(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "accounts.jsonl"
    path.write_text('{"unit": "I1", "key_sha256": "%s", "tier": "issuer"}\n' % ("ab" * 32))
    with caplog.at_level("WARNING", logger="screening.accounts"):
        assert len(Accounts.load(path)) == 1
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "accounts.jsonl:1: issuer 'I1' can post no event" in messages
    assert "issuer 'I1' has no feed to read" in messages
