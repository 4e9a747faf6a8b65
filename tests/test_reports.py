"""The HTML reports of prov4ml.analysis on real runs: environment, graph, errors, ranks, same-step points,
experiments and sweeps, metric selection, progress."""

import html
import json
import re
import socket
import shutil
import statistics
import subprocess
import sys
from html.parser import HTMLParser

import pytest

pd = pytest.importorskip("pandas")

import prov4ml  # noqa: E402
from conftest import ROOT, entities_of_type, load_json  # noqa: E402
from prov4ml import analysis  # noqa: E402
from prov4ml.analysis._html import SORT_JS  # noqa: E402

STATIC = ROOT / "prov4ml" / "ui" / "static"
PLOT_JS = (STATIC / "plot.js").read_text()
ECHARTS = (STATIC / "vendor" / "echarts.min.js").read_text()
from prov4ml.exceptions import InvalidValueError  # noqa: E402

NS = "www.example.org"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

# Per epoch, the batch losses logged with step=epoch: binary fractions, so every mean is exact.
BATCHES = {0: [1.0, 0.75, 0.5, 0.25], 1: [0.5, 0.25, 0.125], 2: [0.25, 0.125, 0.0625, 0.5, 0.0]}


class Page(HTMLParser):
    """A report's tables (header, rows of cell texts), figure captions, top-level SVGs, scripts, error boxes."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.captions, self.svgs, self.scripts, self.errors = [], [], [], [], []
        self.specs = []  # the charts' JSON, drawn by plot.js in the browser
        self.svg_texts = []
        self._buf = {}
        self._row = None
        self._in_head = False
        self._svg_depth = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"head": [], "rows": []})
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._buf["cell"] = []
        elif tag == "figcaption":
            self._buf["caption"] = []
        elif tag == "script":
            self.scripts.append(attrs)
            self._buf["script"] = []
        elif tag == "div" and attrs.get("class") == "error":
            self._buf["error"] = []
        elif tag == "svg":
            if self._svg_depth == 0:
                self.svgs.append(attrs)
                self.svg_texts.append([])
            self._svg_depth += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append("".join(self._buf.pop("cell")).strip())
        elif tag == "thead":
            self._in_head = False
        elif tag == "tr":
            if self._in_head:
                self.tables[-1]["head"] = self._row
            else:
                self.tables[-1]["rows"].append(self._row)
        elif tag == "figcaption":
            self.captions.append("".join(self._buf.pop("caption")))
        elif tag == "script":
            self.scripts[-1]["text"] = "".join(self._buf.pop("script"))
            if self.scripts[-1].get("class") == "p4spec":
                self.specs.append(json.loads(self.scripts[-1]["text"]))
        elif tag == "div" and "error" in self._buf:
            self.errors.append("".join(self._buf.pop("error")))
        elif tag == "svg":
            self._svg_depth -= 1

    def handle_data(self, data):
        for sink in self._buf.values():
            sink.append(data)
        if self._svg_depth:
            self.svg_texts[-1].append(data)

    def table(self, first_header):
        """The tables whose first header is ``first_header``."""
        return [t for t in self.tables if t["head"][:1] == [first_header]]

    def rows(self, table):
        return [dict(zip(table["head"], row)) for row in table["rows"]]


def parse(path):
    return Page(path.read_text(encoding="utf-8"))


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.email=a@b.c", "-c", "user.name=t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


TRAIN = """
import prov4ml
prov4ml.start_run("www.example.org", "env", "prov")
for epoch, losses in {batches!r}.items():
    for loss in losses:
        prov4ml.log_metric("loss", loss, prov4ml.Context.TRAINING, step=epoch)
    prov4ml.log_current_execution_time("epoch_time", prov4ml.Context.TRAINING, step=epoch)
