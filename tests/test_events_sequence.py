"""``POST /v1/events`` judges a request's events in order, and authorises every re-post.

* Sequence: each event of a request is judged against the state the log *and the request's
  earlier events* produce (an event may name an entry listed earlier in the request; a second
  listing of an entry id, an event on an entry purged earlier in the request, or an event
  before its entry's listing is refused with the first error, naming ``events[i]``); nothing
  is accepted unless every event is.
* Re-posts: the account must manage the list (and authority) of every event it posts,
  re-posted ids included (the accepted event's and the posted one's); an identical re-post
  is idempotent (202, nothing stored); other content under an accepted id — or under an id
  earlier in the same request — is 409 ``duplicate_event_id``.
* The accepted sequence is applied alike by another replica (two ``screening serve`` on one
  ``redis-server``) and folded alike by ``indexer build`` after ``export-events``.

In-process tests use ``httpx.ASGITransport`` over a real snapshot and a real embedded backbone.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from indexer.build import build
from screening.app import create_app
from screening.backbone import open_backbone
from screening.backbone.__main__ import main as backbone_main
from screening.holder import SnapshotHolder
from screening.settings import Settings
from tests.servicekit import (
    ACCOUNTS,
    AS_OF,
    KEYS,
    ORG_BLACK,
    ORG_CLEAN,
    ORG_LOCAL,
    ORG_SHARED,
    PERSON_REP,
    ASGIClient,
    make_org,
    write_accounts,
    write_fixture_source,
)
from tests.sourcekit import write_jsonl

COURT = "福州市中级人民法院"
AT = "2026-05-01T10:00:00+08:00"

# Two more issuers: one of another list, one of the same list but another authority.
MORE_KEYS = {"issuer_cz": "k-issuer-cz", "issuer_spc": "k-issuer-spc"}
MORE_ACCOUNTS = [
    {"unit": "CZ-350100", "name": "CZ-350100", "tier": "issuer", "region": "350000",
     "key_sha256": hashlib.sha256(MORE_KEYS["issuer_cz"].encode()).hexdigest(),
     "adopted_measures": [], "authorities": [], "lists": ["procurement.breach"],
     "rate_per_s": None},
    {"unit": "SPC", "name": "SPC", "tier": "issuer", "region": "national",
     "key_sha256": hashlib.sha256(MORE_KEYS["issuer_spc"].encode()).hexdigest(),
     "adopted_measures": [], "authorities": ["最高人民法院"],
     "lists": ["court.dishonest_debtor"], "rate_per_s": None},
]


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {(KEYS | MORE_KEYS)[who]}"}


def listed(eid: str, entry: str, subject: str, **record: Any) -> dict[str, Any]:
    rec = {"id": entry, "list": "court.dishonest_debtor",
           "subject": {"type": "org", "id": subject, "name": f"新主体{entry}"},
           "authority": COURT, "region": "350100",
           "valid_from": "2026-04-01", "valid_until": "2029-04-01",
           "reason": "拒不履行", "basis": f"（2026）闽01执{entry}号", **record}
    return {"id": eid, "at": AT, "type": "listed", "record": rec}


def ev(eid: str, entry: str, etype: str, at: str = AT, **extra: Any) -> dict[str, Any]:
    return {"id": eid, "at": at, "entry": entry, "type": etype, **extra}


class Live:
    """An in-process app over an embedded backbone."""

    def __init__(self, settings: Settings, snapshots: Path) -> None:
        self.settings = settings
        self.bb = open_backbone(settings, interval=0.01)
        self.holder = SnapshotHolder(snapshots)
        self.holder.refresh()
        self.app = create_app(settings, holder=self.holder, backbone=self.bb, watch=False)
        self.client = ASGIClient(self.app)

    def post(self, who: str, *events: dict[str, Any]) -> httpx.Response:
        return self.client.post("/v1/events", json={"events": list(events)}, headers=auth(who))

    def check(self, subject: str, **body: Any) -> dict[str, Any]:
        body.setdefault("scenario", "government_procurement")
        body.setdefault("as_of", AS_OF)
        r = self.client.post("/v1/check", json={"subject": subject, **body},
                             headers=auth("agency"))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def decision(self, subject: str, **body: Any) -> str:
        return str(self.check(subject, **body)["decision"])

    def applied(self) -> list[str]:
        return [e["id"] for e in self.client.get("/v1/snapshot").json()["applied_events"]]

    def close(self) -> None:
        self.bb.close()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("events-seq")
    build(write_fixture_source(root / "source"), root / "snapshots")
    return root / "snapshots", write_accounts(root / "accounts.jsonl",
                                              ACCOUNTS + MORE_ACCOUNTS)


@pytest.fixture
def live(dirs: tuple[Path, Path], tmp_path: Path) -> Iterator[Live]:
    snapshots, accounts = dirs
    w = Live(Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data"), snapshots)
    try:
        yield w
    finally:
        w.close()


def refused(r: httpx.Response, status: int, code: str, index: int) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    assert error["field"] == f"events[{index}]", error
    assert f"events[{index}]" in error["message"]


# -- gap 1: a request's events are judged in order ---------------------------------------------
def test_events_may_name_an_entry_listed_earlier_in_the_request(live: Live) -> None:
    fresh = make_org(101)
    r = live.post("issuer", listed("V-1", "E-N1", fresh),
                  ev("V-2", "E-N1", "objection_opened", "2026-05-10T00:00:00+08:00"))
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": ["V-1", "V-2"]}
    assert live.applied() == ["V-1", "V-2"]
    # listed, then an open objection (the court list suspends): suppressed, not a hit
    answer = live.check(fresh)
    assert answer["decision"] == "pass"
    assert [(s["entry"], s["reason"]) for s in answer["suppressed"]] == [
        ("E-N1", "objection_pending")]
    assert live.decision(fresh, as_of="2026-05-05T00:00:00+08:00") == "block"
    # listed then exited in one request; a listing then its revocation in one request
    other, gone = make_org(102), make_org(103)
    r = live.post("issuer", listed("V-3", "E-N2", other),
                  ev("V-4", "E-N2", "exited", "2026-05-15T00:00:00+08:00", reason="repaired"),
                  listed("V-5", "E-N3", gone), ev("V-6", "E-N3", "revoked"))
    assert r.status_code == 202, r.text
    assert live.decision(other) == "pass"
    assert live.decision(other, as_of="2026-05-14T00:00:00+08:00") == "block"
    assert live.decision(gone, as_of="2026-05-14T00:00:00+08:00") == "pass"
    # the purge holds in later requests too
    refused(live.post("issuer", ev("V-7", "E-N3", "exited", reason="repaired")),
            422, "unknown_entry", 0)


def test_two_listings_of_one_entry_in_a_request_are_a_duplicate(live: Live) -> None:
    fresh = make_org(111)
    r = live.post("issuer", listed("V-1", "E-D1", fresh), listed("V-2", "E-D1", make_org(112)))
    refused(r, 422, "duplicate_id", 1)
    assert live.applied() == [] and live.decision(fresh) == "pass"
    # a listing of an entry purged earlier in the request is a duplicate too (as in a build)
    r = live.post("issuer", listed("V-3", "E-D2", fresh), ev("V-4", "E-D2", "revoked"),
                  listed("V-5", "E-D2", fresh))
    refused(r, 422, "duplicate_id", 2)
    # and of an entry of the snapshot
    refused(live.post("issuer", listed("V-6", "E-1", fresh)), 422, "duplicate_id", 0)
    assert live.applied() == []


@pytest.mark.parametrize("purge", [
    [ev("V-1", "E-1", "revoked")],
    [ev("V-1", "E-1", "objection_opened"),
     ev("V-1b", "E-1", "objection_closed", "2026-05-02T00:00:00+08:00", result="upheld")],
], ids=["revoked", "upheld"])
def test_an_event_after_a_purge_in_the_request_is_refused(live: Live,
                                                          purge: list[dict[str, Any]]) -> None:
    later = ev("V-2", "E-1", "exited", "2026-04-01T00:00:00+08:00", reason="repaired")
    refused(live.post("issuer", *purge, later), 422, "unknown_entry", len(purge))
    # nothing of the request was accepted
    assert live.applied() == [] and live.decision(ORG_BLACK) == "block"
    # posted one request at a time, the same sequence gets the same answer
    assert live.post("issuer", *purge).status_code == 202
    refused(live.post("issuer", later), 422, "unknown_entry", 0)
    assert live.decision(ORG_BLACK) == "pass"


def test_an_event_before_its_entrys_listing_is_refused(live: Live) -> None:
    fresh = make_org(121)
    r = live.post("issuer", ev("V-1", "E-B1", "objection_opened"), listed("V-2", "E-B1", fresh))
    refused(r, 422, "unknown_entry", 0)
    assert live.applied() == []


def test_the_first_error_wins_and_refuses_the_whole_request(live: Live) -> None:
    fresh = make_org(131)
    r = live.post("issuer", listed("V-1", "E-F1", fresh), ev("V-2", "E-F1", "revoked"),
                  ev("V-3", "E-2", "revoked"),          # another list: 403 …
                  ev("V-4", "E-404", "revoked"))        # … comes first
    refused(r, 403, "list_forbidden", 2)
    assert live.applied() == [] and live.decision(fresh) == "pass"


def test_concurrent_requests_cannot_both_list_one_entry(live: Live) -> None:
    """Judging and appending are serialised per process: of two concurrent requests listing
    the same entry id, one is accepted and the other is a duplicate."""
    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=live.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return list(await asyncio.gather(*(
                c.post("/v1/events", headers=auth("issuer"),
                       json={"events": [listed(f"V-C{i}", "E-C1", make_org(140 + i))]})
                for i in range(2))))

    codes = sorted(r.status_code for r in asyncio.run(both()))
    assert codes == [202, 422]
    assert len(live.applied()) == 1


def test_replicas_racing_cannot_both_list_one_entry(dirs: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    """Across processes the append is conditional on the log the events were judged against.
    Two replicas on one backbone: while replica A is between judging its listing and
    appending it, replica B lists the same entry id. A's append finds the log moved, A
    catches up, judges again and refuses its listing as a duplicate — so no acknowledged
    event is one that every replica then skips. Both replicas end up applying B's."""
    snapshots, accounts = dirs
    settings = Settings(snapshot=snapshots, accounts=accounts, data=tmp_path / "data")
    a, b = Live(settings, snapshots), Live(settings, snapshots)
    theirs = make_org(151)
    raced: list[int] = []
    append = a.bb.append_events

    def b_first(events: list[dict[str, Any]], after: Any = "*") -> list[str]:
        if not raced:  # B gets in between A's judgement and A's append, once
            raced.append(b.post("issuer", listed("V-B1", "E-R1", theirs)).status_code)
        return append(events, after)

    a.bb.append_events = b_first  # type: ignore[method-assign]
    try:
        r = a.post("issuer", listed("V-A1", "E-R1", make_org(152)))
        assert raced == [202]
        refused(r, 422, "duplicate_id", 0)
        assert a.applied() == b.applied() == ["V-B1"]
        assert a.decision(theirs) == b.decision(theirs) == "block"
        # with no race, the append goes through at the first attempt
        assert a.post("issuer", ev("V-A2", "E-R1", "revoked")).status_code == 202
        assert a.decision(theirs) == "pass"
    finally:
        a.close()
        b.close()


