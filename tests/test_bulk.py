"""Bulk screening (SPEC §6, issue 5): every row of a generated file against a single ``check``.

The snapshot is hand-written so that ``government_procurement`` yields every decision class
(block, review, alert, green, pass), with aliases, a 15-digit ID number, organisation codes,
links both ways, an objection and a red conflict; the input file mixes those subjects in
every accepted spelling with unlisted identifiers and bad rows of every SPEC §2 reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer import identifiers
from screening.bulk import CSV_COLUMNS, screen_file
from screening.cli import main
from screening.decision import Caller, CheckRequest, check
from screening.errors import Invalid, ScreeningError
from screening.jobs import JobNotDone, Jobs
from screening.idarrays import classify18, in_keys, xxh3_18
from screening.screener import Screener
from screening.tabular import inspect
from tests.naive import make_id, make_uscc

AS_OF = "2026-06-01T12:00:00+08:00"
GP = "government_procurement"
ORGS = [make_uscc("91350100", f"{i:04d}AB{i % 10}{i % 7}") for i in range(9)]
PERSONS = [make_id("350102", dt.date(1960 + i, 1 + i, 10 + i), f"{i:03d}") for i in range(4)]
OLD_ID = make_id("360426", dt.date(1991, 1, 1), "007")  # written as 360426910101007
ALIAS = "350100100012345"
REASONS = {"bad_length", "bad_character", "bad_check_character", "bad_birth_date",
           "bad_org_code_check", "unknown_type"}


def _entry(eid: str, list_: str, sid: str, stype: str = "org", **extra: Any) -> dict[str, Any]:
    return {"id": eid, "list": list_, "subject": {"type": stype, "id": sid, "name": f"名{sid[-4:]}",
                                                   "aliases": extra.pop("aliases", [])},
            "authority": "某局", "region": "350100", "scope": "national",
            "valid_from": "2025-01-01", "valid_until": extra.pop("until", "2028-01-01"),
            "reason": "原因", "basis": "依据", "publicity": extra.pop("publicity", "public"),
            **extra}


@pytest.fixture(scope="module")
def snap(build_snapshot: Any) -> Any:
    o, p = ORGS, PERSONS
    lists = [{"code": "court", "name": "失信被执行人", "kind": "black", "authority": "法院",
              "publicity": "public"},
             {"code": "watch", "name": "重点关注", "kind": "watch", "authority": "某局",
              "publicity": "shared"},
             {"code": "red", "name": "A级纳税人", "kind": "red", "authority": "税务",
              "publicity": "public"}]
    measure = {"force": "mandatory", "implementer": "财政部门", "basis": "文件"}
    measures = [
        {**measure, "id": "M-B", "name": "拦截", "lists": ["court"], "effect": "block",
         "targets": ["subject", "linked:legal_rep"], "scenarios": [GP]},
        {**measure, "id": "M-R", "name": "审核", "lists": ["watch"], "effect": "block",
         "force": "recommended", "targets": ["subject"], "scenarios": [GP]},
        {**measure, "id": "M-A", "name": "提示", "lists": ["court"], "effect": "alert",
         "targets": ["org_of:legal_rep"], "scenarios": [GP]},
        {**measure, "id": "M-G", "name": "绿色通道", "lists": ["red"], "effect": "green",
         "force": "recommended", "targets": ["subject"], "scenarios": [GP]},
        {**measure, "id": "M-C", "name": "三年无不良", "lists": [], "effect": "green",
         "targets": ["subject"], "scenarios": ["honors"], "clean_years": 3}]
    scenarios = [{"code": c, "name": c} for c in (GP, "honors", "bidding")]
    entries = [
        _entry("E1", "court", o[0], aliases=[ALIAS],
               persons=[{"role": "legal_rep", "id": p[0], "name": "张三"}]),
        _entry("E2", "watch", o[1], publicity="shared"),
        _entry("E3", "court", p[1], "person"),
        _entry("E4", "red", o[3]),
        _entry("E5a", "red", o[4]), _entry("E5b", "court", o[4]),
        _entry("E6", "court", o[5], until="2026-01-01"),
        _entry("E7", "court", o[6]),
        _entry("E8", "court", OLD_ID, "person"),
        _entry("E9", "court", o[7], publicity="authorized")]
    relations = [{"org": o[2], "person": p[1], "role": "legal_rep", "name": "李四"},
                 {"org": o[8], "person": p[2], "role": "director", "name": "王五"}]
    events = [{"id": "V1", "at": "2026-03-01", "entry": "E7", "type": "objection_opened"}]
    return build_snapshot("bulk", lists=lists, measures=measures, scenarios=scenarios,
                          entries=entries, relations=relations, events=events)


def _variants(code: str) -> list[str]:
    full = "".join(chr(ord(c) + 0xFEE0) for c in code)
    return [code, code.lower(), f" {code[:6]}-{code[6:]} ", full]


def generated_rows(seed: int = 7, unlisted: int = 300) -> list[tuple[str, str, str]]:
    """(identifier, type, name) rows: listed subjects spelled every way, unlisted ones,
    and bad rows of every SPEC §2 reason."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, str]] = []
    for code in ORGS + PERSONS + [OLD_ID]:
        for v in _variants(code):
            rows.append((v, "", ""))
        rows += [(code, "org", "名" + code[-4:]), (code, "person", "别名"), (code, "x", "")]
    for code in ORGS:
        rows += [(code[8:17], "", ""), (f"{code[8:16]}-{code[16]}", "org", "")]
    rows += [(OLD_ID[:6] + OLD_ID[8:17], "", ""), (ALIAS, "", ""), (ALIAS, "org", "")]
    for i in range(unlisted):
        if i % 2:
            body = "".join(rng.choice(identifiers.USCC_ALPHABET) for _ in range(8))
            code = make_uscc("9135" + f"{rng.randrange(10000):04d}", body)
        else:
            born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25000))
            code = make_id("110105", born, f"{rng.randrange(1000):03d}")
        rows.append((code, rng.choice(["", "", code.isdigit() and "person" or "org"]), ""))
        if i % 25 == 0:  # unlisted 9-character and 15-digit forms
            rows.append((code[8:17] if not code[:17].isdigit() else code[:6] + code[8:17], "", ""))
    good = ORGS[0]
    rows += [("", "", ""), ("   ", "", ""), ("-", "org", ""), ("12345", "", ""),
             (good[:17] + ("0" if good[17] != "0" else "1"), "", ""),  # bad_check_character
             (good[:16] + ("1" if good[16] != "1" else "2") + good[17], "", ""),  # org code
             (good[:10] + "I" + good[11:], "", ""),  # I is not in the USCC alphabet
             ("110105194913310021", "", ""), ("110105194912310021", "person", ""),
             ("11010519491231002Z", "", ""), (good, "company", ""), ("12345678-X", "", "")]
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, str, str]], *, encoding: str = "utf-8",
              bom: bool = False) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["序号", "统一社会信用代码", "类型", "企业名称"])
    for i, (code, t, name) in enumerate(rows):
        w.writerow([i, code, t, name])
    data = buf.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def expected_cells(snap: Any, caller: Caller, scenario: str, raw: Any, type_: str | None,
                   name: str | None) -> dict[str, Any]:
    """The result columns computed from a single ``check`` (written independently)."""
    try:
        r = check(snap, CheckRequest(subject=raw, scenario=scenario, type=type_, name=name,
                                     as_of=AS_OF), caller)
    except ScreeningError as exc:
        return {"decision": "", "error": exc.code, "message": exc.message}
    measures = {f"{m['id']}={m['action']}" for h in r["hits"] for m in h["measures"]}
    measures |= {f"{m['id']}={m['action']}" for m in r["measures"]}
    return {"decision": r["decision"], "subject_type": r["subject"]["type"],
            "subject_id": r["subject"]["id"],
            "hits": [(h["entry"], h["list"], h["path"], h["via"] and h["via"]["id"])
                     for h in r["hits"]],
            "measures": measures,
            "suppressed": sorted(f"{s['entry']}={s['reason']}" for s in r["suppressed"]),
            "name_mismatch": r["subject"]["name_mismatch"], "error": ""}


