"""The lean ASGI path for ``POST /v1/check``: a raw ASGI handler in front of FastAPI's router.

``screening serve`` answers most checks one layer lower still, in uvicorn's HTTP protocol
(``screening.protocol``); the checks it leaves to the app (``Expect: 100-continue``, chunked
or oversized bodies, pipelined requests, any server not running ``CheckProtocol``) come here.

``ScreeningAPI`` is the FastAPI application with one change: its ASGI ``__call__`` answers
``POST /v1/check`` itself — headers scanned once, body read straight from ``receive``, the
``Service`` called (through the ``Coalescer``), the answer sent with pre-encoded header
fragments — without routing, dependency resolution, ``Request`` objects or response
classes. Everything else (the batch,
health, snapshot, metrics and OpenAPI routes) goes through FastAPI, which also keeps a real
``/v1/check`` route: it documents the endpoint in OpenAPI and answers identically when the
fast path is off (``create_app(..., fastpath=False)``, used by the tests and the bench).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from time import perf_counter
from typing import Any

import orjson
from fastapi import FastAPI

from .accounts import Account
from .errors import ScreeningError
from .service import CHECK_ROUTE, Answer, Service, error_answer
from .wire import read_body

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CONTENT_TYPE = (b"content-type", b"application/json")
_LENGTHS = [str(n).encode() for n in range(4096)]  # content-length values, pre-encoded
INTERNAL = Answer(500, orjson.dumps({"error": {"code": "internal_error",
                                               "message": "an internal error; it is logged"}}),
                  "error")


def content_length(n: int) -> bytes:
    """A Content-Length value, pre-encoded for the usual sizes."""
    return _LENGTHS[n] if n < 4096 else str(n).encode()


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [_CONTENT_TYPE, (b"content-length", content_length(len(answer.payload)))]
    if answer.headers:
        headers.extend(answer.headers)
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.payload})


def _settle(future: asyncio.Future[Answer], answer: Answer) -> None:
    if not future.done():  # its request may have been cancelled meanwhile
        future.set_result(answer)


class Coalescer:
    """Decides the checks that arrive in one turn of the event loop together.

    Under load many requests become ready at once; each hands its body here with what to call
    with the answer (``CheckProtocol``'s pending request, or an ASGI task's future through
    ``ask``), and one callback decides them back to back, so the decision code and the snapshot's
    tables stay in the CPU caches instead of being evicted by the HTTP machinery between two
    checks. Alone, a request waits for nothing but one loop turn. Each check still reads the
    current snapshot once and is answered on its own connection.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self.pending: list[tuple[Account, bytes, Callable[[Answer], None]]] = []

    def submit(self, account: Account, body: bytes, done: Callable[[Answer], None]) -> None:
        """Decide ``body`` at the end of this loop turn and call ``done`` with its answer."""
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.drain)
        self.pending.append((account, body, done))

    async def ask(self, account: Account, body: bytes) -> Answer:
        """``submit``, for a coroutine: the answer, once decided."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.submit(account, body, partial(_settle, future))
        return await future

    def drain(self) -> None:
        pending, self.pending = self.pending, []
        check = self.service.check
        answers: list[Answer] = []
        try:  # their records are spooled with one write, before any of them is answered
            with self.service.grouped_recording():
                for account, body, _ in pending:
                    try:
                        answers.append(check(account, body))
                    except Exception:
                        log.exception("check.failed path=fast")
                        answers.append(INTERNAL)
        except Exception:  # the grouped write failed: as a failed record of one check
            self.service.metrics.recorder_errors += 1
            log.exception("recorder.failed grouped=%d", len(pending))
        answers += [INTERNAL] * (len(pending) - len(answers))  # never leave one waiting
        for (_, _, done), answer in zip(pending, answers):
            try:
                done(answer)
            except Exception:
                log.exception("check.answer_failed")


class ScreeningAPI(FastAPI):
    """FastAPI, with ``POST /v1/check`` answered before the router (see module doc)."""

    service: Service
    backbone: Any = None  # the shared backbone's Front, once open (screening.app)
    fastpath: bool = True
    coalescer: Coalescer | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
        elif (self.fastpath and scope["path"] == CHECK_ROUTE and scope["method"] == "POST"
              and not scope.get("query_string")):  # (a query: the route refuses it)
            await self.fast_check(scope, receive, send)
        else:
            await self.observed(scope, receive, send)

    async def fast_check(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        service = self.service
        authorization = length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                length = value
        try:
            account = service.authenticate(authorization)
            body = await read_body(receive, length, service.settings.max_body)
            if self.coalescer is not None:
                answer = await self.coalescer.ask(account, body)
            else:
                answer = service.check(account, body)
        except ScreeningError as exc:
            answer = error_answer(exc)  # refused before its subject was read
        except Exception:
            log.exception("check.failed path=fast")
            answer = INTERNAL
        await send_answer(send, answer)
        service.metrics.observe(CHECK_ROUTE, answer.decision, answer.status,
                                perf_counter() - started, answer.checks)

    async def observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any other HTTP request, through FastAPI, timed and counted by route."""
        started = perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await super().__call__(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "other"
            state = scope.get("state") or {}
            decision = "error" if status >= 400 else state.get("decision", "")
            self.service.metrics.observe(route, decision, status, perf_counter() - started,
                                         state.get("checks", 0), state.get("tally"))
