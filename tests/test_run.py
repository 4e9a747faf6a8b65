"""Run lifecycle: directories, ids, ranks, the context manager, misuse."""

import warnings

import pytest

import prov4ml
from conftest import load_json


def test_layout_and_increasing_run_ids(start, save_dir):
    first = start()
    prov4ml.log_metric("loss", 1.0)
    path = prov4ml.end_run()
    assert path == save_dir / "exp" / "run_0" / "prov_rank0.json"
    assert (path.parent / "metrics" / "loss_training_rank0.csv").exists()
    assert (path.parent / "artifacts").is_dir()
    second = start()
    assert second.run_id == first.run_id + 1 == prov4ml.get_run_id()
    assert second.run_dir.parent == first.run_dir.parent
    prov4ml.end_run()


def test_log_before_start_names_the_fix():
    # end_run with no run ever started is in tests/test_newcomer.py (a fresh process)
    for call in (lambda: prov4ml.log_metric("a", 1.0), lambda: prov4ml.log_param("a", 1)):
        with pytest.raises(prov4ml.RunStateError, match="start_run"):
            call()


def test_second_start_run_is_refused_and_first_keeps_recording(start):
    run = start()
    prov4ml.log_metric("loss", 1.0)
    with pytest.raises(prov4ml.RunStateError, match="end_run"):
        start()
    prov4ml.log_metric("loss", 2.0)
    prov4ml.end_run()
    lines = (run.metrics_dir / "loss_training_rank0.csv").read_text().splitlines()
    assert len(lines) == 3


def test_rank_from_argument_environment_and_default(start, monkeypatch):
    assert start().rank == 0
    prov4ml.end_run()
    monkeypatch.setenv("RANK", "3")
    run = start(collect_all_processes=True)
    assert run.rank == 3 and run.prov_path.name == "prov_rank3.json"
    prov4ml.end_run()
    assert start(rank=5, collect_all_processes=True).rank == 5
    prov4ml.end_run()
    with pytest.raises(prov4ml.InvalidValueError, match="rank"):
        start(rank=-1)


def test_non_zero_rank_without_collect_all_processes_records_nothing(start):
    run = start(rank=1)
    assert not run.recording
    prov4ml.log_metric("loss", 1.0)
    prov4ml.log_param("lr", 0.1)
    prov4ml.end_run()
    assert not run.prov_path.exists() and not run.metrics_dir.exists()


def test_context_manager_marks_failure_with_error(start, save_dir):
    with pytest.raises(ZeroDivisionError):
        with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False) as run:
            prov4ml.log_metric("loss", 0.5)
            1 / 0
    assert prov4ml.active_run() is None
    data = load_json(run.prov_path)
    activity = data["activity"][f"ex:exp.run_{run.run_id}.rank0"]
    assert activity["provml:status"] == "failed"
    assert activity["provml:error_type"] == "ZeroDivisionError"
    assert "division by zero" in activity["provml:error_message"]
    assert (run.metrics_dir / "loss_training_rank0.csv").read_text().count("\n") == 2


def test_context_manager_success(save_dir):
    with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False) as run:
        prov4ml.log_param("lr", 0.1)
    data = load_json(run.prov_path)
    activity = data["activity"][f"ex:exp.run_{run.run_id}.rank0"]
    assert activity["provml:status"] == "finished"
    assert "prov:endTime" in activity


def test_unknown_option_warns_and_reference_options_are_accepted(start):
    with pytest.warns(UserWarning, match="'no_such_option'"):
        start(no_such_option=1)
    prov4ml.end_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        start(
            disable_codecarbon=True, metrics_file_type=prov4ml.MetricsType.CSV, csv_separator=";",
            use_compressor=False, use_run_id=True, unify_experiments=True,
        )
    prov4ml.log_metric("loss", 1.0)
    path = prov4ml.end_run()
    assert (path.parent / "metrics" / "loss_training_rank0.csv").read_text().startswith("step;value;time")


def test_bad_start_arguments(start):
    with pytest.raises(prov4ml.InvalidValueError, match="save_after_n_logs"):
        start(save_after_n_logs=0)
    with pytest.raises(prov4ml.InvalidValueError, match="known: csv"):
        start(metrics_file_type="xlsx")
    with pytest.raises(prov4ml.InvalidValueError, match="unknown sampler"):
        start(metric_samplers={"loss": "median"})
    assert prov4ml.active_run() is None


def test_compressor_writes_zip(start):
    run = start(use_compressor=True)
    prov4ml.log_metric("loss", 1.0)
    prov4ml.end_run()
    assert run.run_dir.with_suffix(".zip").exists()


def test_execution_times(start):
    run = start()
    prov4ml.log_execution_start_time()
    prov4ml.log_current_execution_time("epoch_time", prov4ml.Context.TRAINING, step=0)
    prov4ml.log_execution_end_time()
    prov4ml.end_run()
    data = load_json(run.prov_path)
    activity = data["activity"][f"ex:exp.run_{run.run_id}.rank0"]
    assert "provml:execution_start_time" in activity and "provml:execution_end_time" in activity
    series = [e for e in data["entity"].values() if e.get("provml:name") == "epoch_time"]
    assert series[0]["provml:unit"] == "s" and series[0]["provml:source"] == "execution_time"
