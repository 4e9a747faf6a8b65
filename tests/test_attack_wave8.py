"""Attacks on the sink's files made ahead of their rows, the deferred live documents, the sink's shorter final
answer and the templates of the summary's series and the document's metric entities (wave 8).

Oracles are exact: the rows read back from every metric file against what was logged, point for point
(values by their bits, steps as integers), the set of files against the set of series that got a point,
the document's and the summary's figures against the files, the templates against the general path.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import signal
import struct
import time
from pathlib import Path

import pytest

import prov4ml
from killing import Child, wait_for, wait_for_sinks
from prov4ml.metrics import _sink

SERIES = _sink.FEW_SERIES + 76  # 1,100: the many-series path


def bits(v: float) -> int:
    return struct.unpack("<q", struct.pack("<d", v))[0]


def rows_of(path: Path, sep: str = ","):
    """(step, value bits) of every row of a metric CSV; its header must be first and its last row whole."""
    text = path.read_text()
    lines = text.split("\n")
    assert lines[0] == sep.join(("step", "value", "time")), (path.name, lines[0])
    assert lines[-1] == "", (path.name, lines[-1])
    out = []
    for line in lines[1:-1]:
        step, value, t = line.split(sep)
        float(t)
        out.append((int(step), bits(float(value))))
    return out


def expect(points):
    return [(s, bits(v)) for s, v in points]


def entity_series(run_dir: Path) -> dict:
    from prov.model import ProvDocument

    path = run_dir / "prov_rank0.json"
    data = json.loads(path.read_text())
    ProvDocument.deserialize(str(path))
    out = {}
    for attrs in data.get("entity", {}).values():
        if "provml:count" in attrs and "provml:name" in attrs:
            out[(attrs["provml:name"], attrs["provml:context"])] = attrs
    return out, data


def count_of(attrs) -> int:
    v = attrs["provml:count"]
    return int(v["$"]) if isinstance(v, dict) else int(v)


def files_problems(run_dir: Path, logged: dict, sep: str = ",") -> list:
    """What the metric folder says wrong: a file for no series with points, a series with points without its
    file or with rows other than its points, an empty file."""
    problems = []
    metrics = run_dir / "metrics"
    want = {f: pts for f, pts in logged.items() if pts}
    have = {p.name for p in metrics.iterdir()} if metrics.is_dir() else set()
    extra, missing = sorted(have - set(want)), sorted(set(want) - have)
    if extra:
        problems.append(("files of no series with points", extra[:5], len(extra)))
    if missing:
        problems.append(("missing files", missing[:5], len(missing)))
    for name in sorted(have & set(want)):
        path = metrics / name
        if path.stat().st_size == 0:
            problems.append(("empty file", name))
            continue
        got = rows_of(path, sep)
        if got != expect(want[name]):
            problems.append(("rows", name, got[:4], expect(want[name])[:4]))
    return problems


def document_problems(run_dir: Path, logged_by_series: dict, files: dict) -> list:
    """The final document's series against what was logged: a count per series, a location only where a file is."""
    got, _data = entity_series(run_dir)
    problems = []
    for key, pts in logged_by_series.items():
        attrs = got.get(key)
        if attrs is None:
            problems.append(("no entity", key))
            continue
        if count_of(attrs) != len(pts):
            problems.append(("count", key, count_of(attrs), len(pts)))
        if bool(pts) != ("prov:location" in attrs):
            problems.append(("location", key, attrs.get("prov:location")))
    return problems


# --- 1. files made ahead: an in-process run, then a second one in the same process --------------------------

SPECIAL = [-0.0, 5e-324, 1e308, -1e308, 2.2250738585072014e-308, 0.1, 1 / 3]


