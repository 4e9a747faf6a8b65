"""Attacks on the sink's planned summaries, its bounded file opening, the templated metric entities and the
summary file encoded 2,000 series a call (wave 5).

The promise under attack: each series' count / nan_count / min / max / last / mean / first_step / last_step in
the final PROV-JSON and in ``summary_rank0.json`` equal what its metric file holds, computed here from the file
point for point, whatever happened on the way (the sink SIGKILLed mid-run, writes failing with EFBIG then
succeeding, a process-group kill then ``prov4ml recover``, 10,000 series under ``ulimit -n 256`` with live
documents and ``flush()``), and the document stays readable by ``prov`` and convertible with odd names.

The mean's oracle accepts either correct reading of the file: the exact mean correctly rounded
(``statistics.mean``) or ``math.fsum(values) / n`` (``statistics.fmean``).
"""

import json
import math
import os
import resource
import signal
import statistics
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT

FIELDS = ("count", "nan_count", "min", "max", "last", "mean", "first_step", "last_step")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# --- the oracle: a series' figures computed from its file --------------------------------------------------

def _same(a, b) -> bool:
    """Equal as the file says them: NaN equals NaN, -0.0 differs from 0.0, ints and floats by value."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    return a == b and type(a) is type(b)


def _ieee_min(values):
    return min(values, key=lambda v: (v, math.copysign(1.0, v)))


def _ieee_max(values):
    return max(values, key=lambda v: (v, math.copysign(1.0, v)))


def _means(numbers) -> list:
    """Every correct mean of ``numbers`` (no NaN): the IEEE result where infinities or only -0.0 decide it,
    else the exact mean correctly rounded and fsum's sum divided by the count."""
    if not numbers:
        return [math.nan]
    infs = {v for v in numbers if math.isinf(v)}
    if infs:
        return [math.nan] if len(infs) == 2 else [infs.pop()]
    if all(v == 0.0 and math.copysign(1.0, v) < 0 for v in numbers):
        return [-0.0]
    out = [float(statistics.mean(numbers))]
    try:
        out.append(math.fsum(numbers) / len(numbers))
    except OverflowError:
        pass
    return out


def file_figures(path: Path) -> dict:
    """A metric CSV's figures, from its rows (every row whole)."""
    text = path.read_text()
    lines = text.split("\n")
    assert lines[0] == "step,value,time" and lines[-1] == "", (path.name, lines[-1][:80])
    steps, values = [], []
    for line in lines[1:-1]:
        step, value, _ = line.split(",")
        steps.append(int(step))
        values.append(float(value))
    numbers = [v for v in values if v == v]
    fig = {"count": len(values), "nan_count": len(values) - len(numbers), "values": values}
    if values:
        fig.update(min=_ieee_min(numbers) if numbers else math.nan, max=_ieee_max(numbers) if numbers else math.nan,
                   last=values[-1], means=_means(numbers), first_step=steps[0], last_step=steps[-1])
    return fig


def _typed(v):
    if isinstance(v, dict) and "$" in v:
        if v.get("type") == "xsd:double":
            return {"NaN": math.nan, "INF": math.inf, "-INF": -math.inf}.get(v["$"]) or float(v["$"])
        if v.get("type") in ("xsd:long", "xsd:int"):
            return int(v["$"])
        return v["$"]
    return v


def _plain(v):
    return float(v["$float"]) if isinstance(v, dict) and "$float" in v else v


def document_series(run_dir: Path) -> dict:
    data = json.loads((run_dir / "prov_rank0.json").read_text())
    out = {}
    for attrs in data.get("entity", {}).values():
        if "provml:count" in attrs and "provml:name" in attrs:
            loc = _typed(attrs["prov:location"])
            fig = {f: _typed(attrs.get("provml:" + f)) for f in FIELDS}
            fig["location"] = loc.split(":", 1)[1] if loc.startswith("rundir:") else loc
            out[(attrs["provml:name"], attrs["provml:context"])] = fig
    return out


def summary_series(run_dir: Path) -> dict:
    data = json.loads((run_dir / "summary_rank0.json").read_text())
    return {(s["name"], s["context"]): {f: _plain(s[f]) for f in FIELDS} | {"location": s["location"]}
            for s in data["series"]}


