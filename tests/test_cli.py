"""The `prov4ml` console command, run as a real subprocess on run directories made by real runs.

Oracles are the values the runs logged: the table lists exactly the runs, a
filter keeps exactly the matching ones, a sort gives exactly the expected
order, and --json / --csv carry the exact values.
"""

import csv
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

import pytest

import prov4ml
from conftest import ROOT
from prov4ml.cli.main import COMMANDS

NS = "www.example.org"
# run id -> (lr, optimizer, val_loss per epoch, val_acc per epoch); run 3 fails after its first epoch
RUNS = {
    0: (0.1, "sgd", [0.9, 0.6, 0.7], [0.5, 0.7, 0.6]),
    1: (0.03, "adam", [0.8, 0.4, 0.45], [0.55, 0.8, 0.75]),
    2: (0.001, "adam", [0.95, 0.85, 0.8], [0.4, 0.45, 0.5]),
    3: (0.005, "sgd", [0.99], [0.3]),
}
LOSS = [1.0, 0.5, 0.25]
SWEEP_LRS = (0.1, 0.01)
REPS = 3


def _sweep_trial(config, seed):
    """A sweep trial: its result depends on the configuration and on the repetition's seed."""
    return {"score": config["lr"] * 10 + (seed % 7) / 100}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """cwd/prov holding: exp (runs 0-3, run 3 failed), ddp (run 0 with ranks 0 and 1), sweep (2 configs x 3)."""
    cwd = tmp_path_factory.mktemp("cli")
    base = cwd / "prov"
    import torch

    for run_id, (lr, opt, val_loss, val_acc) in RUNS.items():
        try:
            with prov4ml.run(NS, "exp", str(base), capture=False):
                prov4ml.log_params({"lr": lr, "opt": opt, "epochs": len(val_loss)})
                prov4ml.register_final_metric("val_loss", math.inf, prov4ml.FoldOperation.MIN)
                model = torch.nn.Linear(2, 1)
                for epoch, (vl, va) in enumerate(zip(val_loss, val_acc)):
                    prov4ml.log_metric("loss", LOSS[epoch] + run_id, prov4ml.Context.TRAINING, step=epoch)
                    prov4ml.log_metric("val_loss", vl, prov4ml.Context.VALIDATION, step=epoch)
                    prov4ml.log_metric("val_acc", va, prov4ml.Context.VALIDATION, step=epoch)
                    prov4ml.save_model_version(model, "net", prov4ml.Context.TRAINING, step=epoch)
                if run_id == 3:
                    raise RuntimeError("diverged at epoch 1")
        except RuntimeError:
            pass
    for rank in (0, 1):
        prov4ml.start_run(NS, "ddp", str(base), capture=False, rank=rank, collect_all_processes=True, run_id=0)
        prov4ml.log_param("lr", 0.1)
        prov4ml.log_metric("loss", 2.0 + rank, prov4ml.Context.TRAINING, step=0)
        prov4ml.log_metric("loss", 1.0 + rank, prov4ml.Context.TRAINING, step=1)
        prov4ml.end_run()
    from prov4ml.sweep import configurations, sweep

    results = sweep(_sweep_trial, configurations({"lr": list(SWEEP_LRS)}), experiment_name="sweep",
                    provenance_save_dir=str(base), repetitions=REPS, progress=False,
                    start_run_options={"capture": False})
    assert all(r.status == "finished" for r in results)
    return cwd, results


def cli(*args, cwd, timeout=120, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "prov4ml", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, **kw)