def _one_run(tmp_path: Path, tag: str, sep: str):
    """A run of SERIES series (values k + s/4, some special), a refused series that later gets a valid value, a
    series only ever refused, samplers (subsample, ignore), a sub-context, a flush mid-run with checks of the
    files, the live document and the readers; returns (run_dir, logged: file -> points, by series)."""
    from prov4ml.metrics import formats
    from prov4ml.runs.series import read_points

    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "ahead", str(tmp_path / "prov"), capture=False, csv_separator=sep,
                            metric_samplers={f"sub{tag}": prov4ml.Subsample(2), f"ign{tag}": "ignore"})
    run_dir = run.run_dir
    sub = prov4ml.create_context(f"inner{tag}", is_subcontext_of=C.TRAINING)
    by_series = {}

    def log(name, value, ctx, step, ctxname, kept=True):
        prov4ml.log_metric(name, value, ctx, step=step)
        pts = by_series.setdefault((name, ctxname), [])
        if kept:
            pts.append((step, value))

    for k in range(SERIES):
        log(f"m{tag}{k}", SPECIAL[k] if k < len(SPECIAL) else k + 0.0, C.TRAINING, 0, "training")
    for k in range(5):
        log(f"m{tag}{k}", k + 0.75, sub, 0, f"inner{tag}")
    wait_for(lambda: len(list((run_dir / "metrics").iterdir())) >= SERIES)
    for name in (f"late{tag}", f"never{tag}"):
        with pytest.raises((TypeError, ValueError)):
            prov4ml.log_metric(name, "not a number", C.TRAINING)
        by_series[(name, "training")] = []
    for s in range(5):
        log(f"sub{tag}", s * 0.5, C.TRAINING, s, "training", kept=s % 2 == 0)
        log(f"ign{tag}", s * 0.5, C.TRAINING, s, "training", kept=False)
    late = run_dir / "metrics" / f"late{tag}_training_rank0.csv"
    wait_for(late.exists)  # made ahead, from its line alone
    assert late.read_bytes() == b""
    prov4ml.log_param("lr", 0.125)

    # readers while files are empty
    for path in (run_dir / "metrics").iterdir():
        formats.csv_rows(path)
    prov4ml.flush()
    live, data = entity_series(run_dir)
    assert any(v.get("prov:label") == "lr" for v in data["entity"].values()), "flush: the document lacks lr"
    for key, attrs in live.items():
        if "prov:location" in attrs:
            from prov4ml.provenance import json_location

            loc = json_location(attrs["prov:location"])
            cols = read_points(run_dir, str(Path(loc).relative_to(run_dir)) if Path(loc).is_absolute() else loc)
            assert cols is not None and len(cols["step"]) == count_of(attrs), key
    assert count_of(live[(f"m{tag}3", "training")]) == 1

    log(f"late{tag}", 2.5, C.TRAINING, 7, "training")
    for k in range(SERIES):
        log(f"m{tag}{k}", k + 0.25, C.TRAINING, 1, "training")
    prov4ml.end_run()
    files = {}
    for (name, ctx), pts in by_series.items():
        files[f"{name}_{ctx}_rank0.csv"] = pts
    return run_dir, files, by_series


def test_files_made_ahead_hold_exactly_their_rows_in_two_runs_of_one_process(tmp_path):
    for tag, sep in (("a", ";"), ("b", ",")):
        run_dir, files, by_series = _one_run(tmp_path, tag, sep)
        assert files_problems(run_dir, files, sep) == []
        assert document_problems(run_dir, by_series, files) == []
        assert not (run_dir / "metrics" / f"never{tag}_training_rank0.csv").exists()
        assert not (run_dir / "metrics" / f"ign{tag}_training_rank0.csv").exists()


# --- the sink dies mid-run: the run's thread takes over -----------------------------------------------------

def test_a_file_made_ahead_is_removed_at_end_run_after_the_sink_died(tmp_path):
    """The sink made a file ahead for a series whose only value was refused, then died; the run's own thread
    continues the files. end_run must still leave no file for a series without a point."""
    run = prov4ml.start_run("www.example.org", "takeover", str(tmp_path / "prov"), capture=False)
    run_dir = run.run_dir
    logged = {}
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", k + 0.0, prov4ml.Context.TRAINING, step=0)
        logged[f"m{k}_training_rank0.csv"] = [(0, k + 0.0)]
    wait_for(lambda: len(list((run_dir / "metrics").iterdir())) >= SERIES)
    with pytest.raises((TypeError, ValueError)):
        prov4ml.log_metric("refused", "x", prov4ml.Context.TRAINING)
    refused = run_dir / "metrics" / "refused_training_rank0.csv"
    wait_for(refused.exists)
    pid = int(next(run_dir.glob(".prov4ml/rank*/sink.pid")).read_text())
    os.kill(pid, signal.SIGKILL)
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", k + 0.5, prov4ml.Context.TRAINING, step=1)
        logged[f"m{k}_training_rank0.csv"].append((1, k + 0.5))
    prov4ml.end_run()
    assert files_problems(run_dir, logged) == []


