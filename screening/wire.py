"""The JSON wire format of the HTTP API (SPEC §8): strict parsing of request bodies.

Bodies are decoded with orjson and checked field by field, so every bad input becomes a
``ScreeningError`` with a code and the field it concerns — never FastAPI's own error shape,
never a 500:

=====================  ======  ====================================================
code                   status  when
=====================  ======  ====================================================
``malformed_json``     400     not UTF-8 JSON
``bad_body``           400     JSON, but not an object
``missing_field``      422     a required field is absent (``field``)
``bad_type``           422     a field has the wrong JSON type (``field``, ``expected``)
``unknown_field``      422     a field the endpoint does not know (``field``)
``body_too_large``     413     body over ``settings.max_body`` bytes
``batch_too_large``    413     more than ``settings.max_batch`` subjects
=====================  ======  ====================================================

Identifier, scenario, ``type``, ``region`` and ``as_of`` values are judged by
``screening.decision`` (SPEC §2 reason codes, ``unknown_scenario``, ``bad_region``,
``bad_as_of``, ``unknown_type``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from .decision import CheckRequest
from .errors import BadRequest, Invalid, PayloadTooLarge, ScreeningError

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

CHECK_FIELDS = ("subject", "scenario", "type", "name", "region", "as_of", "consent", "purpose")
BATCH_FIELDS = ("scenario", "subjects", "region", "as_of", "purpose")
ITEM_FIELDS = ("subject", "type", "name", "consent")
_CHECK_SET = frozenset(CHECK_FIELDS)
_BATCH_SET = frozenset(BATCH_FIELDS)
_ITEM_SET = frozenset(ITEM_FIELDS)


@dataclass(frozen=True, slots=True)
class BatchRequest:
    scenario: str
    region: str | None
    as_of: str | None
    items: list[Any]  # raw items: each is parsed on its own, so a bad one fails alone
    purpose: str | None = None  # recorded in every item's audit record, not decided on


def decode(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body (400 otherwise)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadRequest("bad_body", f"the body must be a JSON object, not "
                         f"{_json_type(obj)}")
    return obj


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def refuse_unknown(names: Iterable[str], known: Collection[str], what: str = "field") -> None:
    """422 ``unknown_field`` naming the first of ``names`` (body fields, or query parameters
    with ``what="parameter"``) that is not ``known``: a typo must not be silently dropped."""
    for name in names:
        if name not in known:
            known_ones = (f"known {what}s are {', '.join(sorted(known))}" if known
                          else f"this endpoint takes no {what}")
            raise Invalid("unknown_field", f"unknown {what} {name!r}; {known_ones}",
                          field=name)


def _unknown(obj: dict[str, Any], known: frozenset[str]) -> None:
    if not known.issuperset(obj):
        refuse_unknown(obj, known)


def _required(obj: dict[str, Any], key: str) -> str:
    if key not in obj:
        raise Invalid("missing_field", f"field {key!r} is required", field=key)
    value = obj[key]
    if not isinstance(value, str):
        raise Invalid("bad_type", f"field {key!r} must be a string, not {_json_type(value)}",
                      field=key, expected="string")
    return value


def _optional(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise Invalid("bad_type", f"field {key!r} must be a string or null, not "
                  f"{_json_type(value)}", field=key, expected="string")


def check_request(obj: dict[str, Any]) -> CheckRequest:
    """``POST /v1/check`` body → ``CheckRequest``."""
    get = obj.get
    subject, scenario = get("subject"), get("scenario")
    type_, name, region = get("type"), get("name"), get("region")
    as_of, consent, purpose = get("as_of"), get("consent"), get("purpose")
    if (_CHECK_SET.issuperset(obj) and type(subject) is str and type(scenario) is str
            and (type_ is None or type(type_) is str) and (name is None or type(name) is str)
            and (region is None or type(region) is str)
            and (as_of is None or type(as_of) is str)
            and (consent is None or type(consent) is str)
            and (purpose is None or type(purpose) is str)):
        # (an ``as_of`` out of range is the core's ``bad_as_of``, after the request is
        # parsed: audited like every other check that fails there)
        return CheckRequest(subject, scenario, type_, name, region, as_of, consent, purpose)
    _unknown(obj, _CHECK_SET)  # the slow path names the first bad field
    request = CheckRequest(subject=_required(obj, "subject"),
                           scenario=_required(obj, "scenario"), type=_optional(obj, "type"),
                           name=_optional(obj, "name"), region=_optional(obj, "region"),
                           as_of=_optional(obj, "as_of"), consent=_optional(obj, "consent"),
                           purpose=_optional(obj, "purpose"))
    return request


def batch_request(obj: dict[str, Any], max_batch: int) -> BatchRequest:
    """``POST /v1/check/batch`` body → ``BatchRequest`` (items still raw)."""
    _unknown(obj, _BATCH_SET)
    scenario = _required(obj, "scenario")
    if "subjects" not in obj:
        raise Invalid("missing_field", "field 'subjects' is required", field="subjects")
    items = obj["subjects"]
    if not isinstance(items, list):
        raise Invalid("bad_type", f"field 'subjects' must be an array, not {_json_type(items)}",
                      field="subjects", expected="array")
    if len(items) > max_batch:
        raise PayloadTooLarge("batch_too_large", f"a batch holds at most {max_batch} subjects, "
                              f"not {len(items)}", field="subjects")
    as_of = _optional(obj, "as_of")  # (its range is the core's ``bad_as_of``, audited)
    return BatchRequest(scenario=scenario, region=_optional(obj, "region"), as_of=as_of,
                        items=items, purpose=_optional(obj, "purpose"))


def batch_item(item: Any, index: int) -> dict[str, Any]:
    """Check one raw batch item's shape and types; return it (raises for this item only)."""
    if type(item) is dict:
        get = item.get
        subject, type_, name, consent = get("subject"), get("type"), get("name"), get("consent")
        if (type(subject) is str and _ITEM_SET.issuperset(item)
                and (type_ is None or type(type_) is str) and (name is None or type(name) is str)
                and (consent is None or type(consent) is str)):
            return item
    if not isinstance(item, dict):
        raise Invalid("bad_item", f"subjects[{index}] must be an object with 'subject', not "
                      f"{_json_type(item)}")
    _unknown(item, _ITEM_SET)  # fields are named within the item, like the core's errors
    _required(item, "subject")
    for key in ("type", "name", "consent"):
        _optional(item, key)
    return item


def item_request(batch: BatchRequest, item: dict[str, Any]) -> CheckRequest:
    """The ``CheckRequest`` a valid batch item stands for (given to the recorder)."""
    return CheckRequest(item["subject"], batch.scenario, item.get("type"), item.get("name"),
                        batch.region, batch.as_of, item.get("consent"), batch.purpose)


async def read_body(receive: Receive, content_length: bytes | str | None, limit: int) -> bytes:
    """Read a whole request body from an ASGI ``receive``; 413 past ``limit`` bytes."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequest("bad_content_length", "Content-Length is not a number") from None
        if declared > limit:
            raise PayloadTooLarge("body_too_large", f"the body is {declared} bytes; the limit "
                                  f"is {limit}")
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge("body_too_large", f"the body is over {limit} bytes")
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("disconnected", "the client went away mid-body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("body_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def error_payload(exc: ScreeningError) -> bytes:
    return orjson.dumps(exc.body())
