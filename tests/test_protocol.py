"""``screening.protocol.CheckProtocol`` over real sockets: ``POST /v1/check`` answered below
ASGI gives the same bytes as the ASGI app on uvicorn's own protocol, keeps uvicorn's connection
semantics (keep-alive, pipelining, HTTP/1.0, ``Connection: close``), and hands every case it
does not take (chunked or oversized bodies, ``Expect``, query strings) to the app."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from screening import protocol
from screening.app import create_app
from screening.holder import SnapshotHolder
from screening.server import uvicorn_options
from screening.settings import Settings
from tests.apifixtures import fixture_dirs  # noqa: F401 (fixture)
from tests.servicekit import (
    AS_OF,
    KEYS,
    ORG_BLACK,
    ORG_CLEAN,
    PERSON_BLACK,
    PERSON_REP,
    SCENARIOS,
    ListRecorder,
    make_org,
)
from tests.test_api_errors import _FIELD, ERRORS

MAX_BODY = 4096


class Served:
    """One uvicorn server on a loopback port, in a thread of this process."""

    def __init__(self, snapshots: Path, accounts: Path, http: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        settings = Settings(snapshot=snapshots, accounts=accounts, port=self.port,
                            max_body=MAX_BODY, log_level="warning")
        holder = SnapshotHolder(snapshots)
        holder.refresh()
        self.recorder = ListRecorder()
        self.app = create_app(settings, holder=holder, recorder=self.recorder, watch=False,
                              backbone=False)
        options = {**uvicorn_options(settings), "http": http}
        self.server = uvicorn.Server(uvicorn.Config(self.app, **options))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def servers(fixture_dirs: tuple[Path, Path]) -> Iterator[dict[str, Served]]:  # noqa: F811
    snapshots, accounts = fixture_dirs
    both = {"protocol": Served(snapshots, accounts, protocol.CheckProtocol),
            "asgi": Served(snapshots, accounts, "httptools")}
    yield both
    for s in both.values():
        s.stop()


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests ``CheckProtocol`` answered itself."""
    seen: list[int] = []
    complete = protocol._Pending.complete

    def counted(self: protocol._Pending) -> None:
        seen.append(1)
        complete(self)

    monkeypatch.setattr(protocol._Pending, "complete", counted)
    return seen