def ok(*args, cwd):
    out = cli(*args, cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return out.stdout


def fails(code, *args, cwd):
    """The command exits with ``code`` and says why in exactly one line."""
    out = cli(*args, cwd=cwd)
    assert out.returncode == code, (out.stdout, out.stderr)
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    return out.stderr


def ls_json(cwd, *args):
    return json.loads(ok("ls", *args, "--json", cwd=cwd))


def table_runs(text):
    """The first column of each row of a plain ls table."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("run "))
    return [line.split()[0] for line in lines[head + 1:] if line.strip()]


ALL = ["ddp/run_0", "exp/run_0", "exp/run_1", "exp/run_2", "exp/run_3"] + [f"sweep/run_{i}" for i in range(6)]


# ------------------------------------------------------------------ the command
def test_help_lists_every_subcommand_and_the_exit_codes(recorded):
    cwd, _ = recorded
    text = ok("--help", cwd=cwd)
    for name, _module, help_text in COMMANDS:
        assert name in text
    assert "exit status" in text and "130" in text
    for name, _module, _help in COMMANDS:
        assert cli(name, "--help", cwd=cwd).returncode == 0
    assert cli("frobnicate", cwd=cwd).returncode == 2


def test_the_console_script_entry_point_is_the_same_main(recorded):
    tomllib = pytest.importorskip("tomllib")
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"prov4ml": "prov4ml.cli:main"}
    module, _, name = scripts["prov4ml"].partition(":")
    entry = getattr(importlib.import_module(module), name)
    assert entry is importlib.import_module("prov4ml.cli.main").main
    assert ok("--version", cwd=recorded[0]).strip() == f"prov4ml {prov4ml.__version__}"


# ------------------------------------------------------------------ ls
def test_ls_lists_exactly_the_runs_in_order(recorded):
    cwd, _ = recorded
    text = ok("ls", cwd=cwd)  # default ./prov
    assert text.splitlines()[0] == "11 runs in 3 experiments"
    assert table_runs(text) == ALL
    assert table_runs(ok("ls", "prov/exp", cwd=cwd)) == ALL[1:5]
    assert table_runs(ok("ls", "prov/exp/run_1", cwd=cwd)) == ["exp/run_1"]
    rows = {line.split()[0]: line for line in text.splitlines()[2:]}
    assert " failed " in rows["exp/run_3"] and " finished " in rows["exp/run_0"]
    header = text.splitlines()[1].split()
    assert header[:5] == ["run", "status", "start", "duration", "ranks"]
    # the parameters that differ, the three metrics most runs logged (validation first among equals)
    assert header[5:] == ["lr", "opt", "epochs"] + [w for m in ("score", "loss", "val_acc") for w in (m, "last", m, "best")]
    exp_header = ok("ls", "prov/exp", cwd=cwd).splitlines()[1].split()
    assert exp_header[5:] == ["lr", "opt", "epochs"] + [w for m in ("val_acc", "val_loss", "loss") for w in (m, "last", m, "best")]


def test_ls_json_holds_the_exact_values_logged(recorded):
    cwd, results = recorded
    runs = {r["run"]: r for r in ls_json(cwd)}
    assert list(runs) == ALL
    for run_id, (lr, opt, val_loss, val_acc) in RUNS.items():
        r = runs[f"exp/run_{run_id}"]
        assert r["params"] == {"lr": lr, "opt": opt, "epochs": len(val_loss)}
        assert r["status"] == ("failed" if run_id == 3 else "finished")
        assert r["ranks"] == [0] and r["run_id"] == run_id and r["experiment"] == "exp"
        m = r["metrics"]
        assert m["val_loss/validation"] == {"count": len(val_loss), "last": val_loss[-1], "best": min(val_loss),
                                            "min": min(val_loss), "max": max(val_loss),
                                            "mean": m["val_loss/validation"]["mean"], "last_step": len(val_loss) - 1}
        assert m["val_loss/validation"]["mean"] == pytest.approx(statistics.fmean(val_loss), rel=1e-12)
        assert m["val_acc/validation"]["best"] == max(val_acc) and m["val_acc/validation"]["last"] == val_acc[-1]
        assert m["loss/training"]["last"] == LOSS[len(val_loss) - 1] + run_id
        assert r["final_metrics"] == {"val_loss": min(val_loss)}
        assert r["duration_s"] > 0 and r["start"] < r["end"]
    ddp = runs["ddp/run_0"]
    assert ddp["ranks"] == [0, 1]
    # min/max over every rank, last of the lowest rank
    assert ddp["metrics"]["loss/training"] == {"count": 2, "last": 1.0, "best": 1.0, "min": 1.0, "max": 3.0,
                                               "mean": 1.5, "last_step": 1}
    for i, trial in enumerate(results):
        assert runs[f"sweep/run_{i}"]["metrics"]["score/evaluation"]["last"] == trial.result["score"]


def test_ls_where_keeps_exactly_the_matching_runs(recorded):
    cwd, _ = recorded
    exp = [f"exp/run_{i}" for i in RUNS]

    def kept(*where):
        args = [a for w in where for a in ("--where", w)]
        return [r["run"] for r in ls_json(cwd, "prov/exp", *args)]

    assert kept("lr<0.01") == [f"exp/run_{i}" for i, v in RUNS.items() if v[0] < 0.01]
    assert kept("lr<=0.03") == [f"exp/run_{i}" for i, v in RUNS.items() if v[0] <= 0.03]
    assert kept("lr>0.03") == ["exp/run_0"]
    assert kept("lr==0.001") == ["exp/run_2"] and kept("lr=0.001") == ["exp/run_2"]
    assert kept("lr!=0.001") == [r for r in exp if r != "exp/run_2"]
    assert kept("opt==adam") == ["exp/run_1", "exp/run_2"]
    assert kept("opt==adam", "lr<0.01") == ["exp/run_2"]  # all conditions hold
    assert kept("status==failed") == ["exp/run_3"]
    assert kept("val_loss<0.75") == [f"exp/run_{i}" for i, v in RUNS.items() if v[2][-1] < 0.75]
    assert kept("val_loss.best<0.65") == [f"exp/run_{i}" for i, v in RUNS.items() if min(v[2]) < 0.65]
    assert kept("val_acc.best>=0.7") == [f"exp/run_{i}" for i, v in RUNS.items() if max(v[3]) >= 0.7]
    assert kept("val_loss/validation.count==1") == ["exp/run_3"]
    assert kept("epochs>2") == ["exp/run_0", "exp/run_1", "exp/run_2"]  # integers compare as numbers
    assert kept("run_id>=2") == ["exp/run_2", "exp/run_3"]
    assert kept("duration>0") == exp
    assert kept("start>=2000-01-01") == exp and kept("start<2000-01-01") == []
    # a run without the field never matches
    assert [r["run"] for r in ls_json(cwd, "--where", "opt==sgd")] == ["exp/run_0", "exp/run_3"]
    table = ok("ls", "--where", "lr<0.0001", cwd=cwd)
    assert table.strip() == "no run matches lr<0.0001"


def test_ls_sort_orders_exactly(recorded):
    cwd, _ = recorded
    by_last = sorted(RUNS, key=lambda i: RUNS[i][2][-1])
    assert [r["run_id"] for r in ls_json(cwd, "prov/exp", "--sort", "val_loss")] == by_last
    assert [r["run_id"] for r in ls_json(cwd, "prov/exp", "--sort", "val_loss", "--desc")] == by_last[::-1]
    by_best = sorted(RUNS, key=lambda i: max(RUNS[i][3]))
    assert [r["run_id"] for r in ls_json(cwd, "prov/exp", "--sort", "val_acc.best")] == by_best
    assert [r["run_id"] for r in ls_json(cwd, "prov/exp", "--sort", "lr")] == sorted(RUNS, key=lambda i: RUNS[i][0])
    # runs without the field come last, in either direction; the table sorts the same way
    order = [r["run"] for r in ls_json(cwd, "--sort", "opt", "--desc")]
    assert order[:4] == ["exp/run_0", "exp/run_3", "exp/run_1", "exp/run_2"] and len(order) == len(ALL)
    assert table_runs(ok("ls", "prov/exp", "--sort", "val_loss", cwd=cwd)) == [f"exp/run_{i}" for i in by_last]


def test_ls_csv_is_one_exact_row_per_run(recorded):
    cwd, _ = recorded
    rows = list(csv.DictReader(io.StringIO(ok("ls", "prov/exp", "--csv", cwd=cwd))))
    assert [r["run"] for r in rows] == [f"exp/run_{i}" for i in RUNS]
    for r, (run_id, (lr, opt, val_loss, _acc)) in zip(rows, RUNS.items()):
        assert float(r["lr"]) == lr and r["opt"] == opt and int(r["epochs"]) == len(val_loss)
        assert float(r["val_loss/validation.last"]) == val_loss[-1]
        assert float(r["val_loss/validation.best"]) == min(val_loss)
        assert r["status"] == ("failed" if run_id == 3 else "finished")


def test_ls_chooses_params_and_metrics_on_request(recorded):
    cwd, _ = recorded
    text = ok("ls", "prov/exp", "--params", "opt", "--metrics", "loss,val_acc", cwd=cwd)
    header = text.splitlines()[1].split()
    assert header == ["run", "status", "start", "duration", "ranks", "opt", "loss", "last", "loss", "best",
                      "val_acc", "last", "val_acc", "best"]
    assert "unknown" not in text
    assert "no listed run logged 'nope'" in fails(1, "ls", "--metrics", "nope", cwd=cwd)


@pytest.mark.parametrize("args, message", [
    (["--where", "lr"], "is not FIELD OP VALUE"),
    (["--where", "opt<adam"], "use == or != to compare text"),
    (["--where", "lrr<1"], "no listed run has a field 'lrr'"),
    (["--sort", "nope"], "no listed run has a field 'nope'"),
    (["--desc"], "add --sort"),
    (["missing_dir"], "missing_dir: no such directory"),
])
def test_ls_errors_are_one_line_with_the_fix(recorded, args, message):
    cwd, _ = recorded
    err = fails(1, "ls", *args, cwd=cwd)
    assert message in err and err.startswith("prov4ml ls: error: ")


def test_ls_says_which_runs_are_running_and_which_were_killed(tmp_path):
    from killing import Child, wait_for_sinks

    body = 'prov4ml.start_run("www.example.org", "live", {save_dir!r}, capture=False)\n' \
           'prov4ml.log_metric("loss", 0.5, "training")\nflag(1)\ntime.sleep(600)\n'
    alive, doomed = Child(tmp_path, body), None
    try:
        alive.wait_flag(1)
        doomed = Child(tmp_path, body)
        doomed.wait_flag(1)
        doomed.kill()
        wait_for_sinks(tmp_path / "prov" / "live" / "run_1")
        runs = {r["run"]: r for r in ls_json(tmp_path)}
        assert runs["live/run_0"]["status"] == "running" and runs["live/run_0"]["needs_recovery"] == []
        assert runs["live/run_1"]["status"] == "killed" and runs["live/run_1"]["needs_recovery"] == [0]
        rows = {line.split()[0]: line for line in ok("ls", cwd=tmp_path).splitlines()[2:]}
        assert "  running  " in rows["live/run_0"]
        assert "killed (needs prov4ml recover)" in rows["live/run_1"]
        assert [r["run"] for r in ls_json(tmp_path, "--where", "status==running")] == ["live/run_0"]
        watched = ok("watch", "live/run_1", "--interval", "0.2", cwd=tmp_path)  # ends at once: the run is over
        assert watched.rstrip().endswith("run ended: killed; run prov4ml recover prov/live/run_1")
        assert ok("show", "live/run_1", cwd=tmp_path).startswith("live/run_1  killed (needs prov4ml recover)\n")
    finally:
        alive.kill()
        if doomed is not None:
            doomed.wait()


def test_ls_on_a_terminal_draws_a_rich_table(recorded):
    cwd, _ = recorded
    status, text = _on_a_terminal("import sys; from prov4ml.cli import main; sys.exit(main(['ls', 'prov/exp']))", cwd)
    assert status == 0
    assert "┃" in text and "━" in text  # rich's box drawing
    assert "\x1b[" in text  # colour
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert all(f"exp/run_{i}" in plain for i in RUNS)


def _on_a_terminal(code, cwd):
    """Run ``code`` with stdout and stderr on a pseudo-terminal; its exit status and everything it drew."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return proc.wait(60), out.decode()


def test_a_long_ls_on_a_terminal_shows_progress_and_a_short_one_does_not(recorded):
    cwd, _ = recorded
    code = ("import sys; from prov4ml.cli import _output, main; _output.PROGRESS_AFTER_S = {after}; "
            "sys.exit(main(['ls']))")
    (cwd / "prov" / ".prov4ml-index/index.sqlite").unlink(missing_ok=True)  # a cold index: every run is read
    status, drawn = _on_a_terminal(code.format(after=0.0), cwd)  # every task is "long"
    assert status == 0 and "reading runs" in drawn and f"/{len(ALL)}" in drawn
    (cwd / "prov" / ".prov4ml-index/index.sqlite").unlink()
    status, drawn = _on_a_terminal(code.format(after=60.0), cwd)
    assert status == 0 and "reading runs" not in drawn


def test_ls_into_a_closed_pipe_is_quiet(recorded):
    cwd, _ = recorded
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "prov4ml", "ls", "--json"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first write: every write meets a broken pipe
    assert proc.wait(60) == 0
    assert proc.stderr.read() == b""


# ------------------------------------------------------------------ show
def test_show_prints_every_part_of_a_run(recorded):
    cwd, _ = recorded
    text = ok("show", "exp/run_1", cwd=cwd)
    for part in ("parameters", "metrics", "final metrics", "model versions", "artifacts", "environment"):
        assert f"\n{part}\n" in text
    lines = text.splitlines()
    assert any(re.fullmatch(r"lr\s+0\.03", line) for line in lines)
    assert any(re.match(r"val_loss\s+validation\s+0\s+3\s+0\.45\s+0\.4\s+0\.8\b", line) for line in lines)
    assert sum(1 for line in lines if re.match(r"net\s+\d\s+\d\s+training", line)) == 3
    failed = ok("show", "prov/exp/run_3", cwd=cwd)
    assert re.search(r"error\s+RuntimeError: diverged at epoch 1", failed)
    assert re.search(r"status\s+failed", failed)
    assert ok("show", "exp/1", cwd=cwd) == text  # EXPERIMENT/N is EXPERIMENT/run_N


def test_show_json_holds_the_exact_values(recorded):
    cwd, _ = recorded
    data = json.loads(ok("show", "exp/run_3", "--json", cwd=cwd))
    assert data["status"] == "failed" and data["error_type"] == "RuntimeError"
    assert data["error_message"] == "diverged at epoch 1"
    assert data["params"] == {"lr": 0.005, "opt": "sgd", "epochs": 1}
    (series,) = [s for s in data["series"] if s["name"] == "val_loss"]
    assert (series["count"], series["last"], series["min"], series["location"]) == (
        1, 0.99, 0.99, "metrics/val_loss_validation_rank0.csv")
    versions = [a for a in data["artifacts"] if a["kind"] == "model_version"]
    assert [(a["model_name"], a["version"], a["step"]) for a in versions] == [("net", 0, 0)]
    ddp = json.loads(ok("show", "ddp/run_0", "--json", cwd=cwd))
    assert ddp["ranks"] == [0, 1] and sorted(s["rank"] for s in ddp["series"]) == [0, 1]


def test_a_run_that_is_not_there_says_where_it_was_looked_for(recorded):
    cwd, _ = recorded
    err = fails(1, "show", "exp/run_9", cwd=cwd)
    assert "no run 'exp/run_9'" in err and "prov/exp/run_9 is not a directory" in err and "prov4ml ls" in err
    err = fails(1, "show", "exp", cwd=cwd)
    assert "prov/exp is an experiment: name one of its runs, exp/run_N" in err
    (cwd / "prov" / "exp" / "run_9").mkdir()
    try:
        assert "holds no prov_rank<k>.json" in fails(1, "show", "exp/run_9", cwd=cwd)
    finally:
        (cwd / "prov" / "exp" / "run_9").rmdir()


def test_a_corrupt_document_is_one_line(tmp_path):
    run_dir = tmp_path / "prov" / "e" / "run_0"
    run_dir.mkdir(parents=True)
    (run_dir / "prov_rank0.json").write_text('{"entity": {')
    assert "is not valid JSON" in fails(1, "show", "e/run_0", cwd=tmp_path)
    assert "is not valid JSON" in fails(1, "ls", cwd=tmp_path)
    (run_dir / "prov_rank0.json").write_text('{"entity": {}}')
    assert "not a prov4ml run document" in fails(1, "ls", cwd=tmp_path)


# ------------------------------------------------------------------ compare
def test_compare_puts_runs_side_by_side(recorded):
    pytest.importorskip("pandas")
    cwd, _ = recorded
    data = json.loads(ok("compare", "exp/run_0", "exp/run_2", "--json", cwd=cwd))
    assert "configurations" not in data  # two configurations, no repetitions
    a, b = data["runs"]
    assert (a["run"], b["run"]) == ("exp/run_0", "exp/run_2")
    assert a["lr"] == 0.1 and b["opt"] == "adam"
    assert a["val_loss/validation last"] == 0.7 and a["val_loss/validation best"] == 0.6
    assert a["val_acc/validation best"] == 0.7 and b["val_acc/validation best"] == 0.5  # larger is better
    assert a["final/val_loss"] == 0.6
    text = ok("compare", "exp/run_0", "exp/run_2", "--metrics", "val_loss", cwd=cwd)
    lines = text.splitlines()
    assert lines[1].split() == ["field", "exp/run_0", "exp/run_2"]
    assert any(re.fullmatch(r"val_loss/validation last\s+0\.7\s+0\.8", line) for line in lines)
    assert not any(line.startswith("val_acc") for line in lines)


def test_compare_a_sweep_gives_mean_and_std_per_configuration(recorded):
    pytest.importorskip("pandas")
    cwd, results = recorded
    data = json.loads(ok("compare", "sweep", "--json", cwd=cwd))
    assert len(data["runs"]) == len(SWEEP_LRS) * REPS
    configs = data["configurations"]
    assert [c["params"]["lr"] for c in configs] == list(SWEEP_LRS)
    for lr, config in zip(SWEEP_LRS, configs):
        scores = [r.result["score"] for r in results if r.config["lr"] == lr]
        assert config["runs"] == [f"sweep/run_{r.run_id}" for r in results if r.config["lr"] == lr]
        got = config["fields"]["score/evaluation last"]
        assert got["n"] == REPS
        assert got["mean"] == pytest.approx(statistics.fmean(scores), rel=1e-12)
        assert got["std"] == pytest.approx(statistics.stdev(scores), rel=1e-12)
        assert config["fields"]["lr"] == lr
    text = ok("compare", "prov/sweep", cwd=cwd)
    assert "mean ± std over repetitions" in text.splitlines()[0]
    scores0 = [r.result["score"] for r in results if r.config["lr"] == SWEEP_LRS[0]]
    line = next(line for line in text.splitlines() if line.startswith("score/evaluation last"))
    assert f"{statistics.fmean(scores0):.6g} ± {statistics.stdev(scores0):.6g}" in line


def test_compare_errors(recorded):
    cwd, _ = recorded
    assert "no run 'exp/run_7'" in fails(1, "compare", "exp/run_0", "exp/run_7", cwd=cwd)
    pytest.importorskip("pandas")
    assert "no metric series" in fails(1, "compare", "exp", "--metrics", "nope", cwd=cwd)


# ------------------------------------------------------------------ report
def test_report_writes_the_html_of_a_run(recorded):
    cwd, _ = recorded
    out = ok("report", "exp/run_1", cwd=cwd).strip()
    assert out == os.path.join("prov", "exp", "run_1", "report.html")
    html = (cwd / out).read_text()
    assert html.startswith("<!DOCTYPE html>") and "val_loss" in html and "<svg" in html
    target = cwd / "reports" / "one.html"
    assert ok("report", "prov/exp/run_0", "-o", target, cwd=cwd).strip() == str(target)
    assert "run 0" in target.read_text()


def test_report_of_an_experiment_uses_the_experiment_report(recorded):
    cwd, _ = recorded
    out = ok("report", "exp", "-o", cwd / "exp.html", "--metrics", "val_loss", cwd=cwd).strip()
    html = (cwd / "exp.html").read_text()
    assert out == str(cwd / "exp.html") and html.startswith("<!DOCTYPE html>")
    assert "val_loss" in html and all(f"run {i}" in html or f"run_{i}" in html for i in range(4))


# ------------------------------------------------------------------ watch
LIVE = """
import sys, time
import prov4ml
prov4ml.start_run("www.example.org", "live", "prov", capture=False, rank=0)
for i in range({n}):
    prov4ml.log_metric("loss", 1.0 / (i + 1), prov4ml.Context.TRAINING, step=i)
    prov4ml.log_metric("acc", i / {n}, prov4ml.Context.VALIDATION, step=i)
    time.sleep({pause})
prov4ml.end_run()
"""


def test_watch_follows_a_live_run_and_ends_with_it(tmp_path):
    n, pause = 40, 0.1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", LIVE.format(n=n, pause=pause)], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "prov" / "live" / "run_0" / "prov_rank0.json").exists():
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        started = time.monotonic()
        watch = cli("watch", "live/run_0", "--interval", "0.3", cwd=tmp_path, timeout=120)
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert watch.returncode == 0, watch.stderr
    frames = [line for line in watch.stdout.splitlines() if line.startswith("live/run_0 ")]
    points = [int(re.search(r"points (\d+)", f).group(1)) for f in frames]
    assert len(frames) >= 3, watch.stdout
    assert points == sorted(points) and points[0] < points[-1]  # the count grows frame by frame
    assert points[-1] == 2 * n  # the last frame has every point
    assert "  running  " in frames[0] and "  finished  " in frames[-1]
    assert all(" running " in f for f in frames[:-1])  # it stopped at the first frame after the end
    assert watch.stdout.rstrip().endswith("run ended: finished")
    assert time.monotonic() - started < 40  # it ended by itself
    last = watch.stdout.split(frames[-1])[1].splitlines()
    (loss,) = [line for line in last if line.startswith("loss ")]
    cells = loss.split()
    assert cells[:4] == ["loss", "training", "0", str(n)] and float(cells[4]) == pytest.approx(1.0 / n, rel=1e-5)
    assert cells[-1][-1] == "▁" and cells[-1][0] == "█"  # the sparkline falls with the loss


def test_watch_once_prints_one_frame_of_an_ended_run(recorded):
    cwd, _ = recorded
    text = ok("watch", "exp/run_0", "--once", cwd=cwd)
    assert text.startswith("exp/run_0  finished  ") and "points 9 " in text
    rows = {line.split()[0]: line.split() for line in text.splitlines()[2:] if line.strip()}
    assert rows["val_loss"][:5] == ["val_loss", "validation", "0", "3", "0.7"]
    assert "--interval must be a positive" in fails(1, "watch", "exp/run_0", "--interval", "0", cwd=cwd)


# ------------------------------------------------------------------ graph, convert, collect, recover
def test_graph_writes_dot_and_svg_with_real_dot(recorded):
    cwd, _ = recorded
    out = ok("graph", "exp/run_2", cwd=cwd).split()
    assert out == [os.path.join("prov", "exp", "run_2", "prov_rank0.dot")]
    assert (cwd / out[0]).read_text().startswith("digraph")
    target = cwd / "g" / "exp2.svg"
    out = ok("graph", "exp/run_2", "-o", target, cwd=cwd).split()
    assert out == [str(target.with_suffix(".dot")), str(target)]
    assert "<svg" in target.read_text()
    both = ok("graph", "ddp/run_0", "--svg", cwd=cwd).split()
    assert [os.path.basename(p) for p in both] == ["prov_rank0.dot", "prov_rank0.svg", "prov_rank1.dot", "prov_rank1.svg"]
    assert "has 2 ranks" in fails(1, "graph", "ddp/run_0", "-o", cwd / "x.dot", cwd=cwd)
    one = ok("graph", "ddp/run_0", "--rank", "1", "-o", cwd / "r1.dot", cwd=cwd).split()
    assert one == [str(cwd / "r1.dot")]
    assert "has no rank 5" in fails(1, "graph", "ddp/run_0", "--rank", "5", cwd=cwd)


def test_convert_writes_the_other_serialisations(recorded):
    cwd, _ = recorded
    out = ok("convert", "exp/run_0", cwd / "run0.provn", cwd=cwd).strip()
    assert out == str(cwd / "run0.provn") and (cwd / "run0.provn").read_text().startswith("document")
    src = cwd / "prov" / "exp" / "run_0" / "prov_rank0.json"
    ok("convert", src, cwd / "run0.txt", "--format", "provn", cwd=cwd)
    assert (cwd / "run0.txt").read_text() == (cwd / "run0.provn").read_text()
    assert "has 2 ranks" in fails(1, "convert", "ddp/run_0", cwd / "d.provn", cwd=cwd)
    assert "cannot tell the format" in fails(1, "convert", "exp/run_0", cwd / "x.zzz", cwd=cwd)


def test_collect_links_every_rank(recorded):
    cwd, _ = recorded
    out = ok("collect", "ddp", "-o", cwd / "coll", cwd=cwd).strip()
    assert out == str(cwd / "coll" / "ddp_collection.json")
    data = json.loads((cwd / "coll" / "ddp_collection.json").read_text())
    assert len(data["bundle"]) == 2
    assert "no such directory" in fails(1, "collect", "nothing_here", cwd=cwd)


def test_recover_takes_a_run_name_too(recorded):
    cwd, _ = recorded
    assert "nothing to recover" in ok("recover", "exp/run_0", cwd=cwd)


def test_the_python_m_shims_still_work(recorded, tmp_path):
    cwd, _ = recorded
    src = cwd / "prov" / "exp" / "run_0" / "prov_rank0.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for module, args in (("prov4ml.prov2dot", ["--prov_json", src, "--output", tmp_path / "a.dot"]),
                         ("prov4ml.dot2svg", ["--dot", tmp_path / "a.dot", "--output", tmp_path / "a.svg"]),
                         ("prov4ml.convert", ["--prov_json", src, "--output", tmp_path / "a.provn"]),
                         ("prov4ml.prov_collection", ["--experiment_path", cwd / "prov" / "exp", "--output_dir", tmp_path])):
        out = subprocess.run([sys.executable, "-m", module, *map(str, args)], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    assert (tmp_path / "a.svg").stat().st_size > 0 and (tmp_path / "exp_collection.json").is_file()


# ------------------------------------------------------------------ ui
def test_ui_serves_the_runs_and_refuses_a_missing_directory(recorded, tmp_path):
    import urllib.request

    cwd, _ = recorded
    err = fails(1, "ui", str(tmp_path / "nowhere"), cwd=cwd)
    assert "nowhere" in err
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "prov4ml", "ui", "prov", "--port", "0"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://\S+", line).group(0).rstrip("/")
        rows = json.loads(urllib.request.urlopen(url + "/api/runs", timeout=30).read())
        exp = {r["key"]: r["status"] for r in rows if r["key"].startswith("exp/")}
        assert exp == {"exp/run_0": "finished", "exp/run_1": "finished", "exp/run_2": "finished", "exp/run_3": "failed"}
        assert {r["key"] for r in rows if r["key"].startswith("sweep/")} == {f"sweep/run_{i}" for i in range(len(SWEEP_LRS) * REPS)}
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------ query
def test_query_answers_sparql_over_an_experiment(recorded):
    cwd, _ = recorded
    out = ok("query", "prov/exp", "SELECT ?status WHERE { ?run a mls:Run ; provml:status ?status } ORDER BY ?status",
             "--csv", cwd=cwd)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["status"], ["failed"], ["finished"], ["finished"], ["finished"]]
    err = fails(1, "query", "prov/exp", "SELECT nonsense", cwd=cwd)
    assert "Traceback" not in err


