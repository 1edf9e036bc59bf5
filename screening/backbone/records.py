"""What the backbone records, built from a check (SPEC §5, §6): pure functions, no I/O.

* ``check_record`` — a check with hits, as delivered to the listing authorities (自动反馈):
  check id, time, unit, scenario, region, the subject with person ID numbers masked, the hits
  (entry, list, kind, path, via, authority, measures as id/force/effect/action, the hit's
  strongest action), decision and snapshot version.
* ``feed_items`` — one feed item per hit, grouped by the hit entry's ``authority``.
* ``audit_record`` — one query (every check, hit or not): unit, time, scenario, the subject as a
  sha256 hash, purpose, consent reference and decision.
* ``outcome_record`` — a unit's outcome for one of its checks (执行反馈), validated.

Times are ISO-8601 strings in +08:00; ``day_of``/``month_of`` give their China Standard Time
day (``YYYY-MM-DD``) and month (``YYYY-MM``), which partition files and counters.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson

from indexer import clock, identifiers

from ..errors import Invalid

OUTCOMES = ("intercepted", "fast_tracked", "allowed_after_review", "overridden")
ACTIONS = ("block", "review", "alert", "green", "pass")
_RANK = {a: i for i, a in enumerate(reversed(ACTIONS))}
# The audit trail holds a subject as sha256(salt + normalised identifier). With a published
# salt a masked ID number (only its birth MMDD hidden) next to that hash — a feed line holds
# both — is undone in a few hundred hashes, so a deployment hashes with a secret salt of its
# own (``set_audit_salt``: ``SCREENING_AUDIT_SALT``, or one the store generates and keeps).
_PUBLIC_SALT = b"screening-audit-v1:"
_salt = [_PUBLIC_SALT]


def set_audit_salt(secret: str | None) -> None:
    """The secret this process hashes subjects with (None: the published salt, as before)."""
    _salt[0] = _PUBLIC_SALT if not secret else b"screening-audit-v2:" + secret.encode() + b":"
_dumps = orjson.dumps
_loads = orjson.loads


@dataclass(frozen=True, slots=True)
class Page:
    """Records from a cursor, and the cursor to pass next time (unpacks as a pair)."""

    items: list[dict[str, Any]]
    next: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.items, self.next))


_second: list[Any] = [None, ""]


def now_iso() -> str:
    """Now in +08:00 with microseconds; the date-time part is formatted once a second."""
    us = time.time_ns() // 1000
    sec, frac = divmod(us, 1_000_000)
    if _second[0] != sec:
        _second[1] = clock.format_instant(sec * 1_000_000)[:19]
        _second[0] = sec
    return f"{_second[1]}.{frac:06d}+08:00"


def normal_time(at: Any) -> str:
    """An ISO time or date rendered in +08:00 (raises ``Invalid`` for anything else)."""
    try:
        return clock.format_instant(clock.parse_instant(at))
    except clock.BadTime as exc:
        raise Invalid("bad_time", str(exc), field="at") from None


def day_of(at: str) -> str:
    """The CST day of a time already rendered in +08:00 (as every record holds it)."""
    return at[:10] if at.endswith("+08:00") else normal_time(at)[:10]


def month_of(at: str) -> str:
    return day_of(at)[:7]


def _mask_person(value: str | None) -> str | None:
    if value is None or "*" in value or len(value) != 18:
        return value
    return identifiers.mask_ric(value)


def strongest(actions: list[str]) -> str:
    return max(actions, key=_RANK.__getitem__, default="pass")


def check_record(result: dict[str, Any], *, unit: str, scenario: str,
                 region: str | None = None, at: str | None = None) -> dict[str, Any] | None:
    """The feedback record of a check response (``screening.decision.check``); None without hits.

    Person ID numbers are masked whatever the caller's tier: feeds leave the audit trail.
    """
    hits = result.get("hits") or []
    if not hits:
        return None
    subject = result.get("subject") or {}
    return _record(result["check_id"], normal_time(at) if at else now_iso(), unit, scenario,
                   region, subject.get("type"), subject.get("id"), result.get("decision"),
                   result.get("snapshot"), hits)


def _record(check_id: str, at: str, unit: str, scenario: str, region: str | None,
            subject_type: str | None, subject_id: str | None, decision: str | None,
            snapshot: str | None, hits: list[dict[str, Any]]) -> dict[str, Any]:
    """``check_record``'s dict from its parts (a person's number masked here, idempotently)."""
    if subject_type == "person":
        subject_id = _mask_person(subject_id)
    recorded = []
    for h in hits:
        via = h.get("via")
        path = h.get("path") or "subject"
        if via is not None and path.startswith("org_of:"):
            via = {**via, "id": _mask_person(via.get("id"))}
        measures = [{"id": m["id"], "force": m.get("force"), "effect": m.get("effect"),
                     "action": m["action"]} for m in h.get("measures") or ()]
        action = "pass"
        for m in measures:
            if _RANK[m["action"]] > _RANK[action]:
                action = m["action"]
        recorded.append({"entry": h["entry"], "list": h["list"], "kind": h.get("kind"),
                         "path": path, "via": via, "authority": h.get("authority"),
                         "measures": measures, "action": action})
    return {
        "check_id": check_id, "at": at, "unit": unit, "scenario": scenario, "region": region,
        "subject": {"type": subject_type, "id": subject_id},
        "decision": decision, "snapshot": snapshot, "hits": recorded,
    }


def authorities(record: dict[str, Any]) -> list[str]:
    return sorted({h["authority"] for h in record["hits"] if h.get("authority")})


def check_route(record: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Where a check record is filed: its day and the authorities of its hits; ``("", ())``
    for one that cannot be filed (no time, no hits), which the store refuses."""
    try:
        return day_of(record["at"]), tuple(authorities(record))
    except (KeyError, TypeError, ValueError, AttributeError, Invalid):
        return "", ()