def figure_problems(run_dir: Path, fields=FIELDS) -> list:
    """Where the document's or the summary file's figures of a series differ from its file's."""
    docs, sums = document_series(run_dir), summary_series(run_dir)
    problems = [("series in one and not the other", sorted(set(docs) ^ set(sums))[:5])] if set(docs) != set(sums) else []
    for key, doc in docs.items():
        fig = file_figures(run_dir / doc["location"])
        for where, told in (("document", doc), ("summary", sums.get(key, {}))):
            for f in fields:
                if f == "mean":
                    if not any(_same(told.get(f), m) for m in fig.get("means", [])):
                        problems.append((key, where, f, told.get(f), fig.get("means")))
                elif not _same(told.get(f), fig.get(f)):
                    problems.append((key, where, f, told.get(f), fig.get(f)))
    return problems


def status_of(run_dir: Path) -> str:
    data = json.loads((run_dir / "prov_rank0.json").read_text())
    return next(a for k, a in data["activity"].items() if k.endswith(".rank0"))["provml:status"]


def run_script(tmp_path: Path, body: str, timeout: float = 120) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(body))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# --- 1, 2. the mean --------------------------------------------------------------------------------------

def test_mean_of_a_series_written_over_many_blocks_is_its_files_mean(tmp_path):
    """40 blocks of 1-7 random points (a flush() after each): the document's and the summary's mean must be
    the mean of the 154 values in the file. The sink keeps a running mean of block means instead."""
    run_script(tmp_path, f"""
        import random, prov4ml
        prov4ml.start_run("www.example.org", "mc", {str(tmp_path / 'prov')!r}, capture=False)
        rng = random.Random(5)
        for c in range(40):
            for i in range(rng.randint(1, 7)):
                prov4ml.log_metric("r", rng.uniform(-1, 1) * 10 ** rng.randint(-3, 3), prov4ml.Context.TRAINING,
                                   step=c * 10 + i)
            prov4ml.flush()
        prov4ml.end_run()
    """)
    assert figure_problems(tmp_path / "prov" / "mc" / "run_0") == []


def test_mean_of_a_series_whose_sum_overflows_is_its_files_mean(tmp_path):
    """Nine points in one block, three of them the largest double: the sum overflows, the mean does not. The
    exact mean is 5.992310449541053e+307 (statistics.mean of the file's values)."""
    run_script(tmp_path, f"""
        import prov4ml
        prov4ml.start_run("www.example.org", "ov", {str(tmp_path / 'prov')!r}, capture=False)
        for i in range(9):
            prov4ml.log_metric("big", 1.7976931348623157e308 if i % 3 == 0 else 1e16, prov4ml.Context.TRAINING, step=i)
        prov4ml.end_run()
    """)
    assert figure_problems(tmp_path / "prov" / "ov" / "run_0") == []


# --- 3, 4. odd names, special values, contexts, samplers, units; prov and convert --------------------------

ODD_NAMES = ['q"uote', "back\\slash", "uni\u00e9\u4e2d\U0001F600", "100%", "%s%d", "tab\tnl\n", "plain"]
CONTROL_NAME = "ctl\x01\x1f\x7f"

ODD_RUN = """
    import prov4ml
    prov4ml.start_run("www.example.org", "odd", {save!r}, capture=False,
                      metric_samplers={{"sub": prov4ml.Subsample(3), "win": prov4ml.Window(4)}})
    vals = [float("nan"), float("inf"), -float("inf"), -0.0, 5e-324, 2.2250738585072014e-308, 1e300, 0.1 + 0.2]
    steps = [-(2**63), 2**63 - 1, -5, 2**53 + 1, 0, 7, 8, 9]
    for n in {names!r}:
        for v, s in zip(vals, steps):
            prov4ml.log_metric(n, v, prov4ml.Context.TRAINING, step=s)
    for ctx in (prov4ml.Context.VALIDATION, prov4ml.Context.TESTING):
        for i in range(5):
            prov4ml.log_metric("acc", i * 0.25, ctx, step=i)
            prov4ml.log_metric('v"%s', -0.0 if i % 2 else float("nan"), ctx, step=-i)
    nested = prov4ml.create_context("inner", is_subcontext_of=prov4ml.Context.VALIDATION)
    prov4ml.log_metric("deep", 0.5, nested, step=3)
    for i in range(10):
        prov4ml.log_metric("sub", i / 4, prov4ml.Context.TRAINING, step=i)
        prov4ml.log_metric("win", i / 4, prov4ml.Context.TRAINING, step=i)
    prov4ml.log_current_execution_time("et", prov4ml.Context.TRAINING, step=1)
    prov4ml.end_run()
"""


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("odd")
    run_script(folder, ODD_RUN.format(save=str(folder / "prov"), names=ODD_NAMES + [CONTROL_NAME]))
    return folder / "prov" / "odd" / "run_0"


