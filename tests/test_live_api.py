"""The backbone wired into the HTTP service (issue 4): live events, feedback, outcomes,
statistics, audit, shared rate limits, and the authorization matrix of every new endpoint.

In-process (``httpx.ASGITransport``) over a real embedded backbone in ``tmp_path``; the
two-replica test at the end runs two real ``screening serve`` processes on one real
``redis-server`` (started and stopped here by PID).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from screening.app import create_app
from screening.backbone import open_backbone, subject_hash
from screening.holder import SnapshotHolder
from screening.settings import Settings
from tests.apifixtures import MakeClient, fixture_dirs, make_client  # noqa: F401
from tests.servicekit import (
    AS_OF,
    KEYS,
    ORG_BLACK,
    ORG_CLEAN,
    ORG_SHARED,
    ASGIClient,
    auth,
    make_org,
)

COURT = "福州市中级人民法院"
REVOKE = {"id": "V-R1", "at": "2026-05-01T10:00:00+08:00", "entry": "E-1", "type": "revoked"}


def listed(n: int, subject: str, list_code: str = "court.dishonest_debtor",
           authority: str = COURT) -> dict[str, Any]:
    return {"id": f"V-L{n}", "at": "2026-05-01T10:00:00+08:00", "type": "listed",
            "record": {"id": f"E-L{n}", "list": list_code,
                       "subject": {"type": "org", "id": subject, "name": f"新主体{n}"},
                       "authority": authority, "region": "350100",
                       "valid_from": "2026-04-01", "valid_until": "2029-04-01",
                       "reason": "拒不履行", "basis": f"（2026）闽01执{n}号"}}


class Wired:
    def __init__(self, client: ASGIClient, bb: Any) -> None:
        self.client, self.bb = client, bb

    def check(self, who: str, subject: str, **body: Any) -> dict[str, Any]:
        body.setdefault("scenario", "government_procurement")
        body.setdefault("as_of", AS_OF)
        r = self.client.post("/v1/check", json={"subject": subject, **body}, headers=auth(who))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def events(self, who: str, *events: dict[str, Any]) -> httpx.Response:
        return self.client.post("/v1/events", json={"events": list(events)}, headers=auth(who))


@pytest.fixture
def wired(fixture_dirs: tuple[Path, Path], tmp_path: Path,  # noqa: F811
          fastpath: bool) -> Iterator[Wired]:
    snapshots, accounts = fixture_dirs
    settings = Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data")
    bb = open_backbone(settings, interval=0.01)
    holder = SnapshotHolder(snapshots)
    holder.refresh()
    app = create_app(settings, holder=holder, backbone=bb, watch=False, fastpath=fastpath)
    try:
        yield Wired(ASGIClient(app), bb)
    finally:
        bb.close()


@pytest.fixture(params=[True, False], ids=["fastpath", "route"])
def fastpath(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


# -- live events ------------------------------------------------------------------------------
def test_posted_event_changes_the_next_check(wired: Wired) -> None:
    assert wired.check("agency", ORG_BLACK)["decision"] == "block"
    r = wired.events("issuer", REVOKE)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": ["V-R1"]}
    assert wired.check("agency", ORG_BLACK)["decision"] == "pass"
    applied = wired.client.get("/v1/snapshot").json()["applied_events"]
    assert [e["id"] for e in applied] == ["V-R1"]
    # a re-post is idempotent
    assert wired.events("issuer", REVOKE).json() == {"accepted": ["V-R1"]}
    assert len(wired.client.get("/v1/snapshot").json()["applied_events"]) == 1


def test_command_line_decides_on_the_accepted_events(
        wired: Wired, fixture_dirs: tuple[Path, Path], tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """SPEC §8: ``screening check`` and ``screening bulk`` do the same work as the service:
    with the service's data folder, the live events it accepted apply."""
    from screening import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCREENING_DATA", raising=False)
    monkeypatch.delenv("SCREENING_REDIS", raising=False)
    snapshots, _ = fixture_dirs
    data = tmp_path / "data"

    def decide(*extra: str) -> str:
        capsys.readouterr()
        assert cli.main(["check", ORG_BLACK, "--scenario", "government_procurement",
                         "--snapshot", str(snapshots), "--as-of", AS_OF, "--json",
                         *extra]) == 0
        return str(orjson.loads(capsys.readouterr().out)["decision"])

    assert decide("--data", str(data)) == "block"
    assert wired.events("issuer", REVOKE).status_code == 202
    assert wired.check("agency", ORG_BLACK, as_of=AS_OF)["decision"] == "pass"
    assert decide("--data", str(data)) == "pass"
    assert decide() == "block"  # ./screening-data has no events: the snapshot alone
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(f"名称,统一社会信用代码\nA,{ORG_BLACK}\n", encoding="utf-8")
    assert cli.main(["bulk", str(src), "--out", str(out), "--scenario", "government_procurement",
                     "--snapshot", str(snapshots), "--as-of", AS_OF, "--data", str(data)]) == 0
    assert out.read_text(encoding="utf-8").splitlines()[1].split(",")[2] == "pass"
    # a --region that is no region code: bad_region, as a request's region is
    assert cli.main(["check", ORG_BLACK, "--scenario", "government_procurement", "--snapshot",
                     str(snapshots), "--region", "abc", "--json"]) == 1
    assert orjson.loads(capsys.readouterr().out)["error"]["code"] == "bad_region"