prov4ml.end_run()
"""


@pytest.fixture(scope="module")
def env_run(tmp_path_factory):
    """A run of a script in a git repository with an uncommitted change, environment captured."""
    repo = tmp_path_factory.mktemp("repo")
    _git(repo, "init", "-q", "-b", "trunk")
    (repo / "train.py").write_text(TRAIN.format(batches=BATCHES))
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "script")
    (repo / "train.py").write_text(TRAIN.format(batches=BATCHES) + "# edited\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    proc = subprocess.run([sys.executable, "train.py", "--lr", "0.1"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return repo, repo / "prov" / "env" / "run_0", _git(repo, "rev-parse", "HEAD")


def test_environment_as_recorded(env_run, tmp_path):
    repo, run_dir, commit = env_run
    data = load_json(run_dir / "prov_rank0.json")
    (env,) = entities_of_type(data, "provml:Environment").values()
    (plan,) = entities_of_type(data, "prov:Plan").values()
    torch_line = next(line for line in (run_dir / "artifacts/environment/packages.txt").read_text().splitlines()
                      if line.startswith("torch=="))
    command = data["activity"]["ex:env.run_0.rank0"]["provml:command"]

    run = analysis.load_run(run_dir)
    assert run.environment["python"] == env["provml:python"]
    assert run.environment["torch"] == torch_line.split("==")[1]
    (host,) = [a for a in data["agent"].values() if "provml:Host" in str(a.get("prov:type"))]
    assert run.environment["host"] == host["prov:label"] == socket.gethostname()
    assert run.environment["git_commit"] == commit == plan["provml:git_commit"]
    assert run.environment["git_branch"] == "trunk" and run.environment["git_dirty"] is True
    assert run.environment["command"] == command and command.endswith("train.py --lr 0.1")

    page = parse(analysis.html_report(run, tmp_path / "r.html", progress=False))
    (table,) = [t for t in page.table("field") if t["rows"] and t["rows"][0][0] == "Python"]
    fields = dict(row[:2] for row in table["rows"])
    assert fields["Python"] == env["provml:python"]
    assert fields["torch"] == torch_line.split("==")[1]
    assert fields["host"] == host["prov:label"]
    assert fields["git commit"] == commit and fields["git branch"] == "trunk"
    assert fields["git dirty (uncommitted changes)"] == "True"
    assert fields["command"] == command


def test_units_on_axes_and_readable_duration(env_run, tmp_path):
    _repo, run_dir, _commit = env_run
    run = analysis.load_run(run_dir)
    assert run.summary.set_index("name").loc["epoch_time", "unit"] == "s"
    page = parse(analysis.html_report(run, tmp_path / "r.html", progress=False))
    ylabels = {spec["title"]: spec["ylabel"] for spec in page.specs}
    assert ylabels["epoch_time (training)"] == "epoch_time [s]"  # the y axis names the unit
    assert ylabels["loss (training)"] == "loss"  # no unit recorded: the name alone
    (info,) = [t for t in page.table("field") if t["rows"][0][0] == "run_id"]
    duration = dict(row[:2] for row in info["rows"])["duration"]
    assert duration == analysis.format_duration(run.info["duration_s"])


def test_format_duration():
    cases = {0.35: "350 ms", 4.25: "4.2 s", 59.94: "59.9 s", 187: "3 min 07 s", 7500: "2 h 05 min",
             3 * 86400 + 4 * 3600 + 59: "3 d 4 h", None: ""}
    assert {k: analysis.format_duration(k) for k in cases} == cases


def test_same_step_points_are_aggregated_per_step(env_run, tmp_path):
    _repo, run_dir, _commit = env_run
    run = analysis.load_run(run_dir)
    points = run.metrics[run.metrics["name"] == "loss"]
    line = analysis.line_data(points, "loss")
    assert line.mode == "step mean" and line.points == sum(map(len, BATCHES.values()))
    assert line.x.tolist() == list(BATCHES)
    assert line.y.tolist() == [statistics.mean(v) for v in BATCHES.values()]
    assert line.low.tolist() == [min(v) for v in BATCHES.values()]
    assert line.high.tolist() == [max(v) for v in BATCHES.values()]
    assert line.count.tolist() == [len(v) for v in BATCHES.values()]

    ordered = analysis.line_data(points, "loss", same_step="order")
    assert ordered.mode == "order" and ordered.x.tolist() == list(range(12))
    assert ordered.y.tolist() == [v for vs in BATCHES.values() for v in vs]
    single = analysis.line_data(run.metrics[run.metrics["name"] == "epoch_time"])
    assert single.mode == "step" and single.low is None and single.note == ""
    with pytest.raises(InvalidValueError, match="known: aggregate, order"):
        analysis.line_data(points, same_step="max")

    # the report and plot_metric say what was done
    page = parse(analysis.html_report(run, tmp_path / "r.html", progress=False))
    (caption,) = [c for c in page.captions if c.startswith("loss (training)")]
    assert "several points per step (up to 5): mean per step, band min–max" in caption
    pytest.importorskip("matplotlib")
    ax = analysis.plot_metric(run, "loss")
    assert ax.get_lines()[0].get_ydata().tolist() == line.y.tolist()
    assert len(ax.collections) == 1  # the min–max band
    assert "mean per step" in ax.get_xlabel()
    ax = analysis.plot_metric(run, "loss", same_step="order")
    assert ax.get_lines()[0].get_xdata().tolist() == list(range(12)) and ax.get_xlabel().startswith("point (logged order)")
    assert analysis.plot_metric(run, "epoch_time").get_ylabel() == "epoch_time [s]"


@needs_dot
def test_graph_inline_as_svg(env_run, tmp_path):
    _repo, run_dir, _commit = env_run
    page = parse(analysis.html_report(run_dir, tmp_path / "r.html", progress=False))
    graphs = [s for s in page.svgs if s.get("class") != "chart"]
    assert len(graphs) == 1 and graphs[0]["class"] == "prov-graph"  # Graphviz's drawing of rank 0's document
    assert graphs[0]["width"] == "100%" and "height" not in graphs[0] and graphs[0]["viewbox"]  # fits the page
    text = " ".join("".join(t) for t in page.svg_texts)
    assert "env run 0 rank 0" in text and "loss" in text  # the run activity and the series entity are nodes


def test_graph_without_dot_is_a_note(env_run, tmp_path, monkeypatch):
    _repo, run_dir, _commit = env_run
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on PATH
    out = analysis.html_report(run_dir, tmp_path / "r.html", progress=False)
    page = parse(out)
    assert page.svgs == [] and len(page.specs) == 2  # no graph; the two charts are drawn in the browser
    assert "Graphviz's dot program is not on PATH; install Graphviz" in html.unescape(out.read_text())


def test_failed_run_shows_its_error(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with prov4ml.run(NS, "exp", str(tmp_path), capture=False):
            prov4ml.log_metric("loss", 1.0, step=0)
            1 / 0
    out = analysis.html_report(tmp_path / "exp" / "run_0", progress=False)
    page = parse(out)
    assert page.errors == ["ZeroDivisionError: division by zero"]
    assert 'class="status" style="background:#c62828">failed<' in out.read_text()


def _two_ranks(base):
    for rank in (0, 1):
        prov4ml.start_run(NS, "ddp", str(base), capture=False, rank=rank, collect_all_processes=True, run_id=0)
        for step in range(3):
            prov4ml.log_metric("loss", 1.0 + rank + step, prov4ml.Context.TRAINING, step=step)
        prov4ml.end_run()
    return base / "ddp" / "run_0"


def test_rank_column_for_a_two_rank_run(tmp_path):
    out = analysis.html_report(_two_ranks(tmp_path), progress=False)
    page = parse(out)
    (summary,) = page.table("name")[:1]
    assert summary["head"][:3] == ["name", "context", "rank"]
    assert [(r["name"], r["rank"], r["last"]) for r in page.rows(summary)] == [("loss", "0", "3"), ("loss", "1", "4")]
    (ranks,) = page.table("rank")
    assert [r[:2] for r in ranks["rows"]] == [["0", "finished"], ["1", "finished"]]
    (caption,) = page.captions
    assert "rank 0" in caption and "rank 1" in caption  # the legend


def test_no_rank_column_for_one_rank(tmp_path):
    prov4ml.start_run(NS, "one", str(tmp_path), capture=False)
    prov4ml.log_metric("loss", 1.0, step=0)
    prov4ml.end_run()
    page = parse(analysis.html_report(tmp_path / "one" / "run_0", progress=False))
    assert "rank" not in page.table("name")[0]["head"] and not page.table("rank")


# -- metrics= ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def many_series(tmp_path_factory):
    base = tmp_path_factory.mktemp("many")
    prov4ml.start_run(NS, "sel", str(base), capture=False)
    for step in range(3):
        prov4ml.log_metric("loss", 1.0 / (step + 1), prov4ml.Context.TRAINING, step=step)
        prov4ml.log_metric("loss", 2.0 / (step + 1), prov4ml.Context.VALIDATION, step=step)
        prov4ml.log_metric("acc", 0.5, prov4ml.Context.VALIDATION, step=step)
        prov4ml.log_metric("loss_scale", 8.0, prov4ml.Context.TRAINING, step=step)
        prov4ml.log_metric("gpu0_util", 50.0, prov4ml.Context.TRAINING, step=step)
    prov4ml.end_run()
    return base / "sel" / "run_0"


@pytest.mark.parametrize("metrics, chosen", [
    (["loss"], {("loss", "training"), ("loss", "validation")}),
    (["loss*"], {("loss", "training"), ("loss", "validation"), ("loss_scale", "training")}),
    (["*/validation"], {("loss", "validation"), ("acc", "validation")}),
    (["acc", "gpu?_*"], {("acc", "validation"), ("gpu0_util", "training")}),
    ("loss/training", {("loss", "training")}),
])
def test_metrics_selects_exactly_the_matching_series(many_series, tmp_path, metrics, chosen):
    page = parse(analysis.html_report(many_series, tmp_path / "r.html", metrics=metrics, progress=False))
    summary = page.table("name")[0]
    assert {(r["name"], r["context"]) for r in page.rows(summary)} == chosen
    assert {c.split(":")[0] for c in page.captions} == {f"{n} ({c})" for n, c in chosen}
    table = analysis.compare_runs(many_series, metrics=metrics, stats=("last",))
    assert {tuple(c.split("/")[:2]) for c in table.columns if c.endswith("/last")} == chosen


def test_metrics_matching_nothing_is_an_error(many_series):
    with pytest.raises(InvalidValueError, match=r"no metric series \['val\*'\].*known: acc, gpu0_util, loss, loss_scale"):
        analysis.html_report(many_series, metrics=["val*"])


# -- experiments and sweeps -------------------------------------------------------------
SWEEP = {0.1: [0.5, 0.75, 0.625], 0.01: [0.25, 0.375, 0.3125]}  # lr -> last accuracy of each repetition


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Three repetitions (seed 0, 1, 2) of two configurations (lr), and one more run of another kind."""
    base = tmp_path_factory.mktemp("sweep")
    for lr, accs in SWEEP.items():
        for seed, acc in enumerate(accs):
            prov4ml.start_run(NS, "grid", str(base), capture=False)
            prov4ml.log_params({"lr": lr, "seed": seed, "sweep.repetition": seed})
            for step in range(3):
                prov4ml.log_metric("acc", acc - 0.125 * (2 - step), prov4ml.Context.VALIDATION, step=step)
            prov4ml.end_run()
    return base / "grid"