def audit_day(record: dict[str, Any]) -> str:
    """Where an audit record is filed: its day; ``""`` for one without a time (refused)."""
    try:
        return day_of(record["at"])
    except (KeyError, TypeError, ValueError, AttributeError, Invalid):
        return ""


def feed_items(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One item per hit, under the hit entry's authority (hits without one go nowhere)."""
    base = {k: record.get(k) for k in ("check_id", "at", "unit", "scenario", "region", "subject",
                                       "decision", "snapshot")}
    out: dict[str, list[dict[str, Any]]] = {}
    for h in record["hits"]:
        if h.get("authority"):
            item = {**base, **{k: h.get(k) for k in ("entry", "list", "kind", "path", "via",
                                                     "measures", "action")}}
            out.setdefault(h["authority"], []).append(item)
    return out


def subject_hash(subject_id: str) -> str:
    """sha256 of a normalised identifier and the deployment's secret salt: the audit trail
    never holds it in clear, and a hash cannot be undone without the salt."""
    return hashlib.sha256(_salt[0] + subject_id.encode()).hexdigest()


def audit_record(*, unit: str, scenario: str | None, subject: str | None,
                 decision: str | None, check_id: str | None = None, purpose: str | None = None,
                 consent: str | None = None, at: str | None = None,
                 endpoint: str = "check") -> dict[str, Any]:
    """One audited query. ``subject`` is the normalised identifier (hashed here); ``decision``
    is None for a query that failed (it still counts as a check for 应查必查 coverage)."""
    return {"at": normal_time(at) if at else now_iso(), "unit": unit, "endpoint": endpoint,
            "scenario": scenario, "subject": subject_hash(subject) if subject else None,
            "purpose": purpose, "consent": consent, "decision": decision,
            "check_id": check_id}


def query_item(result: dict[str, Any], *, subject: str | None,
               consent: str | None = None) -> list[Any]:
    """The per-check part of a compact line: ``[consent, subject hash, check id, decision,
    snapshot, subject type, subject id (a person's masked), hits]``, each hit cut down to what
    ``check_record`` keeps of it (``_slim``: the reasons, bases, dates and measure names of the
    answer stay out of the spool; a line is ~4x smaller to write, ``fsync`` and parse). The
    subject is hashed and every person's ID number masked here — the subject's, and the
    ``via`` of a hit through an organisation — so the spool never holds either in clear."""
    sub = result.get("subject") or {}
    sid = sub.get("id")
    kind = sub.get("type")
    if kind == "person":
        sid = _mask_person(sid)
    return [consent, subject_hash(subject) if subject else None, result["check_id"],
            result.get("decision"), result.get("snapshot"), kind, sid,
            [_slim(h) for h in result.get("hits") or ()]]


def _slim(hit: dict[str, Any]) -> dict[str, Any]:
    """The fields of a hit that ``_record`` reads (it builds the same record from either)."""
    via = hit.get("via")
    path = hit.get("path")
    if via is not None and (path or "").startswith("org_of:"):
        via = {**via, "id": _mask_person(via.get("id"))}
    return {"entry": hit["entry"], "list": hit["list"], "kind": hit.get("kind"), "path": path,
            "via": via, "authority": hit.get("authority"),
            "measures": [{"id": m["id"], "force": m.get("force"), "effect": m.get("effect"),
                          "action": m["action"]} for m in hit.get("measures") or ()]}


def query_line(result: dict[str, Any], *, unit: str, scenario: str, region: str | None,
               subject: str | None, purpose: str | None = None,
               consent: str | None = None, at: str | None = None) -> bytes:
    """One completed check as a compact spool line, ``{"q": [...]}`` and a newline, from which
    ``expand_query`` builds exactly ``check_record`` (if it hit) and ``audit_record``: the
    request path of a shipper-mode front only encodes, the shipper builds the records.
    ``[at, unit, scenario, region, purpose]`` followed by ``query_item``. ``at``: the time of
    the check (default now)."""
    item = query_item(result, subject=subject, consent=consent)
    return b'{"q":%s}\n' % _dumps([at or now_iso(), unit, scenario, region, purpose, *item])


def check_line(result: dict[str, Any], *, unit: str, scenario: str, region: str | None,
               subject: str | None, purpose: str | None = None, consent: str | None = None,
               at: str | None = None) -> bytes:
    """One completed check as a *routed* spool line (what ``screening serve`` writes)::

        {"q2": [at, unit, scenario, region, purpose, consent, subject hash, check id,
                decision, snapshot, subject type, subject id],
         "h": [[entry, list, kind, path, via, authority, [[measure id, force, effect,
                action], ...]], ...],
         "r": [day, authorities]}

    The same fields as ``query_line``, the hits packed as arrays (``_packed``: what
    ``check_record`` keeps of them, taken by ``itemgetter`` rather than rebuilt as dicts), and
    the line ends with where it is filed: the CST day, and the sorted authorities of its hits
    (``null`` without hits). The embedded store's shipper files the line as it is, reading
    only that route (``route_line``): no record is decoded or encoded on the way to disk;
    readers expand it (``stored_check``). The audit trail gets the line's head as a compact
    line without hits (``route_line``). The subject is hashed and every person's ID number
    masked here, as in ``query_item``."""
    sub = result.get("subject") or {}
    sid, kind = sub.get("id"), sub.get("type")
    if kind == "person":
        sid = _mask_person(sid)
    hits = result.get("hits")
    names = packed = None
    if hits:
        packed = _packed(hits)
        names = ([hits[0]["authority"]] if len(hits) == 1 and hits[0].get("authority") else
                 sorted({h["authority"] for h in hits if h.get("authority")}))
    at = at or now_iso()
    head = [at, unit, scenario, region, purpose, consent,
            subject_hash(subject) if subject else None, result["check_id"],
            result.get("decision"), result.get("snapshot"), kind, sid]
    return b'{"q2":%s,"h":%s,"r":%s}\n' % (_dumps(head), _dumps(packed or ()),
                                            _dumps([day_of(at), names]))


_HIT_FIELDS = ("entry", "list", "kind", "path", "via", "authority", "measures")
_MEASURE_FIELDS = ("id", "force", "effect", "action")
_hit_fields = itemgetter(*_HIT_FIELDS)
_measure_fields = itemgetter(*_MEASURE_FIELDS)


def _packed(hits: list[dict[str, Any]]) -> list[Any]:
    """``_slim`` as arrays (``check_line``'s ``"h"``): a hit that lacks a field is slimmed the
    general way; a via person's number is masked."""
    out: list[Any] = []
    for h in hits:
        try:
            entry, name, kind, path, via, authority, measures = _hit_fields(h)
            if via is not None and path and path.startswith("org_of:"):
                via = {**via, "id": _mask_person(via.get("id"))}
            out.append((entry, name, kind, path, via, authority,
                        [_measure_fields(m) for m in measures or ()]))
        except KeyError:
            out.append(_slim(h))
    return out


def _unpacked(hit: Any) -> dict[str, Any]:
    """A hit of a ``check_line`` as ``_record`` reads it."""
    if isinstance(hit, dict):
        return hit
    entry, name, kind, path, via, authority, measures = hit
    return {"entry": entry, "list": name, "kind": kind, "path": path, "via": via,
            "authority": authority,
            "measures": [dict(zip(_MEASURE_FIELDS, m, strict=True)) for m in measures]}


CHECK_LINE = b'{"q2":['  # how every check_line starts: ``route_line`` takes only such lines
_HITS_AT = b'],"h":['
_ROUTE_AT = b',"r":['


def route_line(line: bytes) -> tuple[str, list[str] | None, bytes] | None:
    """The route of a ``check_line`` (without its newline) read from its last bytes —
    ``(day, authorities or None without hits, its audit part)`` — or None for a line cut
    short (a torn write). Neither marker can occur inside a JSON string (a quote there is
    always escaped), so the first ``],"h":[`` ends the head and the last ``,"r":[`` starts the
    route; a line that ends with the route's ``]}`` is whole. (The head is not parsed here:
    a line of another layout must get another key than ``q2``, which this version stops at.)"""
    h = line.find(_HITS_AT)
    r = line.rfind(_ROUTE_AT)
    if h < 0 or r < h or line[-2:] != b"]}":
        return None
    try:
        day, names = _loads(line[r + 5:-1])
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    if type(day) is not str or len(day) != 10 or not (names is None or type(names) is list):
        return None
    # its audit part: the head as a compact line without hits, ``{"q": [..., []]}`` — what
    # the audit trail keeps of a check, read back by ``stored_audit``
    return day, names, b'{"q":' + line[6:h] + b",[]]}"


def expand_line(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``expand_query`` for a parsed ``check_line``."""
    head, hits = obj["q2"], obj["h"]
    if not isinstance(head, list) or len(head) != 12 or not isinstance(hits, list):
        raise ValueError("not a check line")
    return expand_query([*head, [_unpacked(h) for h in hits]])


def stored_check(obj: dict[str, Any]) -> dict[str, Any]:
    """A check record as a store file holds it: the record itself, or a ``check_line``."""
    if "q2" in obj:
        check = expand_line(obj)[0]
        if check is None:
            raise ValueError("a check line without hits")
        return check
    return obj


def stored_audit(obj: dict[str, Any]) -> dict[str, Any]:
    """An audit record as a store file holds it: the record itself, or a compact line."""
    if "q" in obj:
        return expand_query(obj["q"])[1]
    if "q2" in obj:
        return expand_line(obj)[1]
    return obj


def batch_line(items: list[Any], *, at: str, unit: str, scenario: str, region: str | None,
               purpose: str | None = None) -> bytes:
    """The checks of one batch request as one compact spool line, ``{"qb": [head, items]}``:
    ``head`` is what the items share (``[at, unit, scenario, region, purpose]``), each item a
    ``query_item`` list, or ``{"a": audit}`` for an item that failed. ``expand_batch`` reads
    it back in order (and still reads ``{"c": check, "a": audit}`` items, which earlier
    versions wrote for hits through an organisation)."""
    return b'{"qb":%s}\n' % _dumps([[at, unit, scenario, region, purpose], items])


def expand_batch(qb: list[Any]) -> Iterator[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """``(feedback record or None, audit record)`` for each item of a ``batch_line``."""
    head, items = qb
    if not isinstance(head, list) or len(head) != 5 or not isinstance(items, list):
        raise ValueError("not a batch line")
    for item in items:
        if isinstance(item, list):
            yield expand_query([*head, *item])
        else:
            yield item.get("c"), item["a"]


def expand_query(q: list[Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The feedback record (None without hits) and audit record of a ``query_line``."""
    (at, unit, scenario, region, purpose, consent, hashed, check_id, decision, snapshot,
     subject_type, subject_id, hits) = q
    check = _record(check_id, at, unit, scenario, region, subject_type, subject_id, decision,
                    snapshot, hits) if hits else None  # at: as the request path took it
    audit = {"at": at, "unit": unit, "endpoint": "check", "scenario": scenario,
             "subject": hashed, "purpose": purpose, "consent": consent, "decision": decision,
             "check_id": check_id}
    return check, audit


def outcome_record(check_id: str, unit: str, outcome: str, note: str | None,
                   at: str | None = None) -> dict[str, Any]:
    if outcome not in OUTCOMES:
        raise Invalid("bad_outcome", f"outcome must be one of {', '.join(OUTCOMES)}",
                      field="outcome")
    if note is not None and not isinstance(note, str):
        raise Invalid("bad_note", "note must be a string", field="note")
    if outcome == "overridden" and not (note and note.strip()):
        raise Invalid("note_required", "an overridden check needs a note saying why",
                      field="note")
    return {"check_id": check_id, "outcome": outcome, "note": note, "unit": unit,
            "at": normal_time(at) if at else now_iso()}


def check_event(obj: Any) -> str:
    """The id of an event object (full validation is the caller's, with ``Overlay.validate``)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        raise Invalid("bad_event", "every event is an object with a string 'id'", field="id")
    return str(obj["id"])
