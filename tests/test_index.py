"""Run summaries and the index of runs (prov4ml.provenance.summary, prov4ml.runs.index).

The oracles: a summary says what the document written with it says (field by
field, figure by figure); ``--where`` and ``--sort`` run as SQL give exactly
the runs, in exactly the order, that the same conditions give in Python over
the documents; listings taken while 8 processes write runs, or while the
index file is deleted over and over, are always a subset of what exists and
end equal to it.
"""

import csv
import hashlib
import io
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import prov4ml
from conftest import ROOT
from killing import Child, wait_for_sinks
from prov4ml import runs
from prov4ml.exceptions import ProvFileError
from prov4ml.provenance.summary import FORMAT, VERSION, read_summary, write_summary
from prov4ml.runs.fields import Condition, Fields, sort_runs
from prov4ml.runs.index import INDEX_FILE, Index, location_of
from prov4ml.runs.summary import read_entry

LS_FIELDS = ("experiment", "run_id", "status", "ranks", "start", "end", "params", "final_metrics", "final_folds",
             "needs_recovery", "error_type", "error_message", "command", "recorded_status")


def ls(*args, cwd, env=None):
    """``prov4ml ls ARGS --csv``: exit status, rows (without the duration, which grows while a run runs), stderr."""
    out = subprocess.run([sys.executable, "-m", "prov4ml", "ls", *args, "--csv"], cwd=cwd, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)
    rows = [{k: v for k, v in row.items() if k != "duration_s"} for row in csv.DictReader(io.StringIO(out.stdout))]
    return out.returncode, rows, out.stderr


def same_record(a, b):
    for name in LS_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x == y or (x != x and y != y), (name, x, y)
    assert runs.metric_figures(a).keys() == runs.metric_figures(b).keys()
    for key, fig in runs.metric_figures(a).items():
        other = runs.metric_figures(b)[key]
        for stat, value in fig.items():
            assert value == other[stat] or (value != value and other[stat] != other[stat]), (key, stat)


# ---------------------------------------------------------------------------------------------- summaries
def test_a_summary_says_what_its_document_says(save_dir, tmp_path):
    weights, data = tmp_path / "weights.bin", tmp_path / "data.csv"
    weights.write_bytes(os.urandom(1000))
    data.write_text("x,y\n1,2\n")
    with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False):
        prov4ml.log_params({"lr": 0.01, "layers": 3, "amp": True, "opt": "adam", "none": None, "big": 2 ** 70})
        prov4ml.log_param("lr", 0.02)  # logged again: the last value is the run's
        prov4ml.register_final_metric("val_loss", math.inf, prov4ml.FoldOperation.MIN)
        for i in range(20):
            prov4ml.log_metric("loss", 1 / (i + 1), prov4ml.Context.TRAINING, step=i)
            prov4ml.log_metric("val_loss", 2 / (i + 1), prov4ml.Context.VALIDATION, step=i)
            prov4ml.log_metric("val_acc", i / 20, prov4ml.Context.VALIDATION, step=i)
        prov4ml.log_metric("odd", float("nan"), prov4ml.Context.TRAINING, step=0)
        prov4ml.log_artifact(str(weights), prov4ml.Context.TRAINING)
        prov4ml.log_artifact(str(data), prov4ml.Context.TRAINING, is_input=True)
    with pytest.raises(RuntimeError):
        with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False):
            prov4ml.log_param("lr", 0.5)
            raise RuntimeError("diverged")
    for run_dir in (save_dir / "exp" / "run_0", save_dir / "exp" / "run_1"):
        summary = read_summary(run_dir / "summary_rank0.json")
        assert summary["format"] == FORMAT and summary["version"] == VERSION
        entry = read_entry(run_dir)
        assert entry.from_summaries
        same_record(entry.record, runs.read_run(run_dir, details=False))
    summary = read_summary(save_dir / "exp" / "run_0" / "summary_rank0.json")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert [f["sha256"] for f in summary["files"]["used"]] == [digest(data)]
    assert digest(weights) in [f["sha256"] for f in summary["files"]["generated"]]
    assert {s["name"]: s["best"] for s in summary["series"]}["val_acc"] == 19 / 20  # accuracy: the largest
    assert summary["owner"]["pid"] == os.getpid()
    assert read_summary(save_dir / "exp" / "run_1" / "summary_rank0.json")["error_type"] == "RuntimeError"


