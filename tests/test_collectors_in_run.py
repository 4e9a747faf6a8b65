"""The collectors through the public API: recorded as series with units and as PROV facts."""

import json
import subprocess
import os
import sys

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import prov4ml
from prov4ml import Context
from conftest import ROOT, entities_of_type, load_json, location, series_entity


def run_activity(run):
    return load_json(run.prov_path)["activity"][f"ex:exp.run_{run.run_id}.rank0"]


def test_system_metrics_sync_and_background(start):
    run = start()
    prov4ml.log_system_metrics(Context.TRAINING, step=0)
    prov4ml.log_system_metrics(Context.TRAINING, step=1, synchronous=False)
    prov4ml.end_run()
    data = load_json(run.prov_path)
    for name, unit in (("cpu_usage", "%"), ("memory_usage", "%"), ("disk_usage", "%"), ("process_rss", "B")):
        s = series_entity(data, name)
        assert s["provml:unit"] == unit and s["provml:count"] == 2 and s["provml:source"] == "system_metric"
    rss = pd.read_csv(run.metrics_dir / "process_rss_training_rank0.csv")
    assert rss["step"].tolist() == [0, 1] and (rss["value"] > 1e6).all()
    assert run_activity(run)["provml:gpu"].startswith(("not available", "available"))


def test_carbon_metrics_offline(start):
    pytest.importorskip("codecarbon")
    run = start(carbon_country="FRA")
    for epoch in range(2):
        torch.randn(200, 200) @ torch.randn(200, 200)
        prov4ml.log_carbon_metrics(Context.TRAINING, step=epoch)
    prov4ml.end_run()
    data = load_json(run.prov_path)
    energy = series_entity(data, "energy_consumed")
    assert energy["provml:unit"] == "J" and energy["provml:count"] == 2 and energy["provml:min"] >= 0
    assert series_entity(data, "emissions")["provml:unit"] == "gCO2eq"
    assert series_entity(data, "emissions_rate")["provml:unit"] == "gCO2eq/s"
    assert "cpu" in run_activity(run)["provml:carbon"]


def test_disable_codecarbon_records_why(start):
    run = start(disable_codecarbon=True)
    prov4ml.log_carbon_metrics(Context.TRAINING)
    prov4ml.end_run()
    assert "disable_codecarbon" in run_activity(run)["provml:carbon"]
    assert not entities_of_type(load_json(run.prov_path), "provml:Metric")


def test_flops_per_batch_and_epoch(start):
    model = torch.nn.Linear(10, 5)
    data = TensorDataset(torch.randn(12, 10), torch.randn(12, 5))
    run = start()
    prov4ml.log_flops_per_batch("batch_flops", model, (torch.randn(4, 10), None), Context.TRAINING, step=0)
    prov4ml.log_flops_per_epoch("epoch_flops", model, DataLoader(data, batch_size=4), Context.TRAINING, step=0)
    prov4ml.end_run()
    doc = load_json(run.prov_path)
    batch = series_entity(doc, "batch_flops")
    assert batch["provml:last"] == 2 * 4 * 10 * 5 and batch["provml:unit"] == "FLOPs"
    assert batch["provml:source"] == "flops_per_batch"
    assert series_entity(doc, "epoch_flops")["provml:last"] == 2 * 12 * 10 * 5
    notes = run_activity(run)["provml:note"]  # a fact named after a label is a note, not a property
    (note,) = [n.split(": ", 1)[1] for n in (notes if isinstance(notes, list) else [notes]) if n.startswith("flops_counter_batch_flops: ")]
    assert "multiply-add = 2 FLOPs" in note and note.split(";")[0] in ("fvcore", "torch")


SCRIPT = """
import prov4ml
prov4ml.start_run("www.example.org", "exp", "prov", capture_env_vars=True)
prov4ml.log_metric("loss", 1.0)
prov4ml.end_run()
"""


def test_reproducibility_capture_in_a_dirty_git_repository(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init")
    (repo / "train.py").write_text(SCRIPT)
    git("add", "train.py")
    git("-c", "user.email=a@b.c", "-c", "user.name=t", "commit", "-q", "-m", "script")
    (repo / "train.py").write_text(SCRIPT + "# edited\n")
    env = {"PYTHONPATH": str(ROOT), "MY_API_TOKEN": "s3cr3t", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "train.py", "--epochs", "2"], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_dir = repo / "prov" / "exp" / "run_0"
    data = load_json(run_dir / "prov_rank0.json")
    plan = list(entities_of_type(data, "prov:Plan").values())[0]
    assert location(plan["prov:location"]).endswith("train.py")
    assert plan["provml:git_dirty"] is True and len(plan["provml:git_commit"]) == 40
    associations = [a for a in data["wasAssociatedWith"].values() if "prov:plan" in a]
    assert associations and associations[0]["prov:plan"] == list(entities_of_type(data, "prov:Plan"))[0]
    assert "# edited" in (run_dir / "artifacts" / "environment" / "git.diff").read_text()
    assert (run_dir / "artifacts" / "source" / "train.py").exists()
    assert "prov4ml==" in (run_dir / "artifacts" / "environment" / "packages.txt").read_text()
    env_vars = json.loads((run_dir / "artifacts" / "environment" / "env_vars.json").read_text())
    assert env_vars["MY_API_TOKEN"] != "s3cr3t" and env_vars["PATH"] == "/usr/bin:/bin"
    activity = data["activity"]["ex:exp.run_0.rank0"]
    assert activity["provml:command"].endswith("train.py --epochs 2")


def _script_run(tmp_path, script_dir, cwd, capture="{'packages': False}"):
    import json
    import subprocess

    script = script_dir / "train.py"
    script.write_text(
        "import prov4ml\n"
        f"r = prov4ml.start_run('www.example.org', 'g', {str(tmp_path / 'prov')!r}, capture={capture})\n"
        "print(r.end())\n"
    )
    out = subprocess.run([sys.executable, str(script)], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    data = json.loads(open(out.stdout.strip().splitlines()[-1]).read())
    plan = next(iter(entities_of_type(data, "prov:Plan").values()), {})
    return data, {**next(iter(entities_of_type(data, "provml:Environment").values()), {}), **plan}


def _git_repo(path):
    import subprocess

    path.mkdir()
    for cmd in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", path.name]):
        subprocess.run(["git", *cmd], cwd=path, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_capture_outside_git_and_switched_off(tmp_path):
    (tmp_path / "plain").mkdir()
    _, facts = _script_run(tmp_path, tmp_path / "plain", cwd=ROOT)  # started from inside a repository
    assert facts["provml:git_available"] is False  # the script's folder is what counts
    assert "provml:packages" not in facts
    data, _ = _script_run(tmp_path, tmp_path / "plain", cwd=ROOT, capture="False")
    assert not entities_of_type(data, "provml:Environment")


def test_git_facts_come_from_the_scripts_repository(tmp_path):
    script_commit = _git_repo(tmp_path / "project")
    other_commit = _git_repo(tmp_path / "elsewhere")
    _, facts = _script_run(tmp_path, tmp_path / "project", cwd=tmp_path / "elsewhere")
    assert facts["provml:git_commit"] == script_commit != other_commit


def test_missing_extra_names_it(start, monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    start()
    with pytest.raises(prov4ml.MissingDependencyError, match=r"prov4ml\[carbon\]"):
        prov4ml.log_carbon_metrics(Context.TRAINING)