# -- gap 2: re-posted ids are authorised, and never replaced ------------------------------------
def test_identical_repost_is_idempotent_for_the_issuer(live: Live) -> None:
    revoke = ev("V-R1", "E-1", "revoked")
    assert live.post("issuer", revoke).json() == {"accepted": ["V-R1"]}
    again = live.post("issuer", revoke)
    assert again.status_code == 202 and again.json() == {"accepted": ["V-R1"]}
    assert live.applied() == ["V-R1"]
    # with a new event after it: the re-post adds nothing, the new one is judged after it
    r = live.post("issuer", revoke, ev("V-R2", "E-4", "exited", reason="repaired"))
    assert r.status_code == 202 and r.json() == {"accepted": ["V-R1", "V-R2"]}
    assert live.applied() == ["V-R1", "V-R2"]


def test_repost_of_another_issuers_event_is_forbidden(live: Live) -> None:
    revoke = ev("V-R1", "E-1", "revoked")
    assert live.post("issuer", revoke).status_code == 202
    # another list's issuer re-posting it verbatim: 403 (it used to be 202)
    refused(live.post("issuer_cz", revoke), 403, "list_forbidden", 0)
    # same list, another authority
    refused(live.post("issuer_spc", revoke), 403, "authority_forbidden", 0)
    # other content under that id, aimed at its own list: still the accepted event's owner
    refused(live.post("issuer_cz", ev("V-R1", "E-2", "revoked")), 403, "list_forbidden", 0)
    # a re-post hidden behind a valid event of its own: the whole request is refused
    r = live.post("issuer_cz", ev("V-C1", "E-2", "objection_opened"), revoke)
    refused(r, 403, "list_forbidden", 1)
    assert live.applied() == ["V-R1"]
    assert live.decision(ORG_SHARED) == "block"


