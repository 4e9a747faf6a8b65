"""The C hot path of log_metric (prov4ml/metrics/_hot.c) against the Python one: the same points, the same errors."""

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
import torch

import prov4ml
from conftest import ROOT
from killing import read_rows
from prov4ml.metrics import hotpath
from prov4ml.metrics.journal import SEGMENT_SLOTS

needs_c = pytest.mark.skipif(hotpath.HotPath is None, reason=hotpath.WHY)

# Every kind of call the C path takes or hands to Python, with what a user gets back.
SCRIPT = r"""
import json, sys, glob, os, math
import numpy as np, torch, prov4ml
from prov4ml import Context
out = {"errors": [], "kind": type(prov4ml.log_metric).__name__}
prov4ml.start_run("www.example.org", "parity", sys.argv[1], capture=False, save_after_n_logs=7,
                  metric_samplers={"sampled": prov4ml.Subsample(3)})
out["kind"] = type(prov4ml.log_metric).__name__
lm = prov4ml.log_metric
calls = [
    ("loss", 0.5, Context.TRAINING, 0), ("loss", 0.25, Context.TRAINING), ("loss", -0.0, "training", 7),
    ("loss", float("nan"), Context.TRAINING, 8), ("loss", float("inf"), Context.TRAINING, 9),
    ("acc", torch.tensor(0.75)), ("acc", torch.tensor(3)), ("acc", torch.tensor(True)),
    ("acc", torch.tensor([0.5])), ("acc", torch.tensor(0.5, dtype=torch.float64), None, 2**63 - 1),
    ("int", 3), ("int", True), ("np", np.float32(1.5)), ("np", np.int64(2), Context.VALIDATION, np.int64(4)),
    ("big", 1.0, Context.TESTING, -2**63), ("big", 2.0, Context.TESTING, 2**63), ("big", 3.0, Context.TESTING, 2.5),
    ("bad", "x"), ("bad", torch.ones(2)), ("bad", [1.0]), ([1], 1.0), ("", 1.0), ("bad", 1.0, "no-such-context"),
    ("lazy", lambda: 4.0), ("sampled", 1.0), ("sampled", 2.0), ("sampled", 3.0), ("sampled", 4.0),
    ("grad", torch.tensor(1.5, requires_grad=True) * 2),
]
for c in calls:
    try:
        lm(*c)
    except Exception as exc:
        out["errors"].append(f"{type(exc).__name__}: {exc}")
for kw in ({"context": Context.VALIDATION}, {"step": 11}, {"context": Context.VALIDATION, "step": 12},
           {"timestamp": 1700000000000}, {"source": "custom"}, {"stepp": 1}, {"context": Context.TRAINING, "x": 1}):
    try:
        lm("kw", 1.0, **kw)
    except Exception as exc:
        out["errors"].append(f"{type(exc).__name__}: {exc}")
try:
    lm("loss", 1.0, Context.TRAINING, 1, context=Context.TRAINING)
except TypeError as exc:
    out["errors"].append("TypeError: duplicate")
try:
    lm("loss")
except TypeError as exc:
    out["errors"].append("TypeError: missing")
run = prov4ml.active_run()
pokes = []
real = run._refresher.poke
run._refresher.poke = lambda: (pokes.append(1), real())
for i in range(70):
    lm("count", float(i), Context.TRAINING, i)
out["pokes"] = len(pokes)
prov4ml.end_run()
try:
    lm("loss", 1.0)
except Exception as exc:
    out["errors"].append(f"{type(exc).__name__}: {exc}")
rows = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "**", "metrics", "*.csv"), recursive=True)):
    lines = open(path).read().splitlines()[1:]
    rows[os.path.basename(path)] = [line.rsplit(",", 1)[0] for line in lines]  # step,value (not the time)
out["rows"] = rows
print(json.dumps(out))
"""


def _record(tmp_path, pure):
    env = dict(os.environ, PROV4ML_PURE_PYTHON="1" if pure else "0")
    out = tmp_path / ("pure" if pure else "c")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, env=env,
                          cwd=str(ROOT), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_c