# --- two series whose file names agree ------------------------------------------------------------------------

def test_two_series_whose_file_names_agree_keep_their_own_rows(tmp_path):
    """("a_b", "c") and ("a", "b_c") both slug to a_b_c_rank0.csv: with many series, the file made ahead for the
    first (whose only value is refused) is removed at the end, and the second's rows with it."""
    run = prov4ml.start_run("www.example.org", "names", str(tmp_path / "prov"), capture=False)
    run_dir = run.run_dir
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", k + 0.0, prov4ml.Context.TRAINING, step=0)
    wait_for(lambda: len(list((run_dir / "metrics").iterdir())) >= SERIES)
    with pytest.raises((TypeError, ValueError)):
        prov4ml.log_metric("a_b", "x", "c")
    wait_for((run_dir / "metrics" / "a_b_c_rank0.csv").exists)
    prov4ml.log_metric("a", 2.5, "b_c", step=3)
    prov4ml.end_run()
    got, _ = entity_series(run_dir)
    attrs = got[("a", "b_c")]
    assert count_of(attrs) == 1
    from prov4ml.provenance import json_location

    loc = Path(json_location(attrs["prov:location"]))
    path = loc if loc.is_absolute() else run_dir / loc
    assert path.exists(), "the rows of ('a', 'b_c') are gone"
    assert rows_of(path) == expect([(3, 2.5)])


# --- 1b. real processes: the training process killed alone, the whole group killed then recovered -----------

CHILD = """
import resource
LIMIT_
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False, save_after_n_logs=100000,
                  metric_samplers={{"ign": "ignore"}})
C = prov4ml.Context
for k in range(N_):
    prov4ml.log_metric("m%d" % k, k * 0.5, C.TRAINING, step=0)
for name in ("refused", "late"):
    try:
        prov4ml.log_metric(name, "x", C.TRAINING)
    except (TypeError, ValueError):
        pass
prov4ml.log_metric("ign", 1.0, C.TRAINING, step=0)
prov4ml.log_metric("late", 0.25, C.TRAINING, step=9)
prov4ml.log_param("lr", 0.125)
import pathlib
art = pathlib.Path({save_dir!r}).parent / "notes.txt"
art.write_text("hello")
prov4ml.log_artifact("notes", str(art), C.TRAINING)
for k in range(N_):
    prov4ml.log_metric("m%d" % k, k * 0.5 + 0.25, C.TRAINING, step=1)
tell(1)
flag(1)
END_
"""


def _child_logged(n):
    logged = {f"m{k}_training_rank0.csv": [(0, k * 0.5), (1, k * 0.5 + 0.25)] for k in range(n)}
    logged["late_training_rank0.csv"] = [(9, 0.25)]
    logged["refused_training_rank0.csv"] = []
    logged["ign_training_rank0.csv"] = []
    return logged


def _child(tmp_path, n=SERIES, group=False, limit="", end="time.sleep(600)"):
    body = CHILD.replace("N_", str(n)).replace("LIMIT_", limit).replace("END_", end)
    return Child(tmp_path, body, group=group)


def _records_problems(run_dir: Path) -> list:
    _series, data = entity_series(run_dir)
    problems = []
    labels = [v.get("prov:label") for v in data["entity"].values()]
    if "lr" not in labels:
        problems.append("no parameter lr")
    if not any("notes" in str(v.get("prov:label", "")) or "notes" in str(v.get("provml:name", ""))
               for v in data["entity"].values()):
        problems.append("no artifact notes")
    return problems