def test_odd_names_values_and_contexts_document_and_summary_equal_the_files(odd_run):
    """Guard (passes): quotes, backslashes, unicode, '%', control characters; NaN, infinities, -0.0,
    subnormals; steps -2**63 and 2**63-1; samplers, a unit, evaluation and nested contexts."""
    assert status_of(odd_run) == "finished"
    assert figure_problems(odd_run) == []
    docs = document_series(odd_run)
    assert {n for n, c in docs if c == "training"} >= set(ODD_NAMES + [CONTROL_NAME, "sub", "win", "et"])
    data = json.loads((odd_run / "prov_rank0.json").read_text())
    by_key = {(a["provml:name"], a["provml:context"]): a for a in data["entity"].values() if "provml:count" in a}
    for ctx in ("validation", "testing"):
        attrs = by_key[("acc", ctx)]
        types = attrs["prov:type"] if isinstance(attrs["prov:type"], list) else [attrs["prov:type"]]
        assert {"$": "mls:ModelEvaluation", "type": "xsd:QName"} in types
        measure = _typed(attrs["mls:specifiedBy"])
        assert measure in data["entity"] or measure in data.get("agent", {}) or any(
            measure in data.get(kind, {}) for kind in data), measure
    assert by_key[("sub", "training")]["provml:sampler"] == "Subsample(3)"
    assert by_key[("et", "training")]["provml:unit"] == "s"

    # what prov reads back: every series' name and count as the JSON says them
    from prov.model import ProvDocument

    doc = ProvDocument.deserialize(str(odd_run / "prov_rank0.json"))
    read = {}
    for rec in doc.get_records():
        attrs = {str(k): v for k, v in rec.attributes}
        if "provml:count" in attrs:
            read[(str(attrs["provml:name"]), str(attrs["provml:context"]))] = int(getattr(attrs["provml:count"], "value", attrs["provml:count"]))
    assert read == {k: v["count"] for k, v in docs.items()}


def test_convert_to_prov_xml_of_a_metric_named_with_control_characters(odd_run, tmp_path):
    """`prov4ml convert RUN out.xml` of a run with a metric named 'ctl\\x01\\x1f\\x7f' (log_metric accepts the
    name; Turtle and PROV-N convert): ends in a raw lxml traceback ('All strings must be XML compatible')
    instead of writing the XML or refusing with a message that names the series and the fix."""
    ttl = subprocess.run([sys.executable, "-m", "prov4ml", "convert", str(odd_run / "prov_rank0.json"),
                          str(tmp_path / "odd.ttl")], env=ENV, capture_output=True, text=True, timeout=120)
    assert ttl.returncode == 0, ttl.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-m", "prov4ml", "convert", str(odd_run / "prov_rank0.json"),
                           str(tmp_path / "odd.xml")], env=ENV, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    if proc.returncode == 0:
        from prov.model import ProvDocument

        back = ProvDocument.deserialize(str(tmp_path / "odd.xml"), format="xml")
        names = {str(v) for rec in back.get_records() for k, v in rec.attributes if str(k) == "provml:name"}
        assert set(ODD_NAMES) <= names


# --- 5, 6. the sink SIGKILLed mid-run, its writes failing then succeeding ---------------------------------

#: values without an overflowing sum, so that these tests do not meet the mean's failures above
VALUE_SRC = """
HARD = [0.1 + 0.2, 5e-324, -0.0, 1e300, float("nan"), 1e16, -1 / 3, 2.0 ** -1074 * 3]
def value(k, s):
    return HARD[(k * 7 + s) % len(HARD)] if s % 3 else k + s / 7
"""
exec(VALUE_SRC)  # noqa: S102 (the function the children run)

PAUSING = """
import os, sys, time, pathlib
import prov4ml
{value_src}
save = pathlib.Path({save!r})
prov4ml.start_run("www.example.org", "x", str(save), capture=False, prov_flush_interval=0.2, save_after_n_logs=50)
for s in range({steps}):
    if s == {pause}:
        prov4ml.flush()
        (save / "paused").write_text("1")
        while not (save / "go").exists():
            time.sleep(0.005)
    if s > {pause}:
        time.sleep({slow})
    for k in range({series}):
        prov4ml.log_metric("m%d" % k, value(k, s), prov4ml.Context.TRAINING, step=s * 1000 - 7)
prov4ml.end_run()
"""