# -- a minimal HTTP/1.1 client that shows exactly what came back ------------------------------
def request(body: bytes, *, who: str | None = "agency", path: str = "/v1/check",
            method: str = "POST", version: str = "1.1",
            headers: dict[str, str] | None = None, length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: t"]
    if who is not None:
        lines.append(f"Authorization: Bearer {KEYS[who]}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _parse(buf: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """One response off the front of ``buf`` (``None`` if incomplete); 1xx are skipped."""
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            return None, buf
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        if 100 <= status < 200:
            buf = rest
            continue
        names = {k.lower(): v for k, v in headers}
        n = int(names.get("content-length", "0"))
        if len(rest) < n:
            return None, buf
        return {"status": status, "headers": [(k.lower(), v) for k, v in headers],
                "body": rest[:n]}, rest[n:]


def exchange(port: int, data: bytes | list[bytes], responses: int = 1, *, probe: bool = False
             ) -> tuple[list[dict[str, Any]], bool | None]:
    """Send ``data`` (pieces with a pause between them), read ``responses`` answers; with
    ``probe``, also whether the server then closed the connection (else ``None``)."""
    out: list[dict[str, Any]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for i, piece in enumerate(data if isinstance(data, list) else [data]):
            if i:
                time.sleep(0.05)
            s.sendall(piece)
        buf = b""
        while len(out) < responses:
            got, buf = _parse(buf)
            if got is not None:
                out.append(got)
                continue
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        if not probe:
            return out, None
        s.settimeout(0.5)
        try:
            closed = s.recv(1) == b""
        except (TimeoutError, ConnectionResetError):
            closed = False
    return out, closed


def normal(r: dict[str, Any]) -> tuple[int, list[tuple[str, str]], Any]:
    """What must be equal between two answers: all but the date and the check id (and so
    the length, which must be the body's)."""
    assert ("content-length", str(len(r["body"]))) in r["headers"]
    headers = sorted(h for h in r["headers"] if h[0] not in ("date", "content-length"))
    json = ("content-type", "application/json") in r["headers"]
    body = orjson.loads(r["body"]) if json else r["body"]
    if isinstance(body, dict) and "check_id" in body:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", body.pop("check_id"))
    return r["status"], headers, body


def check_body(subject: str, **extra: Any) -> bytes:
    return orjson.dumps({"subject": subject, "scenario": "government_procurement",
                         "as_of": AS_OF, **extra})


CHECK_CASES = [(e[0], e[3], e[4]) for e in ERRORS
               if e[1] == "POST" and e[2] == "/v1/check" and e[0] != "body_too_large"]


@pytest.mark.parametrize("case", CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
def test_every_error_is_the_asgi_answer(servers: dict[str, Served], taken: list[int],
                                        case: tuple[Any, ...]) -> None:
    _, headers, body = case
    who = "agency" if headers is None else None
    data = request(body, who=who, headers=headers or {})
    (fast,), _ = exchange(servers["protocol"].port, data)
    (slow,), _ = exchange(servers["asgi"].port, data)
    assert fast["status"] >= 400
    assert normal(fast) == normal(slow)
    assert taken == [1]


@pytest.mark.parametrize("subject", [ORG_CLEAN, ORG_BLACK, make_org(999)])
@pytest.mark.parametrize("who", ["agency", "public", "adopter"])
def test_decisions_are_the_asgi_answer(servers: dict[str, Served], taken: list[int],
                                       subject: str, who: str) -> None:
    data = request(check_body(subject, name="某公司", consent="C-1"), who=who)
    (fast,), closed = exchange(servers["protocol"].port, data, probe=who == "agency")
    (slow,), _ = exchange(servers["asgi"].port, data)
    assert fast["status"] == 200 and not closed
    assert normal(fast) == normal(slow)
    assert orjson.loads(fast["body"])["subject"]["id"] == subject
    assert taken == [1]


def test_answered_checks_are_recorded(servers: dict[str, Served], taken: list[int]) -> None:
    served = servers["protocol"]
    before = len(served.recorder.seen)
    answers, _ = exchange(served.port, b"".join(request(check_body(ORG_BLACK))
                                                for _ in range(3)), responses=3)
    ids = [orjson.loads(a["body"])["check_id"] for a in answers]
    recorded = [r[2]["check_id"] for r in served.recorder.seen[before:]]
    assert recorded == ids
    assert len(taken) >= 1  # the first; the pipelined ones may go through the app


def test_keep_alive_and_many_in_a_row(servers: dict[str, Served], taken: list[int]) -> None:
    port = servers["protocol"].port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        buf = b""
        for i in range(40):
            s.sendall(request(check_body(make_org(i))))
            got = None
            while got is None:
                got, buf = _parse(buf)
                if got is None:
                    chunk = s.recv(65536)
                    assert chunk, "the server closed a keep-alive connection"
                    buf += chunk
            assert got["status"] == 200
            assert orjson.loads(got["body"])["subject"]["id"] == make_org(i)
    assert len(taken) == 40


def test_pipelined_requests_are_answered_in_order(servers: dict[str, Served],
                                                  taken: list[int]) -> None:
    subjects = [make_org(1), ORG_BLACK, None, make_org(2), "1234"]
    data = b"".join(request(b"", method="GET", path="/healthz", length=False) if s is None
                    else request(check_body(s)) for s in subjects)
    answers, closed = exchange(servers["protocol"].port, data, responses=len(subjects),
                               probe=True)
    assert len(answers) == len(subjects) and not closed
    for subject, answer in zip(subjects, answers):
        body = orjson.loads(answer["body"])
        if subject is None:
            assert answer["status"] == 200 and "check_id" not in body
        elif subject == "1234":
            assert answer["status"] == 422 and body["error"]["code"] == "bad_length"
        else:
            assert answer["status"] == 200 and body["subject"]["id"] == subject
    assert len(taken) >= 1


@pytest.mark.parametrize("how", ["http/1.0", "connection: close"])
def test_closing_connections(servers: dict[str, Served], taken: list[int], how: str) -> None:
    data = (request(check_body(ORG_CLEAN), version="1.0") if how == "http/1.0"
            else request(check_body(ORG_CLEAN), headers={"Connection": "close"}))
    (fast,), closed = exchange(servers["protocol"].port, data, probe=True)
    (slow,), slow_closed = exchange(servers["asgi"].port, data, probe=True)
    assert closed and slow_closed
    assert ("connection", "close") in fast["headers"]
    assert normal(fast) == normal(slow)
    assert taken == [1]


def test_http_1_0_keep_alive_is_kept(servers: dict[str, Served], taken: list[int]) -> None:
    data = request(check_body(ORG_CLEAN), version="1.0", headers={"Connection": "keep-alive"})
    (fast,), closed = exchange(servers["protocol"].port, data, probe=True)
    (slow,), slow_closed = exchange(servers["asgi"].port, data, probe=True)
    assert (closed, normal(fast)) == (slow_closed, normal(slow))
    assert taken == [1]


FALLBACKS = {
    "chunked": [b"POST /v1/check HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
                + KEYS["agency"].encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n%s\r\n0\r\n\r\n" % (len(check_body(ORG_BLACK)), check_body(ORG_BLACK))],
    "expect_100": [request(check_body(ORG_BLACK), headers={"Expect": "100-continue"})],
    "query": [request(check_body(ORG_BLACK), path="/v1/check?x=1")],
    "over_limit": [request(check_body(ORG_BLACK, name="x" * (MAX_BODY + 10)))],
    "get": [request(b"", method="GET", length=False)],
    "slow_body": [request(check_body(ORG_BLACK))[:-10], request(check_body(ORG_BLACK))[-10:]],
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_what_the_protocol_leaves_to_the_app(servers: dict[str, Served], taken: list[int],
                                             name: str) -> None:
    data = FALLBACKS[name]
    fast, fast_closed = exchange(servers["protocol"].port, data, probe=True)
    slow, slow_closed = exchange(servers["asgi"].port, data, probe=True)
    assert [normal(r) for r in fast] == [normal(r) for r in slow]
    assert fast_closed == slow_closed
    if name == "slow_body":  # a body in two pieces is still the protocol's
        assert taken == [1] and fast[0]["status"] == 200
    else:
        assert taken == []


# httptools itself refuses these before any route: uvicorn answers 400 in plain text, the
# protocol the JSON error every other answer has (docs/http-api.md, ``bad_request``)
UNPARSABLE = {
    "bad_length": [request(check_body(ORG_BLACK), length=False,
                           headers={"Content-Length": "12a"})],
    "two_lengths": [request(check_body(ORG_BLACK), headers={"Content-Length": "3"})],
    "bad_request_line": [b"POST /v1/check HTTP/9.x\r\nHost: t\r\n\r\n"],
}


@pytest.mark.parametrize("name", sorted(UNPARSABLE))
def test_unparsable_requests_get_a_json_400(servers: dict[str, Served], taken: list[int],
                                            name: str) -> None:
    (fast,), fast_closed = exchange(servers["protocol"].port, UNPARSABLE[name], probe=True)
    (slow,), slow_closed = exchange(servers["asgi"].port, UNPARSABLE[name], probe=True)
    assert fast_closed and slow_closed
    assert slow["status"] == fast["status"] == 400
    assert ("content-type", "application/json") in fast["headers"]
    assert orjson.loads(fast["body"])["error"]["code"] == "bad_request"
    assert taken == []


def test_client_gone_before_its_answer(servers: dict[str, Served], taken: list[int]) -> None:
    served = servers["protocol"]
    before = len(served.recorder.seen)
    for cut in (10, None):  # mid-body; whole request, then gone at once
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
            data = request(check_body(ORG_BLACK))
            s.sendall(data[:-cut] if cut else data)
    (answer,), _ = exchange(served.port, request(check_body(ORG_CLEAN)))
    assert answer["status"] == 200  # still serving
    deadline = time.monotonic() + 5
    while len(served.recorder.seen) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    subjects = [r[1].subject for r in served.recorder.seen[before:]]
    assert subjects.count(ORG_CLEAN) == 1
    assert subjects.count(ORG_BLACK) <= 1  # the whole one is decided, the cut one never is


def test_concurrent_connections_get_their_own_answers(servers: dict[str, Served],
                                                      taken: list[int]) -> None:
    port = servers["protocol"].port

    def client(k: int) -> list[str]:
        wrong = []
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            buf = b""
            for i in range(25):
                subject = make_org(1000 + 100 * k + i)
                s.sendall(request(check_body(subject)))
                got = None
                while got is None:
                    got, buf = _parse(buf)
                    if got is None:
                        buf += s.recv(65536)
                if orjson.loads(got["body"])["subject"]["id"] != subject:
                    wrong.append(subject)
        return wrong

    with ThreadPoolExecutor(16) as pool:
        assert [w for wrong in pool.map(client, range(16)) for w in wrong] == []
    assert len(taken) == 16 * 25


def test_metrics_count_the_protocols_checks(servers: dict[str, Served],
                                            taken: list[int]) -> None:
    port = servers["protocol"].port

    def checks_counted() -> float:
        (r,), _ = exchange(port, request(b"", method="GET", path="/metrics", length=False))
        text = r["body"].decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("screening_responses_total{")
                   and 'route="/v1/check"' in line)

    before = checks_counted()
    exchange(port, request(check_body(ORG_CLEAN)))
    exchange(port, request(check_body("1234")))
    assert checks_counted() == before + 2
    assert taken == [1, 1]


def test_serve_runs_on_the_check_protocol() -> None:
    options = uvicorn_options(Settings(snapshot=Path("/nonexistent")))
    assert options["http"] == "screening.protocol:CheckProtocol"
    config = uvicorn.Config(lambda *a: None, **options)  # type: ignore[arg-type]
    config.load()
    assert config.http_protocol_class is protocol.CheckProtocol


def test_a_failure_is_the_asgi_500(servers: dict[str, Served], taken: list[int],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever fails unexpectedly (here: authentication) is a logged 500 with the error
    shape on both paths, and the connection goes on serving."""
    def broken(authorization: Any) -> Any:
        raise RuntimeError("boom")

    for served in servers.values():
        monkeypatch.setattr(served.app.service, "authenticate", broken)
    data = request(check_body(ORG_CLEAN)) + request(b"", method="GET", path="/healthz",
                                                    length=False)
    fast, _ = exchange(servers["protocol"].port, data, responses=2)
    slow, _ = exchange(servers["asgi"].port, data, responses=2)
    assert fast[0]["status"] == 500
    assert orjson.loads(fast[0]["body"])["error"]["code"] == "internal_error"
    assert [normal(r) for r in fast] == [normal(r) for r in slow]
    assert taken == [1]


def _encode(obj: Any) -> bytes:
    """JSON as a client would send it (the standard library's: big integers, NaN …)."""
    return json.dumps(obj, ensure_ascii=False).encode()


_VALID = st.builds(
    lambda subject, scenario, extra: {"subject": subject, "scenario": scenario, **extra},
    st.sampled_from([ORG_BLACK, ORG_CLEAN, PERSON_BLACK, PERSON_REP, make_org(5), "1234"]),
    st.sampled_from([sc["code"] for sc in SCENARIOS]),
    st.dictionaries(st.sampled_from(["type", "name", "region", "as_of", "consent", "purpose"]),
                    st.one_of(st.sampled_from(["org", "person", "350100", "350102", AS_OF,
                                               "某公司", "C-1"]), _FIELD), max_size=3))
_BODIES = st.one_of(
    _VALID.map(_encode), _VALID.map(_encode),
    st.dictionaries(st.sampled_from(["subject", "scenario", "type", "name", "region", "as_of",
                                     "consent", "purpose", "other"]), _FIELD, max_size=7)
    .map(_encode),
    st.binary(max_size=64),
    st.sampled_from([b"", b"{", b"[]", b"null", b'{"subject": "\xff"}', b"\xef\xbb\xbf{}"]))


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=_BODIES, who=st.sampled_from(["agency", "agency", "public", "adopter", None, "bad"]),
       version=st.sampled_from(["1.1", "1.0"]), close=st.booleans(),
       content_type=st.sampled_from([None, "application/json", "text/plain"]))
def test_any_request_is_the_asgi_answer(servers: dict[str, Served], body: bytes,
                                        who: str | None, version: str, close: bool,
                                        content_type: str | None) -> None:
    """Generated bodies, keys, HTTP versions and headers: the protocol answers exactly as
    the ASGI app on uvicorn's own protocol (status, headers but the date, body but the check
    id — and the time, where the request left ``as_of`` to the server)."""
    headers = {"Authorization": "Bearer nope"} if who == "bad" else {}
    if close:
        headers["Connection"] = "close"
    if content_type:
        headers["Content-Type"] = content_type
    data = request(body, who=None if who == "bad" else who, version=version, headers=headers)
    (fast,), _ = exchange(servers["protocol"].port, data)
    (slow,), _ = exchange(servers["asgi"].port, data)
    a, b = normal(fast), normal(slow)
    if isinstance(a[2], dict) and isinstance(b[2], dict):
        try:
            given_as_of = "as_of" in orjson.loads(body)
        except (orjson.JSONDecodeError, TypeError):
            given_as_of = False
        if not given_as_of:
            a[2].pop("as_of", None)
            b[2].pop("as_of", None)
    assert a == b
    assert fast["status"] < 500


def test_an_answer_in_the_same_packet_does_not_time_out_the_next_request(
        servers: dict[str, Served], taken: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """An error the protocol answers at once, with the next request already behind it in the
    same packet, must not leave the keep-alive timer running over that request."""
    for served in servers.values():
        monkeypatch.setattr(served.server.config, "timeout_keep_alive", 0.2)
    second = request(check_body(ORG_BLACK))
    data = [request(b"{", who=None), second[:-5]], second[-5:]  # a 401: answered at once
    for name, served in servers.items():
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
            s.sendall(data[0][0] + data[0][1])
            time.sleep(0.5)  # longer than the keep-alive timeout
            s.sendall(data[1])
            buf, got = b"", []
            while len(got) < 2:
                answer, buf = _parse(buf)
                if answer is not None:
                    got.append(answer)
                    continue
                chunk = s.recv(65536)
                assert chunk, f"{name}: the connection was closed before the second answer"
                buf += chunk
        assert [g["status"] for g in got] == [401, 200], name
