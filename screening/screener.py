"""Screening many subjects at once: a vectorised front for ``decision.check``.

``check`` stays the single source of truth. For a window of rows the ``Screener``

1. joins the identifier column into one byte buffer and slices the 18-character ASCII
   alphanumeric keys out of it (for those, ``identifiers.normalize`` is upper-casing);
2. validates the 18-character ASCII ones as one numpy matrix (``screening.idarrays``) — ID
   number and USCC, with the precedence of ``identifiers.parse``;
3. hashes them (xxh3-64, in numpy) and intersects the hashes with the snapshot's sorted
   ``key_hash`` (every listed identifier and alias); with a live-event ``Overlay``, its
   subjects count too;
4. decides:

   * a valid identifier whose hash is not among the keys cannot resolve to a snapshot
     subject (``resolve`` would look it up, miss, parse it to itself and stop), so it gets
     the *unlisted* result — ``check`` run once per type, at construction, on an identifier
     verified absent from the snapshot;
   * a row whose hash is among the keys goes through ``check`` itself;
   * every other row (other lengths: 15-digit IDs, 9-character organisation codes, aliases,
     typos; non-ASCII; a ``type`` other than ``org``/``person``; anything that failed the
     array validation) goes through ``decision.resolve``: an ``Invalid`` is the row's error
     (the exact code and message ``check`` gives), a subject absent from the snapshot gets
     the unlisted result, a subject present goes through ``check``.

So only rows that may match pay for the full check, and the array validation only has to be
exact on what it *accepts*: anything it rejects is re-validated by the scalar code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer import clock, identifiers
from indexer.snapshot import Snapshot

from . import idarrays as ia
from .decision import Caller, CheckRequest, check, resolve
from .errors import ScreeningError
from .overlay import Overlay

TYPES = ("org", "person")
EMPTY_MESSAGE = "the identifier is empty"

# A row's result: (UNLISTED, type, id) | (CHECKED, response) | (ERROR, code, message, expected)
UNLISTED, CHECKED, ERROR = 0, 1, 2
Row = tuple[Any, ...]
# Batch.kinds: an unlisted organisation, an unlisted person, or a row in Batch.special
KIND_ORG, KIND_PERSON, KIND_SPECIAL = 0, 1, 2


@dataclass(slots=True)
class Batch:
    """The results of a window: ``kinds[i]`` says which; ``ids[i]`` is the (masked when the
    caller's tier masks) subject id of an unlisted row; ``special`` holds the other rows."""

    kinds: np.ndarray
    ids: list[Any]
    special: dict[int, Row]


def _unlisted_probe(snap: Snapshot, overlay: Overlay | None, type_: str) -> str:
    """A valid identifier of ``type_`` that appears nowhere in the snapshot or overlay."""
    for seq in range(1000):
        if type_ == "person":
            body = f"11010519800101{seq:03d}"
            probe = body + identifiers.ric_check_char(body)
        else:
            org = f"{seq:08d}"
            body = "91110000" + org + identifiers.org_code_check_char(org)
            probe = body + identifiers.uscc_check_char(body)
        if snap.lookup(probe) is None and (overlay is None or overlay.lookup(probe) is None):
            return probe
    raise RuntimeError("no unlisted probe identifier found")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Unlisted:
    """What ``check`` answers for any subject of one type that is in no list."""

    response: dict[str, Any]
    masked: bool  # the response masks the subject id (public tier, person)


class Screener:
    """Screen windows of rows for one scenario and caller at one fixed ``as_of``.

    Building it runs ``check`` once per type, so a bad scenario, region or ``as_of`` fails
    here, before any row is read, with the ``ScreeningError`` a single check would raise.
    """

    def __init__(self, snap: Snapshot, *, scenario: str, caller: Caller,
                 region: str | None = None, as_of: str | None = None,
                 consent: str | None = None, overlay: Overlay | None = None) -> None:
        self.snap = snap
        self.overlay = overlay
        self.scenario = scenario
        self.caller = caller
        self.region = region
        self.consent = consent
        if as_of is None:  # one instant for the whole run (a job resumes with the same one)
            as_of = clock.format_instant(clock.now() // 1_000_000 * 1_000_000)
        self.as_of = as_of
        self.unlisted: dict[str, Unlisted] = {}
        for t in TYPES:
            probe = _unlisted_probe(snap, overlay, t)
            response = self.check(probe, t, None)
            self.unlisted[t] = Unlisted(response, response["subject"]["id"] != probe)
        self.as_of = self.unlisted["org"].response["as_of"]  # as check renders it

    def request(self, subject: Any, type_: str | None, name: str | None) -> CheckRequest:
        return CheckRequest(subject=subject, scenario=self.scenario, type=type_, name=name,
                            region=self.region, as_of=self.as_of, consent=self.consent)

    def check(self, subject: Any, type_: str | None, name: str | None) -> dict[str, Any]:
        """The single check of one row, exactly as ``screening check`` would run it."""
        return check(self.snap, self.request(subject, type_, name), self.caller,
                     overlay=self.overlay)

    def subject_id(self, type_: str, value: str) -> str:
        return identifiers.mask_ric(value) if self.unlisted[type_].masked else value

    def screen(self, raws: Sequence[Any], types: Sequence[Any] | None = None,
               names: Sequence[Any] | None = None) -> Batch:
        """One result per row, in order (see the module docstring)."""
        n = len(raws)
        scalar = np.zeros(n, dtype=bool)
        strs: list[str]
        try:
            joined = "".join(raws)
            strs = list(raws)
        except TypeError:  # JSON Lines: a non-string identifier takes the scalar path
            strs = [r if isinstance(r, str) else "" for r in raws]
            scalar |= np.fromiter((not isinstance(r, str) for r in raws), dtype=bool, count=n)
            joined = "".join(strs)
        data = joined.encode()
        if len(data) != len(joined):  # non-ASCII (full-width …): the scalar path normalises
            ascii_ = np.fromiter(map(str.isascii, strs), dtype=bool, count=n)
            scalar |= ~ascii_
            data = "".join(s if a else "" for s, a in zip(strs, ascii_.tolist())).encode()
            lens = np.fromiter((len(s) if a else 0 for s, a in zip(strs, ascii_.tolist())),
                               dtype=np.int64, count=n)
        else:
            lens = np.fromiter(map(len, strs), dtype=np.int64, count=n)
        tcodes = (np.fromiter(map(ia.type_code, types), dtype=np.int8, count=n)
                  if types is not None else np.zeros(n, dtype=np.int8))
        scalar |= tcodes == ia.TYPE_BAD
        rows = np.flatnonzero((lens == 18) & ~scalar)
        m = np.frombuffer(data, dtype=np.uint8)[(np.cumsum(lens) - lens)[rows, None] + ia.ARANGE18]
        alnum = ia.IS_ALNUM[m].all(axis=1)  # blanks, hyphens …: the scalar path normalises
        rows, m = rows[alnum], m[alnum]
        lower = ia.IS_LOWER[m].any(axis=1)
        m = ia.UPPER[m]
        forms = ia.classify(m, tcodes[rows])
        listed = ia.in_keys(self.snap, ia.xxh3_18(m))
        ok = (forms != ia.FORM_NONE) & ~listed
        for i in rows[lower].tolist():
            strs[i] = strs[i].upper()
        if self.overlay:  # subjects listed by live events are not in key_hash
            live = self.overlay.lookup
            ok &= np.fromiter((live(strs[i]) is None for i in rows.tolist()), dtype=bool,
                              count=len(rows))
        kinds = np.full(n, KIND_SPECIAL, dtype=np.int8)
        kinds[rows[ok]] = np.where(forms[ok] == ia.FORM_RIC, KIND_PERSON, KIND_ORG)
        if self.unlisted["person"].masked:
            for i in np.flatnonzero(kinds == KIND_PERSON).tolist():
                strs[i] = identifiers.mask_ric(strs[i])
        special: dict[int, Row] = {}
        hits = set(rows[listed].tolist())  # in the snapshot: straight to check
        for i in np.flatnonzero(kinds == KIND_SPECIAL).tolist():
            row = self._scalar(raws[i], types[i] if types is not None else None,
                               names[i] if names is not None else None, i in hits)
            if row[0] == UNLISTED:
                kinds[i] = KIND_PERSON if row[1] == "person" else KIND_ORG
                strs[i] = self.subject_id(row[1], row[2])
            else:
                special[i] = row
        return Batch(kinds, strs, special)

    def _scalar(self, raw: Any, type_: Any, name: Any, listed: bool = False) -> Row:
        """``check`` for one row; ``resolve`` first (unless the key is known to be in the
        snapshot), so that a subject found nowhere gets the unlisted result cheaply."""
        try:
            if not listed:
                subject = resolve(self.snap, raw, type_, self.overlay)
                if subject.row is None:
                    return (UNLISTED, subject.type, subject.id)
            return (CHECKED, self.check(raw, type_, name))
        except ScreeningError as exc:
            message = exc.message
            if isinstance(raw, str) and exc.code == "bad_length" and not identifiers.normalize(raw):
                message = EMPTY_MESSAGE
            return (ERROR, exc.code, message, exc.expected)
