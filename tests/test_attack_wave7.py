"""Attacks on the records saved beside the journal holding only the series series.jsonl cannot describe
(a sampler, a sub-context), on end_run renaming its journal away, and on the UI's start-up cut (wave 7).

Oracles are exact: each series of the document (live, final, recovered) against what was logged (its
context, its sub-context's parent, its sampler, its source) and its figures against its file's (wave 5's
helpers); every record kept; the UI's first answer against the file row for row.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT
from killing import Child, wait_for_sinks
from test_attack_wave5 import _typed, figure_problems, status_of
from test_attack_wave6 import crafted, cut_problems, file_rows, write_csv

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prov4ml", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=timeout)


# --- the oracle: what each series and context of the document must say -------------------------------------

#: (name, context) -> (sampler repr or None, source, kept steps of 0..STEPS-1)
STEPS = 10
EXPECTED = {
    ("plain", "training"): (None, "metric"),
    ("plain", "sub1"): (None, "metric"),
    ("plain", "sub2"): (None, "metric"),
    ("plain", "sub3"): (None, "metric"),
    ("plain", "my_stage"): (None, "metric"),
    ("samp", "training"): ("Subsample(3)", "metric"),
    ("samp", "sub2"): ("Subsample(3)", "metric"),
    ("samp", "my_stage"): ("Subsample(3)", "metric"),
    ("tm", "sub3"): (None, "torchmetrics"),
    ("tm", "my_stage"): (None, "torchmetrics"),
}
#: context -> (parent, source_of_data)
CONTEXTS = {"sub1": ("training", "s3://bucket/train"), "sub2": ("sub1", None), "sub3": ("sub2", None),
            "my_stage": (None, None), "training": (None, None)}
MANY = 1100  # series m<k> in training: more than 1,024 (the sink's many-series mode)

BODY = """
import pathlib, prov4ml, signal, time, os
HOOK
save = pathlib.Path({save_dir!r})
C = prov4ml.Context
def one_run(r):
    prov4ml.start_run("www.example.org", "crash", str(save), capture=False,
                      metric_samplers={{"samp": prov4ml.Subsample(3)}}, save_after_n_logs=100000)
    s1 = prov4ml.create_context("sub1", is_subcontext_of=C.TRAINING, source_of_data="s3://bucket/train")
    s2 = prov4ml.create_context("sub2", is_subcontext_of=s1)
    s3 = prov4ml.create_context("sub3", is_subcontext_of="sub2")
    my = C("my_stage")
    if r == 0:
        flag(1)
    for k in range(MANY_):
        for s in range(2):
            prov4ml.log_metric("m%d" % k, k + s * 0.25, C.TRAINING, step=s)
    BEFORE_
    for i in range(STEPS_):
        for ctx in (C.TRAINING, s1, s2, s3, my):
            prov4ml.log_metric("plain", i * 0.5 + r, ctx, step=i)
        for ctx in (C.TRAINING, s2, my):
            prov4ml.log_metric("samp", i * 0.25 + r, ctx, step=i)
        for ctx in (s3, my):
            prov4ml.log_metric("tm", i * 0.125 + r, ctx, step=i, source="torchmetrics")
    prov4ml.log_param("lr", 0.125)
    art = save.parent / "notes.txt"
    art.write_text("hello")
    prov4ml.log_artifact("notes", str(art), C.TRAINING)
    prov4ml.log_dataset("train_set", list(range(10)), s2)
    AFTER_
