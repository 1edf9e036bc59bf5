"""Source records (SPEC §3): validated catalogue values and entry/relation/event parsing.

Every parse function takes the decoded JSON object and either returns a value or raises
``RecordError`` with a reason code; the reader turns that into a reject with file and line.
"""

from __future__ import annotations

import builtins

from dataclasses import dataclass, field
from typing import Any

from . import identifiers
from .clock import NEVER, BadTime, parse_instant
from .regions import NATIONAL, BadRegion, region_prefix

KINDS = ("red", "black", "watch")
PUBLICITIES = ("public", "shared", "authorized")
FORCES = ("mandatory", "recommended")
EFFECTS = ("block", "review", "alert", "green")
ROLES = ("legal_rep", "principal", "actual_controller", "direct_responsible", "director",
         "supervisor", "senior_manager", "shareholder", "practitioner")
ROLE_INDEX = {r: i for i, r in enumerate(ROLES)}
EVENT_TYPES = ("objection_opened", "objection_closed", "exited", "revoked", "listed")
EXIT_REASONS = ("repaired", "fulfilled", "standard_changed", "expired")
OBJECTION_RESULTS = ("rejected", "upheld")
DERIVED_SUFFIX = "/watch"


class RecordError(ValueError):
    """A source record that cannot be used; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class ListDef:
    code: str
    name: str
    kind: str
    authority: str
    publicity: str
    objection_suspends: bool
    exit_watch_list: str | None
    exit_watch_days: int | None


@dataclass(frozen=True, slots=True)
class Measure:
    id: str
    name: str
    lists: tuple[str, ...]
    targets: tuple[str, ...]
    scenarios: tuple[str, ...]
    force: str
    effect: str
    implementer: str | None
    basis: str | None
    clean_years: int | None


@dataclass(frozen=True, slots=True)
class Scenario:
    code: str
    name: str


@dataclass(slots=True)
class Person:
    role: str
    id: str
    name: str | None


@dataclass(slots=True)
class Entry:
    """An entry as read from the source, before events are folded in."""

    id: str
    list: str
    subject_type: str
    subject_id: str
    subject_name: str | None
    aliases: builtins.list[str]  # builtins: the class has a field named 'list'
    authority: str | None
    region: str | None
    scope: str  # the scope prefix ("" for national)
    valid_from: int
    valid_until: int  # NEVER for no end
    reason: str | None
    basis: str | None
    publicity: str | None
    persons: builtins.list[Person] = field(default_factory=builtins.list)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    at: int
    type: str
    entry: str | None
    result: str | None = None
    reason: str | None = None
    record: dict[str, Any] | None = None


def _str(obj: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError("missing_field", f"field {key!r} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise RecordError("bad_field", f"field {key!r} must be a non-empty string")
    return value


def _strs(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError("bad_field", f"field {key!r} must be a list of strings")
    return tuple(value)


def _choice(obj: dict[str, Any], key: str, choices: tuple[str, ...],
            default: str | None = None) -> str:
    value = obj.get(key, default)
    if value not in choices:
        raise RecordError(f"bad_{key}", f"field {key!r} is {value!r}, not one of {choices}")
    return value  # type: ignore[return-value]


def _instant(obj: dict[str, Any], key: str, *, required: bool = True) -> int | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError("bad_date", f"field {key!r} is required")
        return None
    try:
        return parse_instant(value, naive=False)
    except BadTime as exc:
        raise RecordError("bad_date", f"field {key!r}: {exc}") from None


def _require_object(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RecordError("bad_record", "a record is a JSON object")
    return obj


def parse_list(obj: Any) -> ListDef:
    obj = _require_object(obj)
    days = obj.get("exit_watch_days")
    watch = _str(obj, "exit_watch_list", required=False)
    kind = _choice(obj, "kind", KINDS)
    if watch is not None:
        if kind != "black":
            raise RecordError("bad_exit_watch", "exit_watch_list is for black lists only")
        if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
            raise RecordError("bad_exit_watch", "exit_watch_days must be a positive integer")
    suspends = obj.get("objection_suspends", True)
    if not isinstance(suspends, bool):
        raise RecordError("bad_field", "objection_suspends must be true or false")
    return ListDef(code=_str(obj, "code"), name=_str(obj, "name", required=False) or "",  # type: ignore[arg-type]
                   kind=kind, authority=_str(obj, "authority", required=False) or "",
                   publicity=_choice(obj, "publicity", PUBLICITIES, "public"),
                   objection_suspends=suspends, exit_watch_list=watch,
                   exit_watch_days=days if watch is not None else None)


def parse_scenario(obj: Any) -> Scenario:
    obj = _require_object(obj)
    return Scenario(code=_str(obj, "code"), name=_str(obj, "name", required=False) or "")  # type: ignore[arg-type]


def check_target(target: str) -> str:
    if target == "subject":
        return target
    prefix, _, role = target.partition(":")
    if prefix in ("linked", "org_of") and role in ROLE_INDEX:
        return target
    raise RecordError("bad_target", f"target {target!r} is not subject, linked:<role> or "
                                    f"org_of:<role> with a role of {ROLES}")


def parse_measure(obj: Any, lists: dict[str, ListDef], scenarios: dict[str, Scenario]) -> Measure:
    obj = _require_object(obj)
    measure_lists = _strs(obj, "lists")
    for code in measure_lists:
        if code not in lists:
            raise RecordError("unknown_list", f"measure names unknown list {code!r}")
    measure_scenarios = _strs(obj, "scenarios")
    for code in measure_scenarios:
        if code not in scenarios:
            raise RecordError("unknown_scenario", f"measure names unknown scenario {code!r}")
    targets = tuple(check_target(t) for t in _strs(obj, "targets"))
    clean = obj.get("clean_years")
    effect = _choice(obj, "effect", EFFECTS)
    if clean is not None:
        if not isinstance(clean, int) or isinstance(clean, bool) or clean <= 0:
            raise RecordError("bad_clean_years", "clean_years must be a positive integer")
        if effect != "green" or measure_lists:
            raise RecordError("bad_clean_years", "clean_years goes with effect green and lists []")
    return Measure(id=_str(obj, "id"), name=_str(obj, "name", required=False) or "",  # type: ignore[arg-type]
                   lists=measure_lists, targets=targets, scenarios=measure_scenarios,
                   force=_choice(obj, "force", FORCES), effect=effect,
                   implementer=_str(obj, "implementer", required=False),
                   basis=_str(obj, "basis", required=False), clean_years=clean)


def _identifier(raw: Any, type_: str, what: str) -> str:
    if not isinstance(raw, str):
        raise RecordError("invalid_identifier", f"{what} must be a string")
    try:
        ident = identifiers.parse(raw, type_)
    except identifiers.IdentifierError as exc:
        raise RecordError("invalid_identifier", f"{what} {raw!r}: {exc.code}: {exc.message}") from None
    if ident.form == "org_code":
        raise RecordError("invalid_identifier", f"{what} {raw!r}: an organisation needs its USCC")
    return ident.value


def parse_person(obj: Any) -> Person:
    obj = _require_object(obj)
    role = obj.get("role")
    if role not in ROLE_INDEX:
        raise RecordError("unknown_role", f"role {role!r} is not one of {ROLES}")
    return Person(role=role, id=_identifier(obj.get("id"), "person", "person id"),
                  name=_str(obj, "name", required=False))


def parse_entry(obj: Any, lists: dict[str, ListDef]) -> Entry:
    obj = _require_object(obj)
    entry_id = _str(obj, "id")
    assert entry_id is not None
    if entry_id.endswith(DERIVED_SUFFIX):
        raise RecordError("reserved_id", f"entry ids ending in {DERIVED_SUFFIX!r} are derived")
    code = _str(obj, "list")
    if code not in lists:
        raise RecordError("unknown_list", f"unknown list {code!r}")
    subject = obj.get("subject")
    if not isinstance(subject, dict):
        raise RecordError("missing_field", "field 'subject' must be an object")
    stype = subject.get("type")
    if stype not in ("org", "person"):
        raise RecordError("invalid_identifier", f"subject type {stype!r} is not org or person")
    sid = _identifier(subject.get("id"), stype, "subject id")
    aliases = [identifiers.normalize(a) for a in _strs(subject, "aliases")]
    if any(not a for a in aliases):
        raise RecordError("bad_field", "an alias is empty")
    valid_from = _instant(obj, "valid_from")
    valid_until = _instant(obj, "valid_until", required=False)
    assert valid_from is not None
    if valid_until is not None and valid_until <= valid_from:
        raise RecordError("bad_date", "valid_until is not after valid_from")
    scope = obj.get("scope", NATIONAL)
    try:
        scope_prefix = region_prefix(scope if scope is not None else NATIONAL)
    except BadRegion as exc:
        raise RecordError("bad_scope", str(exc)) from None
    region = obj.get("region")
    if region is not None and not isinstance(region, str):
        raise RecordError("bad_field", "field 'region' must be a string")
    publicity = obj.get("publicity")
    if publicity is not None and publicity not in PUBLICITIES:
        raise RecordError("bad_publicity", f"publicity {publicity!r} is not one of {PUBLICITIES}")
    persons_raw = obj.get("persons") or []
    if not isinstance(persons_raw, list):
        raise RecordError("bad_field", "field 'persons' must be a list")
    return Entry(id=entry_id, list=code, subject_type=stype, subject_id=sid,  # type: ignore[arg-type]
                 subject_name=_str(subject, "name", required=False), aliases=aliases,
                 authority=_str(obj, "authority", required=False), region=region,
                 scope=scope_prefix, valid_from=valid_from,
                 valid_until=NEVER if valid_until is None else valid_until,
                 reason=_str(obj, "reason", required=False),
                 basis=_str(obj, "basis", required=False), publicity=publicity,
                 persons=[parse_person(p) for p in persons_raw])


def parse_relation(obj: Any) -> tuple[str, str, str, str | None]:
    """Return (org USCC, person ID, role, person name)."""
    obj = _require_object(obj)
    role = obj.get("role")
    if role not in ROLE_INDEX:
        raise RecordError("unknown_role", f"role {role!r} is not one of {ROLES}")
    return (_identifier(obj.get("org"), "org", "org"),
            _identifier(obj.get("person"), "person", "person"), role,
            _str(obj, "name", required=False))


def parse_event(obj: Any) -> Event:
    """Parse an event's own fields; whether its entry exists is checked by the caller."""
    obj = _require_object(obj)
    event_id = _str(obj, "id")
    at = _instant(obj, "at")
    etype = _choice(obj, "type", EVENT_TYPES)
    assert event_id is not None and at is not None
    if etype == "listed":
        record = obj.get("record")
        if not isinstance(record, dict):
            raise RecordError("missing_field", "a listed event carries its entry as 'record'")
        return Event(id=event_id, at=at, type=etype, entry=None, record=record)
    entry = _str(obj, "entry")
    if entry is not None and entry.endswith(DERIVED_SUFFIX):
        raise RecordError("derived_entry", f"events cannot target derived entry {entry!r}")
    result = reason = None
    if etype == "objection_closed":
        result = _choice(obj, "result", OBJECTION_RESULTS)
    elif etype == "exited":
        reason = _choice(obj, "reason", EXIT_REASONS)
    return Event(id=event_id, at=at, type=etype, entry=entry, result=result, reason=reason)