def test_listed_event_reaches_single_and_batch_checks(wired: Wired) -> None:
    fresh = make_org(77)
    assert wired.check("agency", fresh)["decision"] == "pass"
    assert wired.events("issuer", listed(1, fresh)).status_code == 202
    assert wired.check("agency", fresh)["decision"] == "block"
    r = wired.client.post("/v1/check/batch", headers=auth("agency"),
                          json={"scenario": "government_procurement", "as_of": AS_OF,
                                "subjects": [{"subject": fresh}, {"subject": ORG_CLEAN}]})
    assert [x["decision"] for x in r.json()["results"]] == ["block", "pass"]


def test_events_are_refused_whole(wired: Wired) -> None:
    # another list (procurement.breach is not the issuer's): 403, nothing accepted
    r = wired.events("issuer", REVOKE, {"id": "V-X", "at": "2026-05-01", "entry": "E-2",
                                        "type": "revoked"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "list_forbidden"
    # the issuer's list but another authority
    r = wired.events("issuer", listed(2, make_org(78), authority="最高人民法院"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "authority_forbidden"
    # the first invalid event: 422 with its reason
    r = wired.events("issuer", REVOKE, {"id": "V-U", "at": "2026-05-01", "entry": "E-404",
                                        "type": "revoked"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_entry"
    assert r.json()["error"]["field"] == "events[1]"
    # validated like source records: a time without an offset is no event time (SPEC §3)
    r = wired.events("issuer", {**REVOKE, "at": "2026-05-01T10:00:00"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_date", r.text
    r = wired.client.post("/v1/events", json={"events": []}, headers=auth("issuer"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_events"
    r = wired.client.post("/v1/events", json={"events": [REVOKE], "dry_run": True},
                          headers=auth("issuer"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field", r.text
    assert wired.client.get("/v1/snapshot").json()["applied_events"] == []
    assert wired.check("agency", ORG_BLACK)["decision"] == "block"
    assert wired.check("agency", ORG_SHARED)["decision"] == "block"


# -- feedback, outcomes, statistics, audit ------------------------------------------------------
def test_feedback_outcome_stats_and_audit(wired: Wired) -> None:
    hit = wired.check("agency", ORG_BLACK, purpose="（2026）榕财采字第17号")
    clean = wired.check("agency", ORG_CLEAN)
    assert wired.bb.flush(5.0)
    r = wired.client.get("/v1/feedback?limit=50", headers=auth("issuer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["authority"] == COURT
    items = [i for i in body["items"] if i["check_id"] == hit["check_id"]]
    assert items and items[0]["entry"] == "E-1" and items[0]["unit"] == "350100-CZJ"
    assert items[0]["outcome"] is None
    # paging: nothing new after `next`
    again = wired.client.get(f"/v1/feedback?since={body['next']}", headers=auth("issuer"))
    assert again.json()["items"] == []
    for junk in ("9" * 24, "abc"):  # a cursor it did not issue: 422, never a 500
        r = wired.client.get(f"/v1/feedback?since={junk}", headers=auth("issuer"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_cursor", r.text
        r = wired.client.get(f"/v1/audit?since=2026-12-08:{junk}", headers=auth("admin"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_cursor", r.text
    r = wired.client.get("/v1/stats?by=unit&month=２０２６-12", headers=auth("agency"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_month", r.text
    # a parameter or field the endpoint does not take: 422 naming it (a typo such as `sinse`
    # must not read the feed from its start)
    for path, who in (("/v1/feedback?sinse=1", "issuer"), ("/v1/stats?by=unit&mnth=1", "agency"),
                      ("/v1/audit?unit=X&lmit=5", "admin")):
        r = wired.client.get(path, headers=auth(who))
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field", r.text
        assert r.json()["error"]["field"] in ("sinse", "mnth", "lmit")
    # the check endpoints take no query parameter: a `?as_of=` is refused, not dropped
    for path, body in (("/v1/check", {"subject": ORG_BLACK}),
                       ("/v1/check/batch", {"subjects": [{"subject": ORG_BLACK}]})):
        r = wired.client.post(path + "?as_of=2026-01-01", headers=auth("agency"),
                              json={**body, "scenario": "government_procurement"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_field", r.text
        assert r.json()["error"]["field"] == "as_of"
    # outcome: the checking unit only
    path = f"/v1/checks/{hit['check_id']}/outcome"
    other = wired.client.post(path, json={"outcome": "intercepted"}, headers=auth("adopter"))
    assert other.status_code == 403 and other.json()["error"]["code"] == "not_your_check"
    bad = wired.client.post(path, json={"outcome": "overridden"}, headers=auth("agency"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "note_required"
    typo = wired.client.post(path, json={"outcome": "intercepted", "nots": "x"},
                             headers=auth("agency"))
    assert typo.status_code == 422 and typo.json()["error"]["field"] == "nots", typo.text
    ok = wired.client.post(path, json={"outcome": "intercepted", "note": "拒绝投标"},
                           headers=auth("agency"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["outcome"] == "intercepted"
    none = wired.client.post(f"/v1/checks/{clean['check_id']}/outcome",
                             json={"outcome": "intercepted"}, headers=auth("agency"))
    assert none.status_code == 404 and none.json()["error"]["code"] == "unknown_check"
    items = wired.client.get("/v1/feedback", headers=auth("issuer")).json()["items"]
    mine = [i for i in items if i["check_id"] == hit["check_id"]]
    assert mine[0]["outcome"]["outcome"] == "intercepted"
    # statistics (this month: records are stamped with the time of the check)
    r = wired.client.get("/v1/stats?by=unit", headers=auth("agency"))
    assert r.status_code == 200, r.text
    rows = {row["unit"]: row for row in r.json()["rows"]}
    assert rows["350100-CZJ"]["checks"] == 2 and rows["350100-CZJ"]["hits"] == 1
    cov = wired.client.get("/v1/stats?by=coverage", headers=auth("agency")).json()["rows"]
    assert {"unit": "350100-CZJ", "scenario": "government_procurement", "checks": 2} in cov
    bad_by = wired.client.get("/v1/stats?by=colour", headers=auth("agency"))
    assert bad_by.status_code == 422 and bad_by.json()["error"]["code"] == "bad_by"
    # audit: every check, subject hashed
    r = wired.client.get("/v1/audit?unit=350100-CZJ", headers=auth("admin"))
    assert r.status_code == 200, r.text
    audited = r.json()["items"]
    assert {a["check_id"] for a in audited} >= {hit["check_id"], clean["check_id"]}
    assert all(ORG_BLACK not in str(a) for a in audited)
    purposes = {a["check_id"]: a["purpose"] for a in audited}
    assert purposes[hit["check_id"]] == "（2026）榕财采字第17号"
    assert purposes[clean["check_id"]] is None
    # a failed check is audited too, with no decision (it counts for coverage)
    r = wired.client.post("/v1/check", headers=auth("agency"),
                          json={"subject": "91350100M000100Y4X",
                                "scenario": "government_procurement"})
    assert r.status_code == 422
    for as_of in ("1700-01-01", "yesterday"):  # out of range or no time: both audited
        r = wired.client.post("/v1/check", headers=auth("agency"),
                              json={"subject": ORG_CLEAN, "scenario": "government_procurement",
                                    "as_of": as_of})
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_as_of", r.text
    r = wired.client.post("/v1/check/batch", headers=auth("agency"),
                          json={"scenario": "government_procurement",
                                "subjects": [{"subject": ORG_CLEAN}, {"subject": "123"}]})
    assert [("error" in x) for x in r.json()["results"]] == [False, True]
    # a batch refused whole once parsed: each of its items is a failed query, audited
    r = wired.client.post("/v1/check/batch", headers=auth("agency"),
                          json={"scenario": "government_procurement", "as_of": "1700-01-01",
                                "subjects": [{"subject": ORG_CLEAN}, 7]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_as_of", r.text
    assert wired.bb.flush(5.0)
    audited = wired.client.get("/v1/audit?unit=350100-CZJ&limit=1000",
                               headers=auth("admin")).json()["items"]
    assert [a["decision"] for a in audited].count(None) == 6
    assert audited[-2]["subject"] == subject_hash(ORG_CLEAN) and audited[-1]["subject"] is None
    cov = wired.client.get("/v1/stats?by=coverage", headers=auth("agency")).json()["rows"]
    assert {"unit": "350100-CZJ", "scenario": "government_procurement", "checks": 9} in cov
    for limit in ("0", "１０", "10%20", "-5", "1001"):
        lim = wired.client.get(f"/v1/audit?limit={limit}", headers=auth("admin"))
        assert lim.status_code == 422 and lim.json()["error"]["code"] == "bad_limit", limit


def test_a_person_has_one_audit_hash_whatever_the_tier(wired: Wired) -> None:
    """The public tier's answer masks a person's number, so the audit hashes the request's
    identifier as a check reads it: a 15-digit number in its 18-digit form, as for agencies."""
    from screening.backbone import subject_hash

    for who in ("public", "agency"):
        r = wired.client.post("/v1/check", headers=auth(who),
                              json={"subject": "360426910101007", "scenario": "honors"})
        assert r.status_code == 200, r.text
    # a query that failed (unknown scenario) is audited under the same hash
    r = wired.client.post("/v1/check", headers=auth("agency"),
                          json={"subject": "360426910101007", "scenario": "nope"})
    assert r.status_code == 422, r.text
    assert wired.bb.flush(5.0)
    audited = wired.client.get("/v1/audit?limit=1000", headers=auth("admin")).json()["items"]
    hashes = [a["subject"] for a in audited if a["scenario"] in ("honors", "nope")]
    assert hashes == [subject_hash("360426199101010071")] * 3


def test_bulk_job_rows_are_audited_and_fed_back(wired: Wired) -> None:
    """Every row of a bulk job is a query (SPEC §6): audited (a row that is no valid
    identifier too, with no decision), fed back to the authority when it hit, counted for
    coverage, and its outcome can be posted, under the check id ``<job>:<chunk>:<row>``."""
    from urllib.parse import quote

    from screening.backbone import subject_hash

    bad = "91350100M000100Y4X"
    body = f"名称,统一社会信用代码\nA,{ORG_BLACK}\nB,{ORG_CLEAN}\nC,{bad}\n".encode()
    r = wired.client.post(f"/v1/screenings?scenario=government_procurement&as_of={quote(AS_OF)}",
                          content=body, headers={**auth("agency"), "content-type": "text/csv"})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    assert wired.client.app.screenings.jobs.run(job).state == "done"
    assert wired.bb.flush(5.0)
    audited = [a for a in wired.client.get("/v1/audit?unit=350100-CZJ&limit=1000",
                                           headers=auth("admin")).json()["items"]
               if a["purpose"] == f"bulk screening {job}"]
    assert [(a["check_id"], a["decision"]) for a in audited] == [
        (f"{job}:0:0", "block"), (f"{job}:0:1", "pass"), (None, None)]
    assert audited[0]["subject"] == subject_hash(ORG_BLACK)
    assert audited[1]["subject"] == subject_hash(ORG_CLEAN)
    assert all(a["unit"] == "350100-CZJ" and a["scenario"] == "government_procurement"
               for a in audited)
    feed = [i for i in wired.client.get("/v1/feedback?limit=1000",
                                        headers=auth("issuer")).json()["items"]
            if i["check_id"].startswith(job)]
    assert [(i["check_id"], i["entry"], i["unit"]) for i in feed] == [
        (f"{job}:0:0", "E-1", "350100-CZJ")]
    cov = wired.client.get("/v1/stats?by=coverage", headers=auth("agency")).json()["rows"]
    assert {"unit": "350100-CZJ", "scenario": "government_procurement", "checks": 3} in cov
    r = wired.client.post(f"/v1/checks/{job}:0:0/outcome", json={"outcome": "intercepted"},
                          headers=auth("agency"))
    assert r.status_code == 200, r.text


def test_shared_rate_limit(wired: Wired) -> None:
    # SLOW: 0.5 a second, burst 1, through the backbone's take
    first = wired.client.get("/v1/stats?by=unit", headers=auth("slow"))
    second = wired.client.get("/v1/stats?by=unit", headers=auth("slow"))
    assert first.status_code == 200
    assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1


def test_readyz_reports_the_backbone(wired: Wired) -> None:
    body = wired.client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["backbone"]["backend"] == "embedded" and body["backbone"]["degraded"] is False
    assert "events_age_s" in body["backbone"]


def metric(text: str, name: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name + " ")]
    assert len(values) == 1, f"{name} not exported once"
    return values[0]


def test_metrics_report_the_backbone(wired: Wired) -> None:
    """``/metrics`` carries what ``/readyz`` says of the backbone, for alerting: degraded,
    the spool's backlog, how stale live events may be, and how many are applied."""
    text = wired.client.get("/metrics").text
    assert metric(text, "screening_backbone_degraded") == 0
    assert metric(text, "screening_backbone_spool_bytes") >= 0
    assert metric(text, "screening_live_events_applied") == 0
    assert wired.events("issuer", REVOKE).status_code == 202
    wired.check("agency", ORG_CLEAN)
    text = wired.client.get("/metrics").text
    assert metric(text, "screening_live_events_applied") == 1
    assert metric(text, "screening_live_events_age_seconds") >= 0


def test_without_backbone_503(make_client: MakeClient) -> None:  # noqa: F811
    c = make_client()
    r = c.get("/v1/stats?by=unit", headers=auth("agency"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "backbone_unavailable"


# -- authorization matrix -----------------------------------------------------------------------
WHO = [None, "bad", "public", "agency", "issuer", "admin"]
# endpoint -> expected status per caller (no key, bad key, public, agency, issuer, admin)
MATRIX = {
    "events": [401, 401, 403, 403, 202, 403],   # admin: no lists of its own
    "feedback": [401, 401, 403, 403, 200, 200],
    "outcome": [401, 401, 200, 200, 200, 200],  # the unit that made the check
    "stats": [401, 401, 403, 200, 200, 200],
    "audit": [401, 401, 403, 403, 403, 200],
}


def _headers(who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    if who == "bad":
        return {"Authorization": "Bearer nope"}
    return auth(who)


@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_authorization_matrix(wired: Wired, endpoint: str) -> None:
    c = wired.client
    got = []
    for n, who in enumerate(WHO):
        h = _headers(who)
        if endpoint == "events":
            r = c.post("/v1/events", headers=h, json={"events": [
                {"id": f"V-M{n}", "at": "2026-05-01", "entry": "E-1",
                 "type": "objection_opened"}]})
        elif endpoint == "feedback":
            r = c.get(f"/v1/feedback?authority={COURT}", headers=h)
        elif endpoint == "outcome":
            check_id = "C-none"
            if who in KEYS:
                check_id = wired.check(who, ORG_BLACK, region="350100")["check_id"]
            r = c.post(f"/v1/checks/{check_id}/outcome", headers=h,
                       json={"outcome": "intercepted"})
        elif endpoint == "stats":
            r = c.get("/v1/stats?by=authority", headers=h)
        else:
            r = c.get("/v1/audit", headers=h)
        got.append(r.status_code)
        if r.status_code == 403:
            assert r.json()["error"]["code"] in ("tier_forbidden", "list_forbidden")
    assert got == MATRIX[endpoint]


# -- two replicas on one Redis ------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_event_on_one_replica_binds_the_other_within_1s(fixture_dirs: tuple[Path, Path],  # noqa: F811
                                                        tmp_path: Path) -> None:
    from tests.test_backbone import RedisServer
    from tests.test_server import serving

    snapshots, accounts = fixture_dirs
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        with serving(snapshots, accounts, tmp_path / "a", "--redis", redis.url) as a, \
                serving(snapshots, accounts, tmp_path / "b", "--redis", redis.url) as b:
            body = {"subject": ORG_BLACK, "scenario": "government_procurement", "as_of": AS_OF}
            with httpx.Client(timeout=5) as h:
                assert h.post(b + "/v1/check", json=body,
                              headers=auth("agency")).json()["decision"] == "block"
                assert h.get(b + "/readyz").json()["backbone"]["backend"] == "redis"
                r = h.post(a + "/v1/events", json={"events": [REVOKE]}, headers=auth("issuer"))
                accepted = time.monotonic()
                assert r.status_code == 202, r.text
                decision = "block"
                while time.monotonic() - accepted < 1.0:
                    decision = h.post(b + "/v1/check", json=body,
                                      headers=auth("agency")).json()["decision"]
                    if decision == "pass":
                        break
                    time.sleep(0.01)
                latency = time.monotonic() - accepted
                assert decision == "pass", "the other replica did not apply the event in 1 s"
                print(f"event accepted on A -> effect on B: {latency * 1000:.1f} ms")
                applied = h.get(b + "/v1/snapshot").json()["applied_events"]
                assert [e["id"] for e in applied] == ["V-R1"]
                # feedback of B's checks is readable on A (one shared backbone)
                deadline = time.monotonic() + 5
                found = False
                while time.monotonic() < deadline and not found:
                    items = h.get(a + "/v1/feedback", headers=auth("issuer")).json()["items"]
                    found = any(i["entry"] == "E-1" for i in items)
                    time.sleep(0.05)
                assert found
    finally:
        redis.stop()


def test_snapshot_swap_replays_live_events(tmp_path: Path) -> None:
    """A new snapshot's overlay is replayed from the log before the swap: no check on the new
    snapshot misses an event accepted before it."""
    from indexer.build import build
    from tests.servicekit import write_accounts, write_fixture_source

    source = write_fixture_source(tmp_path / "source")
    first = build(source, tmp_path / "snapshots")
    settings = Settings(snapshot=tmp_path / "snapshots", data=tmp_path / "data",
                        accounts=write_accounts(tmp_path / "accounts.jsonl"))
    bb = open_backbone(settings, interval=0.01)
    try:
        holder = SnapshotHolder(settings.snapshot)
        holder.refresh()
        w = Wired(ASGIClient(create_app(settings, holder=holder, backbone=bb, watch=False)), bb)
        assert w.events("issuer", REVOKE).status_code == 202
        assert w.check("agency", ORG_BLACK)["decision"] == "pass"
        time.sleep(0.01)
        second = build(source, tmp_path / "snapshots")
        assert second.version != first.version
        assert holder.refresh() is not None
        after = w.check("agency", ORG_BLACK)
        assert after["snapshot"] == second.version and after["decision"] == "pass"
        info = w.client.get("/v1/snapshot").json()
        assert info["version"] == second.version
        assert [e["id"] for e in info["applied_events"]] == ["V-R1"]
    finally:
        bb.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_redis_down_refuses_events_but_checks_answer(fixture_dirs: tuple[Path, Path],  # noqa: F811
                                                     tmp_path: Path) -> None:
    from tests.test_backbone import RedisServer

    snapshots, accounts = fixture_dirs
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data",
                        redis=redis.url)
    bb = open_backbone(settings, interval=0.01, timeout=0.5)
    try:
        holder = SnapshotHolder(snapshots)
        holder.refresh()
        w = Wired(ASGIClient(create_app(settings, holder=holder, backbone=bb, watch=False)), bb)
        healthy = w.client.post("/v1/check", headers=auth("agency"),
                                content=orjson.dumps({"subject": ORG_BLACK,
                                                      "scenario": "government_procurement"}))
        assert "x-screening-backbone" not in healthy.headers
        redis.stop()
        r = w.events("issuer", REVOKE)
        assert r.status_code == 503 and r.json()["error"]["code"] == "backbone_unavailable"
        assert w.check("agency", ORG_BLACK)["decision"] == "block"  # still answering
        deadline = time.monotonic() + 3.0  # the flusher notices the outage on its next batch
        while True:
            answer = w.client.post("/v1/check", headers=auth("agency"),
                                   content=orjson.dumps({"subject": ORG_BLACK,
                                                         "scenario": "government_procurement"}))
            assert answer.status_code == 200 and answer.json()["decision"] == "block"
            if answer.headers.get("x-screening-backbone") == "degraded":
                break
            assert time.monotonic() < deadline, "answers never said the backbone is degraded"
            time.sleep(0.05)
        ready = w.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["backbone"]["degraded"] is True
        text = w.client.get("/metrics").text
        assert metric(text, "screening_backbone_degraded") == 1
        assert metric(text, "screening_backbone_spool_bytes") > 0  # the checks above wait
        stats = w.client.get("/v1/stats?by=unit", headers=auth("agency"))
        assert stats.status_code == 503
    finally:
        bb.close(timeout=0.5)
        redis.stop()


@pytest.mark.parametrize("shipper", [False, True], ids=["flusher", "shipper"])
@pytest.mark.parametrize("who", ["agency", "public"])
def test_a_batch_records_what_its_items_record_one_by_one(
        fixture_dirs: tuple[Path, Path], tmp_path: Path, shipper: bool, who: str) -> None:  # noqa: F811
    """A batch request is recorded with one write (one compact line in shipper mode), yet its
    feedback and audit records are those its items would leave checked one at a time: hits,
    clean subjects, a person (masked in feedback, hashed in the audit), a consent reference,
    and an item the core refused (audited with no decision), in order."""
    from tests.servicekit import PERSON_BLACK, PERSON_REP
    from tests.test_backbone import whole_audit, whole_feed

    snapshots, accounts = fixture_dirs
    settings = Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data")
    bb = open_backbone(settings, interval=0.01, shipper=shipper)
    holder = SnapshotHolder(snapshots)
    holder.refresh()
    client = ASGIClient(create_app(settings, holder=holder, backbone=bb, watch=False))
    items = [{"subject": ORG_BLACK}, {"subject": ORG_CLEAN}, {"subject": "123"},
             {"subject": PERSON_BLACK, "consent": "C-9"}, {"subject": PERSON_REP},
             {"subject": ORG_SHARED}, {"subject": ORG_BLACK.lower()}]
    body = {"scenario": "government_procurement", "as_of": AS_OF, "purpose": "（2026）招标7号"}
    unit = {"agency": "350100-CZJ", "public": "PUBLIC-1"}[who]
    try:
        r = client.post("/v1/check/batch", headers=auth(who), json={**body, "subjects": items})
        assert r.status_code == 200, r.text
        batch_ids = [x.get("check_id") for x in r.json()["results"]]
        assert batch_ids.count(None) == 1  # "123"
        assert bb.flush(10)
        n_audit = len(whole_audit(bb, unit))
        n_feed = len(whole_feed(bb, COURT))
        single_ids = []
        for item in items:
            r = client.post("/v1/check", headers=auth(who), json={**body, **item})
            single_ids.append(r.json().get("check_id") if r.status_code == 200 else None)
        assert [i is None for i in single_ids] == [i is None for i in batch_ids]
        assert bb.flush(10)
        audit = whole_audit(bb, unit)
        assert len(audit) == 2 * n_audit == 2 * len(items)

        def strip(rec: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in rec.items() if k not in ("check_id", "at")}

        assert [a["check_id"] for a in audit] == batch_ids + single_ids
        assert [strip(a) for a in audit[:len(items)]] == [strip(a) for a in audit[len(items):]]
        assert all(a["subject"] is None or len(a["subject"]) == 64 for a in audit)
        assert {a["purpose"] for a in audit} == {"（2026）招标7号"}
        feed = whole_feed(bb, COURT)
        assert len(feed) == 2 * n_feed > 0
        half = len(feed) // 2
        assert [strip(f) for f in feed[:half]] == [strip(f) for f in feed[half:]]
        persons = [f for f in feed if f["subject"]["type"] == "person"]
        assert persons and all("*" in f["subject"]["id"] for f in persons)
    finally:
        bb.close()
