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
GET  /docs, /openapi.json  –   OpenAPI page and schema
======================  =====  =============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__, openapi
from .accounts import Account, Accounts
from .errors import ScreeningError
from .fastpath import INTERNAL, Coalescer, ScreeningAPI
from .holder import SnapshotHolder
from .metrics import CONTENT_TYPE, Metrics
from .service import BATCH_ROUTE, CHECK_ROUTE, Answer, Recorder, Service, error_answer
from .settings import Settings
from .wire import read_body

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


def create_app(settings: Settings, *, holder: SnapshotHolder | None = None,
               accounts: Accounts | None = None, recorder: Recorder | None = None,
               fastpath: bool = True, coalesce: bool = True,
               watch: bool = True) -> ScreeningAPI:
    """The service over ``settings``.

    ``holder`` defaults to a ``SnapshotHolder`` of ``settings.snapshot`` that the app's
    lifespan loads and then watches (``watch=False``: tests refresh it themselves);
    ``accounts`` defaults to ``settings.accounts`` (none: open, anonymous public tier);
    ``recorder`` takes every completed check as ``(account, request, result)``;
    ``fastpath`` answers ``POST /v1/check`` before the router and ``coalesce`` decides the
    checks ready in one loop turn back to back (``screening.fastpath``).
    """
    holder = holder if holder is not None else SnapshotHolder(settings.snapshot)
    accounts = accounts if accounts is not None else Accounts.load(settings.accounts)
    share = settings.data / "metrics" if settings.workers > 1 else None
    service = Service(settings, holder, accounts, Metrics(holder, share=share), recorder)

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
        if watch:
            tasks.append(asyncio.create_task(holder.watch(settings.watch_interval)))
        if share is not None:
            share.mkdir(parents=True, exist_ok=True)
            tasks.append(asyncio.create_task(share_metrics()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = ScreeningAPI(title="Credit-list screening", version=__version__,
                       description=DESCRIPTION, lifespan=lifespan)
    app.service = service
    app.fastpath = fastpath
    app.coalescer = Coalescer(service) if fastpath and coalesce else None
    _install_errors(app)

    async def answer(request: Request, work: Callable[[Account, bytes], Any], *,
                     checks: int) -> Response:
        try:
            account = service.authenticate(request.headers.get("authorization"))
            body = await read_body(request.receive, request.headers.get("content-length"),
                                   settings.max_body)
            result = work(account, body)
            if not isinstance(result, Answer):
                result = await result
        except ScreeningError as exc:
            result = error_answer(exc, checks)
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
        return await answer(request, service.check, checks=1)

    @app.post(BATCH_ROUTE, tags=["checks"], summary="Check up to 10,000 subjects",
              response_model=None, openapi_extra=openapi.body_ref("BatchBody"),
              responses={200: {"model": openapi.BatchResult,
                               "description": "one result or error per subject, in order"},
                         **openapi.errors(400, 401, 403, 413, 422, 429, 503)})
    async def batch(request: Request) -> Response:
        """Check many subjects for one scenario; a bad item never fails the batch."""
        return await answer(request, service.batch, checks=0)

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
        return {"status": "ready", "snapshot": loaded.version}

    @app.get("/v1/snapshot", tags=["operations"], response_model=openapi.SnapshotInfo,
             responses=openapi.errors(503))
    async def snapshot() -> Any:
        """The snapshot being served: version, build time, counts, applied live events."""
        return holder.require().describe()

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        """Prometheus metrics: requests by route and decision, latency, snapshot version."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    openapi.install(app)
    return app


def app_from_env() -> ScreeningAPI:
    """Factory for ``uvicorn --factory`` and ``--workers N``: settings from the environment."""
    return create_app(Settings.from_env())
