"""prov4ml.analysis: real runs recorded with prov4ml, read back from disk."""

import math
import subprocess
import sys
import warnings
from html.parser import HTMLParser

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

import prov4ml  # noqa: E402
from conftest import ROOT  # noqa: E402
from prov4ml import analysis  # noqa: E402
from prov4ml.exceptions import InvalidValueError, MissingDependencyError, ProvFileError  # noqa: E402

NS = "www.example.org"
LRS = (0.1, 0.01, 0.001)


def _train(run_index, lr, rank=0):
    """Two epochs: loss in training and validation, an accuracy, a model version per epoch."""
    import torch

    model = torch.nn.Linear(2, 1)
    prov4ml.log_params({"lr": lr, "epochs": 2, "optimizer": "sgd", "nesterov": run_index % 2 == 0})
    prov4ml.register_final_metric("loss", math.inf, prov4ml.FoldOperation.MIN)
    for epoch in range(2):
        prov4ml.log_metric("loss", 1.0 / (epoch + 1) + run_index + rank, prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_metric("loss", 2.0 / (epoch + 1) + run_index + rank, prov4ml.Context.VALIDATION, step=epoch)
        prov4ml.log_metric("acc", 0.5 + 0.25 * epoch, prov4ml.Context.VALIDATION, step=epoch)
        prov4ml.save_model_version(model, "net", prov4ml.Context.TRAINING, step=epoch)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Three runs of experiment 'exp'; run 0 of experiment 'ddp' with ranks 0 and 1."""
    base = tmp_path_factory.mktemp("prov")
    for i, lr in enumerate(LRS):
        prov4ml.start_run(NS, "exp", str(base), capture=False)
        _train(i, lr)
        prov4ml.end_run(create_graph=(i == 0))
    for rank in (0, 1):
        prov4ml.start_run(NS, "ddp", str(base), capture=False, rank=rank, collect_all_processes=True, run_id=0)
        _train(0, 0.1, rank=rank)
        prov4ml.end_run()
    return base


def test_load_run_params_metrics_summary_info(recorded):
    run = analysis.load_run(recorded / "exp" / "run_1")
    assert run.params == {"lr": 0.01, "epochs": 2, "optimizer": "sgd", "nesterov": False}
    assert type(run.params["epochs"]) is int and type(run.params["nesterov"]) is bool

    m = run.metrics
    assert list(m.columns) == ["name", "context", "rank", "step", "value", "time"]
    assert len(m) == 6
    val = m[(m["name"] == "loss") & (m["context"] == "validation")]
    assert val["step"].tolist() == [0, 1] and val["value"].tolist() == [3.0, 2.0]
    assert val["rank"].tolist() == [0, 0] and (val["time"] > 1e9).all()

    s = run.summary.set_index(["name", "context"])
    assert s.loc[("loss", "training"), ["count", "min", "max", "last", "mean"]].tolist() == [2, 1.5, 2.0, 1.5, 1.75]
    assert s.loc[("acc", "validation"), "last"] == 0.75
    assert s.loc[("loss", "training"), "rank"] == 0

    info = run.info
    assert info["run_id"] == 1 and info["experiment"] == "exp" and info["status"] == "finished"
    assert info["ranks"] == [0] and info["error_type"] is None
    assert info["start_time"] <= info["end_time"] and info["duration_s"] >= 0
    assert info["final_metrics"] == {"loss": 1.5} and info["final_folds"] == {"loss": "min"}
    assert run.run_id == 1 and run.experiment == "exp"

    versions = run.artifacts[run.artifacts["kind"] == "model_version"]
    assert versions["version"].tolist() == [0, 1] and versions["step"].tolist() == [0, 1]
    assert versions["location"].tolist() == ["artifacts/models/net/net_step0.pt", "artifacts/models/net/net_step1.pt"]
    assert set(versions["model_name"]) == {"net"}


def test_load_run_of_two_ranks(recorded):
    run = analysis.load_run(recorded / "ddp" / "run_0")
    assert run.ranks == [0, 1] and run.info["ranks"] == [0, 1]
    assert sorted(run.rank_info) == [0, 1] and run.rank_info[1]["rank"] == 1
    m = run.metrics
    train = m[(m["name"] == "loss") & (m["context"] == "training")]
    assert train.groupby("rank")["value"].apply(list).to_dict() == {0: [1.0, 0.5], 1: [2.0, 1.5]}
    assert len(run.summary) == 6 and sorted(set(run.summary["rank"])) == [0, 1]
    assert set(run.artifacts["rank"]) == {0, 1}


def test_load_experiment(recorded):
    exp = analysis.load_experiment(recorded / "exp")
    assert [r.run_id for r in exp.runs] == [0, 1, 2]
    assert exp.metrics.columns[0] == "run_id" and len(exp.metrics) == 18
    assert exp.params.set_index("run_id")["lr"].to_dict() == dict(enumerate(LRS))
    assert exp.summary.groupby("run_id").size().tolist() == [3, 3, 3]
    assert exp.info["status"].tolist() == ["finished"] * 3
    assert exp.run(2).params["lr"] == 0.001
    with pytest.raises(InvalidValueError, match="runs: 0, 1, 2"):
        exp.run(7)


def test_compare_runs(recorded):
    table = analysis.compare_runs(recorded / "exp")
    assert list(table.columns[:3]) == ["run_id", "experiment", "status"]
    assert {"lr", "epochs", "optimizer", "nesterov", "final/loss"} <= set(table.columns)
    for col in ("loss/training/last", "loss/training/min", "loss/training/max",
                "loss/validation/last", "loss/validation/min", "loss/validation/max", "acc/validation/max"):
        assert col in table.columns, col
    t = table.set_index("run_id")
    assert t["loss/validation/min"].tolist() == [1.0, 2.0, 3.0]
    assert t["loss/validation/max"].tolist() == [2.0, 3.0, 4.0]
    assert t["loss/training/last"].tolist() == [0.5, 1.5, 2.5]
    assert t["lr"].tolist() == list(LRS)

    only = analysis.compare_runs([recorded / "exp" / "run_0", recorded / "exp" / "run_2"], metrics=["loss/validation"])
    assert only["run_id"].tolist() == [0, 2]
    assert [c for c in only.columns if c.count("/") == 2] == ["loss/validation/last", "loss/validation/min", "loss/validation/max"]
    with pytest.raises(InvalidValueError, match="known: acc, loss"):
        analysis.compare_runs(recorded / "exp", metrics="val_loss")

    ddp = analysis.compare_runs(recorded / "ddp").iloc[0]  # min/max over the ranks, last of rank 0
    assert ddp["loss/training/min"] == 0.5 and ddp["loss/training/max"] == 2.0 and ddp["loss/training/last"] == 0.5


def test_plot_metric_lines(recorded):
    exp = analysis.load_experiment(recorded / "exp")
    ax = analysis.plot_metric(exp, "loss", "validation")
    assert len(ax.get_lines()) == 3
    assert [tuple(line.get_ydata()) for line in ax.get_lines()] == [(2.0, 1.0), (3.0, 2.0), (4.0, 3.0)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run 0", "run 1", "run 2"]
    assert type(ax).__name__ == "Axes" and ax.get_xlabel() == "step"

    assert len(analysis.plot_metric(exp.runs[0], "loss").get_lines()) == 2  # two contexts
    ddp = analysis.load_run(recorded / "ddp" / "run_0")
    ax2 = analysis.plot_metric(ddp, "loss", "training", ax=ax.figure.add_subplot(212))
    assert len(ax2.get_lines()) == 2 and ax2.figure is ax.figure  # one per rank, on the given Axes
    with pytest.raises(InvalidValueError, match="metrics: acc, loss"):
        analysis.plot_metric(exp, "nope")
    with pytest.raises(InvalidValueError, match="contexts of 'acc': validation"):
        analysis.plot_metric(exp, "acc", "training")


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.imgs, self.links, self.text, self.charts, self.scripts = [], [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(attrs["src"])
        if tag == "a" and "href" in attrs:  # Graphviz's nodes are <a> with a tooltip only
            self.links.append(attrs["href"])
        if tag == "svg" and attrs.get("class") == "chart":
            self.charts.append(attrs)
        if tag == "script":
            self.scripts.append(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_report(recorded, tmp_path):
    run_dir = recorded / "exp" / "run_0"
    out = analysis.html_report(run_dir, tmp_path / "reports" / "run0.html")
    assert out == tmp_path / "reports" / "run0.html"
    page = _Collect()
    page.feed(out.read_text(encoding="utf-8"))
    text = " ".join(page.text)
    for needle in ("lr", "0.1", "optimizer", "sgd", "finished", "net v1 (step 1)", "final loss (min)"):
        assert needle in text, needle
    assert sum(s.get("class") == "p4spec" for s in page.scripts) == 3 and not page.imgs  # a chart per series, drawn by plot.js
    assert "link" not in page.tags and all("src" not in s for s in page.scripts)  # self-contained
    assert not any(link.startswith("http") for link in page.links)
    # relative links to the run's document, its graph (written with create_graph) and its artifacts
    targets = {(out.parent / link).resolve() for link in page.links}
    assert (run_dir / "prov_rank0.json").resolve() in targets and (run_dir / "prov_rank0.dot").resolve() in targets
    assert (run_dir / "artifacts" / "models" / "net" / "net_step1.pt").resolve() in targets

    default = analysis.html_report(recorded / "ddp" / "run_0")
    assert default == recorded / "ddp" / "run_0" / "report.html" and "rank 1" in default.read_text()


def test_bad_input(tmp_path):
    with pytest.raises(ProvFileError, match="no such directory"):
        analysis.load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProvFileError, match="no prov_rank<k>.json"):
        analysis.load_run(tmp_path / "empty")
    with pytest.raises(ProvFileError, match="holds no runs"):
        analysis.load_experiment(tmp_path / "empty")
    bad = tmp_path / "bad" / "run_0"
    bad.mkdir(parents=True)
    (bad / "prov_rank0.json").write_text('{"entity": {"ex:a": ')
    with pytest.raises(ProvFileError, match="prov_rank0.json is cut short"):
        analysis.load_run(bad)
    (bad / "prov_rank0.json").write_text('{"prefix": {"ex": "http://example.org/"}, "entity": {"ex:a": {}}}')
    with pytest.raises(ProvFileError, match="not a prov4ml run document"):
        analysis.load_run(bad)


def test_missing_metric_file_is_named(tmp_path):
    prov4ml.start_run(NS, "exp", str(tmp_path), capture=False)
    prov4ml.log_metric("loss", 1.0, step=0)
    run_dir = prov4ml.active_run().run_dir
    prov4ml.end_run()
    (run_dir / "metrics" / "loss_training_rank0.csv").unlink()
    with pytest.raises(ProvFileError, match="loss_training_rank0.csv: metric file missing"):
        analysis.load_run(run_dir)


def test_failed_run_nan_separator_and_changed_param(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with prov4ml.run(NS, "exp", str(tmp_path), capture=False, csv_separator=";"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prov4ml.log_param("lr", 0.1)
                prov4ml.log_param("lr", 0.05)  # changed: both kept, the last is the value
            for step, v in enumerate([1.0, float("nan"), float("inf")]):
                prov4ml.log_metric("loss", v, step=step)
            1 / 0
    run = analysis.load_run(tmp_path / "exp" / "run_0")
    assert run.params == {"lr": 0.05}
    assert run.info["status"] == "failed" and run.info["error_type"] == "ZeroDivisionError"
    values = run.metrics["value"].tolist()
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf
    assert run.summary.loc[0, "nan_count"] == 1
    assert "failed" in analysis.html_report(run, tmp_path / "r.html").read_text()


def test_empty_run(tmp_path):
    prov4ml.start_run(NS, "exp", str(tmp_path), capture=False)
    prov4ml.end_run()
    run = analysis.load_run(tmp_path / "exp" / "run_0")
    assert run.params == {} and run.metrics.empty and list(run.metrics.columns) == analysis.METRIC_COLUMNS
    assert "none recorded" in analysis.html_report(run).read_text()
    assert analysis.compare_runs(tmp_path / "exp")["status"].tolist() == ["finished"]


def test_parquet_metrics(tmp_path):
    pytest.importorskip("pyarrow")
    prov4ml.start_run(NS, "exp", str(tmp_path), capture=False, metrics_file_type="parquet")
    prov4ml.log_metric("loss", 0.25, step=3)
    prov4ml.end_run()
    m = analysis.load_run(tmp_path / "exp" / "run_0").metrics
    assert m[["step", "value"]].values.tolist() == [[3, 0.25]]


def test_missing_extra_names_it(recorded, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(MissingDependencyError, match=r'prov4ml\[analysis\]'):
        analysis.load_run(recorded / "exp" / "run_0")
    assert analysis.main(["compare", "--experiment_path", str(recorded / "exp")]) == 3
    assert 'pip install "prov4ml[analysis]"' in capsys.readouterr().err


def test_import_prov4ml_imports_neither_pandas_nor_matplotlib():
    code = (
        "import sys, prov4ml, prov4ml.analysis\n"
        "print(sorted(m for m in ('pandas', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- command line -----------------------------------------------------------------
def test_cli_compare_in_process(recorded, tmp_path, capsys):
    assert analysis.main(["compare", "--experiment_path", str(recorded / "exp")]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("run_id,experiment,status,lr,")
    out = tmp_path / "cmp.csv"
    assert analysis.main(["compare", "--experiment_path", str(recorded / "exp"), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    table = pd.read_csv(out)
    assert table["run_id"].tolist() == [0, 1, 2] and table["loss/validation/min"].tolist() == [1.0, 2.0, 3.0]

    assert analysis.main(["compare", "--experiment_path", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prov4ml.analysis: error: ") and "no such directory" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        analysis.main(["report"])  # --run_dir is required
    assert exc.value.code == 2


def test_cli_subprocess(recorded, tmp_path):
    out = tmp_path / "report.html"
    ok = subprocess.run(
        [sys.executable, "-m", "prov4ml.analysis", "report", "--run_dir", str(recorded / "exp" / "run_2"), "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == str(out)
    assert 'class="p4spec"' in out.read_text() and "0.001" in out.read_text()

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "prov_rank0.json").write_text("[1, 2]")
    bad = subprocess.run(
        [sys.executable, "-m", "prov4ml.analysis", "report", "--run_dir", str(tmp_path / "bad")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == f"prov4ml.analysis: error: {tmp_path / 'bad' / 'prov_rank0.json'} is JSON but not PROV-JSON (a list, not an object)"
    assert not (tmp_path / "bad" / "report.html").exists()
