"""Many short runs in one process: one sink process serves them all, each run keeps exactly its own points,
and a kill during one of them leaves the earlier ones complete and that one recoverable."""

import signal

import pytest

import prov4ml
from killing import Child, assert_exact, prov_json, read_rows, run_activity, series_count, wait_for_sinks


def test_fifty_short_runs_each_keep_exactly_their_points(tmp_path):
    sinks = set()
    runs = []
    for r in range(50):
        run = prov4ml.start_run("www.example.org", "many", str(tmp_path), capture=False)
        sinks.add(run._refresher._out._proc.pid)
        for i in range(r + 1):  # a different number of points in every run
            prov4ml.log_metric("loss", r * 1000 + i * 0.5, prov4ml.Context.TRAINING, step=i)
            prov4ml.log_metric("acc", float(-r), prov4ml.Context.TRAINING, step=i)
        prov4ml.end_run()
        runs.append(run)
    assert len(sinks) == 1  # one sink process served the 50 runs
    for r, run in enumerate(runs):
        d = run.run_dir
        assert read_rows(d / "metrics" / "loss_training_rank0.csv") == [(i, r * 1000 + i * 0.5) for i in range(r + 1)]
        assert read_rows(d / "metrics" / "acc_training_rank0.csv") == [(i, float(-r)) for i in range(r + 1)]
        data = prov_json(d)
        assert run_activity(data)["provml:status"] == "finished"
        assert series_count(data, "loss") == series_count(data, "acc") == r + 1
        assert not (d / ".prov4ml").exists()  # complete: no journal left


def test_a_run_ended_at_once_keeps_its_capture(tmp_path):
    run = prov4ml.start_run("www.example.org", "captured", str(tmp_path))  # the default capture
    prov4ml.log_metric("loss", 1.0, prov4ml.Context.TRAINING, step=0)
    prov4ml.end_run()  # at once: end_run waits for the capture
    packages = run.run_dir / "artifacts" / "environment" / "packages.txt"
    lines = packages.read_text().splitlines()
    assert f"pytest=={pytest.__version__}" in lines
    data = prov_json(run.run_dir)
    environment = [e for e in data["entity"].values() if "provml:Environment" in str(e.get("prov:type"))]
    assert len(environment) == 1 and environment[0]["provml:packages"] == {"$": str(len(lines)), "type": "xsd:long"}


RUNS = 'import prov4ml\nsave = {save_dir!r}\n' + """
for r in range(2):
    prov4ml.start_run("www.example.org", "crash", save, capture=False)
    for i in range(100):
        prov4ml.log_metric("loss", r * 1000 + i * 0.5, prov4ml.Context.TRAINING, step=i)
    prov4ml.end_run()
prov4ml.start_run("www.example.org", "crash", save, capture=False)
flag(1)
i = 0
while True:
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    i += 1
    tell(i)
"""


@pytest.mark.parametrize("group", [False, True], ids=["process", "group"])
def test_a_kill_during_the_third_run_leaves_the_first_two_complete_and_the_third_recoverable(tmp_path, group):
    child = Child(tmp_path, RUNS, group=group)
    child.wait_flag(1)
    while child.logged < 2000:
        pass
    child.kill(signal.SIGKILL)
    logged = child.logged
    for r in range(2):
        d = child.run_dir(run_id=r)
        assert read_rows(d / "metrics" / "loss_training_rank0.csv") == [(i, r * 1000 + i * 0.5) for i in range(100)]
        assert run_activity(prov_json(d))["provml:status"] == "finished"
        assert not (d / ".prov4ml").exists()
    d = child.run_dir(run_id=2)
    wait_for_sinks(d)
    assert prov4ml.recover(d) == [d / "prov_rank0.json"]
    rows = read_rows(d / "metrics" / "loss_training_rank0.csv")
    assert_exact(rows, logged)
    data = prov_json(d)
    assert run_activity(data)["provml:status"] == "killed"
    assert series_count(data, "loss") == len(rows)
