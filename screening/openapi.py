"""OpenAPI documentation of the HTTP API: models and examples (SPEC §8 field names).

These pydantic models document; they do not parse. Request bodies are parsed by
``screening.wire`` so that every error keeps the one ``{"error": {...}}`` shape; the request
schemas are put into ``components`` by ``install`` and referenced from the routes.
"""

from __future__ import annotations

import builtins
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

EXAMPLE_USCC = "91350100M000100Y43"
EXAMPLE_RESULT: dict[str, Any] = {
    "check_id": "3f9a1c2e-1", "decision": "block",
    "subject": {"type": "org", "id": EXAMPLE_USCC, "name": None, "name_mismatch": None},
    "hits": [{"entry": "E-000001", "list": "court.dishonest_debtor", "kind": "black",
              "path": "subject", "via": None, "authority": "福州市中级人民法院",
              "region": "350100", "scope": "national",
              "valid_from": "2025-03-01T00:00:00+08:00",
              "valid_until": "2028-03-01T00:00:00+08:00",
              "reason": "有履行能力而拒不履行生效法律文书确定义务", "basis": "（2024）闽01执123号",
              "publicity": "public", "name_mismatch": None,
              "measures": [{"id": "M-GP-1", "name": "限制参加政府采购活动",
                            "force": "mandatory", "effect": "block", "action": "block",
                            "basis": "发改财金〔2016〕141号"}]}],
    "measures": [], "suppressed": [],
    "snapshot": "20261122T020000.000000Z-6b9dbe2a", "as_of": "2026-11-22T10:00:00+08:00"}


class CheckBody(BaseModel):
    """One subject to check (SPEC §5, §8)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"subject": EXAMPLE_USCC, "scenario": "government_procurement"},
        {"subject": "11010519491231002X", "scenario": "soe_appointment", "type": "person",
         "name": "张三", "region": "350100", "as_of": "2026-11-22T10:00:00+08:00"}]})

    subject: str = Field(description="USCC, ID number (18 or 15 digits), 9-character "
                         "organisation code, or a listed alias")
    scenario: str = Field(description="approval-point scenario code, e.g. "
                          "government_procurement")
    type: Literal["org", "person"] | None = Field(None, description="force the identifier type")
    name: str | None = Field(None, description="name to compare with the listed name "
                             "(a mismatch is flagged, never decided on)")
    region: str | None = Field(None, description="check region (6-digit code or national); "
                               "must lie under the account's region")
    as_of: str | None = Field(None, description="decide as of this time (ISO-8601 or "
                              "YYYY-MM-DD; no offset = China Standard Time); default now")
    consent: str | None = Field(None, description="reference of the subject's written "
                                "authorisation: makes authorized entries visible (audited)")
    purpose: str | None = Field(None, description="why the query is made (e.g. a case or "
                                "application number); recorded in the audit trail only")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str
    type: Literal["org", "person"] | None = None
    name: str | None = None
    consent: str | None = None


class BatchBody(BaseModel):
    """Up to ``max_batch`` (default 10,000) subjects for one scenario."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"scenario": "bidding", "subjects": [{"subject": EXAMPLE_USCC},
                                             {"subject": "360426910101007"}]}]})

    scenario: str
    subjects: list[BatchItem]
    region: str | None = None
    as_of: str | None = None
    purpose: str | None = Field(None, description="why the subjects are checked (e.g. a tender "
                                "number); recorded in the audit record of every item")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable reason, e.g. bad_check_character")
    message: str
    field: str | None = Field(None, description="the request field concerned")
    expected: str | None = Field(None, description="the right check character, or the "
                                 "expected JSON type")


class ErrorBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"code": "bad_check_character",
                   "message": "check character is '3', expected 'Y'", "field": "subject",
                   "expected": "Y"}}]})

    error: ErrorDetail


class Via(BaseModel):
    id: str
    name: str | None


class AppliedMeasure(BaseModel):
    id: str
    name: str
    force: Literal["mandatory", "recommended"]
    effect: Literal["block", "review", "alert", "green"]
    action: Literal["block", "review", "alert", "green"]
    basis: str | None


