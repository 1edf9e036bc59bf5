"""``screening serve``: uvicorn with uvloop and httptools over ``create_app`` (SPEC §8).

The HTTP protocol is ``screening.protocol.CheckProtocol``: uvicorn's httptools protocol, which
answers plain ``POST /v1/check`` requests itself, below ASGI.

With ``--workers N`` uvicorn starts N processes that each build the app from the environment
(``screening.app:app_from_env``): the settings are written to ``SCREENING_*`` variables first,
and each worker memory-maps the same snapshot files (the page cache holds one copy).
Workers share their metric counts through ``<data>/metrics`` (see ``screening.metrics``).
Access logs are off (the metrics count every request); logs never carry identifiers, and no
client address is used, so ``X-Forwarded-*`` headers are not read (``proxy_headers`` off).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from dataclasses import fields

import uvicorn

from .accounts import Accounts, AccountsError
from .settings import PREFIX, Settings

log = logging.getLogger(__name__)


def _export(settings: Settings) -> None:
    """Write the settings to the environment, for worker processes."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        key = PREFIX + f.name.upper()
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value)


def uvicorn_options(settings: Settings) -> dict[str, object]:
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    return {"host": settings.host, "port": settings.port,
            "loop": "uvloop" if has_uvloop else "auto",
            # uvicorn's httptools protocol, answering POST /v1/check below ASGI
            "http": "screening.protocol:CheckProtocol",
            "log_level": settings.log_level.lower(), "access_log": False,
            "server_header": False, "lifespan": "on", "timeout_graceful_shutdown": 10,
            # no client address is used (callers are known by key), so no X-Forwarded-* to
            # trust: uvicorn's proxy-headers middleware would only cost ~10% per check
            "proxy_headers": False}


def serve(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        accounts = Accounts.load(settings.accounts)
    except AccountsError as exc:
        print(f"screening serve: accounts: {exc}", file=sys.stderr)
        return 2
    if settings.workers < 1:
        print("screening serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if accounts.open:
        log.warning("accounts.open no accounts file: every caller is the anonymous public tier")
    if not settings.snapshot.exists():
        log.warning("snapshot.missing root=%s: not ready until a snapshot appears there",
                    settings.snapshot)
    options = uvicorn_options(settings)
    if settings.workers == 1:
        from .app import create_app

        uvicorn.run(create_app(settings, accounts=accounts), **options)  # type: ignore[arg-type]
        return 0
    shutil.rmtree(settings.data / "metrics", ignore_errors=True)  # workers' shared counts
    _export(settings)
    uvicorn.run("screening.app:app_from_env", factory=True, workers=settings.workers,
                **options)  # type: ignore[arg-type]
    return 0