def test_sweep_summary_is_mean_and_stdev_of_the_logged_values(sweep_dir):
    table = analysis.sweep_summary(sweep_dir).set_index("lr")
    assert table.loc[0.1, "run_ids"] == [0, 1, 2] and table.loc[0.01, "run_ids"] == [3, 4, 5]
    for lr, accs in SWEEP.items():
        assert table.loc[lr, "runs"] == 3
        assert table.loc[lr, "acc/validation/mean"] == statistics.mean(accs)
        assert table.loc[lr, "acc/validation/std"] == statistics.stdev(accs)
    assert "seed" not in table.columns and "sweep.repetition" not in table.columns
    assert analysis.configuration({"lr": 0.1, "seed": 3, "sweep.trial": 4}) == {"lr": 0.1}


def test_spread_over_the_runs_of_a_configuration(sweep_dir):
    exp = analysis.load_experiment(sweep_dir)
    for first, (lr, accs) in zip((0, 3), SWEEP.items()):
        lines = [analysis.line_data(exp.run(i).metrics) for i in range(first, first + 3)]
        spread = analysis.spread_data(lines, f"lr={lr}")
        assert spread.mode == "runs mean" and spread.x.tolist() == [0, 1, 2] and spread.count.tolist() == [3, 3, 3]
        for step in range(3):
            logged = [acc - 0.125 * (2 - step) for acc in accs]
            mean, std = statistics.mean(logged), statistics.stdev(logged)
            assert (spread.y[step], spread.low[step], spread.high[step]) == (mean, mean - std, mean + std)