""".replace("MANY_", str(MANY)).replace("STEPS_", str(STEPS))


def entities(run_dir: Path):
    data = json.loads((run_dir / "prov_rank0.json").read_text())
    return data


def series_of(data: dict) -> dict:
    out = {}
    for attrs in data.get("entity", {}).values():
        if "provml:count" in attrs and "provml:name" in attrs:
            out[(attrs["provml:name"], attrs["provml:context"])] = attrs
    return out


def document_problems(run_dir: Path, r: int = 0, records: bool = True, many: int = MANY, sod: bool = False) -> list:
    """What the run's document says wrong of its series (context, sampler, source, rows of its file, figures),
    of its contexts (parent, source of data) and of its records."""
    data = entities(run_dir)
    got = series_of(data)
    problems = []
    want_keys = set(EXPECTED) | {("m%d" % k, "training") for k in range(many)}
    if set(got) != want_keys:
        problems.append(("series", sorted(want_keys - set(got))[:5], sorted(set(got) - want_keys)[:5]))
    for key, (sampler, source) in EXPECTED.items():
        attrs = got.get(key)
        if attrs is None:
            continue
        if attrs.get("provml:sampler") != sampler:
            problems.append((key, "sampler", attrs.get("provml:sampler"), sampler))
        if attrs.get("provml:source") != source:
            problems.append((key, "source", attrs.get("provml:source"), source))
        loc = _typed(attrs["prov:location"]).split(":", 1)[1]
        rows = [(s, v) for s, v, _ in file_rows(run_dir / loc)]
        scale = {"plain": 0.5, "samp": 0.25, "tm": 0.125}[key[0]]
        want = [(i, i * scale + r) for i in range(STEPS) if sampler is None or i % 3 == 0]
        if rows != want:
            problems.append((key, "rows", rows[:4], want[:4]))
    acts = {a.get("provml:context"): a for k, a in data.get("activity", {}).items() if ".context." in k}
    for ctx, (parent, want_sod) in CONTEXTS.items():
        a = acts.get(ctx)
        if a is None:
            problems.append(("context missing", ctx))
            continue
        if a.get("provml:parent_context") != parent:
            problems.append(("parent_context", ctx, a.get("provml:parent_context"), parent))
        if sod and a.get("provml:source_of_data") != want_sod:
            problems.append(("source_of_data", ctx, a.get("provml:source_of_data"), want_sod))
    problems += figure_problems(run_dir)
    if records:
        text = json.dumps(data)
        problems += [what for what, ok in (("param lr", '"lr"' in text and "0.125" in text),
                                           ("artifact", "notes" in text), ("dataset", "train_set" in text)) if not ok]
    return problems[:20]


def recovered_problems(run_dir: Path, r: int = 0, returned: bool = False, sod: bool = False) -> list:
    import prov4ml

    problems = []
    wait_for_sinks(run_dir)
    out = cli("recover", run_dir)
    if out.returncode and "nothing to recover" not in (out.stdout + out.stderr).lower():
        return [("recover", out.returncode, (out.stdout + out.stderr)[-800:])]
    status = status_of(run_dir)
    if returned and status != "finished":
        problems.append(("end_run had returned, status", status))
    problems += document_problems(run_dir, r, sod=sod)
    if prov4ml.needs_recovery(run_dir):
        problems.append(("still needs recovery", prov4ml.needs_recovery(run_dir)))
    listed = cli("ls", run_dir.parent.parent, "--json")
    entries = json.loads(listed.stdout or "[]")
    if not any(e["run_dir"].rstrip("/").endswith(run_dir.name) and e["status"] == status for e in entries):
        problems.append(("ls", listed.returncode, listed.stdout[-300:], listed.stderr[-300:]))
    return problems


def wait_live(run_dir: Path, r: int, timeout: float = 15.0, sod: bool = False) -> list:
    """The live document, once the sink has caught up (its figures equal the files'): what it says wrong."""
    deadline = time.monotonic() + timeout
    found = ["no live document"]
    while time.monotonic() < deadline:
        try:
            found = document_problems(run_dir, r, records=False, sod=sod)
        except (OSError, ValueError, KeyError) as exc:
            found = [("unreadable", repr(exc))]
        if not found:
            return []
        time.sleep(0.3)
    return found


# --- A. samplers and sub-contexts: the live document, and a group kill then recover --------------------------

LIVE = BODY.replace("HOOK", "").replace("BEFORE_", "pass").replace("AFTER_", """prov4ml.flush()
    if r == 0:
        prov4ml.end_run()
    else:
        flag(2)
        time.sleep(600)
""") + """
one_run(0)
one_run(1)
"""


@pytest.mark.parametrize("sod", [False, True], ids=["series", "source_of_data"])
def test_live_and_recovered_documents_of_sampled_series_and_sub_sub_contexts(tmp_path, sod):
    """Two runs in one process, each: 1,100 plain series, then `plain` in training, sub1 (of training, with a
    source of data), sub2 (of sub1), sub3 (of sub2) and Context("my_stage"); `samp` (Subsample(3)) in training,
    sub2 and my_stage; `tm` (source "torchmetrics") in sub3 and my_stage; a parameter, an artifact, a dataset.
    Run 0 ends (its final document is checked); run 1 flush()es, its live document is checked, then its process
    group is SIGKILLed and `prov4ml recover` must give every series with its context, parent, sampler, source,
    rows and figures, every context with its parent, every record. With `sod`, each context's
    `provml:source_of_data` too (create_context(..., source_of_data=) in docs/api.md: it is recorded on its
    activity), in the live and the recovered document as in the final one."""
    child = Child(tmp_path, LIVE, group=True)
    child.wait_flag(2, timeout=120)
    run0, run1 = child.run_dir(run_id=0), child.run_dir(run_id=1)
    final0 = document_problems(run0, 0, sod=sod)
    live1 = wait_live(run1, 1)
    if sod:
        live1 += [p for p in document_problems(run1, 1, records=False, sod=True) if p[0] == "source_of_data"]
    child.kill()
    rec1 = recovered_problems(run1, 1, sod=sod)
    assert {"final": final0, "live": live1, "recovered": rec1} == {"final": [], "live": [], "recovered": []}


# --- A. a kill before any refresh saw the sampled and sub-context series --------------------------------------

RACE = BODY.replace("HOOK", "").replace("BEFORE_", "prov4ml.flush()").replace("AFTER_", """AFTER2_
one_run(0)
""")


@pytest.mark.parametrize("how", ["self", 0.3])
def test_a_kill_right_after_the_sampled_and_sub_context_series_are_logged(tmp_path, how):
    """The run of the test above (one run): 1,100 series, flush() (the records saved), then the sub-context and
    sampled series and the records are logged and the process is SIGKILLed at once by itself ("self": fails at
    every run), or its
    group `how` s after they were logged: recover gives each series its sampler, context, parent, source, rows
    and figures (docs: after a SIGKILL at any moment)."""
    after = "os.kill(os.getpid(), signal.SIGKILL)" if how == "self" else "flag(2)\n    time.sleep(600)"
    child = Child(tmp_path, RACE.replace("AFTER2_", after), group=how != "self")
    if how == "self":
        child.wait_flag(1, timeout=120)
        assert child.wait(120) == -signal.SIGKILL
    else:
        child.wait_flag(2, timeout=120)
        time.sleep(how)
        child.kill()
    found = recovered_problems(child.run_dir(), 0)
    assert found == [], found


# --- C. kills inside end_run ----------------------------------------------------------------------------------

#: SIGKILL of the process itself at the n-th os.replace / os.rename made inside end_run (the final document,
#: the summary, the metric files finished, the journal renamed away)
IN_END = """
import os
_replace, _rename = os.replace, os.rename
ending = []
def _count(kind):
    if ending:
        ending[0] += 1
        if ending[0] == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
def _hr(src, dst, *a, **k):
    out = _replace(src, dst, *a, **k)
    _count("replace")
    return out
def _hn(src, dst, *a, **k):
    out = _rename(src, dst, *a, **k)
    _count("rename")
    return out
os.replace, os.rename = _hr, _hn
"""

# the end of the child's run: end_run, a flag on each side of it, then a SIGKILL of itself
END_THEN_DIE = """flag(2)
    ending.append(0)
    prov4ml.end_run()
    flag(3)
    os.kill(os.getpid(), signal.SIGKILL)
one_run(0)
"""
END = BODY.replace("BEFORE_", "pass").replace("AFTER_", END_THEN_DIE)


#: the refresher has not saved the records since the 1,100 series were flushed (it saves at most every
#: prov_flush_interval, 2 s, and end_run does not save them): its saves after that point are held back
BLOCK = """
import prov4ml.records.state as _st
_save_snapshot, blocked = _st.save_snapshot, []
def _held(directory, snap):
    if not blocked:
        _save_snapshot(directory, snap)
_st.save_snapshot = _held
"""
END_BLOCKED = BODY.replace("BEFORE_", "prov4ml.flush()\n    blocked.append(1)").replace("AFTER_", END_THEN_DIE)


@pytest.mark.parametrize("at", [1, 2, 3, 4])
def test_a_kill_at_the_nth_rename_inside_end_run(tmp_path, at):
    """The run of the tests above; SIGKILL of the process at the `at`-th os.replace/os.rename end_run makes
    (1: the final document in place, 2: the summary file, 3: the journal renamed away; 4: after end_run
    returned), the records last saved before the sampled and sub-context series were logged (BLOCK; without it
    the same happens whenever end_run follows them within the refresher's interval, as seen here at 1 and 2 about
    one run in three): recover, ls and the document as in A. At 1 and 2 the final document is right, but the
    journal is still in recover's sight and recover rewrites the document from it."""
    body = END_BLOCKED.replace("HOOK", IN_END.replace("KILL_AT", str(at)) + BLOCK)
    child = Child(tmp_path, body)
    child.wait_flag(2, timeout=120)
    assert child.wait(120) == -signal.SIGKILL
    returned = bool(child._read(3))
    found = recovered_problems(child.run_dir(), 0, returned=returned)
    assert found == [], found


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_a_group_kill_inside_end_run(tmp_path, delay):
    """The same run, its process group SIGKILLed `delay` s after end_run began, natural timing (no hook): fails
    in some runs (seen at 0.0, 0.05 and 0.3 s) as test_a_kill_at_the_nth_rename_inside_end_run[1] does in every
    one: samplers and sub3's parent lost, or (about one in ten) nothing recovered at all."""
    child = Child(tmp_path, END.replace("HOOK", "ending = []").replace("os.kill(os.getpid(), signal.SIGKILL)\none_run",
                                                                         "time.sleep(600)\none_run"), group=True)
    child.wait_flag(2, timeout=120)
    time.sleep(delay)
    returned = bool(child._read(3))
    child.kill()
    found = recovered_problems(child.run_dir(), 0, returned=returned)
    assert found == [], found


# --- B. the UI: a Parquet run among the newest, files replaced or deleted as the server starts, NumPy path ----

UI_RUNS = """
import prov4ml, math
vals = [math.sin(i / 50) * (1 + (i % 3 - 1) * 2 ** -52) for i in range(3000)]
for k, fmt in enumerate(["csv", "csv", "parquet", "csv", "csv"]):
    prov4ml.start_run("www.example.org", "ui", {save!r}, capture=False, metrics_file_type=fmt)
    for i, v in enumerate(vals):
        prov4ml.log_metric("a", v, prov4ml.Context.TRAINING, step=2 ** 60 + 2 * i + 1)
        prov4ml.log_metric("b", -v, prov4ml.Context.TRAINING, step=i)
    prov4ml.end_run()
"""

SERVER = """
import sys, time
from prov4ml.ui import serve
s = serve(sys.argv[1], port=0)
print(s.url, flush=True)
time.sleep(600)
"""


def _get_json(url: str):
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def _parquet_rows(path: Path):
    import pyarrow.parquet as pq

    t = pq.read_table(path).to_pydict()
    return list(zip(t["step"], t["value"], t["time"]))


@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure_python"])
def test_ui_newest_runs_with_a_parquet_run_and_files_replaced_or_deleted_as_it_starts(tmp_path, pure):
    """Five runs (series a: steps 2**60 + 1, + 3, ...; b: values a last bit apart), run_2 Parquet, the others
    CSV; run_1's and run_3's `a` made 40,000 crafted rows (> 1 MiB). A server (a subprocess; PROV4ML_PURE_PYTHON=1
    or not) starts; at once run_3's `a` is replaced by another long file and run_4's `b` deleted. Every page
    answers 200: the cut of each long CSV is rows of the file as it now is, with its min and max; the Parquet
    run's points are its file's, steps beyond 2**53 exact; the server still runs."""
    from urllib.parse import quote

    script = tmp_path / "runs.py"
    script.write_text(textwrap.dedent(UI_RUNS.format(save=str(tmp_path / "prov"))))
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ENV, check=True, capture_output=True, timeout=120)
    runs = [tmp_path / "prov" / "ui" / f"run_{k}" for k in range(5)]
    big = [(2 ** 60 + 2 * i + 1, v, t) for i, (_, v, t) in enumerate(crafted(40_000, 11))]
    write_csv(runs[1] / "metrics" / "a_training_rank0.csv", big)
    write_csv(runs[3] / "metrics" / "a_training_rank0.csv", crafted(40_000, 12))
    env = {**ENV, **({"PROV4ML_PURE_PYTHON": "1"} if pure else {})}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "prov")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http"), server.stderr.read()[-2000:]
        write_csv(runs[3] / "metrics" / "a_training_rank0.csv", crafted(45_000, 13))  # replaced during the warm-up
        (runs[4] / "metrics" / "b_training_rank0.csv").unlink()
        problems = []
        for k, run in enumerate(runs):
            status, answer = _get_json(f"{url}/api/points/{quote('ui/' + run.name)}")
            series = {s["name"]: s for s in answer["series"]}
            for name in ("a", "b"):
                if k == 4 and name == "b":
                    continue
                if name not in series:
                    problems.append((k, name, "missing"))
                    continue
                if k == 2:
                    files = list((run / "metrics").glob(f"{name}_training_rank0.parquet"))
                    rows = _parquet_rows(files[0])
                    got = list(zip(series[name]["step"], series[name]["value"], series[name]["time"]))
                    if got != rows or series[name].get("total") not in (None, len(rows)):
                        problems.append((k, name, "parquet", got[:2], rows[:2], len(got), len(rows)))
                    continue
                path = run / "metrics" / f"{name}_training_rank0.csv"
                rows = file_rows(path)
                if path.stat().st_size > (1 << 20):
                    problems += [(k, name, p) for p in cut_problems(series[name], rows)]
                else:
                    got = list(zip(series[name]["step"], series[name]["value"], series[name]["time"]))
                    if got != rows:
                        problems.append((k, name, "short", got[:2], rows[:2], len(got), len(rows)))
        assert server.poll() is None, server.stderr.read()[-2000:]
        assert problems == [], problems
    finally:
        server.kill()
        server.wait(30)