def test_a_run_is_named_as_ls_prints_it_even_when_its_folder_is_a_slug(tmp_path):
    script = ("import prov4ml\n"
              "with prov4ml.run('www.example.org', 'exp ü', 'prov', capture=False):\n"
              "    prov4ml.log_metric('loss', 0.5, prov4ml.Context.TRAINING, step=0)\n")
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    listed = json.loads(ok("ls", "--json", cwd=tmp_path))
    (row,) = listed if isinstance(listed, list) else listed["runs"]
    name = f"{row['experiment']}/run_{row['run_id']}"
    assert name == "exp ü/run_0"
    assert "exp ü" in ok("show", name, cwd=tmp_path)
    assert "loss" in ok("compare", "exp ü", cwd=tmp_path)
    assert ok("report", "exp ü", "-o", tmp_path / "r.html", cwd=tmp_path).strip() == str(tmp_path / "r.html")


def test_an_experiment_named_like_another_ones_slug_keeps_its_own_folder(tmp_path):
    """ "100%" is stored as 100-fae31e; an experiment literally named "100-fae31e" must not join it."""
    script = ("import prov4ml\n"
              "for name, loss in (('100%', 0.5), ('100-fae31e', 0.25)):\n"
              "    with prov4ml.run('www.example.org', name, 'prov', capture=False):\n"
              "        prov4ml.log_metric('loss', loss, prov4ml.Context.TRAINING, step=0)\n")
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    folders = sorted(p.name for p in (tmp_path / "prov").iterdir() if p.is_dir())
    assert len(folders) == 2 and "100-fae31e" in folders
    listed = json.loads(ok("ls", "--json", cwd=tmp_path))
    rows = listed if isinstance(listed, list) else listed["runs"]
    assert sorted((r["experiment"], r["run_id"]) for r in rows) == [("100%", 0), ("100-fae31e", 0)]
    assert "0.5" in ok("compare", "100%", cwd=tmp_path) and "0.25" not in ok("compare", "100%", cwd=tmp_path)