def test_the_c_path_records_exactly_what_the_python_path_records(tmp_path):
    c, pure = _record(tmp_path, pure=False), _record(tmp_path, pure=True)
    assert c["kind"] == "HotPath" and pure["kind"] == "method"
    assert c["rows"] == pure["rows"]
    assert c["errors"] == pure["errors"]
    assert c["pokes"] == pure["pokes"] == 10  # every save_after_n_logs=7 calls, whichever path made them
    assert c["rows"]["loss_training_rank0.csv"] == ["0,0.5", "1,0.25", "7,-0.0", "8,nan", "9,inf"]
    assert c["rows"]["acc_training_rank0.csv"] == ["0,0.75", "1,3.0", "2,1.0", "3,0.5", "9223372036854775807,0.5"]
    assert c["rows"]["big_testing_rank0.csv"] == ["-9223372036854775808,1.0"]
    assert [e.split(":")[0] for e in c["errors"]] == ["InvalidValueError"] * 7 + ["TypeError"] * 4 + ["RunStateError"]


def test_the_c_path_is_built_where_a_compiler_is():
    """A broken build must not quietly fall back to the slower path on a machine that can build it."""
    if os.environ.get("PROV4ML_PURE_PYTHON", "") not in ("", "0"):
        pytest.skip("PROV4ML_PURE_PYTHON is set")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the Python path is the one in use")
    assert hotpath.HotPath is not None, hotpath.WHY


@needs_c
def test_threads_share_the_slot_counter_across_a_segment_roll(start):
    """Threads and the C path claim slots from one counter: more points than a segment holds, none lost or doubled."""
    run = start()
    n, threads = 45_000, 3  # 135,000 points + the main thread's: the journal rolls to a second segment

    def work(k):
        for i in range(n):
            prov4ml.log_metric(f"t{k}", float(i), "training", i)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for i in range(n):
        prov4ml.log_metric("main", torch.tensor(float(i)), "training", i)
    for w in workers:
        w.join()
    assert n * (threads + 1) > SEGMENT_SLOTS
    prov4ml.end_run()
    for name in [f"t{k}" for k in range(threads)] + ["main"]:
        assert read_rows(run.run_dir / "metrics" / f"{name}_training_rank0.csv") == [(i, float(i)) for i in range(n)]


@needs_c
def test_the_c_path_reports_the_python_signature_and_stops_with_the_run(start):
    import inspect

    run = start()
    assert type(prov4ml.log_metric).__name__ == "HotPath"
    assert list(inspect.signature(prov4ml.log_metric).parameters) == [
        "key", "value", "context", "step", "source", "timestamp"]
    assert "durable" in prov4ml.log_metric.__doc__
    assert (prov4ml.log_metric.__name__, prov4ml.log_metric.__qualname__) == ("log_metric", "MetricRecorder.log_metric")
    hot = prov4ml.log_metric
    prov4ml.log_metric("loss", 1.0, "training", 0)
    prov4ml.end_run()
    assert hot.cursor is None and not hot.recording
    with pytest.raises(prov4ml.RunStateError):
        hot("loss", 2.0, "training", 1)  # an ended run's C path still refuses, as the Python one does
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(0, 1.0)]


@needs_c
def test_an_uninitialised_hot_path_raises_instead_of_crashing():
    """HotPath.__new__ without __init__ (or after a failed one) has no Python path to hand calls to."""
    from prov4ml.metrics._hot import HotPath

    hot = HotPath.__new__(HotPath)
    with pytest.raises(TypeError):
        hot("loss", 1.0)
    with pytest.raises(TypeError):
        hot.tick()
    with pytest.raises(AttributeError):
        HotPath.__init__(hot, {}, print, print, object, 5)  # no 'n' slot
    with pytest.raises(TypeError):
        hot("loss", 1.0)


