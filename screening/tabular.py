"""The tables of bulk screening: CSV and JSON Lines, inspected once, read in byte chunks.

* ``inspect`` looks at the head of a file and fixes its ``Layout``: format (by name, else by
  content), encoding (a UTF-8 BOM; else UTF-8 if the first MiB decodes as UTF-8; else GBK,
  decoded as GB 18030, its superset), CSV delimiter and line ending, and which column holds
  the identifier (``--column``, else by name), the optional ``type`` and ``name`` columns. A
  file without an identifier column is refused here, before any work.
* ``plan`` cuts the data into byte ranges of about ``chunk_bytes`` that end on a record
  boundary (a newline with an even number of ``"`` since the range began, so quoted fields
  that span lines stay whole). Each range can be read, screened and written on its own: the
  ranges are the unit of a job's progress and of work spread over processes.
* ``read_chunk`` decodes one range and splits it into records. A CSV record keeps its text
  as read, so the output repeats the input row byte for byte and appends cells; a JSON Lines
  record is a dict that gets fields added. Blank lines are not records. Lines that do not
  decode in the file's encoding are tried in the other one, then decoded with U+FFFD, and
  counted; a JSON line that is not an object is kept as a bad record (never dropped).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .errors import Invalid

FORMATS = ("csv", "jsonl")
SAMPLE = 1 << 20
BOM = b"\xef\xbb\xbf"
DELIMITERS = (",", "\t", ";", "|")
# Header names recognised (compared after NFKC, blanks removed, lower case). "id" alone is
# often a row number, so it is taken only when nothing more specific is there.
ID_NAMES = ("subject", "identifier", "uscc", "credit_code", "unified_social_credit_code",
            "id_number", "id_no", "ric", "统一社会信用代码", "社会信用代码", "信用代码",
            "身份证号码", "身份证号", "公民身份号码", "证件号码", "证件号", "主体标识",
            "组织机构代码")
ID_FALLBACK = ("id",)
TYPE_NAMES = ("type", "类型", "主体类型")
NAME_NAMES = ("name", "名称", "主体名称", "企业名称", "单位名称", "姓名")


@dataclass(frozen=True, slots=True)
class Layout:
    """How to read one input file; JSON-serialisable so a job can keep it."""

    format: str
    encoding: str  # "utf-8" or "gbk"
    bom: bool
    delimiter: str
    newline: str
    header: tuple[str, ...]  # CSV: the column names; JSON Lines: the first object's keys
    header_line: str  # CSV: the header record as read, without its line ending
    data_start: int
    size: int
    id_column: str
    id_index: int = -1  # CSV column positions (-1: none)
    type_column: str | None = None
    type_index: int = -1
    name_column: str | None = None
    name_index: int = -1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Layout:
        return cls(**{**data, "header": tuple(data["header"])})


@dataclass(slots=True)
class Chunk:
    """The records of one byte range, with the identifier, type and name of each."""

    records: list[Any] = field(default_factory=list)  # CSV: str; JSON Lines: dict | bad str
    widths: list[int] = field(default_factory=list)  # CSV: number of fields of each record
    ids: list[Any] = field(default_factory=list)
    types: list[Any] | None = field(default_factory=list)  # None: no type column
    names: list[Any] | None = field(default_factory=list)  # None: no name column
    bad: list[int] = field(default_factory=list)  # JSON Lines: records that are not objects
    fallback_lines: int = 0  # lines decoded in the other encoding
    replaced_lines: int = 0  # lines with undecodable bytes (replaced by U+FFFD)


def _fold(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split()).lower()


def _find(header: tuple[str, ...], names: tuple[str, ...]) -> list[int]:
    wanted = {_fold(n) for n in names}
    return [i for i, h in enumerate(header) if _fold(h) in wanted]


def _pick_column(header: tuple[str, ...], column: str | None, path: Path) -> int:
    shown = ", ".join(repr(h) for h in header[:20]) or "(none)"
    if column is not None:
        exact = [i for i, h in enumerate(header) if h == column]
        found = exact or [i for i, h in enumerate(header) if _fold(h) == _fold(column)]
        if not found:
            raise Invalid("no_identifier_column",
                          f"{path}: no column {column!r}; the columns are {shown}",
                          field="column")
        return found[0]
    found = _find(header, ID_NAMES)
    if len(found) > 1:
        both = ", ".join(repr(header[i]) for i in found)
        raise Invalid("ambiguous_identifier_column",
                      f"{path}: several identifier columns ({both}); choose one with --column",
                      field="column")
    found = found or _find(header, ID_FALLBACK)
    if not found:
        raise Invalid("no_identifier_column",
                      f"{path}: no identifier column (a column named e.g. subject, uscc, "
                      f"统一社会信用代码, 身份证号码 or 证件号码); the columns are {shown}; "
                      f"name one with --column", field="column")
    return found[0]


def _detect_format(path: Path, head: bytes) -> str:
    suffix = path.name.lower().removesuffix(".gz").rsplit(".", 1)[-1]
    if suffix in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if suffix in ("csv", "tsv", "txt"):
        return "csv"
    return "jsonl" if head.lstrip().startswith(b"{") else "csv"


def _detect_encoding(sample: bytes) -> str:
    """UTF-8 when the sample is; else the encoding most of its non-ASCII lines are in (a
    UTF-8 file with a stray GBK line stays UTF-8, that line read by the fallback)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    utf8 = other = 0
    for line in sample.split(b"\n")[:-1]:  # (the last may be cut by the sample's end)
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            other += 1
    return "utf-8" if utf8 >= other else "gbk"  # (a tie: UTF-8, the other line by fallback)


