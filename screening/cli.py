"""``screening serve | check | bulk | demo`` (SPEC §8).

Each command parses its options here and hands a value to one module: ``check`` to
``screening.decision``, ``serve`` to ``screening.server``, ``bulk`` to ``screening.bulk``,
``demo`` to ``screening.demo``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from indexer.snapshot import CorruptSnapshot, Snapshot

from .decision import TIERS, Caller, CheckRequest, check, check_region
from .errors import ScreeningError
from .overlay import Overlay
from .settings import Settings


def _caller_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snapshot", type=Path, default=None,
                   help="snapshot folder or folder of snapshots (default $SCREENING_SNAPSHOT "
                        "or ./snapshots)")
    p.add_argument("--scenario", required=True, help="approval-point scenario code")
    p.add_argument("--tier", choices=TIERS, default="agency", help="caller tier (default agency)")
    p.add_argument("--region", default=None, help="check region (default national)")
    p.add_argument("--consent", default=None, help="consent reference for authorized entries")
    p.add_argument("--as-of", dest="as_of", default=None, help="decide as of this time")
    p.add_argument("--adopted", default="", help="comma-separated adopted recommended measures")
    p.add_argument("--data", type=Path, default=None,
                   help="the service's local state folder: its accepted live events apply "
                        "(default $SCREENING_DATA or ./screening-data)")
    p.add_argument("--redis", default=None,
                   help="Redis URL of the shared backbone: its accepted live events apply")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="screening", description="Screen subjects against the "
                                "joint reward and punishment lists.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the HTTP API")
    s.add_argument("--snapshot", type=Path, default=None, help="snapshot folder or folder of snapshots")
    s.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    s.add_argument("--accounts", type=Path, default=None, help="accounts file (JSON Lines)")
    s.add_argument("--redis", default=None, help="Redis URL of the shared backbone")
    s.add_argument("--data", type=Path, default=None, help="local state folder")
    s.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    c = sub.add_parser("check", help="check one subject")
    c.add_argument("id", help="USCC, ID number, organisation code or alias")
    c.add_argument("--type", default=None, help="org or person (default: judged from the identifier)")
    c.add_argument("--name", default=None, help="name to compare with the listed name")
    c.add_argument("--json", action="store_true", help="print the SPEC §8 response as JSON")
    _caller_options(c)
    b = sub.add_parser("bulk", help="screen a CSV or JSON Lines file")
    b.add_argument("file", type=Path)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--column", default=None, help="identifier column (default: detected)")
    b.add_argument("--format", choices=("csv", "jsonl"), default=None,
                   help="input format (default: by file name)")
    _caller_options(b)
    d = sub.add_parser("demo", help="generate, build and serve a demo in one command")
    d.add_argument("--dir", type=Path, default=Path("demo"), help="working folder (default ./demo)")
    d.add_argument("--entries", type=int, default=100_000, help="demo entries (default 100000)")
    d.add_argument("--port", type=int, default=8000)
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--no-serve", action="store_true", help="prepare the demo but do not serve")
    return p


def caller_from(args: argparse.Namespace) -> Caller:
    """The caller ``--tier``/``--region``/``--adopted`` describe (default a national agency);
    a ``--region`` that is no region code is ``bad_region``, as a request's ``region`` is."""
    adopted = frozenset(a.strip() for a in args.adopted.split(",") if a.strip())
    region = args.region or "national"
    check_region(region, Caller())  # refused as a request's malformed region is
    return Caller(unit="cli", tier=args.tier, region=region, adopted=adopted)


def open_snapshot(path: Path | None) -> Snapshot:
    settings = Settings.from_env(snapshot=path)
    return Snapshot.open(settings.snapshot)


def live_overlay(snap: Snapshot, args: argparse.Namespace) -> Overlay | None:
    """The live events the service has accepted, over ``snap`` — what ``screening serve``
    decides on (SPEC §8: the command line does the same work): from Redis with ``--redis``
    (or ``SCREENING_REDIS``), else from the embedded event log of ``--data`` (or
    ``SCREENING_DATA``) when there is one; None without events. Events the snapshot folded
    are skipped, as the service skips them. Raises ``Unavailable`` (Redis unreachable)."""
    from .backbone import open_store
    from .live import replay

    settings = Settings.from_env(data=getattr(args, "data", None),
                                 redis=getattr(args, "redis", None))
    if not settings.redis and not (settings.data / "backbone" / "events.jsonl").is_file():
        return None
    store = open_store(settings)
    try:
        overlay = Overlay(snap)
        replay(store, overlay)
    finally:
        store.close()
    return overlay if overlay.applied else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "serve":
            from .server import serve
            return serve(Settings.from_env(snapshot=args.snapshot, host=args.host, port=args.port,
                                           accounts=args.accounts, redis=args.redis,
                                           data=args.data, workers=args.workers))
        if args.command == "bulk":
            from .bulk import run_cli
            return run_cli(args)
        from .demo import run_demo
        return run_demo(args)
    except CorruptSnapshot as exc:
        print(f"screening {args.command}: {exc}", file=sys.stderr)
        return 2


def _check(args: argparse.Namespace) -> int:
    snap = open_snapshot(args.snapshot)
    request = CheckRequest(subject=args.id, scenario=args.scenario, type=args.type,
                           name=args.name, as_of=args.as_of, consent=args.consent)
    try:
        result = check(snap, request, caller_from(args), overlay=live_overlay(snap, args))
    except ScreeningError as exc:
        if args.json:
            print(orjson.dumps(exc.body()).decode())
        else:
            print(f"error {exc.code}: {exc.message}" +
                  (f" (expected {exc.expected!r})" if exc.expected else ""), file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(result))
    return 0


def render(result: dict[str, Any]) -> str:
    """A readable account of a decision and its reasons."""
    s = result["subject"]
    lines = [f"{result['decision'].upper()}  {s['type']} {s['id']}  "
             f"(as of {result['as_of']}, snapshot {result['snapshot']})"]
    if s.get("name_mismatch"):
        lines.append(f"  ! the name {s['name']!r} differs from the listed name")
    for h in result["hits"]:
        via = f" via {h['via']['id']} {h['via']['name'] or ''}".rstrip() if h["via"] else ""
        until = h["valid_until"] or "no end"
        lines.append(f"  hit {h['entry']} [{h['kind']}] {h['list']} ({h['path']}{via})")
        lines.append(f"      {h['authority']}; {h['valid_from']} – {until}; {h['reason'] or ''}")
        if not h["measures"]:
            lines.append("      no measure applies in this scenario")
        for m in h["measures"]:
            lines.append(f"      → {m['action']}: {m['id']} {m['name']} ({m['force']} "
                         f"{m['effect']}; {m['basis'] or 'no basis'})")
    for m in result["measures"]:
        lines.append(f"  → {m['action']}: {m['id']} {m['name']} ({m['force']} {m['effect']})")
    for x in result["suppressed"]:
        lines.append(f"  suppressed {x['entry']} ({x['path']}): {x['reason']}")
    if not result["hits"] and not result["measures"]:
        lines.append("  not listed in any visible list in effect")
    return "\n".join(lines)