def test_a_summary_of_a_later_version_is_refused_by_name_and_the_document_read_instead(save_dir):
    with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False):
        prov4ml.log_param("lr", 0.1)
    run_dir = save_dir / "exp" / "run_0"
    path = run_dir / "summary_rank0.json"
    later = {**json.loads(path.read_text()), "version": VERSION + 1, "params": {"lr": "wrong"}}
    path.write_text(json.dumps(later))
    with pytest.raises(ProvFileError, match="upgrade prov4ml"):
        read_summary(path)
    entry = read_entry(run_dir)
    assert not entry.from_summaries and entry.record.params == {"lr": 0.1}
    os.utime(run_dir / "prov_rank0.json")  # a document newer than its summary (written by another tool)
    path.write_text(json.dumps({**later, "version": VERSION}))
    os.utime(path, ns=(0, 0))
    assert read_entry(run_dir).record.params == {"lr": 0.1}


# ---------------------------------------------------------------------------------------------- SQL == Python
def _snapshot(i, rng, rank=0, run_id=None):
    from prov4ml.context import Context
    from prov4ml.records.model import FinalValue, ParamRecord, RunSnapshot, SeriesSummary

    start = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(10_000))
    end = None if i % 7 == 3 else start + timedelta(seconds=rng.randrange(1, 5000))
    choices = [0.1, 0.01, 1, 3, -2, float("nan"), float("inf"), True, False, "adam", "0.01", None,
               datetime(2026, 5, 1, tzinfo=timezone.utc), 2 ** 70]
    params = [ParamRecord(name, rng.choice(choices)) for name in ("lr", "opt", "flag", "when") if rng.random() < 0.8]
    series = []
    for name, ctx in (("loss", "training"), ("val_loss", "validation"), ("val_acc", "validation"), ("loss", "testing")):
        if rng.random() < 0.2:
            continue
        values = [rng.choice([rng.random(), rng.random() * 10, float("nan"), 0.5]) for _ in range(rng.randrange(1, 5))]
        finite = [v for v in values if v == v]
        series.append(SeriesSummary(name, Context(ctx), "metric", None, None, None, len(values),
                                    len(values) - len(finite), min(finite) if finite else None,
                                    max(finite) if finite else None, values[-1],
                                    sum(finite) / len(finite) if finite else None, 0, len(values) - 1, start, end))
    status = "running" if end is None else rng.choice(["finished", "finished", "failed", "killed"])
    return RunSnapshot(
        user_namespace="http://example.org/", user="u", experiment_name=f"e{i % 3}",
        run_id=i if run_id is None else run_id, rank=rank, run_dir="", start_time=start, end_time=end,
        status=status, error=("ValueError", "bad") if status == "failed" else None, library_version="t",
        params=params, series=series, environment={"host": "h"},
        final_metrics=[FinalValue("val_loss", rng.random(), "min")] if rng.random() < 0.5 else [],
    )


def _written(tmp_path, n, seed):
    """``tmp_path/prov`` holding ``n`` runs of random snapshots (``seed``), written by the library's writers."""
    rng = random.Random(seed)
    save_dir = tmp_path / "prov"
    for i in range(n):
        _write(save_dir, _snapshot(i, rng))
    return save_dir, rng


def _write(save_dir, snap):
    from prov4ml._fs import atomic_write_text
    from prov4ml.provenance import build_document, to_json

    run_dir = save_dir / snap.experiment_name / f"run_{snap.run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    snap.run_dir = str(run_dir)
    atomic_write_text(run_dir / f"prov_rank{snap.rank}.json", to_json(build_document(snap)))
    write_summary(run_dir, snap)


CONDITIONS = ["lr<0.05", "lr>=1", "lr==0.01", "lr!=0.01", "lr==adam", "lr!=adam", "lr==true", "lr!=False",
              "lr==nan", "lr!=nan", "lr<inf", "lr==inf", "opt>=2026-03-01", "opt<2026-03-01T00:00:00+00:00",
              "opt==None", "flag!=None", "when==0.01", "when=='0.01'", "when>1e20",
              "val_loss<1", "val_loss.best<=0.5", "val_loss.max>5", "val_loss.count==3", "loss/testing.min<0.3",
              "loss.last!=nan", "loss.mean>0.4", "val_acc.last_step>=2", "loss.last==0.5",
              "run_id>5", "run_id==3", "status==running", "status!=finished", "experiment==e1", "run==e2/run_5",
              "start>=2026-01-04", "end<2026-01-05T12:00:00Z", "duration>1000", "ranks==2", "ranks>1"]