def test_other_content_under_an_accepted_id_is_a_conflict(live: Live) -> None:
    first = ev("V-X1", "E-1", "objection_opened")
    assert live.post("issuer", first).status_code == 202
    for changed in (dict(first, at="2026-05-02T10:00:00+08:00"),
                    ev("V-X1", "E-1", "revoked"),
                    ev("V-X1", "E-4", "objection_opened")):
        refused(live.post("issuer", changed), 409, "duplicate_event_id", 0)
    assert live.applied() == ["V-X1"]
    # key order and spacing are not content
    reordered = {k: first[k] for k in reversed(list(first))}
    assert live.post("issuer", reordered).status_code == 202
    assert live.applied() == ["V-X1"]


def test_one_id_twice_in_a_request(live: Live) -> None:
    opened = ev("V-T1", "E-1", "objection_opened")
    # identical: accepted once
    r = live.post("issuer", opened, opened)
    assert r.status_code == 202 and r.json() == {"accepted": ["V-T1"]}
    assert live.applied() == ["V-T1"]
    # different content: 409, nothing of the request accepted
    r = live.post("issuer", ev("V-T2", "E-4", "objection_opened"),
                  ev("V-T2", "E-4", "revoked"))
    refused(r, 409, "duplicate_event_id", 1)
    assert live.applied() == ["V-T1"]
    assert live.decision(ORG_LOCAL, region="350100") == "block"


