"""The error tree. Each error carries a stable code, an HTTP status and a message; one handler
turns any of them into ``{"error": {"code", "message", "field"?, "expected"?}}``::

    ScreeningError
    ├── BadRequest (400)            malformed JSON, wrong body shape
    ├── Unauthorized (401)          no key, wrong key
    ├── Forbidden (403)             tier too low, region not covered, list not managed
    ├── NotFound (404)
    ├── PayloadTooLarge (413)       oversize body or batch
    ├── Invalid (422)               bad identifier (SPEC §2 reasons), unknown scenario, bad as_of …
    ├── RateLimited (429)           over the account's rate; carries retry_after
    └── Unavailable (503)           no snapshot loaded
"""

from __future__ import annotations

from typing import Any


class ScreeningError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, field: str | None = None,
                 expected: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.expected = expected

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.expected is not None:
            error["expected"] = self.expected
        return {"error": error}


class BadRequest(ScreeningError):
    status = 400


class Unauthorized(ScreeningError):
    status = 401


class Forbidden(ScreeningError):
    status = 403


class NotFound(ScreeningError):
    status = 404


class PayloadTooLarge(ScreeningError):
    status = 413


class Invalid(ScreeningError):
    status = 422


class RateLimited(ScreeningError):
    status = 429

    def __init__(self, code: str, message: str, *, retry_after: float) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class Unavailable(ScreeningError):
    status = 503
