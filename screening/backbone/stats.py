"""Monthly statistics (每月统计联合奖惩情况, 应查必查 coverage): counters from records, pure.

A counter is ``(month, by, key, name) -> int``; ``month`` is the CST month of the record's
``at``. Audited queries count ``checks`` (and ``decision:<d>``) per unit, scenario, decision
(``by=action``) and unit × scenario (``by=coverage``); check records with hits count, per hit,
``hits`` and ``action:<a>`` per authority, list, scenario, unit and action, and ``checks``
once per check for each authority and list it hit.

``rows`` renders the counters of one month and ``by`` as the ``GET /v1/stats`` rows::

    {"authority": "福州市中级人民法院", "checks": 3, "hits": 4,
     "actions": {"block": 3, "review": 1}, "decisions": {}}
    {"unit": "350100-CZJ", "scenario": "bidding", "checks": 120}        # by=coverage
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import Invalid
from .records import month_of

BYS = ("authority", "list", "scenario", "unit", "action", "coverage")
Key = tuple[str, str, str, str]  # month, by, key, counter name
SEP = "\t"


def check_month(month: Any) -> str:
    ok = (isinstance(month, str) and len(month) == 7 and month.isascii() and month[4] == "-"
          and month[:4].isdigit() and month[5:].isdigit() and int(month[:4]) >= 1
          and 1 <= int(month[5:]) <= 12)
    if not ok:
        raise Invalid("bad_month", f"month must be YYYY-MM, not {month!r}", field="month")
    return str(month)


def check_by(by: Any) -> str:
    if by not in BYS:
        raise Invalid("bad_by", f"by must be one of {', '.join(BYS)}", field="by")
    return str(by)


def count_checks(records: Iterable[dict[str, Any]], into: Counter[Key]) -> None:
    """Fold check records (with hits) into ``into``. Hits are first counted per distinct
    (month, authority, list, scenario, unit, action), then spread over the dimensions."""
    hits: Counter[tuple[str, str | None, str, str, str, str]] = Counter()
    firsts: Counter[tuple[str, str, str]] = Counter()
    for r in records:
        month, scenario, unit = month_of(r["at"]), r["scenario"], r["unit"]
        seen: set[tuple[str, str]] = set()
        for h in r["hits"]:
            authority = h.get("authority")
            hits[(month, authority, h["list"], scenario, unit, h["action"])] += 1
            if authority is not None:
                seen.add(("authority", authority))
            seen.add(("list", h["list"]))
        for by, key in seen:
            firsts[(month, by, key)] += 1
    for (month, authority, list_, scenario, unit, action), n in hits.items():
        named: tuple[tuple[str, str | None], ...] = (
            ("authority", authority), ("list", list_), ("scenario", scenario), ("unit", unit))
        for dim, value in named:
            if value is not None:
                into[(month, dim, value, "hits")] += n
                into[(month, dim, value, "action:" + action)] += n
        into[(month, "action", action, "hits")] += n
    for (month, by, key), n in firsts.items():
        into[(month, by, key, "checks")] += n


def count_queries(records: Iterable[dict[str, Any]], into: Counter[Key]) -> None:
    """Fold audit records into ``into`` (only checks count: other endpoints are audited too)."""
    queries: Counter[tuple[str, str, str | None, str | None]] = Counter()
    for r in records:
        if r.get("endpoint", "check") == "check":
            queries[(month_of(r["at"]), r["unit"], r.get("scenario"), r.get("decision"))] += 1
    for (month, unit, scenario, decision), n in queries.items():
        named = [("unit", unit)]
        if scenario is not None:
            named.append(("scenario", scenario))
            into[(month, "coverage", unit + SEP + scenario, "checks")] += n
        if decision is not None:
            into[(month, "action", decision, "checks")] += n
        for by, key in named:
            into[(month, by, key, "checks")] += n
            if decision is not None:
                into[(month, by, key, "decision:" + decision)] += n


def increments(checks: Iterable[dict[str, Any]], audits: Iterable[dict[str, Any]]
               ) -> Counter[Key]:
    out: Counter[Key] = Counter()
    count_checks(checks, out)
    count_queries(audits, out)
    return out


def rows(by: str, counters: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Render ``(key, counter name) -> n`` of one month and ``by``, sorted by key."""
    table: dict[str, dict[str, Any]] = {}
    for (key, name), n in counters.items():
        if not n:
            continue
        if by == "coverage":
            unit, _, scenario = key.partition(SEP)
            row = table.setdefault(key, {"unit": unit, "scenario": scenario, "checks": 0})
        else:
            row = table.setdefault(key, {by: key, "checks": 0, "hits": 0, "actions": {},
                                         "decisions": {}})
        kind, _, value = name.partition(":")
        if kind == "action":
            row["actions"][value] = n
        elif kind == "decision":
            row["decisions"][value] = n
        else:
            row[kind] = n
    return [table[k] for k in sorted(table)]
