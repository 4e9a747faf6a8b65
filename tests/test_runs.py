"""prov4ml.runs: the one reader of recorded runs, against what real runs logged; the commands without pandas."""

import ast
import json
import math
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import prov4ml
from conftest import ROOT
from prov4ml import runs
from prov4ml.exceptions import ProvFileError

NS = "www.example.org"
LOSS = [1.0, 0.5, float("nan"), 0.25, 0.125]
ACC = [0.5, 0.75]


def _record(save_dir, fmt="csv"):
    prov4ml.start_run(NS, "exp", str(save_dir), capture=False, metrics_file_type=fmt)
    prov4ml.log_params({"lr": 0.1, "epochs": 3, "optimizer": "sgd", "nesterov": True})
    with pytest.warns(UserWarning, match="'lr' changed"):
        prov4ml.log_param("lr", 0.05)  # logged again with another value: the last value is the parameter's
    for step, value in enumerate(LOSS):
        prov4ml.log_metric("loss", value, prov4ml.Context.TRAINING, step=10 * step)
    for step, value in enumerate(ACC):
        prov4ml.log_metric("acc", value, prov4ml.Context.VALIDATION, step=step)
    run_dir = prov4ml.active_run().run_dir
    prov4ml.end_run()
    return run_dir


def test_a_recorded_run_reads_back_exactly(tmp_path):
    run_dir = _record(tmp_path)
    run = runs.read_run(run_dir)
    assert run.params == {"lr": 0.05, "epochs": 3, "optimizer": "sgd", "nesterov": True}
    assert [type(run.params[k]) for k in ("lr", "epochs", "optimizer", "nesterov")] == [float, int, str, bool]
    assert (run.status, run.recorded_status, run.needs_recovery) == ("finished", "finished", [])
    assert (run.experiment, run.run_id, run.ranks, run.error_type) == ("exp", 0, [0], None)
    assert run.start is not None and run.start <= run.end and run.start.tzinfo is not None

    series = {s.key: s for s in run.series}
    assert sorted(series) == ["acc/validation", "loss/training"]
    loss = series["loss/training"]
    assert (loss.count, loss.nan_count, loss.min, loss.max, loss.last) == (5, 1, 0.125, 1.0, 0.125)
    assert (loss.first_step, loss.last_step, loss.rank) == (0, 40, 0)
    assert loss.location == "metrics/loss_training_rank0.csv"

    points = {p.series.key: p for p in run.points()}
    assert points["loss/training"].step.tolist() == [0, 10, 20, 30, 40]
    assert points["loss/training"].step.dtype == np.int64
    got = points["loss/training"].value.tolist()
    assert got[:2] + got[3:] == [1.0, 0.5, 0.25, 0.125] and math.isnan(got[2])
    assert points["acc/validation"].step.tolist() == [0, 1] and points["acc/validation"].value.tolist() == ACC
    assert (points["acc/validation"].time > 1e9).all()


@pytest.mark.parametrize("fmt, package", [("txt", None), ("parquet", "pyarrow"), ("netcdf", "netCDF4"), ("zarr", "zarr")])
def test_every_metric_file_format_reads_the_same_points(tmp_path, fmt, package):
    if package:
        pytest.importorskip(package)
    run = runs.read_run(_record(tmp_path, fmt))
    points = {p.series.key: p for p in run.points()}
    assert points["acc/validation"].step.tolist() == [0, 1] and points["acc/validation"].value.tolist() == ACC
    assert points["loss/training"].step.tolist() == [0, 10, 20, 30, 40]


def test_a_failed_run_and_the_status_of_several_ranks(tmp_path):
    with pytest.raises(RuntimeError):
        with prov4ml.run(NS, "bad", str(tmp_path), capture=False):
            prov4ml.log_metric("loss", 1.0, prov4ml.Context.TRAINING, step=0)
            raise RuntimeError("boom")
    run = runs.read_run(tmp_path / "bad" / "run_0")
    assert (run.status, run.error_type, run.error_message) == ("failed", "RuntimeError", "boom")
    assert runs.merge(["finished", "running"]) == "running"
    assert runs.merge(["finished", "failed", "terminated"]) == "failed"
    assert runs.merge([None, "finished"]) == "running"


def test_finding_runs(tmp_path):
    for _ in range(11):
        prov4ml.start_run(NS, "exp", str(tmp_path), capture=False)
        prov4ml.end_run()
    found = runs.find_run_dirs(tmp_path)
    assert [d.name for d in found] == [f"run_{i}" for i in range(11)]  # run_10 after run_9
    assert runs.find_run_dirs(tmp_path / "exp" / "run_3") == [tmp_path / "exp" / "run_3"]
    assert runs.resolve_run("exp/4", base=tmp_path) == tmp_path / "exp" / "run_4"
    assert sorted(runs.walk(tmp_path)) == sorted(found)  # by name: the UI orders them itself
    with pytest.raises(ProvFileError, match="holds no runs"):
        runs.find_run_dirs(tmp_path / "exp" / "run_3" / "metrics")
    with pytest.raises(ProvFileError, match="holds no prov_rank<k>.json"):
        runs.read_run(tmp_path / "exp")