SORTS = ["lr", "opt", "flag", "when", "val_loss", "val_loss.best", "loss/testing.count", "val_acc.mean", "run_id",
         "status", "start", "end", "duration", "ranks", "experiment", "run"]


def test_where_and_sort_run_as_sql_agree_with_python_over_the_documents(tmp_path):
    save_dir, rng = _written(tmp_path, 60, 7)
    for rank in (0, 1):  # a run of two ranks
        _write(save_dir, _snapshot(1, rng, rank=rank, run_id=100))
    records = [runs.read_run(d, details=False) for d in runs.find_run_dirs(save_dir)]
    figures = [runs.metric_figures(r) for r in records]
    python_fields = Fields.of_runs(records, figures)
    rows = list(zip(records, figures))
    index = Index(save_dir)
    index.refresh()
    sql_fields = index.fields()
    assert set(sql_fields.params) == set(python_fields.params) and sql_fields.metrics == python_fields.metrics
    assert [r.label for r in index.runs()] == [r.label for r in records]
    checked = 0
    for text in CONDITIONS:
        python = [r.label for r, f in rows if Condition(text).bind(python_fields)(r, f)]
        got, total = index.select([Condition(text).bind(sql_fields)])
        assert [r.label for r, _f in got] == python, text
        assert total == len(python)
        checked += bool(python)
    assert checked > len(CONDITIONS) * 2 // 3  # most conditions match some runs: the comparison means something
    for field in SORTS:
        for desc in (False, True):
            python = [r.label for r, _f in sort_runs(rows, python_fields.getter(field, "--sort"), desc)]
            got, _total = index.select(sort=sql_fields.resolve(field, "--sort"), desc=desc)
            assert [r.label for r, _f in got] == python, (field, desc)
    both = [Condition("lr<0.5").bind(sql_fields), Condition("val_loss.best<3").bind(sql_fields)]
    got, total = index.select(both, sort=sql_fields.resolve("val_loss", "--sort"), desc=True, limit=3)
    python = sort_runs([(r, f) for r, f in rows if all(Condition(c).bind(python_fields)(r, f)
                                                       for c in ("lr<0.5", "val_loss.best<3"))],
                       python_fields.getter("val_loss", "--sort"), True)
    assert [r.label for r, _f in got] == [r.label for r, _f in python][:3] and total == len(python)
    newest, _total = index.select(limit=5, last=True)
    assert [r.label for r, _f in newest] == [r.label for r in records][-5:]


# ---------------------------------------------------------------------------------------------- freshness
def test_a_run_started_and_one_ended_show_at_the_next_refresh(save_dir, monkeypatch):
    from prov4ml.runs import index as index_module

    monkeypatch.setattr(index_module, "RACY_S", 0.2)  # the window in which a change may hide in one clock tick
    with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False):
        prov4ml.log_param("lr", 0.1)
    index = Index(save_dir)
    assert index.refresh() == (1, 0)
    assert index.refresh() == (1, 0)  # changed within the window: read again
    time.sleep(0.3)
    assert index.refresh() == (1, 0)
    assert index.refresh() == (0, 0)  # nothing changed: nothing read
    run = prov4ml.start_run("www.example.org", "exp", str(save_dir), capture=False)
    index.refresh()
    assert [(r.label, r.status) for r in index.runs()] == [("exp/run_0", "finished"), ("exp/run_1", "running")]
    prov4ml.end_run()
    index.refresh()
    assert [(r.label, r.status) for r in index.runs()] == [("exp/run_0", "finished"), ("exp/run_1", "finished")]
    import shutil

    shutil.rmtree(run.run_dir)
    assert index.refresh() == (0, 1)
    assert [r.label for r in index.runs()] == ["exp/run_0"]


def test_a_full_refresh_sees_an_ended_run_changed_in_place(save_dir):
    """An ended run's summary no longer changes, so a plain refresh does not stat it; ``full`` (prov4ml index) does."""
    with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False):
        prov4ml.log_param("lr", 0.1)
    run_dir = save_dir / "exp" / "run_0"
    index = Index(save_dir)
    index.refresh()
    time.sleep(2.1)  # past the racy window: the folders' stamps are settled
    index.refresh()
    snap = read_summary(run_dir / "summary_rank0.json")
    snap["params"]["lr"] = 0.2
    (run_dir / "summary_rank0.json.new").write_text(json.dumps(snap))
    os.replace(run_dir / "summary_rank0.json.new", run_dir / "summary_rank0.json")
    index.refresh()
    assert index.runs()[0].params == {"lr": 0.1}
    assert index.refresh(full=True) == (1, 0)
    assert index.runs()[0].params == {"lr": 0.2}


