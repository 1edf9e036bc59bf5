"""``screening demo``: generate a demo source, build it, write a demo accounts file, serve.

Needs nothing beyond the Python install: the source comes from ``bench.generate`` when it is
importable (a source checkout), else from the small generator below, which writes a valid
SPEC §3 folder of organisations and persons over a handful of lists, measures and scenarios.
The printed key belongs to an ``agency`` account of 福州 (350100); a national ``public`` key is
printed too. The curl line names an organisation that this agency would see blocked.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from indexer.build import build
from indexer.identifiers import org_code_check_char, ric_check_char, uscc_check_char
from indexer.snapshot import Snapshot

from .decision import Caller, CheckRequest, check
from .errors import ScreeningError
from .settings import Settings

DEMO_REGION = "350100"

LISTS: list[dict[str, Any]] = [
    {"code": "court.dishonest_debtor", "name": "失信被执行人名单", "kind": "black",
     "authority": "最高人民法院", "publicity": "public", "objection_suspends": True,
     "exit_watch_list": "watch.after_black", "exit_watch_days": 365},
    {"code": "tax.major_violation", "name": "重大税收违法失信主体名单", "kind": "black",
     "authority": "国家税务总局", "publicity": "public"},
    {"code": "procurement.serious_breach", "name": "政府采购严重违法失信行为记录名单",
     "kind": "black", "authority": "财政部", "publicity": "shared"},
    {"code": "watch.after_black", "name": "失信联合惩戒对象退出后重点关注名单", "kind": "watch",
     "authority": "国家发展改革委", "publicity": "shared"},
    {"code": "red.tax_a", "name": "纳税信用A级纳税人名单", "kind": "red",
     "authority": "国家税务总局", "publicity": "public"},
]
SCENARIOS = ["government_procurement", "bidding", "administrative_license", "fiscal_funds",
             "customs_clearance", "honors", "soe_appointment"]
_NAMES = {"government_procurement": "政府采购", "bidding": "招标投标",
          "administrative_license": "行政审批", "fiscal_funds": "财政资金",
          "customs_clearance": "海关通关", "honors": "评先评优", "soe_appointment": "国企任职"}
BLACK = ["court.dishonest_debtor", "tax.major_violation", "procurement.serious_breach"]
MEASURES: list[dict[str, Any]] = [
    {"id": "M-GP-1", "name": "限制参加政府采购活动", "lists": BLACK, "targets": ["subject"],
     "scenarios": ["government_procurement", "bidding"], "force": "mandatory",
     "effect": "block", "implementer": "财政部门", "basis": "发改财金〔2016〕141号"},
    {"id": "M-LIC-1", "name": "从严审核行政许可", "lists": BLACK,
     "targets": ["subject", "linked:legal_rep"], "scenarios": ["administrative_license"],
     "force": "recommended", "effect": "block", "implementer": "审批部门",
     "basis": "国发〔2016〕33号"},
    {"id": "M-FF-1", "name": "限制申请财政补助资金", "lists": BLACK,
     "targets": ["subject", "org_of:legal_rep"], "scenarios": ["fiscal_funds"],
     "force": "mandatory", "effect": "block", "implementer": "财政部门",
     "basis": "发改财金〔2016〕141号"},
    {"id": "M-SOE-1", "name": "限制担任国有企业法定代表人、董事、监事", "lists": BLACK,
     "targets": ["subject", "linked:legal_rep"], "scenarios": ["soe_appointment"],
     "force": "mandatory", "effect": "block", "implementer": "国资委", "basis": "法释〔2017〕7号"},
    {"id": "M-W-1", "name": "列为重点监管对象", "lists": ["watch.after_black"],
     "targets": ["subject"], "scenarios": SCENARIOS, "force": "recommended", "effect": "alert",
     "implementer": "各有关部门", "basis": "发改办财金规〔2019〕527号"},
    {"id": "M-R-1", "name": "绿色通道、容缺受理", "lists": ["red.tax_a"], "targets": ["subject"],
     "scenarios": ["administrative_license", "customs_clearance"], "force": "recommended",
     "effect": "green", "implementer": "审批部门", "basis": "发改财金〔2016〕1467号"},
    {"id": "M-HON-1", "name": "评先评优优先考虑", "lists": [], "targets": ["subject"],
     "scenarios": ["honors"], "force": "recommended", "effect": "green", "clean_years": 3,
     "implementer": "各有关部门", "basis": "国发〔2016〕33号"},
]
REGIONS = ["350102", "350103", "350104", "350111", "350181", "350203", "350503", "350582",
           "110105", "310115"]
_ORG_BODY = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红文斌"
_TRADE = ["鑫源", "恒达", "华晟", "闽信", "榕发", "海峡", "宏泰", "永兴", "瑞丰", "启航"]
_TRADE2 = ["贸易", "建设工程", "科技", "物流", "食品", "医药", "劳务", "置业"]


def make_uscc(rng: random.Random, region: str) -> str:
    body = "".join(rng.choice(_ORG_BODY) for _ in range(8))
    head = "91" + region + body + org_code_check_char(body)
    return head + uscc_check_char(head)


def make_ric(rng: random.Random, region: str) -> str:
    year = rng.randrange(1955, 2000)
    body = f"{region}{year}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}" \
           f"{rng.randrange(1000):03d}"
    return body + ric_check_char(body)


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randrange(1, 3)))


def _entries(rng: random.Random, n: int) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    for i in range(1, n + 1):
        region = rng.choice(REGIONS)
        roll = rng.random()
        code = (rng.choice(BLACK) if roll < 0.75 else "red.tax_a")
        start_year = rng.randrange(2019, 2026)
        valid_from = f"{start_year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        valid_until = None if rng.random() < 0.3 else \
            f"{start_year + rng.randrange(1, 6)}-{rng.randrange(1, 13):02d}-01"
        relation = None
        if rng.random() < 0.7:
            uscc = make_uscc(rng, region)
            name = f"{rng.choice(_TRADE)}{rng.choice(_TRADE2)}有限公司"
            subject = {"type": "org", "id": uscc, "name": name}
            person = {"role": "legal_rep", "id": make_ric(rng, region),
                      "name": _person_name(rng)}
            persons = [person] if code != "red.tax_a" else []
            if rng.random() < 0.3:
                relation = {"org": uscc, "person": person["id"], "role": "legal_rep",
                            "name": person["name"]}
        else:
            subject = {"type": "person", "id": make_ric(rng, region),
                       "name": _person_name(rng)}
            persons = []
        yield ({"id": f"E-{i:07d}", "list": code, "subject": subject,
                "authority": f"{region}执法机关", "region": region, "scope": "national",
                "valid_from": valid_from, "valid_until": valid_until,
                "reason": "拒不履行生效法律文书确定义务" if code in BLACK else "纳税信用A级",
                "basis": f"（{start_year}）闽执{i}号", "persons": persons}, relation)


def write_demo_source(root: Path, *, entries: int, seed: int = 2026) -> Path:
    """Write a SPEC §3 source folder of ``entries`` entries under ``root``."""
    rng = random.Random(seed)
    (root / "entries").mkdir(parents=True, exist_ok=True)
    (root / "relations").mkdir(parents=True, exist_ok=True)

    def lines(rows: list[dict[str, Any]]) -> bytes:
        return b"".join(orjson.dumps(r) + b"\n" for r in rows)

    (root / "lists.jsonl").write_bytes(lines(LISTS))
    (root / "measures.jsonl").write_bytes(lines(MEASURES))
    (root / "scenarios.jsonl").write_bytes(lines([{"code": c, "name": _NAMES[c]}
                                                  for c in SCENARIOS]))
    with (root / "entries" / "demo.jsonl").open("wb") as e, \
            (root / "relations" / "demo.jsonl").open("wb") as r:
        for entry, relation in _entries(rng, entries):
            e.write(orjson.dumps(entry) + b"\n")
            if relation is not None:
                r.write(orjson.dumps(relation) + b"\n")
    return root


def generate_source(root: Path, *, entries: int, seed: int = 2026) -> str:
    """Generate with ``bench.generate`` when importable, else the built-in generator."""
    try:
        from bench.generate import generate  # type: ignore[import-not-found]
    except ImportError:
        write_demo_source(root, entries=entries, seed=seed)
        return "built-in generator"
    generate(root, entries=entries, seed=seed)
    return "bench.generate"


def account_line(unit: str, name: str, key: str, tier: str, region: str = "national",
                 **extra: Any) -> dict[str, Any]:
    return {"unit": unit, "name": name, "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
            "tier": tier, "region": region, "adopted_measures": [], "authorities": [],
            "lists": [], "rate_per_s": None, **extra}


ISSUER_LIST = "court.dishonest_debtor"


def write_demo_accounts(path: Path, issuer_authority: str | None = None) -> dict[str, str]:
    """Write demo accounts with fresh keys — agency, public, admin, and with
    ``issuer_authority`` an issuer of ``ISSUER_LIST`` for that authority (live events, its
    feedback); return tier → key."""
    keys = {tier: f"demo-{tier}-" + secrets.token_urlsafe(18)
            for tier in ("agency", "public", "issuer", "admin")}
    rows = [account_line("DEMO-AGENCY", "演示审批单位（福州）", keys["agency"], "agency",
                         DEMO_REGION),
            account_line("DEMO-PUBLIC", "演示市场用户", keys["public"], "public"),
            account_line("DEMO-ADMIN", "演示信用办", keys["admin"], "admin")]
    if issuer_authority is not None:
        rows.append(account_line("DEMO-ISSUER", issuer_authority, keys["issuer"], "issuer",
                                 lists=[ISSUER_LIST], authorities=[issuer_authority]))
    else:
        del keys["issuer"]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return keys


def source_entries(source: Path) -> Iterator[dict[str, Any]]:
    """The entries of a demo source, in file order."""
    for path in sorted((source / "entries").glob("*.jsonl")):
        with path.open("rb") as f:
            for raw in f:
                yield orjson.loads(raw)


def first_entry_of(source: Path, list_code: str) -> dict[str, Any] | None:
    """The first entry of ``list_code`` in the source (the demo issuer's example entry)."""
    return next((e for e in source_entries(source)
                 if e.get("list") == list_code and e.get("authority")), None)


def blocked_example(snapshots: Path, source: Path, caller: Caller,
                    scenario: str = "government_procurement", tries: int = 20_000) -> str | None:
    """An organisation the demo caller would see blocked, for the printed curl line."""
    snap = Snapshot.open(snapshots)
    seen = 0
    for entry in source_entries(source):
        subject = entry.get("subject") or {}
        if subject.get("type") != "org":
            continue
        seen += 1
        if seen > tries:
            return None
        try:
            result = check(snap, CheckRequest(subject=subject["id"], scenario=scenario), caller)
        except ScreeningError:
            continue
        if result["decision"] == "block":
            return str(subject["id"])
    return None


def run_demo(args: argparse.Namespace) -> int:
    work: Path = args.dir
    source, snapshots = work / "source", work / "snapshots"
    if source.exists():
        shutil.rmtree(source)
    how = generate_source(source, entries=args.entries)
    print(f"demo: generated {args.entries} entries into {source} ({how})", flush=True)
    result = build(source, snapshots, max_rejects=args.entries)
    print(f"demo: built snapshot {result.version} ({result.rejects} rejects) at {result.path}",
          flush=True)
    example = first_entry_of(source, ISSUER_LIST)
    keys = write_demo_accounts(work / "accounts.jsonl",
                               example["authority"] if example is not None else None)
    agency = Caller(unit="DEMO-AGENCY", tier="agency", region=DEMO_REGION)
    subject = blocked_example(snapshots, source, agency) or "91350100M000100Y43"
    base = f"http://{args.host}:{args.port}"
    print(f"demo: accounts in {work / 'accounts.jsonl'}")
    print(f"demo key (agency): {keys['agency']}")
    print(f"demo key (public): {keys['public']}")
    print(f"demo key (admin): {keys['admin']}")
    if example is not None:
        print(f"demo key (issuer of {ISSUER_LIST}, authority {example['authority']}, "
              f"e.g. entry {example['id']}): {keys['issuer']}")
    print("try:")
    print(f"  curl -s {base}/v1/check -H 'Authorization: Bearer {keys['agency']}' "
          f"-H 'Content-Type: application/json' "
          f"-d '{{\"subject\": \"{subject}\", \"scenario\": \"government_procurement\"}}'")
    print(f"  open {base}/docs for the OpenAPI page", flush=True)
    if args.no_serve:
        return 0
    from .server import serve
    settings = Settings.from_env(snapshot=snapshots, host=args.host, port=args.port,
                                 accounts=work / "accounts.jsonl", data=work / "data")
    return serve(settings)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_demo(argparse.Namespace(dir=Path("demo"), entries=10_000, host="127.0.0.1",
                                         port=8000, no_serve=True)))
