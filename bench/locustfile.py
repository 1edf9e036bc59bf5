"""Peak service-hall traffic for locust (loopback only, bounded by ``-t``).

    screening demo --entries 100000 &            # or: screening serve --snapshot … --accounts …
    SCREENING_BENCH_KEY=<agency key> SCREENING_BENCH_SOURCE=demo/source \\
        locust -f bench/locustfile.py --headless -u 200 -r 50 -t 60s --host http://127.0.0.1:8000

* ``HallWindow`` — 政务服务大厅 windows (行政审批, 财政资金, 评先评优): one inline check per
  applicant, a short pause between applicants. 80% clean applicants (valid codes listed
  nowhere), 12% listed (black/watch entries of the source), 5% red, 3% persons.
* ``TenderPlatform`` — 招标投标 / 政府采购 platforms: a batch of 50–2,000 bidders at bid opening.
  One platform user for every ~20 window users (``weight``).

``SCREENING_BENCH_SOURCE`` is the SPEC §3 source the snapshot was built from (listed and red
subjects are drawn from it); ``SCREENING_BENCH_REGION`` (default none) is sent as ``region``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import orjson
from locust import FastHttpUser, between, task

from screening.demo import make_ric, make_uscc

KEY = os.environ.get("SCREENING_BENCH_KEY", "")
SOURCE = Path(os.environ.get("SCREENING_BENCH_SOURCE", "demo/source"))
REGION = os.environ.get("SCREENING_BENCH_REGION") or None
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
WINDOW_SCENARIOS = ("administrative_license", "administrative_license", "fiscal_funds",
                    "honors", "government_procurement")
CLEAN_REGIONS = ("350102", "350103", "350203", "350582", "350121", "110105")


def _subjects(limit: int = 50_000) -> tuple[list[str], list[str]]:
    """(listed black/watch subjects, red subjects) from the source's entries."""
    listed: list[str] = []
    red: list[str] = []
    lists = SOURCE / "lists.jsonl"
    if not lists.is_file():
        return listed, red
    kinds = {li["code"]: li["kind"] for li in map(orjson.loads, lists.read_bytes().splitlines())}
    for path in sorted((SOURCE / "entries").glob("*.jsonl")):
        with path.open("rb") as f:
            for n, raw in enumerate(f):
                if n >= limit:
                    break
                entry = orjson.loads(raw)
                target = red if kinds.get(entry.get("list")) == "red" else listed
                target.append(entry["subject"]["id"])
    return listed, red


LISTED, RED = _subjects()
_rng = random.Random(2026)


def applicant(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.80 or not LISTED:
        return make_uscc(rng, rng.choice(CLEAN_REGIONS))
    if roll < 0.92:
        return rng.choice(LISTED)
    if roll < 0.97 and RED:
        return rng.choice(RED)
    return make_ric(rng, "350102")


def _body(**fields: Any) -> str:
    if REGION:
        fields["region"] = REGION
    return orjson.dumps(fields).decode()


class HallWindow(FastHttpUser):
    """One approval window: an applicant, a check, the clerk's pause."""

    weight = 20
    wait_time = between(0.05, 0.5)

    @task
    def check_applicant(self) -> None:
        body = _body(subject=applicant(_rng), scenario=_rng.choice(WINDOW_SCENARIOS))
        with self.client.post("/v1/check", data=body, headers=HEADERS, name="/v1/check",
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")


class TenderPlatform(FastHttpUser):
    """A tender platform screening every bidder at bid opening."""

    weight = 1
    wait_time = between(1, 3)

    @task
    def check_bidders(self) -> None:
        n = _rng.choice((50, 200, 500, 2000))
        subjects = [{"subject": applicant(_rng)} for _ in range(n)]
        body = _body(scenario=_rng.choice(("bidding", "government_procurement")),
                     subjects=subjects)
        with self.client.post("/v1/check/batch", data=body, headers=HEADERS,
                              name=f"/v1/check/batch ({n})", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
            elif any("error" in x for x in r.json()["results"]):
                r.failure("a bidder was refused")