# -- the accepted sequence folds into the next build alike -------------------------------------
SUBJECTS = [ORG_BLACK, ORG_LOCAL, PERSON_REP, ORG_CLEAN, make_org(201), make_org(202),
            make_org(203)]
AS_OFS = ["2026-04-15T00:00:00+08:00", "2026-05-05T00:00:00+08:00", "2026-05-11T00:00:00+08:00",
          AS_OF, "2026-10-01T00:00:00+08:00", "2030-01-01T00:00:00+08:00"]
SCENARIOS = ["government_procurement", "honors"]


def _answers(w: Live) -> list[Any]:
    out = []
    for subject in SUBJECTS:
        for as_of in AS_OFS:
            for scenario in SCENARIOS:
                a = w.check(subject, as_of=as_of, scenario=scenario, region="350100")
                out.append((subject, as_of, scenario, a["decision"],
                            [(h["entry"], h["path"], h["valid_from"], h["valid_until"],
                              [m["id"] for m in h["measures"]]) for h in a["hits"]],
                            [(s["entry"], s["reason"]) for s in a["suppressed"]],
                            [m["id"] for m in a["measures"]]))
    return out


SEQUENCE = [
    listed("V-S1", "E-S1", make_org(201)),
    ev("V-S2", "E-S1", "objection_opened", "2026-05-01T00:00:00+08:00"),
    ev("V-S3", "E-S1", "objection_closed", "2026-05-20T00:00:00+08:00", result="rejected"),
    ev("V-S4", "E-S1", "exited", "2026-09-01T00:00:00+08:00", reason="repaired"),
    listed("V-S5", "E-S2", make_org(202)),
    ev("V-S6", "E-S2", "revoked"),
    ev("V-S7", "E-1", "objection_opened", "2026-05-10T00:00:00+08:00"),
    ev("V-S8", "E-1", "objection_closed", "2026-05-12T00:00:00+08:00", result="upheld"),
    listed("V-S9", "E-S3", make_org(203), persons=[
        {"role": "legal_rep", "id": PERSON_REP, "name": "张三"}]),
    # an earlier `at` than the listing's events before it: the fold orders by `at`
    ev("V-S10", "E-S3", "exited", "2026-04-20T00:00:00+08:00", reason="fulfilled"),
]