def test_a_real_sweep_groups_by_configuration(tmp_path):
    from prov4ml.sweep import configurations, sweep

    def fn(config, seed):
        return (seed % 64) / 64 + config["lr"]  # a dyadic-ish number of the seed: every repetition differs

    results = sweep(fn, configurations({"lr": [0.5, 0.25], "depth": [2]}), experiment_name="real",
                    provenance_save_dir=str(tmp_path), repetitions=3, progress=False,
                    start_run_options={"capture": False})
    table = analysis.sweep_summary(tmp_path / "real").set_index("lr")
    assert sorted(table.index) == [0.25, 0.5] and table["runs"].tolist() == [3, 3]
    assert list(table.columns[:1]) == ["depth"] and not any(c.startswith("sweep.") for c in table.columns)
    for lr in (0.5, 0.25):
        values = [r.result for r in results if r.config["lr"] == lr]
        assert table.loc[lr, "result/evaluation/mean"] == statistics.mean(values)
        assert table.loc[lr, "result/evaluation/std"] == statistics.stdev(values)


def test_experiment_report(sweep_dir, tmp_path):
    calls = []
    out = analysis.experiment_report(sweep_dir, tmp_path / "grid.html", progress=lambda *a: calls.append(a))
    assert out == tmp_path / "grid.html"
    page = parse(out)
    (runs,) = page.table("run")
    assert [r["run"] for r in page.rows(runs)] == ["0", "1", "2", "3", "4", "5"]  # exactly the runs
    assert [r["lr"] for r in page.rows(runs)] == ["0.1"] * 3 + ["0.01"] * 3
    assert [r["acc/validation"] for r in page.rows(runs)] == [str(a) for accs in SWEEP.values() for a in accs]
    (sweep,) = page.table("lr")
    cells = {r["lr"]: r["acc/validation"] for r in page.rows(sweep)}
    for lr, accs in SWEEP.items():
        assert cells[str(lr)] == f"{statistics.mean(accs):.6g} ± {statistics.stdev(accs):.6g}"
    spread, overlay = page.captions  # the sweep's chart (a line per configuration), the runs overlaid
    assert "lr=0.1" in spread and "lr=0.01" in spread and "mean over the runs at each step" in spread
    assert [f"run {i}" in overlay for i in range(6)] == [True] * 6
    # the sorting script and the plotting module ship inline; nothing is fetched
    assert all(s.get("src") is None for s in page.scripts) and "prov4mlCompare" in page.scripts[-2]["text"]
    assert PLOT_JS in page.scripts[-1]["text"] and ECHARTS in page.scripts[-1]["text"]
    assert not re.search(r'(src|href)="https?:', out.read_text())
    # progress: six runs loaded, then one series and the write
    assert [c[:2] for c in calls] == [(i, 6) for i in range(1, 7)] + [(1, 2), (2, 2)]


