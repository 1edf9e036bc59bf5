"""Generate a realistic SPEC §3 source folder at any scale, deterministically for a seed.

    python -m bench.generate OUT_DIR [--entries 100000] [--seed 1] [--gz]
                             [--persons-per-org 2.0] [--events-share 0.05]

writes ``lists.jsonl``, ``measures.jsonl``, ``scenarios.jsonl`` (``bench.catalogue``) and
``entries/``, ``relations/``, ``events/`` split into files of ``--lines-per-file`` lines.

Entries are made in chunks of ``CHUNK``: choices are drawn with numpy per chunk (one seeded
generator per chunk), organisations and persons are pure functions of an index
(``bench.subjects``), so memory stays bounded — one byte per organisation (its 行业 sector)
is all that grows. Each new organisation brings its registered people (``relations``);
about half come with an unlisted sibling that is only in the registration data, so a listed
person can reach organisations that are not listed themselves (``org_of:`` links). The
identifier spaces allow up to ``MAX_ENTRIES`` entries.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from tqdm import tqdm

from . import vocabulary as V
from .catalogue import LISTS, MEASURES, SCENARIOS
from .lifecycle import DATES, DAY0, EventWriter
from .profiles import PROFILES, authority, basis
from .subjects import CITY_PLACES, ROLE_NAMES, Population, table

CHUNK = 50_000
MAX_ENTRIES = 70_000_000  # ~0.9 organisations per entry, 8 person indices each (subjects.py)
LINES_PER_FILE = 1_000_000
UNLISTED_SHARE = 0.45    # new organisations that come with an unlisted sibling
TIMED_SHARE = 0.1        # valid_from given as an ISO instant instead of a date
PUBLICITY_OVERRIDE = 0.03
GZ_LEVEL = 3
FROM_LO = (np.datetime64("2019-01-01") - np.datetime64(DAY0.isoformat())).astype(int)
FROM_HI = (np.datetime64("2027-01-01") - np.datetime64(DAY0.isoformat())).astype(int)
_KIND = tuple(next(r["kind"] for r in LISTS if r["code"] == p.code) for p in PROFILES)
_PUBLICITY = tuple(next(r["publicity"] for r in LISTS if r["code"] == p.code) for p in PROFILES)
# authority names by profile and region; a row picks one of 20 (tonghua/dept kinds vary)
_AUTHORITIES = tuple(tuple(tuple(authority(p.authority, r, CITY_PLACES[i], k) for k in range(20))
                           for i, r in enumerate(V.REGIONS)) for p in PROFILES)
_OTHER_PUBLICITY = {p: tuple(q for q in ("public", "shared", "authorized") if q != p)
                    for p in ("public", "shared", "authorized")}
_REGION_TABLE = table([r.weight for r in V.REGIONS])
_YEAR_CUM = [np.cumsum(p.years) / sum(p.years) for p in PROFILES]


class Sink:
    """JSON Lines written to ``folder/stem-00000.jsonl[.gz]``, a new file every N lines."""

    def __init__(self, folder: Path, stem: str, *, gz: bool, lines_per_file: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.stem, self.gz, self.per_file = folder, stem, gz, lines_per_file
        self.files: list[Path] = []
        self.lines = 0
        self._raw: IO[bytes] | None = None
        self._out: IO[bytes] | gzip.GzipFile | None = None
        self._in_file = 0

    def _open(self) -> None:
        self.close()
        name = f"{self.stem}-{len(self.files):05d}.jsonl" + (".gz" if self.gz else "")
        path = self.folder / name
        self.files.append(path)
        self._raw = open(path, "wb")
        self._out = (gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0,
                                   compresslevel=GZ_LEVEL) if self.gz else self._raw)
        self._in_file = 0

    def write(self, lines: list[bytes]) -> None:
        i = 0
        while i < len(lines):
            if self._out is None or self._in_file >= self.per_file:
                self._open()
            assert self._out is not None
            take = min(len(lines) - i, self.per_file - self._in_file)
            self._out.write(b"".join(lines[i:i + take]))
            self._in_file += take
            i += take
        self.lines += len(lines)

    def close(self) -> None:
        if self._out is not None and self._out is not self._raw:
            self._out.close()
        if self._raw is not None:
            self._raw.close()
        self._raw = self._out = None


def _write_catalogue(path: Path, records: tuple[dict[str, Any], ...]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


class _Generator:
    """The running state: counters of organisations, persons and listed events; the sinks."""

    def __init__(self, out: Path, *, entries: int, seed: int, gz: bool, persons_per_org: float,
                 events_share: float, lines_per_file: int) -> None:
        self.total, self.seed, self.events_share = entries, seed, events_share
        self.pop = Population(seed, persons_per_org=persons_per_org)
        self.width = max(6, len(str(entries)))
        self.n_orgs = 0
        self.n_free = 0
        self.n_listed = 0
        self.sectors = np.zeros(1 << 16, dtype=np.uint8)
        self.events = EventWriter()
        self.entry_sink, self.relation_sink, self.event_sink = (
            Sink(out / name, name, gz=gz, lines_per_file=lines_per_file)
            for name in ("entries", "relations", "events"))
        self.p_weight = np.array([p.weight for p in PROFILES], dtype=np.float64)
        self.p_weight /= self.p_weight.sum()
        self.p_person = np.array([p.person_share for p in PROFILES])
        self.p_reuse = np.array([p.reuse for p in PROFILES])
        self.p_sector = np.array([p.sector for p in PROFILES], dtype=np.uint8)
        self.p_null = np.array([p.until_null for p in PROFILES])
        self.p_national = np.array([p.national for p in PROFILES])
        self.p_own = np.array([p.own_region for p in PROFILES])

    def _grow(self, n: int) -> None:
        if n > len(self.sectors):
            grown = np.zeros(max(n, 2 * len(self.sectors)), dtype=np.uint8)
            grown[:len(self.sectors)] = self.sectors
            self.sectors = grown

    def chunk(self, number: int, start: int, n: int) -> None:
        """Entries ``start .. start+n-1`` plus the listed events drawn with them."""
        rng = np.random.default_rng([self.seed, number])
        n_listed = int(rng.binomial(n, self.events_share / 20)) if self.events_share else 0
        m = n + n_listed
        prof = rng.choice(len(PROFILES), size=m, p=self.p_weight)
        is_person = rng.random(m) < self.p_person[prof]
        orgs_before = self.n_orgs

        # organisations: register a new one (maybe with an unlisted sibling), or list again
        # one registered before or in this chunk (relations are written before entries)
        org_rows = np.flatnonzero(~is_person)
        reuse = rng.random(len(org_rows)) < self.p_reuse[prof[org_rows]]
        if orgs_before == 0 and len(org_rows) and reuse.all():
            reuse[0] = False
        fresh_rows = org_rows[~reuse]
        sibling = rng.random(len(fresh_rows)) < UNLISTED_SHARE
        fresh_ks = orgs_before + np.arange(len(fresh_rows)) + np.cumsum(sibling)
        new_ks = np.arange(orgs_before, orgs_before + len(fresh_rows) + int(sibling.sum()))
        self._grow(orgs_before + len(new_ks))
        self.sectors[fresh_ks] = self.p_sector[prof[fresh_rows]]
        self.n_orgs += len(new_ks)
        entry_k = np.full(m, -1, dtype=np.int64)
        entry_k[fresh_rows] = fresh_ks
        entry_k[org_rows[reuse]] = rng.integers(0, max(self.n_orgs, 1), int(reuse.sum()))
        self._relations(new_ks)

        # persons: a legal representative of a known organisation, or someone listed alone
        person_rows = np.flatnonzero(is_person)
        mode = rng.random(len(person_rows))
        known = rng.integers(0, max(self.n_orgs, 1), len(person_rows))
        by_rep = self.pop.legal_reps(known)
        again = (mode >= 0.9) & (self.n_free > 0)
        fresh_free = (mode >= 0.45) & ~again
        free = self.n_free + np.cumsum(fresh_free) - 1
        free = np.where(again, rng.integers(0, max(self.n_free, 1), len(person_rows)), free)
        self.n_free += int(fresh_free.sum())
        entry_j = np.where(mode < 0.45, by_rep, free * 8 + 7)

        self._entries(rng, start, n, prof, entry_k, entry_j, org_rows, person_rows)

    def _relations(self, ks: np.ndarray) -> None:
        if not len(ks):
            return
        orgs = self.pop.orgs(ks, self.sectors[ks])
        pos, role, js = self.pop.relations(ks)
        ids, names = self.pop.persons(js)
        usccs = orgs.uscc
        dumps = orjson.dumps
        self.relation_sink.write([
            dumps({"org": usccs[p], "person": i, "role": ROLE_NAMES[r], "name": nm}) + b"\n"
            for p, r, i, nm in zip(pos.tolist(), role.tolist(), ids, names)])

    def _entries(self, rng: np.random.Generator, start: int, n: int, prof: np.ndarray,
                 entry_k: np.ndarray, entry_j: np.ndarray, org_rows: np.ndarray,
                 person_rows: np.ndarray) -> None:
        m = len(prof)
        ks = entry_k[org_rows]
        orgs = self.pop.orgs(ks, self.sectors[ks])
        p_ids, p_names = self.pop.persons(entry_j)
        # persons named in organisation listings: legal_rep from registration, others only here
        u1, u2 = rng.random(m), rng.random(m)
        reps = self.pop.legal_reps(ks)
        named = np.concatenate([reps, ks * 8 + 6])
        n_ids, n_names = self.pop.persons(named)
        no = len(ks)

        region = _REGION_TABLE[rng.integers(0, 4096, m)]
        own = rng.random(no) < self.p_own[prof[org_rows]]
        region[org_rows[own]] = orgs.region[own]
        for i, p in enumerate(PROFILES):
            if p.regions:
                rows = np.flatnonzero(prof == i)
                region[rows] = np.array(p.regions)[rng.integers(0, len(p.regions), len(rows))]
        day_arr = rng.integers(FROM_LO, FROM_HI, m)
        day_arr[n:] = rng.integers(FROM_HI - 365, FROM_HI, m - n)  # listed events: recent
        day = day_arr.tolist()
        timed = (rng.random(m) < TIMED_SHARE).tolist()
        second = rng.integers(8 * 3600 + 1800, 18 * 3600, m).tolist()
        null = (rng.random(m) < self.p_null[prof]).tolist()
        u_years = rng.random(m)
        years = np.ones(m, dtype=np.int64)
        for i in range(len(PROFILES)):
            rows = np.flatnonzero(prof == i)
            years[rows] = 1 + np.searchsorted(_YEAR_CUM[i], u_years[rows], side="right")
        until_day = _add_years(day_arr, years).tolist()
        national = (rng.random(m) < self.p_national[prof]).tolist()
        scope_form = rng.integers(0, 5, m).tolist()
        override = (rng.random(m) < PUBLICITY_OVERRIDE).tolist()
        pick = rng.integers(0, 1 << 30, (m, 4)).tolist()
        story = (rng.random(m) < self.events_share).tolist()
        story_r = rng.integers(0, 1 << 30, (m, 6)).tolist()
        u1, u2 = u1.tolist(), u2.tolist()

        org_at = np.full(m, -1, dtype=np.int64)
        org_at[org_rows] = np.arange(no)
        person_at = np.full(m, -1, dtype=np.int64)
        person_at[person_rows] = np.arange(len(person_rows))
        entry_lines: list[bytes] = []
        event_lines: list[bytes] = []
        listed_lines: list[bytes] = []
        dumps = orjson.dumps
        width = self.width
        for row, (pi, oa, pa, reg_i) in enumerate(zip(prof.tolist(), org_at.tolist(),
                                                      person_at.tolist(), region.tolist())):
            p = PROFILES[pi]
            reg = V.REGIONS[reg_i]
            if row < n:
                eid = f"E-{start + row + 1:0{width}d}"
            else:
                self.n_listed += 1
                eid = f"E-{self.total + self.n_listed:0{width}d}"
            if oa >= 0:
                subject: dict[str, Any] = {"type": "org", "id": orgs.uscc[oa],
                                           "name": orgs.name[oa]}
                alias = orgs.alias[oa]
                if alias is not None:
                    subject["aliases"] = [alias]
            else:
                subject = {"type": "person", "id": p_ids[pa], "name": p_names[pa]}
            d = day[row]
            vf = DATES[d]
            ud = None if null[row] else until_day[row]
            if timed[row]:
                sec = second[row]
                vf = f"{vf}T{sec // 3600:02d}:{sec // 60 % 60:02d}:00+08:00"
            pk = pick[row]
            publicity = _PUBLICITY[pi]
            if override[row]:
                publicity = _OTHER_PUBLICITY[publicity][pk[3] % 2]
            rec: dict[str, Any] = {
                "id": eid, "list": p.code, "subject": subject,
                "authority": _AUTHORITIES[pi][reg_i][pk[0] % 20], "region": reg.code,
                "scope": "national" if national[row] else _SCOPES[reg_i][scope_form[row]],
                "valid_from": vf, "valid_until": None if ud is None else DATES[ud],
                "reason": p.reasons[pk[1] % len(p.reasons)],
                "basis": basis(p.basis, reg, int(vf[:4]), pk[2] % 9999 + 1),
                "publicity": publicity}
            if oa >= 0 and p.persons:
                persons = []
                for (role, share), u in zip(p.persons, (u1[row], u2[row])):
                    if u < share:
                        at = oa if role == "legal_rep" else no + oa
                        persons.append({"role": role, "id": n_ids[at], "name": n_names[at]})
                if persons:
                    rec["persons"] = persons
            if row < n:
                entry_lines.append(dumps(rec) + b"\n")
            else:
                listed_lines.append(dumps(self.events.listed(d, 9 * 3600, rec)) + b"\n")
            if story[row]:
                events = self.events.story(eid, _KIND[pi], pi == 0, d, ud, story_r[row])
                (event_lines if row < n else listed_lines).extend(
                    dumps(e) + b"\n" for e in events)
        self.entry_sink.write(entry_lines)
        self.event_sink.write(event_lines + listed_lines)

    def close(self) -> None:
        for s in (self.entry_sink, self.relation_sink, self.event_sink):
            s.close()


def _scopes(code: str) -> tuple[str, ...]:
    """Scopes covering ``code``: province (35 / 350000), city (3501 / 350100) or itself."""
    if code.endswith("0000"):
        return (code[:2], code) * 2 + (code[:2],)
    return (code[:2], code[:2] + "0000", code[:4], code[:4] + "00", code)


_SCOPES = tuple(_scopes(r.code) for r in V.REGIONS)


def _add_years(days: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Day numbers (since DAY0) ``years`` calendar years later; 29 Feb → 28 Feb."""
    base = np.datetime64(DAY0.isoformat(), "D")
    date = base + days
    month = date.astype("M8[M]")
    day_of_month = date - month.astype("M8[D]")
    later = month + 12 * years
    last_day = (later + 1).astype("M8[D]") - np.timedelta64(1, "D")
    return (np.minimum(later.astype("M8[D]") + day_of_month, last_day) - base).astype(np.int64)