def test_the_accepted_sequence_folds_into_the_build_alike(tmp_path: Path) -> None:
    source = write_fixture_source(tmp_path / "source")
    write_jsonl(source / "events" / "source.jsonl",
                [ev("S-1", "E-4", "objection_opened", "2026-01-01T00:00:00+08:00")])
    first = build(source, tmp_path / "snapshots")
    settings = Settings(snapshot=tmp_path / "snapshots", data=tmp_path / "data",
                        accounts=write_accounts(tmp_path / "accounts.jsonl",
                                                ACCOUNTS + MORE_ACCOUNTS))
    w = Live(settings, tmp_path / "snapshots")
    try:
        r = w.post("issuer", *SEQUENCE)
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == [e["id"] for e in SEQUENCE]
        assert w.post("issuer", ev("V-S11", "E-4", "exited", "2026-10-01T00:00:00+08:00",
                                   reason="repaired")).status_code == 202
        live_answers = _answers(w)
        # the same sequence posted one event at a time gives the same answers
        w2 = Live(Settings(snapshot=settings.snapshot, data=tmp_path / "data2",
                           accounts=settings.accounts), tmp_path / "snapshots")
        try:
            for e in SEQUENCE + [ev("V-S11", "E-4", "exited", "2026-10-01T00:00:00+08:00",
                                    reason="repaired")]:
                assert w2.post("issuer", e).status_code == 202
            assert _answers(w2) == live_answers
        finally:
            w2.close()
        # an event id of the source: its content is unknown here, so it is never re-used
        refused(w.post("issuer", ev("S-1", "E-4", "objection_opened",
                                    "2026-01-01T00:00:00+08:00")), 409, "duplicate_event_id", 0)
        # export the accepted events and rebuild (no rejects allowed)
        assert w.bb.flush(5.0)
        # a typo in either folder is refused, not exported into a new folder
        assert backbone_main(["export-events", str(tmp_path / "sourse" / "events"),
                              "--data", str(settings.data)]) == 2
        assert backbone_main(["export-events", str(source / "events"),
                              "--data", str(tmp_path / "no-such-data")]) == 2
        assert not (tmp_path / "sourse").exists() and not (tmp_path / "no-such-data").exists()
        assert backbone_main(["export-events", str(source / "events"),
                              "--data", str(settings.data)]) == 0
        time.sleep(0.01)
        second = build(source, tmp_path / "snapshots")
        assert second.version != first.version and second.rejects == 0
        assert w.holder.refresh() is not None
        assert w.check(ORG_CLEAN)["snapshot"] == second.version
        assert _answers(w) == live_answers
        # the rebuilt snapshot alone (no live events) answers the same
        alone = Live(Settings(snapshot=settings.snapshot, data=tmp_path / "data3",
                              accounts=settings.accounts), tmp_path / "snapshots")
        try:
            assert alone.applied() == []
            assert alone.check(ORG_CLEAN)["snapshot"] == second.version
            assert _answers(alone) == live_answers
        finally:
            alone.close()
        # after the rebuild, the re-post rules hold on the folded events
        assert w.post("issuer", SEQUENCE[0]).status_code == 202
        refused(w.post("issuer_cz", SEQUENCE[0]), 403, "list_forbidden", 0)
        refused(w.post("issuer", dict(SEQUENCE[1], at=AT)), 409, "duplicate_event_id", 0)
        # an entry the build dropped (purged) is unknown, as it was before the rebuild
        refused(w.post("issuer", ev("V-S12", "E-S2", "exited", reason="repaired")),
                422, "unknown_entry", 0)
    finally:
        w.close()