def actual_cells(row: dict[str, str]) -> dict[str, Any]:
    if row["error"]:
        return {"decision": row["decision"], "error": row["error"],
                "message": row["error_message"]}
    paths = [p.split("(")[0] for p in row["hit_paths"].split(";") if p]
    vias = [p.split("(")[1][:-1] if "(" in p else None for p in row["hit_paths"].split(";") if p]
    entries = [e for e in row["hit_entries"].split(";") if e]
    mismatch = {"": None, "true": True, "false": False}[row["name_mismatch"]]
    return {"decision": row["decision"], "subject_type": row["subject_type"],
            "subject_id": row["subject_id"],
            "hits": list(zip(entries, row["hit_lists"].split(";"), paths, vias)),
            "measures": {m for m in row["measures"].split(";") if m},
            "suppressed": sorted(s for s in row["suppressed"].split(";") if s),
            "name_mismatch": mismatch, "error": ""}


def _bulk(tmp: Path, src: Path, scenario: str, *extra: str) -> tuple[int, Path]:
    out = tmp / (src.stem + f".{scenario}.out" + src.suffix)
    code = main(["bulk", str(src), "--scenario", scenario, "--out", str(out), "--snapshot",
                 str(_snap_dir), "--as-of", AS_OF, *extra])
    return code, out