def test_the_training_process_killed_alone_the_sink_finishes_exact_files(tmp_path):
    child = _child(tmp_path)
    child.wait_flag(timeout=120)
    child.kill()
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    logged = _child_logged(SERIES)
    assert files_problems(run_dir, logged) == []
    from prov4ml.run.recovery import recover

    recover(run_dir)
    assert files_problems(run_dir, logged) == []
    by_series = {(f.rsplit("_training_rank0.csv", 1)[0], "training"): pts for f, pts in logged.items()}
    assert document_problems(run_dir, by_series, logged) == []
    assert _records_problems(run_dir) == []


def test_a_group_kill_during_the_deferral_then_recover_keeps_every_record_and_point(tmp_path):
    child = _child(tmp_path, group=True)
    child.wait_flag(timeout=120)
    child.kill()  # the sink dies with it: files made ahead, rows partly written, documents deferred
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    _series, data = entity_series(run_dir)  # what the kill left is readable
    from prov4ml.run.recovery import recover

    recover(run_dir)
    logged = _child_logged(SERIES)
    assert files_problems(run_dir, logged) == []
    by_series = {(f.rsplit("_training_rank0.csv", 1)[0], "training"): pts for f, pts in logged.items()}
    assert document_problems(run_dir, by_series, logged) == []
    assert _records_problems(run_dir) == []


def test_three_thousand_series_under_a_descriptor_limit_of_256(tmp_path):
    child = _child(tmp_path, n=3000, limit="resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))",
                   end="prov4ml.end_run()")
    assert child.wait(180) == 0, child.proc.stderr.read().decode()[-3000:]
    run_dir = child.run_dir()
    logged = _child_logged(3000)
    assert files_problems(run_dir, logged) == []
    by_series = {(f.rsplit("_training_rank0.csv", 1)[0], "training"): pts for f, pts in logged.items()}
    assert document_problems(run_dir, by_series, logged) == []


# --- 3. a full disk while many files are made: the final answer and the document -------------------------

def _disk_claims_problems(run_dir: Path, exact: bool = True) -> list:
    """Every series entity of the document against its file on disk: the count is the rows there (at most
    them: ``exact=False``, a document older than the files); a location names a readable metric file."""
    from prov4ml.provenance import json_location
    from prov4ml.runs.series import read_points

    got, data = entity_series(run_dir)
    problems = []
    for key, attrs in got.items():
        n = count_of(attrs)
        if "prov:location" not in attrs:
            if n:
                problems.append(("count without a file", key, n))
            continue
        loc = Path(json_location(attrs["prov:location"]))
        path = loc if loc.is_absolute() else run_dir / loc
        try:
            cols = read_points(run_dir, str(path.relative_to(run_dir)))
            rows = 0 if cols is None else len(cols["step"])
        except Exception as exc:  # noqa: BLE001 - what a reader meets
            problems.append(("unreadable", key, type(exc).__name__, str(exc)[:120]))
            continue
        if rows != n if exact else n > rows:
            problems.append(("count", key, n, rows))
    return problems, data


FULL = """
import pathlib
mnt = pathlib.Path({save_dir!r}).parent / "fs"
run = prov4ml.start_run("www.example.org", "full", str(mnt / "prov"), capture=False)
for k in range(N_):
    prov4ml.log_metric("m%d" % k, k + 0.0, prov4ml.Context.TRAINING, step=0)
prov4ml.flush()
filler = mnt / "filler"
with open(filler, "wb") as fh:
    try:
        while True:
            fh.write(b"\\0" * (64 << 10))
            fh.flush()
    except OSError:
        pass
for size in (4096, 512, 1):
    try:
        with open(mnt / ("crumb%d" % size), "wb") as fh:
            while True:
                fh.write(b"\\0" * size)
                fh.flush()
    except OSError:
        pass
for k in range(300):
    prov4ml.log_metric("f%d" % k, k + 0.5, prov4ml.Context.TRAINING, step=0)
for k in range(N_):
    prov4ml.log_metric("m%d" % k, k + 0.25, prov4ml.Context.TRAINING, step=1)
prov4ml.end_run()
""".replace("N_", str(SERIES))