def test_a_killed_run_lists_as_killed_until_recover_completes_it(tmp_path):
    child = Child(tmp_path, """
prov4ml.start_run("www.example.org", "crash", {save_dir!r}, capture=False)
prov4ml.log_param("lr", 0.1)
for i in range(100):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
prov4ml.flush()
flag(1)
time.sleep(600)
""")
    child.wait_flag(1)
    code, rows, err = ls(cwd=tmp_path)
    assert code == 0 and [(r["run"], r["status"]) for r in rows] == [("crash/run_0", "running")]
    child.kill(signal.SIGKILL)
    run_dir = child.run_dir()
    wait_for_sinks(run_dir)
    assert read_summary(run_dir / "summary_rank0.json")["status"] == "running"  # the summary says what it knew
    code, rows, err = ls(cwd=tmp_path)
    assert [(r["run"], r["status"]) for r in rows] == [("crash/run_0", "killed")]
    table = subprocess.run([sys.executable, "-m", "prov4ml", "ls"], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert "killed (needs prov4ml recover)" in table
    prov4ml.recover(run_dir)
    assert read_summary(run_dir / "summary_rank0.json")["status"] == "killed"
    code, rows, err = ls(cwd=tmp_path)
    assert [(r["run"], r["status"], r["loss/training.last"]) for r in rows] == [("crash/run_0", "killed", "49.5")]
    assert "needs prov4ml recover" not in subprocess.run(
        [sys.executable, "-m", "prov4ml", "ls"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout


# ---------------------------------------------------------------------------------------------- concurrency
WRITER = """
import sys, prov4ml
save_dir, writer = sys.argv[1], int(sys.argv[2])
for i in range(4):
    with prov4ml.run("www.example.org", f"exp{writer % 2}", save_dir, capture=False):
        prov4ml.log_params({"writer": writer, "i": i})
        for step in range(50):
            prov4ml.log_metric("loss", writer + step / 100, prov4ml.Context.TRAINING, step=step)
"""


def test_eight_processes_writing_runs_while_ls_loops_never_give_an_error_or_a_half_read(tmp_path):
    save_dir = tmp_path / "prov"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(save_dir), str(w)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(8)]
    listings = 0
    while any(p.poll() is None for p in writers) or listings < 3:
        if not save_dir.exists():
            time.sleep(0.05)
            continue
        code, rows, err = ls(str(save_dir), cwd=tmp_path)
        if code == 1 and "holds no runs" in err:
            continue  # the first run has not written its document yet
        assert code == 0 and err == "", err
        for r in rows:  # every listed run is whole: a status, its writer's parameters, its writer's values
            assert r["status"] in ("running", "finished"), r
            if r.get("writer"):
                assert r["experiment"] == f"exp{int(r['writer']) % 2}"
                if r.get("loss/training.last"):
                    assert int(float(r["loss/training.last"])) == int(r["writer"])
        listings += 1
    assert [p.wait() for p in writers] == [0] * 8, [p.stderr.read()[-2000:] for p in writers]
    code, rows, err = ls(str(save_dir), cwd=tmp_path)
    assert code == 0 and len(rows) == 32 and {r["status"] for r in rows} == {"finished"}
    assert sorted((int(r["writer"]), int(r["i"])) for r in rows) == [(w, i) for w in range(8) for i in range(4)]
    assert all(r["loss/training.last"] == repr(int(r["writer"]) + 0.49) for r in rows)
    assert listings >= 3


def test_the_index_deleted_over_and_over_while_listing_changes_no_answer(tmp_path):
    save_dir, _rng = _written(tmp_path, 40, 3)
    code, expected, err = ls(str(save_dir), cwd=tmp_path)
    assert code == 0 and len(expected) == 40
    stop = threading.Event()
    deleted = []

    def delete():
        while not stop.is_set():
            for suffix in ("", "-journal"):
                try:
                    os.unlink(save_dir / (INDEX_FILE + suffix))
                    deleted.append(suffix)
                except FileNotFoundError:
                    pass
            time.sleep(0.003)

    thread = threading.Thread(target=delete)
    thread.start()
    try:
        for _ in range(15):
            code, rows, err = ls(str(save_dir), cwd=tmp_path)
            assert code == 0 and err == "" and rows == expected, err
    finally:
        stop.set()
        thread.join()
    assert len(deleted) >= 10


def test_a_corrupt_index_or_one_of_another_schema_is_rebuilt(tmp_path):
    save_dir, _rng = _written(tmp_path, 10, 5)
    code, expected, err = ls(str(save_dir), cwd=tmp_path)
    path = save_dir / INDEX_FILE
    path.write_bytes(os.urandom(8192))
    assert ls(str(save_dir), cwd=tmp_path) == (0, expected, "")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
        db.execute("DELETE FROM runs")
    assert ls(str(save_dir), cwd=tmp_path) == (0, expected, "")


# ---------------------------------------------------------------------------------------------- where it lives
def test_the_index_lives_beside_the_runs_on_a_local_disk_and_in_the_cache_on_a_shared_one(tmp_path, monkeypatch):
    from prov4ml.runs import index as index_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert location_of(tmp_path) == str(tmp_path.resolve() / INDEX_FILE)
    assert index_module._file_system(Path("/proc/self")) == "proc"  # the real lookup reads the mount table
    monkeypatch.setattr(index_module, "_file_system", lambda path: "nfs4")  # no NFS mount can exist here
    shared = Path(location_of(tmp_path))
    assert shared.parent == tmp_path / "cache" / "prov4ml" / "index" and shared.suffix == ".sqlite"
    assert location_of(tmp_path) == str(shared) and location_of(tmp_path / "other") != str(shared)


def test_prov4ml_index_rebuild_says_what_it_did(tmp_path):
    save_dir, _rng = _written(tmp_path, 12, 9)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "prov4ml", "index", "--rebuild", str(save_dir)], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0 and out.stdout.startswith("12 runs indexed (rebuilt)")
    assert str(save_dir / INDEX_FILE) in out.stdout
    out = subprocess.run([sys.executable, "-m", "prov4ml", "index", str(save_dir)], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0 and out.stdout.startswith("12 runs indexed (") and "read again, 0 dropped)" in out.stdout


def test_a_rebuild_while_ls_loops_never_shows_a_part_of_the_runs(tmp_path):
    save_dir, _rng = _written(tmp_path, 300, 11)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    stop = threading.Event()
    rebuilds = []

    def rebuild():
        while not stop.is_set():
            out = subprocess.run([sys.executable, "-m", "prov4ml", "index", "--rebuild", str(save_dir)], env=env,
                                 capture_output=True, text=True)
            rebuilds.append(out.returncode)

    thread = threading.Thread(target=rebuild)
    thread.start()
    try:
        counts = []
        for _ in range(12):
            code, rows, err = ls(str(save_dir), cwd=tmp_path)
            assert code == 0 and err == "", err
            counts.append(len(rows))
    finally:
        stop.set()
        thread.join()
    assert counts == [300] * 12 and rebuilds and set(rebuilds) == {0}


def test_a_damaged_row_or_an_index_of_an_older_layout_is_made_again(tmp_path):
    save_dir, _rng = _written(tmp_path, 20, 13)
    code, expected, err = ls(str(save_dir), cwd=tmp_path)
    path = save_dir / INDEX_FILE
    for damage in ("UPDATE runs SET data = '{' WHERE rowid = (SELECT MIN(rowid) FROM runs)",
                   "UPDATE runs SET needs = '[' WHERE rowid = (SELECT MIN(rowid) FROM runs)",
                   "UPDATE runs SET data = replace(data, 'e0', 'e9') WHERE rowid = (SELECT MAX(rowid) FROM runs)"):
        with sqlite3.connect(path) as db:
            db.execute(damage)
        assert ls(str(save_dir), cwd=tmp_path) == (0, expected, ""), damage


def test_integers_beyond_64_bits_compare_without_an_error(tmp_path, save_dir):
    with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False):
        prov4ml.log_params({"big": 2 ** 70, "exact": 2 ** 53 + 1})
    for where, n in (("big==1180591620717411303424", 1), ("run_id==99999999999999999999", 0),
                     ("exact==9007199254740993", 1), ("exact==9007199254740992", 0)):
        code, rows, err = ls(str(save_dir), "--where", where, cwd=tmp_path)
        assert code == 0 and err == "" and len(rows) == n, (where, rows, err)