# -- two replicas on one Redis -------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_two_replicas_apply_a_sequence_alike(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.test_backbone import RedisServer
    from tests.test_server import serving

    snapshots, accounts = dirs
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    fresh = make_org(301)
    body = {"subject": fresh, "scenario": "government_procurement", "as_of": AS_OF}
    try:
        with serving(snapshots, accounts, tmp_path / "a", "--redis", redis.url) as a, \
                serving(snapshots, accounts, tmp_path / "b", "--redis", redis.url) as b, \
                httpx.Client(timeout=5) as h:
            seq = [listed("V-1", "E-R1", fresh),
                   ev("V-2", "E-R1", "objection_opened", "2026-05-10T00:00:00+08:00"),
                   ev("V-3", "E-R1", "objection_closed", "2026-05-20T00:00:00+08:00",
                      result="rejected")]
            assert h.post(b + "/v1/check", json=body,
                          headers=auth("agency")).json()["decision"] == "pass"
            r = h.post(a + "/v1/events", json={"events": seq}, headers=auth("issuer"))
            assert r.status_code == 202, r.text
            deadline = time.monotonic() + 1.0
            applied: list[str] = []
            while time.monotonic() < deadline:
                applied = [e["id"] for e in h.get(b + "/v1/snapshot").json()["applied_events"]]
                if len(applied) == 3:
                    break
                time.sleep(0.01)
            assert applied == ["V-1", "V-2", "V-3"]
            for base in (a, b):
                for as_of, want in (("2026-05-15T00:00:00+08:00", "pass"),
                                    (AS_OF, "block")):
                    got = h.post(base + "/v1/check", json=dict(body, as_of=as_of),
                                 headers=auth("agency")).json()
                    assert got["decision"] == want, (base, as_of, got)
            # B judges re-posts of A's events from the shared log
            assert h.post(b + "/v1/events", json={"events": seq[:1]},
                          headers=auth("issuer")).status_code == 202
            forbidden = h.post(b + "/v1/events", json={"events": seq[:1]},
                               headers=auth("issuer_cz"))
            assert forbidden.status_code == 403, forbidden.text
            conflict = h.post(b + "/v1/events", json={"events": [dict(seq[1], at=AT)]},
                              headers=auth("issuer"))
            assert conflict.status_code == 409, conflict.text
            # and a sequence on B that names A's entry: purged, then refused on A
            r = h.post(b + "/v1/events", json={"events": [ev("V-4", "E-R1", "revoked")]},
                       headers=auth("issuer"))
            assert r.status_code == 202, r.text
            late = h.post(a + "/v1/events", json={"events": [
                ev("V-5", "E-R1", "exited", reason="repaired")]}, headers=auth("issuer"))
            assert late.status_code == 422 and late.json()["error"]["code"] == "unknown_entry"
            assert h.post(a + "/v1/check", json=body,
                          headers=auth("agency")).json()["decision"] == "pass"
    finally:
        redis.stop()