def _start_pausing(tmp_path: Path, series: int, steps: int, pause: int, slow: float, group: bool = False):
    save = tmp_path / "prov"
    save.mkdir()
    code = PAUSING.format(value_src=VALUE_SRC, save=str(save), steps=steps, pause=pause, slow=slow,
                          series=series)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=group)
    deadline = time.monotonic() + 60
    while not (save / "paused").exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline, "the child never paused"
        time.sleep(0.005)
    run_dir = save / "x" / "run_0"
    return proc, run_dir, int(next(run_dir.glob(".prov4ml/rank*/sink.pid")).read_text())


def rows_problems(run_dir: Path, series: int, steps) -> list:
    """Each series' file holds its points in order, bit for bit; ``steps`` is the count each must have, or
    None for a prefix (a run killed in the middle of a step: counts differ by at most one)."""
    problems, counts = [], []
    for k in range(series):
        fig = file_figures(run_dir / "metrics" / f"m{k}_training_rank0.csv")
        want = [value(k, s) for s in range(len(fig["values"]))]
        if not all(_same(a, b) for a, b in zip(fig["values"], want)):
            problems.append((k, "values differ"))
        counts.append(len(fig["values"]))
    if steps is not None and set(counts) != {steps}:
        problems.append(("counts", sorted(set(counts))))
    if steps is None and max(counts) - min(counts) > 1:
        problems.append(("counts", min(counts), max(counts)))
    return problems


NO_MEAN = tuple(f for f in FIELDS if f != "mean")  # the mean's failure has its own tests (1, 2)


def test_sink_sigkilled_mid_run_then_the_run_goes_on_and_ends_exact(tmp_path):
    """Guard (passes but for the mean): SIGKILL of the sink (its sink.pid) after step 10 of 300 series; the run
    logs 30 more steps and ends: every point in its file, the figures equal the files'."""
    proc, run_dir, sink = _start_pausing(tmp_path, series=300, steps=40, pause=10, slow=0.005)
    try:
        os.kill(sink, signal.SIGKILL)
        (tmp_path / "prov" / "go").write_text("1")
        assert proc.wait(120) == 0, proc.stderr.read()[-2000:]
    finally:
        proc.kill()
    assert status_of(run_dir) == "finished"
    assert rows_problems(run_dir, 300, 40) == []
    assert figure_problems(run_dir, NO_MEAN) == []