# -- the base install shows a run: no pandas, no matplotlib ---------------------------------------
@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    where = tmp_path_factory.mktemp("quickstart")
    subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--epochs", "2"], cwd=where,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True, timeout=300)
    blocker = where / "no_extras"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text('import sys\nsys.modules["pandas"] = None\nsys.modules["matplotlib"] = None\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)]), "COLUMNS": "200"}
    return where, env


def _prov4ml(env, cwd, *args):
    out = subprocess.run([sys.executable, "-m", "prov4ml", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_neither_pandas_nor_matplotlib_can_be_imported_there(quickstart):
    where, env = quickstart
    for module in ("pandas", "matplotlib"):
        out = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=where, env=env, capture_output=True, text=True)
        assert out.returncode == 1 and "ModuleNotFoundError" in out.stderr, module


def test_compare_ls_and_show_without_pandas(quickstart):
    where, env = quickstart
    run = runs.read_run(where / "prov" / "quickstart" / "run_0")
    assert run.status == "finished"
    compared = _prov4ml(env, where, "compare", "quickstart", "--json")
    (row,) = json.loads(compared)["runs"]
    assert row["run"] == "quickstart/run_0" and row["status"] == "finished"
    assert row["epochs"] == 2 and row["batch_size"] == 32 and row["hidden"] == 32
    loss = next(s for s in run.series if s.key == "loss/training")
    assert row["loss/training last"] == loss.last and row["loss/training best"] == loss.min
    assert row["final/val_loss"] == run.final_metrics["val_loss"]
    table = _prov4ml(env, where, "compare", "quickstart")
    assert "quickstart/run_0" in table and "val_loss/validation last" in table
    listed = json.loads(_prov4ml(env, where, "ls", "--json"))
    assert [r["run"] for r in listed] == ["quickstart/run_0"] and listed[0]["status"] == "finished"
    assert "batch_size" in _prov4ml(env, where, "show", "quickstart/run_0")


def test_report_without_pandas_or_matplotlib(quickstart):
    where, env = quickstart
    run_dir = where / "prov" / "quickstart" / "run_0"
    written = _prov4ml(env, where, "report", str(run_dir)).strip()
    assert Path(where, written).resolve() == (run_dir / "report.html").resolve()
    text = (run_dir / "report.html").read_text()
    run = runs.read_run(run_dir)
    charts = re.findall(r'<script type="application/json" class="p4spec">', text)
    assert len(charts) == len({s.key for s in run.series}) == 3  # one chart per series (drawn by the inline plot.js)
    assert "<td>batch_size</td>" in text and "val_loss (validation)" in text and "finished" in text
    written = _prov4ml(env, where, "report", "quickstart").strip()
    assert "run 0" in Path(where, written).read_text()


def test_ui_without_pandas_or_matplotlib(quickstart):
    where, env = quickstart
    proc = subprocess.Popen([sys.executable, "-m", "prov4ml", "ui", "prov", "--port", "0"], cwd=where, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"at (http://\S+/) ", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = m.group(1)

        def get(path):
            with urllib.request.urlopen(url + path, timeout=60) as answer:
                assert answer.status == 200
                return answer.read().decode()

        assert "quickstart" in get("") and "run_0" in get("")
        page = get("run/quickstart/run_0")
        assert "batch_size" in page and "val_loss" in page and 'data-status="finished"' in page
        run = runs.read_run(where / "prov" / "quickstart" / "run_0")
        points = json.loads(get("api/points/quickstart/run_0"))
        got = {s["key"]: s for s in points["series"]}
        for p in run.points():
            key = f"{p.series.name}/{p.series.context}/{p.series.rank}"
            assert got[key]["step"] == p.step.tolist() and got[key]["value"] == p.value.tolist()
        assert "quickstart" in get("experiment/quickstart")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode is not None


# -- one reader -------------------------------------------------------------------------------------
#: Where run documents and metric files may be parsed: the reader, and the writers (and recover) that read
#: back what they wrote.
READER_PLACES = ("prov4ml/runs/", "prov4ml/metrics/", "prov4ml/provenance/", "prov4ml/run/recovery.py")
#: JSON that is not a run document: the storage's manifests, a lock's owner, a child process's answer, a
#: query string.
OTHER_JSON = {
    "prov4ml/storage/remote.py", "prov4ml/storage/mirror.py", "prov4ml/records/state.py", "prov4ml/run/capture.py",
    "prov4ml/ui/server.py", "prov4ml/storage/lease.py", "prov4ml/sweep.py",  # leases, a sweep's trial markers
}
#: The user's own files (artifacts) shown as previews: never a run document or a metric file.
ARTIFACT_PREVIEWS = {"prov4ml/ui/previews.py"}
PARSING = re.compile(r"\bjson\.loads?\(|\bcsv\.(reader|DictReader)\(|\bread_csv\(|\bloadtxt\(|\bgenfromtxt\(|"
                     r"\bfromfile\(|\bread_prov\(")


def test_one_reader_parses_run_documents_and_metric_files():
    found = []
    for path in sorted((ROOT / "prov4ml").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(READER_PLACES) or rel in ARTIFACT_PREVIEWS:
            continue
        code = "\n".join(_code_lines(path))
        for m in PARSING.finditer(code):
            if m.group(0).startswith("json.load") and rel in OTHER_JSON:
                continue
            found.append(f"{rel}: {m.group(0)}")
    # drawing a graph needs the prov object model of one document: the UI and the report ask provenance/ for it
    allowed = {"prov4ml/ui/graph.py: read_prov(", "prov4ml/analysis/report.py: read_prov("}
    assert sorted(set(found) - allowed) == []


def _code_lines(path):
    """The source lines of ``path`` without docstrings and comments."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if i not in docs:
            yield line.split("#", 1)[0]


def test_the_readers_of_cli_ui_and_analysis_are_gone():
    assert not (ROOT / "prov4ml" / "cli" / "_runs.py").exists()
    for rel in ("ui/store.py", "analysis/load.py", "cli/ls.py", "cli/show.py", "compat/getters.py"):
        text = (ROOT / "prov4ml" / rel).read_text()
        assert "import json\n" not in text or rel == "ui/store.py", rel
        assert "prov.model" not in text and "read_prov" not in text, rel
