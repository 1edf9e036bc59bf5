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
| SCREENING_JOBS | ``<data>/jobs`` | bulk jobs folder; share it (and Redis) to spread jobs over replicas |
| SCREENING_JOB_DAYS | ``7`` | days a finished bulk job (and its upload) is kept |
| SCREENING_JOB_CHUNK | ``4194304`` | bytes of input per chunk of a new bulk job (the unit of work) |
| SCREENING_JOB_CLAIM_IDLE | ``60`` | seconds before a quiet worker's chunk is taken over |
| SCREENING_WORKERS | ``1`` | worker processes (each maps the snapshot, nothing copied) |
| SCREENING_WATCH_INTERVAL | ``1.0`` | seconds between looks for a new snapshot |
| SCREENING_MAX_BODY | ``16777216`` | largest request body in bytes (413 above) |
| SCREENING_MAX_UPLOAD | ``4294967296`` | largest bulk-screening upload in bytes (413 above) |
| SCREENING_MAX_BATCH | ``10000`` | most subjects in one batch (413 above) |
| SCREENING_LOG_LEVEL | ``info`` | log level |
| SCREENING_AUDIT_SALT | (generated) | the secret the audit trail hashes subjects with; the same on every replica (default: generated once and kept in ``<data>/backbone/audit-salt``, or with Redis in Redis) |
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
    jobs: Path | None = None
    job_days: float = 7.0
    job_chunk: int = 4 * 1024 * 1024
    job_claim_idle: float = 60.0
    log_level: str = "info"
    audit_salt: str | None = None

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

    @property
    def jobs_root(self) -> Path:
        return self.jobs if self.jobs is not None else self.data / "jobs"


_TYPES: dict[str, Any] = {"snapshot": Path, "accounts": Path, "data": Path, "port": int,
                          "workers": int, "watch_interval": float, "max_body": int,
                          "max_batch": int, "max_upload": int, "jobs": Path,
                          "job_days": float, "job_chunk": int, "job_claim_idle": float}


def _convert(name: str, raw: str) -> Any:
    kind = _TYPES.get(name, str)
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
