# The screening service: `screening serve` over a snapshot folder mounted at /snapshots.
#
#   docker build -t credit-screening .
#   docker run --rm -p 8000:8000 \
#     -v "$PWD/snapshots:/snapshots:ro" \
#     -v "$PWD/accounts.jsonl:/etc/screening/accounts.jsonl:ro" \
#     -e SCREENING_ACCOUNTS=/etc/screening/accounts.jsonl \
#     credit-screening [--workers 2]
#
# Change the port with `-e SCREENING_PORT=...` rather than `--port` (the healthcheck reads the
# variable); with `--workers N`, `docker run --init` reaps the workers' helper processes.
#
# New snapshots built into the mounted folder (`indexer build SOURCE --out snapshots`) are
# verified and swapped in while serving; /data holds local state (embedded backbone); /jobs is
# where replicas that share it (SCREENING_JOBS=/jobs, with --redis) share bulk jobs. /data/audit
# exists in the image, owned by the service's user, so a named volume mounted there (shared
# archived audit days, docker-compose.yml) starts out writable. The healthcheck asks /readyz:
# healthy once a snapshot is loaded (it stays 200 while Redis is away; the answer says so).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY screening ./screening
RUN pip install . \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin screening \
 && mkdir -p /snapshots /data/audit /jobs \
 && chown screening:screening /data /data/audit /jobs

USER screening
ENV SCREENING_SNAPSHOT=/snapshots \
    SCREENING_DATA=/data \
    SCREENING_HOST=0.0.0.0 \
    SCREENING_PORT=8000
VOLUME ["/snapshots", "/data"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SCREENING_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["screening", "serve"]