def test_experiment_report_default_output_and_cli(sweep_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "prov4ml.analysis", "report", "--experiment_path", str(sweep_dir), "--metrics", "acc*"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(sweep_dir / "report.html")
    assert proc.stderr == ""  # no terminal: no progress bar


def test_progress_of_a_run_report(many_series, tmp_path):
    calls = []
    analysis.html_report(many_series, tmp_path / "r.html", metrics=["loss"], progress=lambda *a: calls.append(a))
    loading, building = calls[:5], calls[5:]
    assert [c[:2] for c in loading] == [(i, 5) for i in range(1, 6)]  # every metric file read
    assert [c for c in building] == [(1, 4, "loss (training)"), (2, 4, "loss (validation)"), (3, 4, "graph"), (4, 4, "written")]


# -- the sorting script, run by node on the comparisons it makes -----------------------------
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_sort_keys_in_javascript():
    functions = SORT_JS.split("document.querySelectorAll")[0]
    cells = [{"v": "10"}, {"t": "b"}, {"t": ""}, {"v": "9.5"}, {"t": "A"}, {"t": "-3"}]
    code = functions + """
var cells = %s.map(function(c){return {hasAttribute:function(a){return "v" in c;}, getAttribute:function(){return c.v;},
  textContent: c.t || ""};});
var keys = cells.map(prov4mlKey);
keys.sort(prov4mlCompare);
console.log(JSON.stringify(keys));
""" % json.dumps(cells)
    out = subprocess.run(["node", "-e", code], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == [[0, -3], [0, 9.5], [0, 10], [1, "a"], [1, "b"], [2, ""]]


def _on_a_terminal(code, cwd):
    """Run ``code`` with stderr on a pseudo-terminal; returns (exit status, what reached the terminal)."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"})
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=120), seen.decode("utf-8", "replace")


def test_rich_progress_on_a_terminal_and_none_without_rich(many_series, tmp_path):
    pytest.importorskip("rich")
    report = f"from prov4ml import analysis; analysis.html_report({str(many_series)!r}, {str(tmp_path / 'r.html')!r})"
    code, seen = _on_a_terminal(report, tmp_path)
    assert code == 0 and "report: written" in seen and "7/7" in seen  # 5 series, the graph, the write
    code, seen = _on_a_terminal("import sys; sys.modules['rich'] = None\n" + report, tmp_path)
    assert code == 0 and seen == ""  # rich not installed: no bar, no error


def test_reports_need_pandas_only(many_series, tmp_path, monkeypatch):
    from prov4ml.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert analysis.html_report(many_series, tmp_path / "r.html", progress=False).is_file()
    with pytest.raises(MissingDependencyError, match=r'pip install "prov4ml\[analysis\]"'):
        analysis.plot_metric(analysis.load_run(many_series), "loss")


def test_long_lines_are_cut_keeping_their_extremes():
    import numpy as np

    from prov4ml.analysis.plots import BUCKETS, LineData, plot_spec

    x = np.arange(100_000, dtype="float64")
    y = np.sin(x / 1000)
    y[5000], y[7000], y[99_999] = 3.0, -3.0, np.nan
    (line,) = plot_spec([LineData("a", x, y, "step", len(x), time=x + 1e9)], "t", "y")["series"]
    assert len(line["y"]) <= 4 * BUCKETS and line["total"] == 100_000
    kept = [v for v in line["y"] if v is not None]
    assert max(kept) == 3.0 and min(kept) == -3.0 and line["y"][-1] is None  # the spikes both ways, the NaN as null
    assert all(y[int(i)] == v for i, v in zip(line["x"], line["y"]) if v is not None)  # logged points, at their steps
    assert line["t"] == [i + 1e9 for i in line["x"]]


def test_reports_embed_the_uis_plot_module(env_run, tmp_path):
    _repo, run_dir, _commit = env_run
    text = analysis.html_report(run_dir, tmp_path / "r.html", progress=False).read_text()
    assert PLOT_JS in text and ECHARTS in text  # the very files the UI serves: one plotting path


@needs_dot
def test_graph_of_a_big_run_is_collapsed(tmp_path):
    prov4ml.start_run(NS, "big", str(tmp_path), capture=False)
    for i in range(25):
        prov4ml.log_metric(f"m{i:02d}", 1.0, step=0)
    prov4ml.end_run()
    out = analysis.html_report(tmp_path / "big" / "run_0", metrics=["m00"], progress=False)
    page = parse(out)
    text = " ".join("".join(t) for t in page.svg_texts)
    assert "… 15 more" in text  # 10 of the 25 series drawn, the others one node
    assert "At most 10 elements of one kind are drawn" in html.unescape(out.read_text())