def generate(out: Path, *, entries: int = 100_000, seed: int = 1, gz: bool = False,
             persons_per_org: float = 2.0, events_share: float = 0.05,
             lines_per_file: int = LINES_PER_FILE, progress: bool | None = None) -> dict[str, Any]:
    """Write a source folder into ``out`` and return the counts of what was written."""
    if not (0 <= entries <= MAX_ENTRIES and seed >= 0 and 0 <= events_share <= 1
            and 1 <= persons_per_org <= 6 and lines_per_file >= 1):
        raise ValueError(f"need 0 ≤ entries ≤ {MAX_ENTRIES}, seed ≥ 0, 0 ≤ events_share ≤ 1, "
                         "1 ≤ persons_per_org ≤ 6, lines_per_file ≥ 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_catalogue(out / "lists.jsonl", LISTS)
    _write_catalogue(out / "measures.jsonl", MEASURES)
    _write_catalogue(out / "scenarios.jsonl", SCENARIOS)
    gen = _Generator(out, entries=entries, seed=seed, gz=gz, persons_per_org=persons_per_org,
                     events_share=events_share, lines_per_file=lines_per_file)
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=entries, unit=" entries", unit_scale=True, disable=not show,
              file=sys.stderr) as bar:
        try:
            for number, start in enumerate(range(0, entries, CHUNK)):
                n = min(CHUNK, entries - start)
                gen.chunk(number, start, n)
                bar.update(n)
        finally:
            gen.close()
    return {"entries": gen.entry_sink.lines, "listed_events": gen.n_listed,
            "events": gen.event_sink.lines, "relations": gen.relation_sink.lines,
            "organisations": gen.n_orgs, "lists": len(LISTS), "measures": len(MEASURES),
            "scenarios": len(SCENARIOS),
            "files": {"entries": len(gen.entry_sink.files),
                      "relations": len(gen.relation_sink.files),
                      "events": len(gen.event_sink.files)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("out", type=Path, metavar="OUT_DIR")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gz", action="store_true", help="gzip entries, relations and events")
    parser.add_argument("--persons-per-org", type=float, default=2.0,
                        help="mean registered persons per new organisation (legal_rep + others)")
    parser.add_argument("--events-share", type=float, default=0.05,
                        help="share of entries with lifecycle events")
    parser.add_argument("--lines-per-file", type=int, default=LINES_PER_FILE)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(args.out, entries=args.entries, seed=args.seed, gz=args.gz,
                      persons_per_org=args.persons_per_org, events_share=args.events_share,
                      lines_per_file=args.lines_per_file)
    counts["seconds"] = round(time.perf_counter() - t0, 2)
    sys.stdout.write(orjson.dumps(counts).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
