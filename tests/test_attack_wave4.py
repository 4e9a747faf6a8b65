"""Attacks on three promises, with real children, real rlimits and real SIGKILLs (tests/killing.py).

1. ``end_run``'s document describes exactly the rows on disk: for runs of 1, 50 and 3,000 series (the last
   under a hard descriptor limit of 256), in CSV and Parquet, each series' ``provml:count`` equals the rows of
   its file and every logged point is there, value for value.
2. A run killed (its process group, or the process alone) at a random moment 0-300 ms into the ``end_run`` of
   a run of 2,000 series leaves a run ``prov4ml recover`` completes: readable, every point logged, the
   document's counts equal to the files' rows, and ``finished`` (docs/formats.md: ``end_run`` journals its
   outcome as it begins, so a run killed inside it is completed "as it was ending, never as killed").
3. Several runs one after another in one process (the sink process reused), each exact; ``prov4ml.flush()``
   mid-run with 3,000 series leaves every point logged so far on disk.

Values are hard doubles (subnormals, the largest double, -0.0, 0.1 + 0.2, ...) chosen by (series, step), so
the oracle compares bits, not approximations.
"""

import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from killing import Child, kill_leftovers, prov_json, run_activity, wait_for_sinks

HARD = [0.1 + 0.2, 5e-324, -0.0, 1.7976931348623157e308, -2.2250738585072014e-308, 1e16, 123456789.125,
        -1 / 3, 2.0 ** -1074 * 3, 9007199254740993.0]

#: the value of series k at step s: written by the child and recomputed here (same source text)
VALUE_SRC = "def value(k, s):\n    return HARD[(k * 7 + s) % len(HARD)] * (-1 if k % 2 else 1) if s % 3 else k + s / 7\n"
exec(VALUE_SRC)  # noqa: S102 (the same function the children run)


def pyarrow_or_skip() -> None:
    pytest.importorskip("pyarrow")


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def series_entities(data: dict) -> dict:
    """(name, context) -> the series' entity attributes, for every metric series of the document."""
    out = {}
    for attrs in data.get("entity", {}).values():
        if "provml:count" in attrs and "provml:name" in attrs:
            out[(attrs["provml:name"], attrs.get("provml:context"))] = attrs
    return out


def count_of(attrs: dict) -> int:
    value = attrs["provml:count"]
    return int(value["$"]) if isinstance(value, dict) else int(value)


def read_points(path: Path) -> list:
    """(step, value bits) of every row of a metric file, whatever its format; a CSV row must be whole."""
    from prov4ml.metrics import formats

    if path.suffix == ".csv":
        text = path.read_text()
        assert text.startswith("step,value,time\n") and text.endswith("\n"), (path.name, text[-80:])
    cols = formats.read(path)
    return [(int(s), bits(float(v))) for s, v in zip(cols["step"], cols["value"])]


def check_run(run_dir: Path, series: int, steps: int, ext: str, status=("finished",)) -> list:
    """What is wrong with a run's files and document: every series' file holds exactly its points, and the
    document's count of each equals its file's rows. Returns the problems (empty when all is right)."""
    problems = []
    data = prov_json(run_dir)
    got = run_activity(data)["provml:status"]
    if got not in status:
        problems.append(("status", got))
    entities = series_entities(data)
    metrics = run_dir / "metrics"
    names = sorted(p.name for p in metrics.iterdir()) if metrics.exists() else []
    wanted = sorted(f"m{k}_training_rank0.{ext}" for k in range(series))
    if names != wanted:
        problems.append(("files", sorted(set(names) ^ set(wanted))[:10]))
    for k in range(series):
        path = metrics / f"m{k}_training_rank0.{ext}"
        rows = read_points(path) if path.exists() else []
        expected = [(s, bits(value(k, s))) for s in range(steps)]
        if rows != expected:
            first = next((i for i, (a, b) in enumerate(zip(rows, expected)) if a != b), min(len(rows), len(expected)))
            problems.append((path.name, "rows %d, logged %d, first difference at %d" % (len(rows), steps, first)))
        attrs = entities.get((f"m{k}", "training"))
        if attrs is None:
            problems.append((f"m{k}", "no series entity in the document"))
        elif count_of(attrs) != len(rows):
            problems.append((f"m{k}", "document count %d, file rows %d" % (count_of(attrs), len(rows))))
    return problems


# --- 1 and 3. one process, runs one after another, exact after end_run and after flush() ---------------

#: (series, steps) of the runs made one after another by one process, the last under a hard limit of 256
RUNS = [(1, 4000), (50, 60), (3000, 4)]
FLUSH_AT = 2  # in the 3,000-series run, flush() after this many steps