def _codec(encoding: str) -> str:
    return "gb18030" if encoding == "gbk" else "utf-8"


def _decode(data: bytes, encoding: str) -> tuple[str, int, int]:
    """Decode a chunk; lines that fail are tried in the other encoding, then replaced."""
    codec = _codec(encoding)
    try:
        return data.decode(codec), 0, 0
    except UnicodeDecodeError:
        pass
    other = "utf-8" if codec == "gb18030" else "gb18030"
    parts: list[str] = []
    fallback = replaced = 0
    for line in data.split(b"\n"):
        try:
            parts.append(line.decode(codec))
            continue
        except UnicodeDecodeError:
            pass
        try:
            parts.append(line.decode(other))
            fallback += 1
        except UnicodeDecodeError:
            parts.append(line.decode(codec, "replace"))
            replaced += 1
    return "\n".join(parts), fallback, replaced


def _first_record_end(data: bytes, start: int, quoted: bool) -> int:
    """Offset just past the first record beginning at ``start`` (or ``len(data)``)."""
    parity, pos = 0, start
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return len(data)
        if quoted:
            parity ^= data.count(b'"', pos, nl) & 1
        if not parity:
            return nl + 1
        pos = nl + 1


def inspect(path: Path, *, format: str | None = None, column: str | None = None,
            reserved: Mapping[str, Collection[str]] | None = None) -> Layout:
    """Read the head of ``path`` and decide how to read it; ``Invalid`` if it cannot be."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            sample = f.read(SAMPLE)
    except OSError as exc:
        raise Invalid("unreadable_file", f"{path}: {exc.strerror or exc}", field="file") from None
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Invalid("bad_encoding", f"{path}: UTF-16 is not supported; save it as UTF-8 "
                      "(or GBK)", field="file")
    bom = sample.startswith(BOM)
    begin = len(BOM) if bom else 0
    fmt = format or _detect_format(path, sample[begin:begin + 256])
    if fmt not in FORMATS:
        raise Invalid("bad_format", f"format must be csv or jsonl, not {fmt!r}", field="format")
    encoding = "utf-8" if bom else _detect_encoding(sample)
    codec = _codec(encoding)
    if not sample[begin:].strip():
        raise Invalid("empty_file", f"{path}: the file is empty", field="file")
    if fmt == "jsonl":
        first = sample[begin:].lstrip().split(b"\n", 1)[0]
        try:
            obj = orjson.loads(first.decode(codec, "replace"))
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            raise Invalid("bad_format", f"{path}: the first line is not a JSON object",
                          field="file")
        header = tuple(str(k) for k in obj)
        header_line, data_start, delimiter, newline = "", begin, ",", "\n"
    else:
        end = _first_record_end(sample, begin, True)
        raw = sample[begin:end]
        newline = "\r\n" if raw.endswith(b"\r\n") else "\n"
        header_line = raw.decode(codec, "replace").rstrip("\r\n")
        counts = [header_line.count(d) for d in DELIMITERS]
        delimiter = DELIMITERS[counts.index(max(counts))] if max(counts) else ","
        header = tuple(next(csv.reader([header_line], delimiter=delimiter), []))
        data_start = begin + len(raw)
    index = _pick_column(header, column, path)

    def optional(names: tuple[str, ...]) -> int:
        found = [i for i in _find(header, names) if i != index]
        return found[0] if found else -1

    type_index, name_index = optional(TYPE_NAMES), optional(NAME_NAMES)
    type_column = header[type_index] if type_index >= 0 else None
    name_column = header[name_index] if name_index >= 0 else None
    if fmt == "jsonl":  # objects differ in their keys: "type" and "name" count in any line
        type_column = type_column or ("type" if header[index] != "type" else None)
        name_column = name_column or ("name" if header[index] != "name" else None)
    clash = sorted(set(header) & set((reserved or {}).get(fmt, ())))
    if clash:
        raise Invalid("output_column_clash",
                      f"{path}: the input already has result columns {clash} (a screened file?); "
                      "rename or remove them", field="file")
    return Layout(format=fmt, encoding=encoding, bom=bom, delimiter=delimiter, newline=newline,
                  header=header, header_line=header_line, data_start=data_start, size=size,
                  id_column=header[index], id_index=index,
                  type_column=type_column, type_index=type_index,
                  name_column=name_column, name_index=name_index)


def plan(path: Path, layout: Layout, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """Byte ranges ``[start, end)`` of about ``chunk_bytes`` covering the data, each ending on
    a record boundary."""
    quoted = layout.format == "csv"
    pos, size = layout.data_start, layout.size
    with path.open("rb") as f:
        while pos < size:
            f.seek(pos)
            data = f.read(chunk_bytes)
            end = pos + len(data)
            if end >= size:
                yield pos, size
                return
            parity = data.count(b'"') & 1 if quoted else 0
            boundary = size
            while end < size:
                block = f.read(1 << 16)
                if not block:
                    break
                at = 0
                while (nl := block.find(b"\n", at)) >= 0:
                    if quoted:
                        parity ^= block.count(b'"', at, nl) & 1
                    at = nl + 1
                    if not parity:
                        boundary = end + at
                        break
                else:
                    if quoted:
                        parity ^= block.count(b'"', at) & 1
                    end += len(block)
                    continue
                break
            yield pos, boundary
            pos = boundary


def read_chunk(path: Path, layout: Layout, start: int, end: int) -> Chunk:
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(end - start)
    text, fallback, replaced = _decode(data, layout.encoding)
    chunk = _read_csv(text, layout) if layout.format == "csv" else _read_jsonl(text, layout)
    chunk.fallback_lines, chunk.replaced_lines = fallback, replaced
    return chunk


def _cell(fields: list[str], index: int) -> str:
    return fields[index] if 0 <= index < len(fields) else ""


def _column(rows: list[list[str]], index: int) -> list[str]:
    try:
        return [r[index] for r in rows]
    except IndexError:  # short records
        return [r[index] if index < len(r) else "" for r in rows]


def _add_csv(chunk: Chunk, layout: Layout, record: str, fields: list[str]) -> None:
    chunk.records.append(record)
    chunk.widths.append(len(fields))
    chunk.ids.append(_cell(fields, layout.id_index))
    if chunk.types is not None:
        chunk.types.append(_cell(fields, layout.type_index).strip() or None)
    if chunk.names is not None:
        chunk.names.append(_cell(fields, layout.name_index) or None)


def _read_csv(text: str, layout: Layout) -> Chunk:
    delimiter = layout.delimiter
    if '"' not in text and text.count("\r") == text.count("\r\n"):  # no quoting: split
        lines = text.split("\n")
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        records = [line for line in lines if line]
        cells = [r.split(delimiter) for r in records]
        chunk = Chunk(records=records, widths=list(map(len, cells)),
                      ids=_column(cells, layout.id_index), types=None, names=None)
        if layout.type_index >= 0:
            chunk.types = [t.strip() or None for t in _column(cells, layout.type_index)]
        if layout.name_index >= 0:
            chunk.names = [n or None for n in _column(cells, layout.name_index)]
        return chunk
    chunk = Chunk(types=[] if layout.type_index >= 0 else None,
                  names=[] if layout.name_index >= 0 else None)
    lines = list(io.StringIO(text, newline=""))
    reader = csv.reader(lines, delimiter=delimiter)
    done = 0
    try:
        for fields in reader:
            record = "".join(lines[done:reader.line_num])
            done = reader.line_num
            if fields:
                _add_csv(chunk, layout, _strip_newline(record), fields)
    except csv.Error:  # malformed beyond what the csv module tolerates: split line by line
        for line in lines[done:]:
            record = _strip_newline(line)
            if record:
                try:
                    fields = next(csv.reader([record], delimiter=delimiter), [])
                except csv.Error:
                    fields = record.split(delimiter)
                _add_csv(chunk, layout, record, fields)
    return chunk


def _strip_newline(record: str) -> str:
    if record.endswith("\r\n"):
        return record[:-2]
    if record.endswith(("\n", "\r")):
        return record[:-1]
    return record


def _read_jsonl(text: str, layout: Layout) -> Chunk:
    chunk = Chunk()
    records, ids, bad = chunk.records, chunk.ids, chunk.bad
    types: list[Any] = []
    names: list[Any] = []
    idf, tf, nf = layout.id_column, layout.type_column, layout.name_column
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            bad.append(len(records))
            records.append(line)
            ids.append("")
            types.append(None)
            names.append(None)
            continue
        records.append(obj)
        raw = obj.get(idf)
        ids.append("" if raw is None else raw)
        t = obj.get(tf) if tf is not None else None
        types.append((t.strip() or None) if isinstance(t, str) else t)
        name = obj.get(nf) if nf is not None else None
        names.append(name if isinstance(name, str) and name else None)
    chunk.types, chunk.names = types, names
    return chunk


def file_identity(path: Path) -> tuple[int, int]:
    """(size, mtime_ns): a job refuses to resume over an input that changed."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