def test_a_full_disk_while_many_files_are_made(small_tmpfs, tmp_path):
    """The disk fills while 300 new series' files are made: end_run must not say finished over missing rows, the
    document on disk claims no row that is not there, and recover, once there is room, writes every row."""
    from prov4ml.run.recovery import recover

    assert small_tmpfs == tmp_path / "fs"
    child = Child(tmp_path, FULL)
    assert child.wait(120) == 0, child.proc.stderr.read().decode()[-3000:]
    run_dir = small_tmpfs / "prov" / "full" / "run_0"
    logged = {f"m{k}_training_rank0.csv": [(0, k + 0.0), (1, k + 0.25)] for k in range(SERIES)}
    logged.update({f"f{k}_training_rank0.csv": [(0, k + 0.5)] for k in range(300)})
    problems, data = _disk_claims_problems(run_dir, exact=False)  # the final document may not fit
    status = next(a for k, a in data["activity"].items() if k.endswith(".rank0")).get("provml:status")
    on_disk_complete = files_problems(run_dir, logged) == []
    assert on_disk_complete or status != "finished", "finished over missing rows"
    assert problems == []
    for junk in [small_tmpfs / "filler", *small_tmpfs.glob("crumb*")]:
        junk.unlink()
    recover(run_dir)
    assert files_problems(run_dir, logged) == []
    assert _disk_claims_problems(run_dir)[0] == []


# --- 4. templates: the summary's series and the document's metric entities ---------------------------------

NAMES = ['q"uote', "back\\slash", "ctl\x01\x1f\x7f", "tab\tnew\nline", "ñé日本語", "x" * 300, "Loss", "loss",
         "100%s%d%%", "line\u2028sep", "smile\U0001F642", "val_acc", "top1_err", "MAP@5", "a.b.c", "..dots",
         "sp ace", "</script>"]
VALUES = [[float("nan")], [float("nan"), float("nan")], [float("inf"), 1.0], [float("-inf")], [-0.0], [5e-324],
          [1e308, -1e308], [2.2250738585072014e-308, 0.1], [1 / 3, 2 / 3, 1e-300], [0.0, -0.0]]
STEPS = [2**63 - 1, -(2**63), 0, 2**53 + 1, -(2**53) - 1]


def _weird_run(tmp_path):
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "weird", str(tmp_path / "prov"), capture=False)
    logged = {}
    odd = C('wé ird.ctx-π 日本')
    sub = prov4ml.create_context("Sub ctx.2", is_subcontext_of=C.VALIDATION)
    for i, name in enumerate(NAMES):
        for ctx in (C.TRAINING, C.VALIDATION, odd, sub):
            vals = VALUES[i % len(VALUES)]
            for j, v in enumerate(vals):
                step = STEPS[(i + j) % len(STEPS)]
                prov4ml.log_metric(name, v, ctx, step=step)
                logged.setdefault((name, str(ctx)), []).append((step, v))
    prov4ml.log_metric("units", 1.5, C.TRAINING, step=0)
    prov4ml.flush()
    return run, logged


def _same(a, b) -> bool:
    return bits(a) == bits(b) if isinstance(a, float) and isinstance(b, float) else a == b


def test_the_summary_file_is_what_summarize_makes_of_the_same_snapshot(tmp_path):
    from prov4ml.provenance import summary

    run, logged = _weird_run(tmp_path)
    snap = run.snapshot()
    # the same snapshot with extreme figures the template must write exactly
    extra = []
    base = next(s for s in snap.series if s.name == "units")
    for k, (lo, hi) in enumerate([(5e-324, 1e308), (-0.0, 0.0), (-1e308, -5e-324), (0.1, 0.30000000000000004)]):
        extra.append(dataclasses.replace(base, name=f"extreme{k}\x00\"", min=lo, max=hi, last=hi, mean=lo,
                                         first_step=-(2**63), last_step=2**63 - 1, count=2**62, nan_count=2**40))
    extra.append(dataclasses.replace(base, name="with unit", unit="ms"))
    extra.append(dataclasses.replace(base, name="sampled", sampler="Subsample(3)"))
    snap = dataclasses.replace(snap, series=list(snap.series) + extra)
    out = tmp_path / "out"
    out.mkdir()
    path = summary.write_summary(out, snap)
    got = json.loads(path.read_bytes())
    want = json.loads(json.dumps(summary.summarize(snap)))
    assert got["series"] == want["series"]
    for entry in got["series"]:
        for key in ("min", "max", "last", "mean", "best"):
            if isinstance(entry[key], float):
                same = [e for e in want["series"] if e["name"] == entry["name"] and e["context"] == entry["context"]]
                assert bits(entry[key]) == bits(same[0][key]), (entry["name"], key)
    prov4ml.end_run()
    final = json.loads((run.run_dir / "summary_rank0.json").read_bytes())
    by_key = {(e["name"], e["context"]): e for e in final["series"]}
    for key, pts in logged.items():
        entry = by_key[key]
        assert entry["count"] == len(pts)
        assert entry["first_step"] == pts[0][0] and entry["last_step"] == pts[-1][0], key
        assert summary.decode(entry["last"]) == pts[-1][1] or math.isnan(pts[-1][1]), key


