"""A small hand-written source, accounts and helpers for the HTTP service tests.

Every answer below is worked out by hand from SPEC §5 (as of ``AS_OF``):

* ``ORG_BLACK`` — on ``court.dishonest_debtor`` (public, national): block in procurement;
  its legal representative ``PERSON_REP`` is reached through ``linked:legal_rep``;
  in ``administrative_license`` the recommended block ``M-LIC-1`` is ``review`` unless adopted.
* ``ORG_SHARED`` — ``procurement.breach`` (shared): blocked for government tiers only.
* ``ORG_AUTH`` — ``credit.authorized`` (authorized): blocked only with ``consent``.
* ``ORG_LOCAL`` — court list with scope ``3501``: visible only for checks in 福州.
* ``ORG_RED`` — ``red.tax_a``: green in ``administrative_license``.
* ``PERSON_BLACK`` — a person on the court list (masked for the public tier).
* ``ORG_CLEAN`` — listed nowhere: pass, or green in ``honors`` (clean_years).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from indexer.identifiers import org_code_check_char, ric_check_char, uscc_check_char
from screening.accounts import Account
from screening.decision import CheckRequest
from tests.sourcekit import write_jsonl, write_source


def make_org(n: int, region: str = "350100") -> str:
    org8 = f"MB{n:06d}"
    body = "91" + region + org8 + org_code_check_char(org8)
    return body + uscc_check_char(body)


def make_person(n: int) -> str:
    body = f"35010219800101{n:03d}"
    return body + ric_check_char(body)


ORG_BLACK, ORG_SHARED, ORG_AUTH, ORG_LOCAL, ORG_RED, ORG_CLEAN = (make_org(i) for i in range(1, 7))
PERSON_REP, PERSON_BLACK = make_person(1), make_person(2)
AS_OF = "2026-06-01T10:00:00+08:00"

LISTS = [
    {"code": "court.dishonest_debtor", "name": "失信被执行人名单", "kind": "black",
     "authority": "最高人民法院", "publicity": "public"},
    {"code": "procurement.breach", "name": "政府采购严重违法失信名单", "kind": "black",
     "authority": "财政部", "publicity": "shared"},
    {"code": "credit.authorized", "name": "授权查询名单", "kind": "black",
     "authority": "发展改革委", "publicity": "authorized"},
    {"code": "red.tax_a", "name": "纳税信用A级纳税人", "kind": "red", "authority": "税务总局",
     "publicity": "public"},
]
BLACK = ["court.dishonest_debtor", "procurement.breach", "credit.authorized"]
SCENARIOS = [{"code": c, "name": c} for c in
             ("government_procurement", "bidding", "administrative_license", "honors")]
MEASURES: list[dict[str, Any]] = [
    {"id": "M-GP-1", "name": "限制参加政府采购活动", "lists": BLACK, "targets": ["subject"],
     "scenarios": ["government_procurement", "bidding"], "force": "mandatory",
     "effect": "block", "basis": "发改财金〔2016〕141号"},
    {"id": "M-GP-2", "name": "法定代表人限制", "lists": ["court.dishonest_debtor"],
     "targets": ["linked:legal_rep"], "scenarios": ["government_procurement"],
     "force": "mandatory", "effect": "block", "basis": "法释〔2017〕7号"},
    {"id": "M-LIC-1", "name": "从严审核行政许可", "lists": ["court.dishonest_debtor"],
     "targets": ["subject"], "scenarios": ["administrative_license"], "force": "recommended",
     "effect": "block", "basis": "国发〔2016〕33号"},
    {"id": "M-R-1", "name": "绿色通道", "lists": ["red.tax_a"], "targets": ["subject"],
     "scenarios": ["administrative_license"], "force": "recommended", "effect": "green",
     "basis": "发改财金〔2016〕1467号"},
    {"id": "M-HON-1", "name": "评先评优优先", "lists": [], "targets": ["subject"],
     "scenarios": ["honors"], "force": "recommended", "effect": "green", "clean_years": 3,
     "basis": "国发〔2016〕33号"},
]


def _entry(n: int, subject: str, list_code: str, stype: str = "org", **extra: Any
           ) -> dict[str, Any]:
    return {"id": f"E-{n}", "list": list_code,
            "subject": {"type": stype, "id": subject, "name": f"主体{n}"},
            "authority": "福州市中级人民法院", "region": "350100",
            "valid_from": "2025-03-01", "valid_until": "2028-03-01",
            "reason": "有履行能力而拒不履行", "basis": f"（2025）闽01执{n}号", **extra}


ENTRIES = [
    _entry(1, ORG_BLACK, "court.dishonest_debtor",
           persons=[{"role": "legal_rep", "id": PERSON_REP, "name": "张三"}]),
    _entry(2, ORG_SHARED, "procurement.breach"),
    _entry(3, ORG_AUTH, "credit.authorized"),
    _entry(4, ORG_LOCAL, "court.dishonest_debtor", scope="3501"),
    _entry(5, ORG_RED, "red.tax_a"),
    _entry(6, PERSON_BLACK, "court.dishonest_debtor", stype="person"),
]


def write_fixture_source(root: Path, entries: list[dict[str, Any]] | None = None) -> Path:
    return write_source(root, lists=LISTS, measures=MEASURES, scenarios=SCENARIOS,
                        entries=ENTRIES if entries is None else entries)


# -- accounts ------------------------------------------------------------------------------
KEYS = {"public": "k-public", "agency": "k-agency", "adopter": "k-adopter",
        "issuer": "k-issuer", "admin": "k-admin", "slow": "k-slow"}


def _line(unit: str, key: str, tier: str, region: str = "national", **extra: Any
          ) -> dict[str, Any]:
    return {"unit": unit, "name": unit, "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
            "tier": tier, "region": region, "adopted_measures": [], "authorities": [],
            "lists": [], "rate_per_s": None, **extra}


ACCOUNTS = [
    _line("PUBLIC-1", KEYS["public"], "public"),
    _line("350100-CZJ", KEYS["agency"], "agency", "350100"),
    _line("350100-SPJ", KEYS["adopter"], "agency", "350100", adopted_measures=["M-LIC-1"]),
    _line("FY-350100", KEYS["issuer"], "issuer", "350000",
          authorities=["福州市中级人民法院"], lists=["court.dishonest_debtor"]),
    _line("ADMIN", KEYS["admin"], "admin"),
    _line("SLOW", KEYS["slow"], "agency", rate_per_s=0.5),
]


def write_accounts(path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    write_jsonl(path, ACCOUNTS if rows is None else rows)
    return path


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


@dataclass
class ListRecorder:
    """Collects every completed check handed to the recorder."""

    seen: list[tuple[Account, CheckRequest, Mapping[str, Any]]] = field(default_factory=list)

    def record(self, account: Account, request: CheckRequest,
               result: Mapping[str, Any]) -> None:
        self.seen.append((account, request, result))


class ASGIClient:
    """A synchronous in-process client over ``httpx.ASGITransport`` (no lifespan, no sockets).

    Each call runs on a fresh event loop; bodies may be bytes, JSON, or a sync iterator of
    chunks (sent as separate ``http.request`` messages).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, *, json: Any = None, content: Any = None,
                headers: Mapping[str, str] | None = None) -> httpx.Response:
        if content is not None and not isinstance(content, (bytes, str)):
            chunks = list(content)

            async def stream() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            content = stream()

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                r = await c.request(method, path, json=json, content=content,
                                    headers=dict(headers or {}))
                await r.aread()
                return r

        return asyncio.run(go())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)
