"""Operations on the backbone of a deployment (``SCREENING_DATA`` / ``SCREENING_REDIS``)::

    python -m screening.backbone export-events SOURCE/events [--data DIR] [--redis URL]
    python -m screening.backbone maintain [--data DIR] [--redis URL]
    python -m screening.backbone status [--data DIR] [--redis URL]
    python -m screening.backbone ship [--data DIR] [--redis URL] [--interval S]

``ship`` runs the shipper of a data folder's spool (``screening.backbone.shipper``; serving
processes start one themselves when none runs, and it exits once no serving process is left
and nothing is pending).

``export-events`` writes the accepted live events not yet in the folder to
``live-<time>.jsonl`` (run it before ``indexer build``; the folder must be a source's
``events`` folder, and without Redis the data folder must exist: a typo exits 2 rather than
exporting nothing, or exporting into a new folder); ``maintain`` archives closed audit days
and prunes past retention (every serving process also does it hourly); each prints one JSON
line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from ..settings import Settings
from . import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screening.backbone")
    parser.add_argument("command", choices=("export-events", "maintain", "status", "ship"))
    parser.add_argument("folder", nargs="?", type=Path, help="SOURCE/events (export-events)")
    parser.add_argument("--data", type=Path, default=None, help="local state folder")
    parser.add_argument("--redis", default=None, help="Redis URL of the shared backbone")
    parser.add_argument("--interval", type=float, default=0.05, help="ship: seconds a round")
    parser.add_argument("--options", default=None, help="ship: store options (JSON)")
    args = parser.parse_args(argv)
    settings = Settings.from_env(data=args.data, redis=args.redis)
    if args.command == "ship":
        import logging

        from .shipper import main as ship

        logging.basicConfig(level=settings.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        options = orjson.loads(args.options) if args.options else {}
        return ship(open_store(settings, **options), Path(settings.data) / "spool",
                    interval=args.interval)
    if args.command == "export-events":
        if args.folder is None:
            parser.error("export-events needs the source's events folder")
        if not (args.folder.parent / "lists.jsonl").is_file():  # a typo would export elsewhere
            print(f"export-events: {args.folder.parent} is not a source folder (no lists.jsonl)"
                  "; give SOURCE/events", file=sys.stderr)
            return 2
        if not settings.redis and not Path(settings.data).is_dir():
            print(f"export-events: no data folder {settings.data} (give the service's --data)",
                  file=sys.stderr)
            return 2
    store = open_store(settings)
    try:
        if args.command == "export-events":
            assert args.folder is not None
            result = store.export_events(args.folder)
            out = {"path": str(result.path) if result.path else None, "count": result.count,
                   "cursor": result.cursor}
        elif args.command == "maintain":
            out = store.maintain()
        else:
            out = {**store.status(), "healthy": store.healthy()}
    finally:
        store.close()
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