def _lit(v):
    """A value prov read: a Literal's text, else the value."""
    return getattr(v, "value", v)


def test_the_document_from_templates_is_the_general_paths_and_prov_reads_it(tmp_path, monkeypatch):
    from prov.model import ProvDocument

    from prov4ml.provenance import builder
    from prov4ml.provenance.json import document_json

    run, logged = _weird_run(tmp_path)
    live = run.snapshot()
    assert live.end_time is None
    live_texts = document_json(live)
    prov4ml.end_run()
    snap = run.snapshot()
    with_templates = document_json(snap)
    monkeypatch.setattr(builder, "_plain", lambda m: False)
    general = document_json(snap)
    assert json.loads(with_templates) == json.loads(general)
    assert json.loads(live_texts) == json.loads(document_json(live))
    ProvDocument.deserialize(content=live_texts, format="json")
    doc = ProvDocument.deserialize(content=with_templates, format="json")
    found = {}
    for rec in doc.get_records():
        attrs = {str(k): v for k, v in rec.attributes}
        if "provml:count" in attrs:
            found[(attrs["provml:name"], attrs["provml:context"])] = attrs
    for key, pts in logged.items():
        attrs = found[key]
        assert int(_lit(attrs["provml:count"])) == len(pts), key
        assert int(_lit(attrs["provml:last_step"])) == pts[-1][0], key
        assert int(_lit(attrs["provml:first_step"])) == pts[0][0], key
        values = [v for _, v in pts]
        finite = [v for v in values if v == v]
        last = float(_lit(attrs["provml:last"]))
        assert bits(last) == bits(values[-1]) or (math.isnan(last) and math.isnan(values[-1])), key
        if finite:
            assert bits(float(_lit(attrs["provml:max"]))) == bits(max(finite, key=lambda v: (v, bits(v)))) or \
                float(_lit(attrs["provml:max"])) == max(finite), key


def test_higher_is_better_is_the_word_rule_it_replaced():
    from prov4ml.provenance.summary import HIGHER_IS_BETTER, higher_is_better

    words = re.compile(r"[a-z0-9]+")

    def old(name):
        return any(w in HIGHER_IS_BETTER or w.startswith("acc") for w in words.findall(name.lower()))

    rng = random.Random(8)
    alphabet = "accuracyf1topmapscoreiou_-./ 0123456789AÀİıKK\u212aß"
    names = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(20000)]
    names += [w + s for w in HIGHER_IS_BETTER for s in ("", "_x", "2", "x", "_", "İ")] + \
        ["İacc", "accİ", "top10", "xtop1", "val/acc", "ACC", "Map", "mapx", "r2d2", "r2_d2", "f1-score", "K" + "map"]
    assert [n for n in names if higher_is_better(n) != old(n)] == []


# --- 2. live documents deferred while many series' files are made ---------------------------------------------

