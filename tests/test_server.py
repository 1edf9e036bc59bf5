"""The real ``screening serve`` / ``screening demo`` processes on free loopback ports.

Every process is started here and stopped here by its PID (SIGTERM, then SIGKILL after a
bound); every loop is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from indexer.build import build
from tests.servicekit import (AS_OF, ENTRIES, ORG_BLACK, ORG_CLEAN, auth, write_accounts,
                              write_fixture_source)

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_ready(proc: subprocess.Popen[Any], base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("server not ready in time")


@contextlib.contextmanager
def serving(snapshots: Path, accounts: Path, data: Path, *extra: str,
            watch: str = "0.1") -> Iterator[str]:
    port = free_port()
    cmd = [sys.executable, "-m", "screening", "serve", "--snapshot", str(snapshots),
           "--accounts", str(accounts), "--host", "127.0.0.1", "--port", str(port),
           "--data", str(data), *extra]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(SCREENING_WATCH_INTERVAL=watch,
                                                    SCREENING_LOG_LEVEL="warning"))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(proc, base)
        yield base
    finally:
        stop(proc)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once drained


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("server")
    a = write_fixture_source(root / "a")
    b = write_fixture_source(root / "b", [dict(e, subject=dict(e["subject"], id=ORG_CLEAN))
                                          if e["id"] == "E-1" else e for e in ENTRIES])
    return {"root": root, "a": a, "b": b, "accounts": write_accounts(root / "accounts.jsonl")}


def test_serve_answers_a_check(fixture: dict[str, Path], tmp_path: Path) -> None:
    result = build(fixture["a"], tmp_path / "snapshots")
    with serving(tmp_path / "snapshots", fixture["accounts"], tmp_path / "data") as base:
        r = httpx.post(base + "/v1/check", headers=auth("agency"), timeout=10,
                       json={"subject": ORG_BLACK, "scenario": "government_procurement",
                             "as_of": AS_OF})
        assert r.status_code == 200
        body = r.json()
        assert body["decision"] == "block" and body["snapshot"] == result.version
        assert httpx.get(base + "/v1/snapshot").json()["version"] == result.version
        bad = httpx.post(base + "/v1/check", content=b"{", headers=auth("agency"))
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"
        assert "screening_snapshot_info" in httpx.get(base + "/metrics").text


def test_two_workers_share_the_snapshot_and_metrics(fixture: dict[str, Path],
                                                    tmp_path: Path) -> None:
    build(fixture["a"], tmp_path / "snapshots")
    with serving(tmp_path / "snapshots", fixture["accounts"], tmp_path / "data",
                 "--workers", "2") as base:
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(20):
                with httpx.Client(base_url=base, timeout=10) as one:  # new connections
                    r = one.post("/v1/check", headers=auth("agency"),
                                 json={"subject": ORG_CLEAN, "scenario": "bidding"})
                    assert r.status_code == 200 and r.json()["decision"] == "pass"
            time.sleep(1.6)  # each worker shares its counts every second
            text = client.get("/metrics").text
        m = re.search(r'screening_request_duration_seconds_count\{decision="pass",'
                      r'route="/v1/check"\} (\d+)', text)
        assert m and int(m[1]) == 20


def test_swaps_under_load_fail_no_request_and_mix_no_answers(fixture: dict[str, Path],
                                                             tmp_path: Path) -> None:
    """Swap snapshots while clients check; each answer matches the version that gave it."""
    served, staging = tmp_path / "snapshots", tmp_path / "staging"
    expected: dict[str, dict[str, tuple[str, list[str]]]] = {}

    def record(source: Path, out: Path) -> Path:
        result = build(source, out)
        a = source == fixture["a"]
        expected[result.version] = {ORG_BLACK: ("block", ["E-1"]) if a else ("pass", []),
                                    ORG_CLEAN: ("pass", []) if a else ("block", ["E-1"])}
        return result.path

    record(fixture["a"], served)
    staged = [record(fixture["b" if i % 2 == 0 else "a"], staging) for i in range(6)]
    answers: list[tuple[str, str, list[str], str]] = []
    failures: list[str] = []
    stop_at = threading.Event()

    def single(base: str) -> None:
        with httpx.Client(base_url=base, timeout=10, headers=auth("agency")) as c:
            i = 0
            while not stop_at.is_set():
                subject = (ORG_BLACK, ORG_CLEAN)[i % 2]
                i += 1
                try:
                    r = c.post("/v1/check", json={"subject": subject,
                                                  "scenario": "government_procurement",
                                                  "as_of": AS_OF})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                    continue
                body = r.json()
                answers.append((subject, body["decision"], [h["entry"] for h in body["hits"]],
                                body["snapshot"]))

    def batches(base: str) -> None:
        with httpx.Client(base_url=base, timeout=10, headers=auth("agency")) as c:
            while not stop_at.is_set():
                r = c.post("/v1/check/batch", json={
                    "scenario": "government_procurement", "as_of": AS_OF,
                    "subjects": [{"subject": ORG_BLACK}, {"subject": ORG_CLEAN}]})
                if r.status_code != 200:
                    failures.append(f"batch {r.status_code} {r.text}")
                    continue
                results = r.json()["results"]
                if len({x["snapshot"] for x in results}) != 1:
                    failures.append(f"batch answered by two snapshots: {results}")
                for subject, x in zip((ORG_BLACK, ORG_CLEAN), results):
                    answers.append((subject, x["decision"], [h["entry"] for h in x["hits"]],
                                    x["snapshot"]))

    with serving(served, fixture["accounts"], tmp_path / "data", watch="0.05") as base:
        clients = [threading.Thread(target=single, args=(base,)) for _ in range(3)]
        clients.append(threading.Thread(target=batches, args=(base,)))
        for t in clients:
            t.start()
        try:
            for folder in staged:
                time.sleep(0.3)
                os.rename(folder, served / folder.name)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if httpx.get(base + "/v1/snapshot").json()["version"] == folder.name:
                        break
                    time.sleep(0.02)
                else:
                    raise AssertionError(f"{folder.name} was not swapped in")
            time.sleep(0.3)
        finally:
            stop_at.set()
            for t in clients:
                t.join(timeout=20)
    assert not failures, failures[:5]
    assert len(answers) > 100
    seen = set()
    for subject, decision, hits, version in answers:
        assert version in expected, version
        assert (decision, hits) == expected[version][subject], (subject, version)
        seen.add(version)
    assert len(seen) >= 6  # answers came from (nearly) every version rolled in


def test_demo_prints_a_working_curl_line(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "screening", "demo", "--dir", str(tmp_path / "demo"),
         "--entries", "3000", "--port", str(port)],
        cwd=REPO, env=_env(SCREENING_LOG_LEVEL="warning"), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        output: list[str] = []
        deadline = time.monotonic() + 120
        while not any("/docs" in line for line in output):
            assert time.monotonic() < deadline, "".join(output)
            with contextlib.suppress(queue.Empty):
                output.append(lines.get(timeout=1))
        curl = next(line.strip() for line in output if line.strip().startswith("curl "))
        assert any(line.startswith("demo key (agency): ") for line in output)
        wait_ready(proc, f"http://127.0.0.1:{port}", timeout=60)
        r = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert '"decision":"block"' in r.stdout, r.stdout
    finally:
        stop(proc)
        reader.join(timeout=10)  # the pipe ends when the process does
        assert proc.stdout is not None
        proc.stdout.close()


def test_a_changed_accounts_file_is_taken_without_a_restart(fixture: dict[str, Path],
                                                            tmp_path: Path) -> None:
    """A unit added or a key revoked in the accounts file binds within the watch interval;
    a file that does not load is logged and the accounts in use are kept."""
    from tests.servicekit import ACCOUNTS

    build(fixture["a"], tmp_path / "snapshots")
    accounts = tmp_path / "accounts.jsonl"
    public, agency = ACCOUNTS[0], ACCOUNTS[1]
    write_accounts(accounts, [agency])

    def replace(rows: list[dict[str, Any]] | None, text: str | None = None) -> None:
        tmp = accounts.with_name("accounts.tmp")  # written whole, then renamed over
        if rows is not None:
            write_accounts(tmp, rows)
        else:
            tmp.write_text(text or "")
        os.replace(tmp, accounts)

    def status(who: str) -> int:
        return httpx.post(base + "/v1/check", headers=auth(who), timeout=10,
                          json={"subject": ORG_CLEAN, "scenario": "government_procurement",
                                "as_of": AS_OF}).status_code

    def settles(who: str, code: int) -> None:
        deadline = time.monotonic() + 10
        while status(who) != code:
            assert time.monotonic() < deadline, (who, code)
            time.sleep(0.05)

    with serving(tmp_path / "snapshots", accounts, tmp_path / "data") as base:
        assert status("agency") == 200 and status("public") == 401
        replace([agency, public])  # a unit added
        settles("public", 200)
        replace(None, "{not json\n")  # a broken file: the accounts in use are kept
        time.sleep(0.5)
        assert status("agency") == 200 and status("public") == 200
        replace([public])  # the agency's key revoked
        settles("agency", 401)
        assert status("public") == 200
