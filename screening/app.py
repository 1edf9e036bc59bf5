"""``create_app(settings)``: the HTTP service (SPEC §6–§8) as a FastAPI application.

Routes are thin: read the body, hand it to ``screening.service.Service``, return its bytes.
``POST /v1/check`` is answered by the raw ASGI fast path in front of the router
(``screening.fastpath``); the route below documents it and serves it when the fast path is off.

======================  =====  =============================================================
route                   auth   answer
======================  =====  =============================================================
POST /v1/check          key    SPEC §8 check response
POST /v1/check/batch    key    ``{"results": [...]}``: a result or ``{"error"}`` per item
GET  /healthz           –      200 while the process is alive
GET  /readyz            –      200 once a snapshot is loaded, else 503
GET  /v1/snapshot       –      version, build time, counts, applied live events
GET  /metrics           –      Prometheus text
POST /v1/events         issuer live events for the account's lists → 202 ``{"accepted"}``
GET  /v1/feedback       issuer feed of one of the account's authorities (admin: any)
POST /v1/checks/{id}/outcome  key  the outcome of one's own check
GET  /v1/stats          agency monthly statistics by authority|list|…|coverage
GET  /v1/audit          admin  the audit trail, cursor-paged
POST /v1/screenings     key    a bulk screening job (``screening.screenings``) → 202
GET  /v1/screenings/{id}[/result]  owner  its progress; its output, streamed
GET  /docs, /openapi.json  –   OpenAPI page and schema
======================  =====  =============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer import clock
from indexer.records import RecordError

from . import __version__, openapi
from .accounts import Account, Accounts, AccountsError, require
from .backbone.events import StaleLog
from .errors import Forbidden, Invalid, ScreeningError, Unavailable
from .fastpath import INTERNAL, Coalescer, ScreeningAPI
from .holder import SnapshotHolder
from .live import BackboneRecorder, LiveEvents
from .metrics import CONTENT_TYPE, Metrics
from .overlay import Overlay
from .screenings import router as screenings_router
from .service import BATCH_ROUTE, CHECK_ROUTE, Answer, Recorder, Service, error_answer
from .settings import Settings
from .wire import decode, read_body, refuse_unknown

MAX_EVENTS = 1000  # events in one POST /v1/events
EVENT_ATTEMPTS = 8  # judge-and-append rounds of one POST /v1/events racing other replicas
MAX_PAGE = 1000  # largest ``limit`` of the paged reads

log = logging.getLogger(__name__)

DESCRIPTION = """Screen applicants against China's joint reward and punishment credit lists
(守信联合激励和失信联合惩戒). Send the unit's key as `Authorization: Bearer <key>`.
Every error is `{"error": {"code", "message", "field"?, "expected"?}}` with a 4xx status."""

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               413: "body_too_large", 415: "unsupported_media_type"}


def _response(answer: Answer) -> Response:
    headers = {k.decode(): v.decode() for k, v in answer.headers}
    return Response(answer.payload, status_code=answer.status, headers=headers,
                    media_type="application/json")


def _install_errors(app: ScreeningAPI) -> None:
    async def screening_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ScreeningError)
        return _response(error_answer(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse({"error": {"code": code, "message": message}},
                            status_code=exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        body: dict[str, Any] = {"code": "bad_request", "message": str(first.get("msg", "bad "
                                                                                  "request"))}
        if field:
            body["field"] = field
        return JSONResponse({"error": body}, status_code=422)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return _response(INTERNAL)

    app.add_exception_handler(ScreeningError, screening_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)


class EventConflict(ScreeningError):
    """``POST /v1/events``: an event id already accepted (or earlier in the request) with other
    content — an accepted event is never replaced (409 ``duplicate_event_id``)."""

    status = 409


def _judge_events(overlay: Overlay, account: Account, events: list[Any]) -> list[dict[str, Any]]:
    """Judge a request's events in order (``Overlay.stage``) and return the new ones to append;
    raise the first problem. Per event: its shape (422), then whether the account manages every
    list and authority it concerns — the posted event's and, for an id accepted before, the
    accepted event's (403), then a re-used id (409 ``duplicate_event_id``; an identical re-post
    adds nothing), then its validity against the state the events before it produce (422)."""
    stage = overlay.stage()
    for i, obj in enumerate(events):
        where = f"events[{i}]"
        try:
            judged = stage.judge(obj)
        except RecordError as exc:
            raise Invalid(exc.reason, f"{where}: {exc.message}", field=where) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Invalid("bad_event", f"{where}: {exc}", field=where) from None
        for owner in judged.owners:
            if owner is not None:
                _authorise(account, where, *owner)
        if judged.repeat and all(owner is None for owner in judged.owners):
            judged.conflict = (f"event id {judged.event.id!r} was accepted before, but its "
                               "entry is no longer known here: the re-post cannot be checked "
                               "against the unit's lists")
        if judged.conflict is not None:
            raise EventConflict("duplicate_event_id", f"{where}: {judged.conflict}",
                                field=where)
        if judged.repeat:
            continue
        try:
            list_code, authority = stage.stage(judged, obj)
        except RecordError as exc:
            raise Invalid(exc.reason, f"{where}: {exc.message}", field=where) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Invalid("bad_event", f"{where}: {exc}", field=where) from None
        _authorise(account, where, list_code, authority)
    return stage.events


def _authorise(account: Account, where: str, list_code: str, authority: str | None) -> None:
    if list_code not in account.lists:
        raise Forbidden("list_forbidden", f"{where}: the unit {account.unit!r} does not "
                        f"manage the list {list_code!r}", field=where)
    if account.authorities and authority not in account.authorities:
        raise Forbidden("authority_forbidden", f"{where}: the entry's authority "
                        f"{authority!r} is not one of the unit's authorities", field=where)


def create_app(settings: Settings, *, holder: SnapshotHolder | None = None,
               accounts: Accounts | None = None, recorder: Recorder | None = None,
               fastpath: bool = True, coalesce: bool = True,
               watch: bool = True, backbone: Any = None) -> ScreeningAPI:
    """The service over ``settings``.

    ``holder`` defaults to a ``SnapshotHolder`` of ``settings.snapshot`` that the app's
    lifespan loads and then watches (``watch=False``: tests refresh it themselves);
    ``accounts`` defaults to ``settings.accounts`` (none: open, anonymous public tier);
    ``recorder`` takes every completed check as ``(account, request, result)``;
    ``fastpath`` answers ``POST /v1/check`` before the router and ``coalesce`` decides the
    checks ready in one loop turn back to back (``screening.fastpath``).

    ``backbone``: the shared backbone (``screening.backbone``). ``None`` (the default): the
    lifespan opens ``open_backbone(settings)`` (embedded, or Redis with ``settings.redis``)
    and closes it at shutdown; a ``Front`` given here is used as is (its owner closes it);
    ``False``: none (the backbone endpoints answer 503). With a backbone, every check is
    recorded through it (unless ``recorder`` is given), live events are tailed and applied,
    and accounts with ``rate_per_s`` are limited by its shared ``take``.
    """
    holder = holder if holder is not None else SnapshotHolder(settings.snapshot)
    accounts_file = settings.accounts  # watched: read again when it changes
    accounts = accounts if accounts is not None else Accounts.load(settings.accounts)
    share = settings.data / "metrics" if settings.workers > 1 else None
    service = Service(settings, holder, accounts, Metrics(holder, share=share), recorder)

    def attach(bb: Any) -> None:
        """Wire an open backbone into the service (recorder, live events, rate limits)."""
        app.backbone = bb
        if recorder is None:
            service.recorder = BackboneRecorder(bb)
        live = LiveEvents(bb, holder)
        service.live = live
        holder.prepare = live.prepare

        def limiter(unit: str, rate: float) -> float:
            allowed, retry_after = bb.take(unit, rate)
            return 0.0 if allowed else max(float(retry_after), 0.001)

        service.accounts.limiter = limiter

    def detach() -> None:
        holder.prepare = None
        service.accounts.limiter = None
        service.live = None
        if recorder is None:
            service.recorder = None
        app.backbone = None

    async def watch_accounts(path: Path, interval: float) -> None:
        """Read the accounts file again when it changes (a unit added, a key revoked): the
        new accounts replace the old in one assignment, rate buckets start afresh; a file
        that does not load is logged and the accounts in use are kept."""
        def stamp() -> tuple[int, int] | None:
            try:
                st = path.stat()
            except OSError:
                return None
            return st.st_mtime_ns, st.st_size

        seen = stamp()
        while True:
            await asyncio.sleep(interval)
            now = stamp()
            if now is None or now == seen:
                continue
            seen = now
            try:
                fresh = await asyncio.to_thread(Accounts.load, path)
            except AccountsError as exc:
                log.error("accounts.refused %s; the accounts in use are kept", exc)
                continue
            fresh.limiter = service.accounts.limiter
            service.accounts = fresh
            log.info("accounts.reloaded units=%d", len(fresh))

    async def share_metrics() -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                service.metrics.write_share()
            except OSError:
                log.warning("metrics.share_failed dir=%s", share)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        tasks = []
        opened = None
        if backbone is None:
            from .backbone import open_backbone
            opened = await asyncio.to_thread(open_backbone, settings, shipper=True)
            attach(opened)
        tailer = None
        if service.live is not None:
            tailer = asyncio.create_task(service.live.run())
        if watch:
            tasks.append(asyncio.create_task(holder.watch(settings.watch_interval)))
            if accounts_file is not None:
                tasks.append(asyncio.create_task(
                    watch_accounts(accounts_file, settings.watch_interval)))
        if share is not None:
            share.mkdir(parents=True, exist_ok=True)
            tasks.append(asyncio.create_task(share_metrics()))
        runner.start()  # resumes unfinished bulk jobs (they survive a restart)
        # what exists now lives as long as the process: keep it out of the collector's walks
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(runner.stop)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if tailer is not None:
                service.live.stop()
                try:  # ends within one wait_events timeout (1 s)
                    await asyncio.wait_for(tailer, 3.0)
                except (TimeoutError, asyncio.CancelledError):
                    pass
                except Exception:
                    log.exception("live.tailer_failed")
            if opened is not None:
                detach()
                await asyncio.to_thread(opened.close)

    app = ScreeningAPI(title="Credit-list screening", version=__version__,
                       description=DESCRIPTION, lifespan=lifespan)
    app.service = service
    app.backbone = None
    if backbone is not None and backbone is not False:
        attach(backbone)
    app.fastpath = fastpath
    app.coalescer = Coalescer(service) if fastpath and coalesce else None
    _install_errors(app)

    async def answer(request: Request, work: Callable[[Account, bytes], Any]) -> Response:
        try:
            account = service.authenticate(request.headers.get("authorization"))
            # the fields are in the JSON body: a ``?as_of=`` must not be silently dropped
            refuse_unknown(request.query_params, (), "parameter")
            body = await read_body(request.receive, request.headers.get("content-length"),
                                   settings.max_body)
            result = work(account, body)
            if not isinstance(result, Answer):
                result = await result
        except ScreeningError as exc:  # refused before its subjects were read: none counted
            result = error_answer(exc)
        request.state.decision = result.decision
        request.state.checks = result.checks
        request.state.tally = result.tally
        return _response(result)

    @app.post(CHECK_ROUTE, tags=["checks"], summary="Check one subject",
              response_model=None, openapi_extra=openapi.body_ref("CheckBody"),
              responses={200: {"model": openapi.CheckResult, "description": "the decision"},
                         **openapi.errors(400, 401, 403, 413, 422, 429, 503)})
    async def check(request: Request) -> Response:
        """Decide one check (SPEC §5): hits, measures with their actions, the decision."""
        return await answer(request, service.check)

    @app.post(BATCH_ROUTE, tags=["checks"], summary="Check up to 10,000 subjects",
              response_model=None, openapi_extra=openapi.body_ref("BatchBody"),
              responses={200: {"model": openapi.BatchResult,
                               "description": "one result or error per subject, in order"},
                         **openapi.errors(400, 401, 403, 413, 422, 429, 503)})
    async def batch(request: Request) -> Response:
        """Check many subjects for one scenario; a bad item never fails the batch."""
        return await answer(request, service.batch)

    @app.get("/healthz", tags=["operations"], response_model=openapi.Status,
             response_model_exclude_none=True)
    async def healthz() -> dict[str, Any]:
        """The process is alive."""
        return {"status": "alive"}

    @app.get("/readyz", tags=["operations"], response_model=openapi.Status,
             responses=openapi.errors(503))
    async def readyz() -> Any:
        """Ready once a snapshot is loaded (503 until then)."""
        loaded = holder.require()
        out: dict[str, Any] = {"status": "ready", "snapshot": loaded.version}
        bb = app.backbone
        if bb is not None:
            out["backbone"] = await asyncio.to_thread(backbone_status, bb)
        return out

    @app.get("/v1/snapshot", tags=["operations"], response_model=openapi.SnapshotInfo,
             responses=openapi.errors(503))
    async def snapshot() -> Any:
        """The snapshot being served: version, build time, counts, applied live events."""
        loaded = holder.require()
        info = loaded.describe()
        if service.live is not None:
            info["applied_events"] = service.live.applied(loaded)
        return info

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        """Prometheus metrics: requests by route and decision, latency, snapshot version,
        backbone health (degraded, spool backlog, live events' age and count)."""
        status: dict[str, Any] | None = None
        bb = app.backbone
        if bb is not None:
            status = {"backbone": await asyncio.to_thread(backbone_status, bb)}
            loaded = holder.current
            if loaded is not None and service.live is not None:
                status["applied"] = len(service.live.applied(loaded))
        return Response(service.metrics.render(status), media_type=CONTENT_TYPE)

    # -- the backbone: live events, feedback, statistics, audit (SPEC §6, issue 4) ---------
    def account_of(request: Request, tier: str | None = None) -> Account:
        account = service.authenticate(request.headers.get("authorization"))
        return require(account, tier) if tier is not None else account

    def need_backbone() -> Any:
        bb = app.backbone
        if bb is None:
            raise Unavailable("backbone_unavailable", "the shared backbone is not open")
        return bb

    def query_limit(request: Request, default: int = 100) -> int:
        raw = request.query_params.get("limit")
        if raw is None or raw == "":
            return default
        limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid("bad_limit", f"limit must be an integer from 1 to {MAX_PAGE}",
                          field="limit")
        return limit

    def known_params(request: Request, *names: str) -> None:
        """A typo (``sinse=``) must not silently read a feed from its start."""
        refuse_unknown(request.query_params, names, "parameter")

    async def json_body(request: Request) -> dict[str, Any]:
        body = await read_body(request.receive, request.headers.get("content-length"),
                               settings.max_body)
        return decode(body)

    def reply(obj: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(obj), status_code=status, media_type="application/json")

    events_lock = asyncio.Lock()  # POST /v1/events: judge and append one request at a time

    @app.post("/v1/events", tags=["backbone"], summary="Publish live events (issuer)",
              status_code=202, response_model=None, openapi_extra=openapi.EVENTS_BODY,
              responses={202: {"description": '`{"accepted": [ids]}`'},
                         **openapi.errors(
                             400, 401, 403, 413, 422, 429, 503,
                             e403="not an issuer, or an event outside the account's lists "
                                  "or authorities (`list_forbidden`, `authority_forbidden`)",
                             e422="the first invalid event (`field: events[i]`), or the body "
                                  "is not `{\"events\": [1…1000 events]}`"),
                         409: {"model": openapi.ErrorBody,
                               "description": "an event id accepted before with other "
                                              "content (`duplicate_event_id`)"}})
    async def post_events(request: Request) -> Response:
        """Lifecycle events (SPEC §3) for the account's own lists (and authorities), judged in
        order, each against the served snapshot, the live events already applied and the
        request's earlier events (an event may name an entry listed earlier in the request).
        The first problem refuses the whole request: an event outside the account's lists or
        authorities 403, an id already accepted with other content 409 `duplicate_event_id`,
        an invalid event 422. An identical re-post is idempotent. Accepted events bind every
        replica within 1 s."""
        account = account_of(request, "issuer")
        known_params(request)
        body = await json_body(request)
        refuse_unknown(body, ("events",))
        events = body.get("events")
        if not isinstance(events, list) or not events:
            raise Invalid("bad_events", "the body is {\"events\": [<event>, …]} with at least "
                          "one event", field="events")
        if len(events) > MAX_EVENTS:
            raise Invalid("too_many_events", f"at most {MAX_EVENTS} events a request",
                          field="events")
        bb = need_backbone()
        holder.require()
        # One request of this process at a time from judging to appending, so two concurrent
        # requests cannot both pass against the same state (e.g. list one entry id twice);
        # across workers and replicas the append is conditional on the log being where it
        # was judged (``after``): if another appended meanwhile, catch up and judge again.
        async with events_lock:
            for _ in range(EVENT_ATTEMPTS):
                overlay = await service.live.catch_up()
                if overlay is None:
                    holder.require()
                    raise Unavailable("no_snapshot", "no snapshot is loaded yet; try again "
                                      "shortly")
                fresh = _judge_events(overlay, account, events)
                if not fresh:
                    break
                try:
                    await asyncio.to_thread(bb.append_events, fresh, service.live.cursor)
                    break
                except StaleLog:
                    continue
            else:
                raise Unavailable("events_busy", "other replicas kept appending events while "
                                  "these were judged; nothing was accepted, try again")
            accepted = list(dict.fromkeys(str(e["id"]) for e in events))
        try:  # this replica applies them at once (read your writes); the others tail the log
            await service.live.catch_up()
        except Exception as exc:
            log.warning("live.catch_up_failed reason=%s", exc)
        return reply({"accepted": accepted}, 202)

    @app.get("/v1/feedback", tags=["backbone"], summary="Feedback feed of an authority",
             response_model=None,
             openapi_extra=openapi.query(
                 ("authority", ("the feed: one of the account's authorities (needed when "
                                "it has several, and for an admin)")),
                 ("since", "the `next` of the previous page (none: from the oldest kept)"),
                 ("limit", "items a page, 1–1000 (default 100)")),
             responses={200: {"description": '`{"authority", "items", "next"}`'},
                        **openapi.errors(
                            401, 403, 422, 429, 503,
                            e403="not an issuer, or not the account's authority "
                                 "(`authority_forbidden`, `no_authority`)",
                            e422="`bad_cursor`, `bad_limit`, `authority_required`, "
                                 "`unknown_field`")})
    async def feedback(request: Request) -> Response:
        """Checks that hit the entries of one authority (执行反馈), oldest first, one item per
        hit. Issuers read their own authorities only; admins any (naming ``authority``)."""
        account = account_of(request, "issuer")
        known_params(request, "authority", "since", "limit")
        authority = request.query_params.get("authority") or None
        if authority is None:
            if len(account.authorities) == 1:
                authority = next(iter(account.authorities))
            elif not account.authorities and account.tier != "admin":
                raise Forbidden("no_authority", f"the unit {account.unit!r} manages no "
                                "authority")
            else:
                raise Invalid("authority_required", "name the feed with ?authority=…",
                              field="authority")
        elif account.tier != "admin" and authority not in account.authorities:
            raise Forbidden("authority_forbidden", f"the unit {account.unit!r} does not "
                            f"manage the authority {authority!r}")
        limit = query_limit(request)
        since = request.query_params.get("since") or None
        bb = need_backbone()
        page = await asyncio.to_thread(bb.read_feedback, authority, since, limit)
        return reply({"authority": authority, "items": page.items, "next": page.next})

    @app.post("/v1/checks/{check_id}/outcome", tags=["backbone"],
              summary="Post the outcome of a check", response_model=None,
              openapi_extra=openapi.OUTCOME_BODY,
              responses={200: {"description": "the outcome record"},
                         **openapi.errors(
                             400, 401, 403, 404, 422, 429, 503,
                             e403="another unit's check (`not_your_check`)",
                             e404="no such check with hits in the last 90 days "
                                  "(`unknown_check`)",
                             e422="`bad_outcome`, `note_required`, `unknown_field`")})
    async def outcome(check_id: str, request: Request) -> Response:
        """``intercepted``, ``fast_tracked``, ``allowed_after_review`` or ``overridden`` (with
        a ``note``) for a check with hits; only the unit that made the check may post it."""
        account = account_of(request)
        known_params(request)
        body = await json_body(request)
        refuse_unknown(body, ("outcome", "note"))
        value, note = body.get("outcome"), body.get("note")
        if not isinstance(value, str):
            raise Invalid("bad_outcome", "outcome must be a string", field="outcome")
        bb = need_backbone()
        record = await asyncio.to_thread(bb.post_outcome, check_id, account.unit, value, note)
        return reply(record)

    @app.get("/v1/stats", tags=["backbone"], summary="Monthly statistics (agency)",
             response_model=None,
             openapi_extra=openapi.query(
                 ("month", "`YYYY-MM`, a CST month (default: this one)"),
                 ("by", "`authority`, `list`, `scenario`, `unit`, `action` or `coverage`",
                  True)),
             responses={200: {"description": '`{"month", "by", "rows"}`'},
                        **openapi.errors(401, 403, 422, 429, 503,
                                         e403="the tier is below agency",
                                         e422="`bad_month`, `bad_by`, `unknown_field`")})
    async def stats(request: Request) -> Response:
        """Checks, hits and actions of one CST month by authority, list, scenario, unit or
        action; ``by=coverage``: checks per unit and scenario (应查必查)."""
        account_of(request, "agency")
        known_params(request, "month", "by")
        month = request.query_params.get("month") or clock.format_instant(clock.now())[:7]
        by = request.query_params.get("by") or ""
        bb = need_backbone()
        rows = await asyncio.to_thread(bb.stats, month, by)
        return reply({"month": month, "by": by, "rows": rows})

    @app.get("/v1/audit", tags=["backbone"], summary="The audit trail (admin)",
             response_model=None,
             openapi_extra=openapi.query(
                 ("since", "the `next` of the previous page (none: from the oldest kept)"),
                 ("limit", "records a page, 1–1000 (default 100)"),
                 ("unit", "only this unit's queries")),
             responses={200: {"description": '`{"items", "next"}`'},
                        **openapi.errors(401, 403, 422, 429, 503,
                                         e403="the tier is below admin",
                                         e422="`bad_cursor`, `bad_limit`, `unknown_field`")})
    async def audit(request: Request) -> Response:
        """Every query (unit, time, endpoint, scenario, hashed subject, purpose, consent,
        decision, check id) in arrival order, optionally of one ``unit``."""
        account_of(request, "admin")
        known_params(request, "since", "limit", "unit")
        limit = query_limit(request)
        since = request.query_params.get("since") or None
        unit = request.query_params.get("unit") or None
        bb = need_backbone()
        page = await asyncio.to_thread(bb.read_audit, since, limit, unit)
        return reply({"items": page.items, "next": page.next})

    screenings, runner = screenings_router(service, settings)
    app.include_router(screenings)
    app.screenings = runner  # type: ignore[attr-defined]

    openapi.install(app)
    return app


def backbone_status(bb: Any) -> dict[str, Any]:
    try:
        return dict(bb.status())
    except Exception as exc:  # a status must never fail readiness
        return {"degraded": True, "reason": str(exc)}


def app_from_env() -> ScreeningAPI:
    """Factory for ``uvicorn --factory`` and ``--workers N``: settings from the environment."""
    return create_app(Settings.from_env())