def test_ui_over_thousands_of_tiny_runs_with_a_long_one_newest(tmp_path):
    """2,000 tiny runs (a copied finished run, 1 point), the newest one with a long CSV series: the server starts,
    /api/runs answers within 20 s, the long series' first answer is exact."""
    from urllib.parse import quote

    script = tmp_path / "runs.py"
    script.write_text("import prov4ml\nprov4ml.start_run('www.example.org', 'tiny', %r, capture=False)\n"
                      "prov4ml.log_metric('a', 1.5, prov4ml.Context.TRAINING, step=0)\nprov4ml.end_run()\n"
                      % str(tmp_path / "prov"))
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ENV, check=True, capture_output=True, timeout=120)
    src = tmp_path / "prov" / "tiny" / "run_0"
    for k in range(1, 2000):
        shutil.copytree(src, src.parent / f"run_{k}")
    newest = src.parent / "run_1999"
    write_csv(newest / "metrics" / "a_training_rank0.csv", crafted(40_000, 21))
    os.utime(newest / "prov_rank0.json")
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path / "prov")], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http"), server.stderr.read()[-2000:]
        t0 = time.monotonic()
        status, _ = _get_json(url + "/api/runs")
        took = time.monotonic() - t0
        status, answer = _get_json(f"{url}/api/points/{quote('tiny/run_1999')}")
        series = {s["name"]: s for s in answer["series"]}
        problems = cut_problems(series["a"], file_rows(newest / "metrics" / "a_training_rank0.csv"))
        assert (problems, took < 20) == ([], True), (problems, took)
    finally:
        server.kill()
        server.wait(30)