_snap_dir: Path = Path()


@pytest.fixture(autouse=True)
def _snapshot_dir(snap: Any) -> None:
    global _snap_dir
    _snap_dir = snap.folder


@pytest.mark.parametrize("scenario", [GP, "honors", "bidding"])
def test_bulk_agrees_with_single_checks(snap: Any, tmp_path: Path, scenario: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rows = generated_rows()
    code, out = _bulk(tmp_path, write_csv(tmp_path / "in.csv", rows), scenario)
    assert code == 0 and gc.isenabled()
    result = read_csv(out)
    assert len(result) == len(rows) and list(result[0])[-11:] == list(CSV_COLUMNS)
    caller = Caller()
    for i, (row, (raw, t, name)) in enumerate(zip(result, rows)):
        assert row["序号"] == str(i) and row["统一社会信用代码"] == raw  # order and input kept
        want = expected_cells(snap, caller, scenario, raw, t or None, name or None)
        got = actual_cells(row)
        if not raw.strip(" -"):
            assert got["error"] == "bad_length" and got["message"] == "the identifier is empty"
            continue
        assert got == want, (i, raw, t)
    decisions = {r["decision"] for r in result}
    errors = {r["error"] for r in result} - {""}
    if scenario == GP:
        assert decisions >= {"block", "review", "alert", "green", "pass"}
        assert errors == REASONS
    summary = capsys.readouterr().err
    assert f"screened {len(rows):,} rows" in summary and "of which empty 3" in summary


def test_jsonl_public_tier_and_bad_lines(snap: Any, tmp_path: Path) -> None:
    rows = generated_rows(seed=11, unlisted=60)
    lines = [orjson.dumps({"n": i, "subject": raw, **({"type": t} if t else {}), "x": [1]})
             for i, (raw, t, _) in enumerate(rows)]
    lines[5:5] = [b"", b"not json", b"[1, 2]", orjson.dumps({"n": -1, "subject": 9135})]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    code, out = _bulk(tmp_path, src, GP, "--tier", "public")
    assert code == 0
    result = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(result) == len(rows) + 3  # the blank line is not a row
    assert [r.get("raw") for r in result[5:7]] == ["not json", "[1, 2]"]
    assert {result[5]["error"]["code"], result[6]["error"]["code"]} == {"bad_row"}
    assert result[7]["error"]["code"] == "bad_subject"
    caller = Caller(tier="public")
    good = [r for r in result if "raw" not in r and r["n"] >= 0]
    for r in good:
        raw, t, _ = rows[r["n"]]
        want = expected_cells(snap, caller, GP, raw, t or None, None)
        if r["error"]:
            assert r["decision"] is None and r["error"]["code"] == want["error"]
            continue
        got = (r["decision"], r["subject_id"])
        assert got == (want["decision"], want.get("subject_id")), (raw, t, want)
        assert [(h["entry"], h["list"], h["path"], h["via"]) for h in r["hits"]] == want["hits"]
    masked = [r["subject_id"] for r in good if r["subject_type"] == "person"]
    assert masked and all("****" in m for m in masked)
    assert not any(r["decision"] == "review" for r in good)  # the watch list is not public


def test_bom_gbk_and_tsv(snap: Any, tmp_path: Path) -> None:
    rows = [(ORGS[0], "", "某某贸易有限公司"), (ORGS[3], "", "税务A级公司"), ("bad", "", "坏")]
    expect = [r["decision"] for r in read_csv(_bulk(tmp_path, write_csv(
        tmp_path / "plain.csv", rows), GP)[1])]
    assert expect == ["block", "green", ""]
    for name, kwargs in (("bom.csv", {"bom": True}), ("gbk.csv", {"encoding": "gbk"})):
        src = write_csv(tmp_path / name, rows, **kwargs)  # type: ignore[arg-type]
        assert inspect(src).encoding == ("gbk" if "gbk" in name else "utf-8")
        code, out = _bulk(tmp_path, src, GP)
        assert code == 0 and out.read_bytes().startswith(b"\xef\xbb\xbf")
        result = read_csv(out)
        assert [r["decision"] for r in result] == expect
        assert [r["企业名称"] for r in result] == [r[2] for r in rows]  # GBK converted
        assert result[0]["name_mismatch"] == "true"
    tsv = tmp_path / "in.tsv"
    tsv.write_text("uscc\tname\n" + "\n".join(f"{c}\t{n}" for c, _, n in rows) + "\n")
    text = _bulk(tmp_path, tsv, GP)[1].read_text()
    result = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    assert [r["decision"] for r in result] == expect


def test_no_identifier_column_fails_before_work(snap: Any, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("序号,企业名称\n1,某某公司\n")
    code, out = _bulk(tmp_path, src, GP)
    assert code == 2 and not out.exists()
    assert "no identifier column" in capsys.readouterr().err
    assert _bulk(tmp_path, src, GP, "--column", "企业名称")[0] == 0  # named explicitly
    src.write_text("统一社会信用代码,身份证号码\n")
    assert _bulk(tmp_path, src, GP)[0] == 2
    assert "ambiguous_identifier_column" in capsys.readouterr().err
    src.write_text("uscc,decision\n")
    assert _bulk(tmp_path, src, GP)[0] == 2
    assert "output_column_clash" in capsys.readouterr().err
    src.write_text("uscc\n" + ORGS[0] + "\n")
    assert _bulk(tmp_path, src, "no_such_scenario")[0] == 2
    assert "unknown_scenario" in capsys.readouterr().err


def test_quoted_multiline_records_across_chunks(snap: Any, tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    lines = ["uscc,note"] + [f'{ORGS[i % 9]},"line one\nline ""two"", {i}"' for i in range(200)]
    src.write_text("\n".join(lines) + "\n")
    screener = Screener(snap, scenario=GP, caller=Caller(), as_of=AS_OF)
    outputs = []
    for chunk_bytes in (64, 1000, 1 << 20):
        out = tmp_path / f"q{chunk_bytes}.csv"
        counts = screen_file(src, out, inspect(src), screener, chunk_bytes=chunk_bytes)
        assert counts.rows == 200
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    result = read_csv(tmp_path / "q64.csv")
    assert [r["note"] for r in result] == [f'line one\nline "two", {i}' for i in range(200)]


def test_job_restart_gives_identical_output(snap: Any, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", generated_rows(seed=3), bom=True)
    code, reference = _bulk(tmp_path, src, GP)
    assert code == 0
    jobs = Jobs(tmp_path / "jobs", lambda: snap)
    job = jobs.create(src, scenario=GP, caller=Caller(), as_of=AS_OF, chunk_bytes=2048)
    assert job.state == "pending" and job.chunks_total > 5
    with pytest.raises(JobNotDone):
        jobs.result(job.id)
    paused = jobs.run(job.id, max_chunks=3)
    assert (paused.state, paused.chunks_done) == ("paused", 3) and paused.rows_done > 0
    parts = tmp_path / "jobs" / job.id / "parts"
    (parts / "000003.out").write_bytes(b"half-written")  # a crash inside chunk 3
    (parts / "000004.out.tmp").write_bytes(b"torn")
    restarted = Jobs(tmp_path / "jobs", lambda: snap)  # a new process
    assert restarted.status(job.id).chunks_done == 3
    partial = b"".join(restarted.result(job.id, partial=True))
    done = restarted.run(job.id)
    assert done.state == "done" and done.rows_done == len(read_csv(reference))
    assert done.counts["decisions"]["block"] > 0 and done.counts["empty"] == 3
    output = b"".join(restarted.result(job.id))
    assert output == reference.read_bytes() and output.startswith(partial)
    with pytest.raises(Invalid):
        jobs.create(tmp_path / "in.csv", scenario="nope", caller=Caller())
    src.write_bytes(src.read_bytes() + b"\r\n1,x,,\r\n")  # input changed: refuse to resume
    job2 = jobs.create(src, scenario=GP, caller=Caller(), as_of=AS_OF)
    src.write_bytes(src.read_bytes() + b"2,y,,\r\n")
    with pytest.raises(Invalid):
        jobs.run(job2.id)
    assert jobs.status(job2.id).state == "failed"


_id_char = st.sampled_from("0123456789X" * 3 + identifiers.USCC_ALPHABET + "IOZSV")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.one_of(
    st.text(_id_char, min_size=18, max_size=18),
    st.sampled_from(ORGS + PERSONS + [OLD_ID]).flatmap(
        lambda c: st.tuples(st.integers(0, 17), _id_char).map(
            lambda m: c[:m[0]] + m[1] + c[m[0] + 1:])),
    st.dates(dt.date(1790, 1, 1), dt.date(2100, 12, 31)).map(
        lambda d: (lambda b: b + identifiers.ric_check_char(b))("350102" + d.strftime("%Y%m%d")
                                                             + "123"))),
    st.sampled_from([None, "org", "person"])), min_size=1, max_size=20))
def test_array_validation_agrees_with_parse(items: list[tuple[str, str | None]]) -> None:
    forms = classify18([k.encode() for k, _ in items], [t for _, t in items]).tolist()
    for (key, t), form in zip(items, forms):
        try:
            want = {"ric": 1, "uscc": 2}[identifiers.parse(key, t).form]
        except identifiers.IdentifierError:
            want = 0
        assert form == want, (key, t)


def test_array_hash_and_key_intersection(snap: Any) -> None:
    rng = np.random.default_rng(3)
    m = rng.integers(0, 256, (5000, 18), dtype=np.uint8)
    keys = [snap.subject_id(i).encode() for i in range(len(snap.subject_key))]
    m[:len(keys)] = np.frombuffer(b"".join(keys), np.uint8).reshape(-1, 18)
    hashes = xxh3_18(m)
    assert hashes.tolist() == [xxhash.xxh3_64_intdigest(row.tobytes()) for row in m]
    stored = set(snap.key_hash.tolist())
    assert in_keys(snap, hashes).tolist() == [h in stored for h in hashes.tolist()]
    assert in_keys(snap, hashes)[:len(keys)].all()


def test_ragged_records_keep_the_results_under_their_header(snap: Any, tmp_path: Path) -> None:
    """A record with fewer fields than the header is padded; one with more has its extra
    fields joined into its last column (quoted): either way a CSV reader finds each result in
    its column — a decision read from the wrong column would be read wrong."""
    src = tmp_path / "ragged.csv"
    src.write_text(
        "序号,统一社会信用代码,备注\n"
        f"0,{ORGS[0]},x,extra,\"more,still\"\n"
        f"1,{ORGS[0]}\n"
        f"2,{ORGS[1]},plain\n", encoding="utf-8")
    code, out = _bulk(tmp_path, src, GP)
    assert code == 0
    rows = read_csv(out)
    assert [r["序号"] for r in rows] == ["0", "1", "2"]
    assert [r["备注"] for r in rows] == ["x,extra,more,still", "", "plain"]
    caller = Caller()
    for row, subject in zip(rows, (ORGS[0], ORGS[0], ORGS[1])):
        assert None not in row  # no field beyond the header
        want = expected_cells(snap, caller, GP, subject, None, None)
        assert row["decision"] == want["decision"] and row["subject_id"] == subject


def test_a_stray_gbk_line_does_not_make_a_utf8_file_gbk(snap: Any, tmp_path: Path) -> None:
    """One line saved in GBK in a UTF-8 file: the file is still read as UTF-8 (its Chinese
    header found), and that line through the per-line fallback."""
    rows = [(ORGS[i % len(ORGS)], "", f"供应商{i}") for i in range(20)]
    src = write_csv(tmp_path / "mixed.csv", rows)
    lines = src.read_bytes().split(b"\r\n")
    lines[5] = lines[5].decode("utf-8").encode("gbk")
    src.write_bytes(b"\r\n".join(lines))
    assert inspect(src).encoding == "utf-8"
    tie = tmp_path / "tie.csv"  # one UTF-8 line, one GBK line: UTF-8 still
    tie.write_bytes("序号,统一社会信用代码\n0,甲\n".encode() + "1,乙\n".encode("gbk"))
    assert inspect(tie, column="统一社会信用代码").encoding == "utf-8"
    code, out = _bulk(tmp_path, src, GP)
    assert code == 0
    result = read_csv(out)
    assert [r["企业名称"] for r in result] == [r[2] for r in rows]
    assert [r["统一社会信用代码"] for r in result] == [r[0] for r in rows]