def test_a_tensor_whose_item_logs_to_its_own_series(start):
    """item() under a TorchFunctionMode may log to the very series (both paths: the step is taken before item(),
    the count goes on from where item() left it, and item() is called once)."""
    from torch.overrides import TorchFunctionMode

    calls = []

    class LogInItem(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.Tensor.item:
                calls.append(1)
                prov4ml.log_metric("loss", -1.0, "training")
                prov4ml.log_metric("loss", -2.0, "training")
            return func(*args, **(kwargs or {}))

    run = start()
    for i in range(1000):  # past the small-int cache: the series' count is a fresh int object
        prov4ml.log_metric("loss", float(i), "training")
    t = torch.tensor(5.0)
    prov4ml.log_metric("loss", t, "training")
    with LogInItem():
        prov4ml.log_metric("loss", t, "training")
    prov4ml.log_metric("loss", 7.0, "training")
    prov4ml.end_run()
    assert len(calls) == 1
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv")[1000:] == [
        (1000, 5.0), (1001, -1.0), (1002, -2.0), (1001, 5.0), (1004, 7.0)]


def test_a_tensor_at_a_full_segment_is_read_once(start):
    from torch.overrides import TorchFunctionMode
    from prov4ml.metrics.journal import FIRST_SLOT

    calls = []

    class CountItems(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.Tensor.item:
                calls.append(1)
            return func(*args, **(kwargs or {}))

    run = start()
    t = torch.tensor(5.0)
    prov4ml.log_metric("loss", t, "training")
    for i in range(SEGMENT_SLOTS - FIRST_SLOT - 1):  # the first segment is full
        prov4ml.log_metric("fill", float(i), "training")
    with CountItems():
        prov4ml.log_metric("loss", t, "training", 9)
    prov4ml.end_run()
    assert len(calls) == 1
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(0, 5.0), (9, 5.0)]


def test_a_str_subclass_key_is_recorded_as_a_plain_string(start):
    """The series' name is pickled with the run's state: a local str subclass must not break end_run."""

    class Name(str):
        pass

    run = start()
    prov4ml.log_metric(Name("loss"), 1.0, "training", 0)
    prov4ml.log_metric(Name("loss"), 2.0, "training", 1)
    prov4ml.end_run()
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(0, 1.0), (1, 2.0)]
    assert all(type(s.name) is str for s in run.metrics.series.values())


def test_a_key_whose_hash_ends_the_run(start):
    """Python code in the dict lookups (a key's __hash__) may end the run: the call raises, it does not crash."""
    armed = []

    class Key(str):
        def __hash__(self):
            if armed:
                armed.clear()
                prov4ml.end_run()
            return str.__hash__(self)

        __eq__ = str.__eq__

    run = start()
    k = Key("loss")
    prov4ml.log_metric(k, 1.0, "training", 0)
    lm = prov4ml.log_metric
    armed.append(1)
    with pytest.raises(prov4ml.RunStateError):
        lm(k, 2.0, "training", 1)
    assert read_rows(run.run_dir / "metrics" / "loss_training_rank0.csv") == [(0, 1.0)]


def test_a_key_with_a_python_hash_is_hashed_as_often_as_on_the_python_path(start):
    """A __hash__ with side effects (here: it logs) must not run more often than the Python path runs it."""
    import numpy as np

    hashes = []

    class Key(str):
        def __hash__(self):
            hashes.append(1)
            prov4ml.log_metric("from_hash", 1.0, "training")
            return str.__hash__(self)

        __eq__ = str.__eq__

    run = start(metric_samplers={"sampled": prov4ml.Subsample(2)})
    prov4ml.log_metric("other", 1.0, "training")
    k, s = Key("loss"), Key("sampled")
    for value in (1.0, 2.0, 3, np.float32(4.0), torch.tensor(5.0)):
        prov4ml.log_metric(k, value, "training")
    for value in (1.0, 2.0, 3.0):
        prov4ml.log_metric(s, value, "training")
    prov4ml.end_run()
    assert len(hashes) == 5 + 3 + 2  # as the Python path: one lookup per call, and setdefault for a new series
    assert len(read_rows(run.run_dir / "metrics" / "from_hash_training_rank0.csv")) == 10