#: SIGKILL of the process itself just before end_run puts its final document in place
BEFORE_FINAL = """
import os
_replace = os.replace
ending = []
def _hook(src, dst, *a, **k):
    if ending and str(dst).endswith("prov_rank0.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _replace(src, dst, *a, **k)
os.replace = _hook
"""


#: the refresher thread, descheduled for a moment once the 1,100 series are logged, saves the records next only once
#: the training thread is inside end_run (the run's status already set): its save then holds the late records
#: with status "finished" while no final document exists
LATE_REFRESH = """
import importlib
_outputs = importlib.import_module("prov4ml.run.outputs")
_save_records, gate = _outputs.save_records, []
def _late(run, report):
    if gate:
        deadline = time.monotonic() + 10
        while run.status == "running" and time.monotonic() < deadline:
            time.sleep(0.001)
    return _save_records(run, report)
_outputs.save_records = _late
"""
LATE_END = BODY.replace("BEFORE_", "gate.append(1)").replace("AFTER_", END_THEN_DIE)


def test_a_kill_before_the_final_document_after_the_refresher_saved_the_ending_run(tmp_path):
    """The run of the tests above; the refresher's next save of the records comes once end_run has set the
    status (LATE_REFRESH: a thread scheduled late; seen without it about one run in ten when the group is killed
    0.05 s into end_run); SIGKILL just before the final document is in place. `prov4ml recover` must complete the
    run (seen: "nothing to recover (the run ended, or was recovered already)", exit 0, state.pickle says
    "finished" with no end time; the document is the sink's last live one or start_run's, the journal stays)."""
    child = Child(tmp_path, LATE_END.replace("HOOK", BEFORE_FINAL + LATE_REFRESH))
    child.wait_flag(2, timeout=120)
    assert child.wait(120) == -signal.SIGKILL
    run_dir = child.run_dir()
    from prov4ml.records import state

    saved = state.load_snapshot(run_dir / ".prov4ml" / "rank0")
    found = recovered_problems(run_dir, 0)
    assert (found, status_of(run_dir)) == ([], "finished"), (found, "state.pickle status", saved.status,
                                                             saved.end_time)