# ------------------------------------------------------------------ and, booleans, counts, query by name (in-process)
@pytest.fixture
def inproc(capsys, monkeypatch):
    """``prov4ml ARGS`` run in this process from ``cwd``: (exit status, stdout, stderr)."""
    from prov4ml.cli.main import main

    def call(cwd, *args):
        monkeypatch.chdir(cwd)
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_ls_where_joins_conditions_with_and(recorded, inproc):
    cwd, _ = recorded

    def kept(*where):
        code, out, err = inproc(cwd, "ls", "prov/exp", "--json", *[a for w in where for a in ("--where", w)])
        assert code == 0, err
        return [r["run"] for r in json.loads(out)]

    assert kept("opt==adam and lr<0.01") == kept("opt==adam", "lr<0.01") == ["exp/run_2"]
    assert kept("lr<0.05 AND val_acc.best>=0.5  and  status==finished") == [
        f"exp/run_{i}" for i, v in RUNS.items() if v[0] < 0.05 and max(v[3]) >= 0.5 and i != 3]
    assert kept("opt=='adam and sgd'") == []  # a quoted value keeps its "and"
    code, _out, err = inproc(cwd, "ls", "--where", "lr<0.01 and")
    assert code == 1 and "'lr<0.01 and': and joins two conditions, and one is missing" in err