class Hit(BaseModel):
    entry: str
    list: str
    kind: Literal["red", "black", "watch"]
    path: str = Field(description="subject, linked:<role> or org_of:<role>")
    via: Via | None
    authority: str | None
    region: str | None = None
    scope: str | None = None
    valid_from: str
    valid_until: str | None
    reason: str | None
    basis: str | None
    publicity: str | None = None
    name_mismatch: bool | None = None
    measures: builtins.list[AppliedMeasure]


class Suppressed(BaseModel):
    entry: str
    list: str | None = None
    kind: str | None = None
    path: str | None = None
    via: Via | None = None
    reason: Literal["objection_pending", "red_conflict"]


class SubjectOut(BaseModel):
    type: Literal["org", "person"]
    id: str = Field(description="normalised identifier (masked for the public tier)")
    name: str | None = None
    name_mismatch: bool | None = None


class CheckResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_RESULT]})

    check_id: str
    decision: Literal["block", "review", "alert", "green", "pass"]
    subject: SubjectOut
    hits: list[Hit]
    measures: list[AppliedMeasure] = Field(description="measures tied to no entry "
                                           "(clean_years)")
    suppressed: list[Suppressed]
    snapshot: str = Field(description="version of the snapshot that answered")
    as_of: str


class BatchResult(BaseModel):
    results: list[CheckResult | ErrorBody] = Field(description="in input order: a check "
                                                   "result, or {error} for a bad item")


class SnapshotInfo(BaseModel):
    version: str
    built_at: str
    loaded_at: str
    age_s: float
    counts: dict[str, int]
    applied_events: list[dict[str, Any]] = Field(description="live events applied over "
                                                 "the snapshot, in log order")


class Status(BaseModel):
    status: str
    snapshot: str | None = None
    backbone: dict[str, Any] | None = Field(default=None, description="the shared backbone: "
                                            "backend, degraded, reason, down_s, spool_bytes, "
                                            "events_age_s (how stale live events may be)")


def errors(*statuses: int, **texts: str) -> dict[int | str, dict[str, Any]]:
    """Error responses with the usual descriptions; ``texts``: ``e403="…"`` for this route's."""
    text = {400: "malformed JSON or not an object", 401: "no key or a wrong key",
            403: "tier too low, or region not covered by the account",
            404: "unknown check (or its outcome window has passed)",
            413: "body or batch too large", 422: "bad field, identifier or scenario",
            429: "over the account's rate (see Retry-After)", 503: "no snapshot loaded yet, or the backbone unreachable"}
    return {s: {"model": ErrorBody, "description": texts.get(f"e{s}", text[s])}
            for s in statuses}


def query(*params: tuple[Any, ...]) -> dict[str, Any]:
    """``openapi_extra`` declaring query parameters: ``(name, description[, required])``
    (routes that read ``request.query_params`` themselves, to refuse unknown ones)."""
    return {"parameters": [{"name": p[0], "in": "query", "required": len(p) > 2 and bool(p[2]),
                            "description": p[1], "schema": {"type": "string"}}
                           for p in params]}


def json_body(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": schema, "example": example}}}}


EVENTS_BODY = json_body(
    {"type": "object", "required": ["events"], "additionalProperties": False,
     "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 1000,
                               "items": {"type": "object", "description": "a SPEC §3 event"}}}},
    {"events": [{"id": "L-1", "at": "2026-11-22T10:00:00+08:00", "entry": "E-000001",
                 "type": "exited", "reason": "repaired"}]})
OUTCOME_BODY = json_body(
    {"type": "object", "required": ["outcome"], "additionalProperties": False,
     "properties": {"outcome": {"type": "string", "enum": ["intercepted", "fast_tracked",
                                                           "allowed_after_review",
                                                           "overridden"]},
                    "note": {"type": "string",
                             "description": "required for overridden"}}},
    {"outcome": "intercepted", "note": "拒绝其投标"})
UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "string", "format": "binary"}}
    for media in ("text/csv", "application/x-ndjson")}}}


def body_ref(name: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


def install(app: FastAPI) -> None:
    """Generate the schema once, adding the request models and bearer security."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        _, defs = models_json_schema([(CheckBody, "validation"), (BatchBody, "validation")],
                                     ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(defs.get("$defs", {}))
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                    "description": "the unit's API key"}}
        for path in ("/v1/check", "/v1/check/batch"):
            schema["paths"][path]["post"]["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
