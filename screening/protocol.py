"""``POST /v1/check`` answered in uvicorn's HTTP protocol, below ASGI.

``CheckProtocol`` is uvicorn's httptools protocol (``HttpToolsProtocol``) with one addition: a
request that is exactly ``POST /v1/check`` with a ``Content-Length`` body within the limit, on
a connection with nothing else in flight, is not turned into an ASGI request. The protocol
collects its body, hands it to the ``Coalescer`` (which decides every check that became ready
in one loop turn back to back and spools their records with one write), and writes the
answer — status line, uvicorn's own default headers, the service's headers and the JSON body
— to the socket in one ``write``. No ``RequestResponseCycle``, no task, no ASGI messages.

Everything else goes the ordinary way, through the ASGI app (``ScreeningAPI``), whose own
fast path and FastAPI route answer ``/v1/check`` byte for byte the same: requests with
``Expect: 100-continue``, chunked or oversized bodies, a missing or malformed
``Content-Length``, upgrades, a query string, pipelined requests behind one in flight, a
connection whose client leaves its answers unread (uvicorn's path waits for the socket to
drain), and any app that is not a ``ScreeningAPI`` with its fast path on (the raw callable of
``bench.http_bench`` runs on this protocol exactly as on uvicorn's).

Connection semantics are uvicorn's: keep-alive unless HTTP/1.0 or ``Connection: close``
(then ``connection: close`` is sent and the socket closed after the answer), the keep-alive
timer re-armed and a pipelined request started by ``on_response_complete``, graceful shutdown
closing the connection once the pending answer is written. A client that goes away before its
answer gets none; its check, decided already, is recorded like any other.

The subclass uses uvicorn internals (the parser callbacks, ``url``, ``headers``, ``cycle``,
``flow``, ``server_state.default_headers``, ``on_response_complete``, ``STATUS_LINE``), the same
from uvicorn 0.29 to 0.55; ``tests/test_protocol.py`` compares its answers over real sockets
with uvicorn's own protocol's, so a change there shows in the tests.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .accounts import Account
from .errors import ScreeningError
from .fastpath import INTERNAL, ScreeningAPI, content_length
from .service import CHECK_ROUTE, Answer, error_answer

log = logging.getLogger(__name__)

_URL = CHECK_ROUTE.encode()
_CONTENT_TYPE = b"content-type: application/json\r\ncontent-length: "


class _Quiet:
    """Stands in for a cycle's ``message_event`` (``connection_lost`` sets it)."""

    def set(self) -> None:
        pass


_QUIET = _Quiet()


def _api_of(app: Any) -> ScreeningAPI | None:
    """The ``ScreeningAPI`` under uvicorn's wrappers (each keeps the next as ``.app``)."""
    for _ in range(8):
        if isinstance(app, ScreeningAPI):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class _Pending:
    """One ``POST /v1/check`` in flight on a connection; in ``protocol.cycle`` meanwhile, so
    that uvicorn queues a pipelined request behind it and ``connection_lost`` and
    ``shutdown`` find what they look for in a cycle."""

    __slots__ = ("account", "api", "body", "disconnected", "error", "keep_alive", "protocol",
                 "response_complete", "started")

    message_event = _QUIET

    def __init__(self, protocol: CheckProtocol, api: ScreeningAPI, keep_alive: bool,
                 authorization: bytes | None, started: float) -> None:
        self.protocol = protocol
        self.api = api
        self.keep_alive = keep_alive
        self.started = started
        self.body = bytearray()
        self.disconnected = False
        self.response_complete = False
        self.account: Account | None = None
        self.error: ScreeningError | None = None
        try:  # the same order as the ASGI fast path: authentication before the body
            self.account = api.service.authenticate(authorization)
        except ScreeningError as exc:
            self.error = exc
        except Exception:  # answered as the ASGI path answers it: 500, logged
            log.exception("check.failed path=protocol")

    def complete(self) -> None:
        """The whole body is here: decide (in this loop turn's group) or answer the error."""
        if self.account is None:
            self.respond(error_answer(self.error) if self.error is not None else INTERNAL)
            return
        coalescer = self.api.coalescer
        assert coalescer is not None
        coalescer.submit(self.account, bytes(self.body), self.respond)

    def respond(self, answer: Answer) -> None:
        """Write the answer in one piece, then let uvicorn carry on with the connection."""
        protocol = self.protocol
        self.response_complete = True
        try:
            if not self.disconnected and not protocol.transport.is_closing():
                payload = answer.payload
                parts = [STATUS_LINE[answer.status]]
                for name, value in protocol.server_state.default_headers:
                    parts += (name, b": ", value, b"\r\n")
                parts += (_CONTENT_TYPE, content_length(len(payload)), b"\r\n")
                for name, value in answer.headers:
                    parts += (name, b": ", value, b"\r\n")
                if not self.keep_alive:
                    parts.append(b"connection: close\r\n")
                parts += (b"\r\n", payload)
                protocol.transport.write(b"".join(parts))
                if not self.keep_alive:
                    protocol.transport.close()
                protocol.on_response_complete()
        finally:
            self.api.service.metrics.observe(CHECK_ROUTE, answer.decision, answer.status,
                                             perf_counter() - self.started, answer.checks)


class CheckProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering plain ``POST /v1/check`` itself (module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._api = _api_of(self.app)

    def on_message_begin(self) -> None:
        # a request is starting: the connection is not idle. uvicorn cancels the keep-alive
        # timer once per packet (``data_received``); an answer written at once from inside the
        # parser (an authentication error) re-arms it with the next request of the packet still
        # to come, which would then be cut off after ``timeout_keep_alive``
        self._unset_keepalive_if_required()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        api = self._api
        # not while the client leaves answers unread (write buffer over its limit): uvicorn's
        # own path then waits for it to drain, which bounds what a connection can pile up
        if (api is not None and api.fastpath and api.coalescer is not None
                and self.url == _URL and not self.expect_100_continue
                and self.limit_concurrency is None and not self.flow.write_paused
                and (self.cycle is None or self.cycle.response_complete)):
            pending = self._pending(api)
            if pending is not None:
                self.cycle = pending  # type: ignore[assignment]
                return
        super().on_headers_complete()

    def _pending(self, api: ScreeningAPI) -> _Pending | None:
        parser = self.parser
        if parser.get_method() != b"POST" or parser.should_upgrade():
            return None
        started = perf_counter()
        length = authorization = None
        for name, value in self.headers:
            if name == b"content-length":
                if length is not None:
                    return None
                length = value
            elif name == b"authorization":
                authorization = value
            elif name == b"transfer-encoding":
                return None
        if length is None or not length.isdigit() or int(length) > api.service.settings.max_body:
            return None
        version = parser.get_http_version()
        keep_alive = version != "1.0" and parser.should_keep_alive()
        return _Pending(self, api, keep_alive, authorization, started)

    def send_400_response(self, msg: str) -> None:
        """A request the HTTP parser refuses (a ``Content-Length`` that is not a number, a
        malformed request line or header …): the JSON error every other answer has, rather
        than uvicorn's plain-text one; the connection is closed, as uvicorn does."""
        body = orjson.dumps({"error": {"code": "bad_request", "message": "the request is not "
                                       "valid HTTP/1.1 (request line, headers or framing)"}})
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"content-type: application/json\r\n",
                        b"content-length: %d\r\n" % len(body), b"connection: close\r\n",
                        b"\r\n", body])
        self.transport.write(b"".join(content))
        self.transport.close()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if type(cycle) is _Pending:
            if not cycle.response_complete:
                cycle.body += body
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if type(cycle) is _Pending:
            if not cycle.response_complete:
                try:
                    cycle.complete()
                except Exception:
                    log.exception("check.failed path=protocol")
                    if not cycle.response_complete:
                        cycle.respond(INTERNAL)
            return
        super().on_message_complete()