def test_booleans_print_as_json_writes_them_and_one_run_is_one_run(tmp_path, inproc):
    with prov4ml.run(NS, "flags", str(tmp_path / "prov"), capture=False):
        prov4ml.log_params({"use_bn": True, "shuffle": False})
    code, show, _err = inproc(tmp_path, "show", "flags/run_0")
    assert code == 0 and re.search(r"^use_bn\s+true$", show, re.M) and re.search(r"^shuffle\s+false$", show, re.M)
    assert json.loads(inproc(tmp_path, "show", "flags/run_0", "--json")[1])["params"] == {"use_bn": True, "shuffle": False}
    (row,) = csv.DictReader(io.StringIO(inproc(tmp_path, "ls", "--csv")[1]))
    assert (row["use_bn"], row["shuffle"]) == ("true", "false")
    table = inproc(tmp_path, "ls")[1].splitlines()
    assert table[0] == "1 run in 1 experiment"
    assert table[1].split()[-2:] == ["use_bn", "shuffle"] and table[2].split()[-2:] == ["true", "false"]
    assert inproc(tmp_path, "compare", "flags")[1].splitlines()[0] == "1 run"


def test_query_finds_an_experiment_by_its_name_as_other_commands_do(recorded, inproc):
    cwd, _ = recorded
    sparql = "SELECT ?status WHERE { ?run a mls:Run ; provml:status ?status } ORDER BY ?status"
    by_name = inproc(cwd, "query", "exp", sparql, "--csv")
    assert by_name == inproc(cwd, "query", "prov/exp", sparql, "--csv") and by_name[0] == 0
    assert by_name[1].split() == ["status", "failed", "finished", "finished", "finished"]
    code, _out, err = inproc(cwd, "query", "nope", sparql)
    assert code == 1 and "nope: no such experiment (looked for nope, prov/nope)" in err


def test_show_escapes_control_characters_in_names_and_keeps_the_table_whole(tmp_path):
    """A metric named with a tab, a newline and control characters (log_metric takes it) prints escaped, on one
    line of the metrics table, unicode as it is."""
    script = tmp_path / "odd.py"
    script.write_text(
        "import prov4ml\n"
        "prov4ml.start_run('www.example.org', 'odd', 'prov', capture=False)\n"
        "prov4ml.log_metric('a\\tb\\nc\\x01\\x7fé', 1.5, prov4ml.Context.TRAINING, step=0)\n"
        "prov4ml.end_run()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, check=True, timeout=120)
    lines = ok("show", "odd/run_0", cwd=tmp_path).splitlines()
    assert any(re.match(r"a\\tb\\nc\\x01\\x7fé\s+training\s+0\s+1\s+1\.5\s", line) for line in lines), lines
