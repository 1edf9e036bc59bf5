"""Settings: one frozen object, built once from ``SCREENING_*`` environment variables and CLI
overrides, then passed in. Tests construct it directly; nothing reads globals.

| variable | default | meaning |
|---|---|---|
| SCREENING_SNAPSHOT | ``./snapshots`` | snapshot folder, or a folder of snapshots (newest served) |
| SCREENING_HOST | ``127.0.0.1`` | address to listen on |
| SCREENING_PORT | ``8000`` | port to listen on |
| SCREENING_ACCOUNTS | (none) | accounts file (JSON Lines, SPEC §8) |
| SCREENING_REDIS | (none) | Redis URL of the shared backbone; none = embedded backbone |
| SCREENING_DATA | ``./screening-data`` | local state: embedded backbone logs, spool, bulk jobs |
| SCREENING_WORKERS | ``1`` | worker processes (each maps the snapshot, nothing copied) |
| SCREENING_WATCH_INTERVAL | ``1.0`` | seconds between looks for a new snapshot |
| SCREENING_MAX_BODY | ``16777216`` | largest request body in bytes (413 above) |
| SCREENING_MAX_UPLOAD | ``4294967296`` | largest bulk-screening upload in bytes (413 above) |
| SCREENING_MAX_BATCH | ``10000`` | most subjects in one batch (413 above) |
| SCREENING_LOG_LEVEL | ``info`` | log level |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

PREFIX = "SCREENING_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    snapshot: Path = Path("snapshots")
    host: str = "127.0.0.1"
    port: int = 8000
    accounts: Path | None = None
    redis: str | None = None
    data: Path = Path("screening-data")
    workers: int = 1
    watch_interval: float = 1.0
    max_body: int = 16 * 1024 * 1024
    max_batch: int = 10_000
    max_upload: int = 4 * 1024 * 1024 * 1024
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``SCREENING_*`` variables, then non-None ``overrides``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_TYPES: dict[str, Any] = {"snapshot": Path, "accounts": Path, "data": Path, "port": int,
                          "workers": int, "watch_interval": float, "max_body": int,
                          "max_batch": int, "max_upload": int}


def _convert(name: str, raw: str) -> Any:
    kind = _TYPES.get(name, str)
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