SEQUENCE = """
import pathlib, resource, json
HARD = %r
%s
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
fmt = %r
runs = %r
for r, (series, steps) in enumerate(runs):
    prov4ml.start_run("www.example.org", "seq", {save_dir!r}, capture=False, metrics_file_type=fmt,
                      save_after_n_logs=100)
    run_dir = pathlib.Path({save_dir!r}) / "seq" / ("run_%%d" %% r)
    for s in range(steps):
        for k in range(series):
            prov4ml.log_metric("m%%d" %% k, value(k, s), prov4ml.Context.TRAINING, step=s)
        if series > 1000 and s + 1 == %d:
            prov4ml.flush()
            # every row of every file (CSV, or the side file of another format) once flush() returned
            rows = {{}}
            for f in (run_dir / "metrics").iterdir():
                rows[f.name] = f.read_text().splitlines()[1:]
            (pathlib.Path({save_dir!r}) / "flushed.json").write_text(json.dumps(rows))
    prov4ml.end_run()
    store(2 + r, 1)
tell(len(runs))
"""


def _sequence(tmp_path: Path, fmt: str) -> Path:
    body = SEQUENCE % (HARD, VALUE_SRC, fmt, RUNS, FLUSH_AT)
    child = Child(tmp_path, body)
    try:
        rc = child.wait(120)
    finally:
        kill_leftovers()
    assert rc == 0, child.proc.stderr.read().decode()[-3000:]
    assert child.logged == len(RUNS)
    return child.save_dir


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_runs_one_after_another_each_exact_and_flush_leaves_every_point(tmp_path, fmt):
    if fmt == "parquet":
        pyarrow_or_skip()
    save = _sequence(tmp_path, fmt)
    problems = []
    for r, (series, steps) in enumerate(RUNS):
        problems += [(f"run_{r}",) + p for p in check_run(save / "seq" / f"run_{r}", series, steps, fmt)]
    # after flush() with 3,000 series: every point of the first FLUSH_AT steps of each series in its file
    flushed = json.loads((save / "flushed.json").read_text())
    series = RUNS[-1][0]
    side = ".csv" if fmt == "csv" else ".parquet.csv"
    for k in range(series):
        lines = flushed.get(f"m{k}_training_rank0{side}", [])
        got = [(int(line.split(",")[0]), bits(float(line.split(",")[1]))) for line in lines]
        if got != [(s, bits(value(k, s))) for s in range(FLUSH_AT)]:
            problems.append(("flush", f"m{k}", len(got)))
    assert problems == [], "%d problems, first: %s" % (len(problems), problems[:8])


# --- 2. SIGKILL (of the group, of the process) at random moments inside end_run of 2,000 series --------

KILL_SERIES, KILL_STEPS = 2000, 3

AT_END = """
HARD = %r
%s
prov4ml.start_run("www.example.org", "kill", {save_dir!r}, capture=False, metrics_file_type=%r)
flag(1)
n = 0
for s in range(%d):
    for k in range(%d):
        prov4ml.log_metric("m%%d" %% k, value(k, s), prov4ml.Context.TRAINING, step=s)
        n += 1
        tell(n)
flag(2)
prov4ml.end_run()
flag(3)
time.sleep(600)
"""


def _kill_inside_end_run(folder: Path, fmt: str, delay: float, group: bool) -> tuple:
    child = Child(folder, AT_END % (HARD, VALUE_SRC, fmt, KILL_STEPS, KILL_SERIES), group=group)
    child.wait_flag(2, timeout=120)
    time.sleep(delay)
    child.kill(signal.SIGKILL)
    return child, child._read(3)


@pytest.mark.parametrize("fmt,seeds", [("csv", (11, 13)), ("parquet", (22,))])
def test_sigkill_inside_end_run_of_2000_series_is_recovered_exactly(tmp_path, fmt, seeds):
    if fmt == "parquet":
        pyarrow_or_skip()
    problems = []
    kills = []
    try:
        for i, seed in enumerate(seeds):
            delay = random.Random(seed).uniform(0.0, 0.3)
            folder = tmp_path / f"s{seed}"
            folder.mkdir()
            child, returned = _kill_inside_end_run(folder, fmt, delay, group=i % 2 == 0)
            kills.append((seed, delay, child, returned))
    finally:
        kill_leftovers()
    for seed, delay, child, returned in kills:
        assert child.logged == KILL_SERIES * KILL_STEPS
        d = child.run_dir("kill")
        wait_for_sinks(d)
        out = subprocess.run([sys.executable, "-m", "prov4ml", "recover", str(d)], capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        tag = "seed %d (%.0f ms, end_run returned: %s)" % (seed, delay * 1000, bool(returned))
        if out.returncode != 0:
            problems.append((tag, "recover exit %d: %s" % (out.returncode, (out.stderr + out.stdout)[-600:])))
            continue
        try:
            problems += [(tag,) + p for p in check_run(d, KILL_SERIES, KILL_STEPS, fmt)]
        except (OSError, ValueError, KeyError, StopIteration) as exc:
            problems.append((tag, "%s: %s" % (type(exc).__name__, exc)))
    assert problems == [], "%d problems, first: %s" % (len(problems), problems[:8])