def test_a_live_document_is_rewritten_every_flush_interval_while_new_series_keep_coming(tmp_path):
    """SPEC: the PROV-JSON is rewritten at least every flush_interval seconds; metrics-pipeline: a new record is
    in the document within about 50 ms (a few tenths of a second under load). A loop that keeps describing new
    series (a value per sample, say) keeps the sink 'pressed', and the live document waits up to 30 s."""
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "defer", str(tmp_path / "prov"), capture=False,
                            flush_interval=1.0, prov_flush_interval=0.5)
    doc = run.run_dir / "prov_rank0.json"
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", 1.0, C.TRAINING, step=0)
    n, t0, param_at, seen = SERIES, time.monotonic(), None, None
    while time.monotonic() - t0 < 4.0:
        for _ in range(20):
            prov4ml.log_metric(f"m{n}", 1.0, C.TRAINING, step=0)
            n += 1
        if param_at is None and time.monotonic() - t0 > 0.3:
            prov4ml.log_param("lr", 0.125)
            param_at = time.monotonic()
        data = json.loads(doc.read_text())  # always readable JSON
        if param_at is not None and seen is None and any(v.get("prov:label") == "lr" for v in data["entity"].values()):
            seen = time.monotonic() - param_at
        time.sleep(0.05)
    prov4ml.flush()  # never waits: an up-to-date document
    got, data = entity_series(run.run_dir)
    assert any(v.get("prov:label") == "lr" for v in data["entity"].values())
    assert len(got) == n and all(count_of(a) == 1 for a in got.values())
    prov4ml.end_run()
    assert seen is not None and seen <= 3.0, f"the parameter reached the live document after {seen} s (of {n} series)"


def test_a_group_kill_while_new_series_keep_coming_then_recover(tmp_path):
    """Killed while the live document is deferred (new series keep coming): recover restores the parameter
    and the artifact, and every new series' point whose call returned, each in its own file."""
    end = """
n = 0
while True:
    prov4ml.log_metric("new%d" % n, n + 0.5, C.TRAINING, step=n)
    n += 1
    tell(n)
    if n == 400:
        flag(2)
    if n % 20 == 0:
        time.sleep(0.01)
"""
    child = _child(tmp_path, group=True, end=end)
    child.wait_flag(2, timeout=120)
    time.sleep(0.3)
    child.kill()
    told = child.logged
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    json.loads((run_dir / "prov_rank0.json").read_text())
    from prov4ml.run.recovery import recover

    recover(run_dir)
    logged = _child_logged(SERIES)
    logged.update({f"new{n}_training_rank0.csv": [(n, n + 0.5)] for n in range(told)})
    if (run_dir / "metrics" / f"new{told}_training_rank0.csv").exists():  # the call in flight
        logged[f"new{told}_training_rank0.csv"] = [(told, told + 0.5)]
    assert files_problems(run_dir, logged) == []
    by_series = {(f.rsplit("_training_rank0.csv", 1)[0], "training"): pts for f, pts in logged.items()}
    assert document_problems(run_dir, by_series, logged) == []
    assert _records_problems(run_dir) == []


# --- 3b. a write that fails at the end: the final answer is not as planned ----------------------------------

@pytest.mark.parametrize("many", [False, True])
def test_a_series_whose_file_cannot_be_written_is_not_claimed_and_the_run_is_not_finished(tmp_path, many):
    """A directory where a series' file goes: every write of its rows fails (EISDIR). The planned report
    claimed them; the final answer is then not as planned, so the document must claim no row of that series
    and the status must not say finished."""
    C = prov4ml.Context
    run = prov4ml.start_run("www.example.org", "blocked", str(tmp_path / "prov"), capture=False)
    run_dir = run.run_dir
    (run_dir / "metrics").mkdir(exist_ok=True)
    (run_dir / "metrics" / "blocked_training_rank0.csv").mkdir()
    logged = {}
    for k in range(SERIES if many else 3):
        prov4ml.log_metric(f"m{k}", k + 0.0, C.TRAINING, step=0)
        logged[f"m{k}_training_rank0.csv"] = [(0, k + 0.0)]
    for s in range(3):
        prov4ml.log_metric("blocked", s + 0.5, C.TRAINING, step=s)
    prov4ml.end_run()
    got, data = entity_series(run_dir)
    status = next(a for k, a in data["activity"].items() if k.endswith(".rank0")).get("provml:status")
    assert count_of(got[("blocked", "training")]) == 0, "the document claims rows that are not on disk"
    assert status != "finished", "finished over missing rows"
    (run_dir / "metrics" / "blocked_training_rank0.csv").rmdir()
    assert files_problems(run_dir, logged) == []