def test_sink_writes_fail_with_efbig_then_succeed_and_the_run_ends_exact(tmp_path):
    """Guard (passes but for the mean): the sink's file size limit set to 1 byte (prlimit on its pid) for
    0.3 s while the run logs (every write fails, EFBIG), then lifted; the run goes on and ends: finished,
    every point in its file, the figures equal the files'."""
    proc, run_dir, sink = _start_pausing(tmp_path, series=300, steps=60, pause=10, slow=0.02)
    try:
        resource.prlimit(sink, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
        (tmp_path / "prov" / "go").write_text("1")
        time.sleep(0.3)
        resource.prlimit(sink, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert proc.wait(120) == 0, proc.stderr.read()[-2000:]
    finally:
        proc.kill()
    assert status_of(run_dir) == "finished"
    assert rows_problems(run_dir, 300, 60) == []
    assert figure_problems(run_dir, NO_MEAN) == []


# --- 7. recover of a run killed with many series' rows not yet written --------------------------------------

def test_recover_after_a_group_kill_with_rows_pending_is_exact(tmp_path):
    """Guard (passes but for the mean): 5,000 series logging, the whole process group SIGKILLed 0.3 s after
    they resume (the sink dies with it, rows unwritten); `prov4ml recover` writes them: every file a whole
    prefix of its points, the figures equal the files'."""
    proc, run_dir, _ = _start_pausing(tmp_path, series=5000, steps=40, pause=1, slow=0.005, group=True)
    try:
        (tmp_path / "prov" / "go").write_text("1")
        time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)
    out = subprocess.run([sys.executable, "-m", "prov4ml", "recover", str(run_dir)], env=ENV, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, (out.stdout + out.stderr)[-2000:]
    assert status_of(run_dir) == "killed"
    assert rows_problems(run_dir, 5000, None) == []
    assert figure_problems(run_dir, NO_MEAN) == []


# --- 8. 10,000 series under 256 descriptors, live documents, flush() --------------------------------------

MANY = """
import resource, pathlib, json
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
import prov4ml
N, STEPS = {n}, {steps}
prov4ml.start_run("www.example.org", "many", {save!r}, capture=False, prov_flush_interval=0.05, flush_interval=0.2,
                  save_after_n_logs=500)
run = pathlib.Path({save!r}) / "many" / "run_0"
bad = []
for s in range(STEPS):
    for k in range(N):
        prov4ml.log_metric("m%d" % k, k * 0.5 + s, prov4ml.Context.TRAINING, step=s)
    if s % 2 == 1:
        prov4ml.flush()
        for k in range(N):
            p = run / "metrics" / ("m%d_training_rank0.csv" % k)
            lines = p.read_text().splitlines()[1:] if p.exists() else []
            if [(int(l.split(",")[0]), float(l.split(",")[1])) for l in lines] != [(i, k * 0.5 + i) for i in range(s + 1)]:
                bad.append((s, k, len(lines)))
print(json.dumps(bad[:20]))
prov4ml.end_run()
"""


def test_ten_thousand_series_under_256_descriptors_with_live_documents_and_flush(tmp_path):
    """Guard (passes): 10,000 series x 4 steps under ulimit -n 256, a live document every 0.05 s, flush()
    every two steps: after each flush() every row logged is in its file; after end_run every figure equals
    the file's."""
    n, steps = 10_000, 4
    proc = run_script(tmp_path, MANY.format(n=n, steps=steps, save=str(tmp_path / "prov")), timeout=180)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    run_dir = tmp_path / "prov" / "many" / "run_0"
    assert status_of(run_dir) == "finished"
    for k in range(0, n, 997):
        fig = file_figures(run_dir / "metrics" / f"m{k}_training_rank0.csv")
        assert fig["values"] == [k * 0.5 + s for s in range(steps)]
    assert figure_problems(run_dir) == []


# --- 9. the summary file's series, 2,000 to a call, with odd names and values across the boundaries ---------

def test_summary_of_4001_odd_series_says_what_the_document_says(tmp_path):
    """Guard: 4,001 series (two boundaries of the 2,000-series encoding), names with quotes, backslashes,
    '%', unicode and a control character, values NaN / inf / -0.0 / subnormal: every series' entry of the
    summary file equals the document's and the file's."""
    run_script(tmp_path, f"""
        import prov4ml
        prov4ml.start_run("www.example.org", "sum", {str(tmp_path / 'prov')!r}, capture=False)
        vals = [float("nan"), float("inf"), -0.0, 5e-324, -float("inf"), 0.1 + 0.2]
        for k in range(4001):
            name = ['q"%d', 'b\\\\%d', '%%s%d', '\\u00e9\\u4e2d%d', 'c\\x01%d'][k % 5] % k
            prov4ml.log_metric(name, vals[k % 6], prov4ml.Context.TRAINING, step=-k)
            prov4ml.log_metric(name, vals[(k + 1) % 6], prov4ml.Context.TRAINING, step=2**62 + k)
        prov4ml.end_run()
    """)
    run_dir = tmp_path / "prov" / "sum" / "run_0"
    assert len(summary_series(run_dir)) == 4001
    assert figure_problems(run_dir) == []


# --- 10. a real full disk (a 24 MiB tmpfs) for 0.4 s mid-run --------------------------------------------------

def test_disk_full_for_a_while_mid_run_then_room_the_run_ends_exact(small_tmpfs):
    """Guard (passes but for the mean): the run's disk filled up (ENOSPC) for 0.4 s while 300 series log,
    then freed; the run goes on and ends: finished, every point in its file, the figures equal the files'."""
    proc, run_dir, _ = _start_pausing(small_tmpfs, series=300, steps=60, pause=10, slow=0.02)
    go = small_tmpfs / "prov" / "go"
    try:
        Path(f"{go}.tmp").write_text("1")  # renamed once the disk is full: a rename needs no room
        filler = small_tmpfs / "filler"
        with open(filler, "wb") as fh:
            with pytest.raises(OSError):
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
        os.rename(f"{go}.tmp", go)
        time.sleep(0.4)
        filler.unlink()
        assert proc.wait(120) == 0, proc.stderr.read()[-2000:]
    finally:
        proc.kill()
        proc.wait(30)
    assert status_of(run_dir) == "finished"
    assert rows_problems(run_dir, 300, 60) == []
    assert figure_problems(run_dir, NO_MEAN) == []
