"""Sweeps: configurations, random samples, and trials recorded as real runs."""

import os
import sys
import types

import pytest
from prov.model import ProvActivity, ProvDocument, ProvEntity

import prov4ml
from prov4ml import sweep as sw
from sweep_helpers import constant, quadratic, start_a_run

FAST = {"capture": False, "writer_process": False}
GRID = {"lr": [0.1, 0.3], "depth": [2, 4]}


def read_run(run_dir):
    """(status, error type, {param: value}, {(metric, context): attrs}) from a run's PROV-JSON."""
    doc = ProvDocument.deserialize(str(run_dir) + "/prov_rank0.json")
    params, metrics, status, error = {}, {}, None, None
    for rec in doc.get_records(ProvEntity):
        attrs = {str(k): v for k, v in rec.attributes}
        types_ = {str(v) for k, v in rec.attributes if str(k) == "prov:type"}
        if "mls:HyperParameterSetting" in types_:
            params[attrs["prov:label"]] = attrs["prov:value"]
        elif "provml:Metric" in types_:
            metrics[(attrs["provml:name"], attrs["provml:context"])] = attrs
    for rec in doc.get_records(ProvActivity):
        attrs = {str(k): v for k, v in rec.attributes}
        if "provml:status" in attrs:
            status, error = attrs["provml:status"], attrs.get("provml:error_type")
    return status, error, params, metrics


# ---------------------------------------------------------------------- configurations
def test_configurations_is_the_product_in_stable_order():
    assert sw.configurations(GRID) == [
        {"lr": 0.1, "depth": 2}, {"lr": 0.1, "depth": 4}, {"lr": 0.3, "depth": 2}, {"lr": 0.3, "depth": 4},
    ]
    assert sw.configurations({}) == [{}]


@pytest.mark.parametrize("grid, match", [
    ({"lr": 0.1}, r"\[0.1\] for a fixed value"),
    ({"lr": []}, "empty list"),
    ({"sweep.trial": [1]}, "sweep's own"),
    ({1: [1]}, "non-empty strings"),
])
def test_configurations_refuses_bad_grids(grid, match):
    with pytest.raises(prov4ml.InvalidValueError, match=match):
        sw.configurations(grid)


def test_sample_is_reproducible_and_draws_from_each_kind():
    space = {"opt": ["adam", "sgd"], "lr": (1e-4, 1e-1), "layers": lambda r: r.randint(1, 8)}
    a, b = sw.sample(space, 20, seed=7), sw.sample(space, 20, seed=7)
    assert a == b and len(a) == 20
    assert sw.sample(space, 20, seed=8) != a
    for cfg in a:
        assert list(cfg) == ["opt", "lr", "layers"]
        assert cfg["opt"] in ("adam", "sgd") and 1e-4 <= cfg["lr"] <= 1e-1 and 1 <= cfg["layers"] <= 8
    assert sw.sample(space, 0) == []


@pytest.mark.parametrize("space, match", [
    ({"a": ("x", "y")}, "range of numbers"),
    ({"a": (1, 2, 3)}, "range of numbers"),
    ({"a": (2.0, 1.0)}, "lo > hi"),
    ({"a": 3}, r"\[3\] for a fixed value"),
    ({"a": []}, "empty list"),
])
def test_sample_refuses_bad_spaces(space, match):
    with pytest.raises(prov4ml.InvalidValueError, match=match):
        sw.sample(space, 2, seed=0)


def test_trial_seed_depends_on_config_and_repetition_only():
    s = sw.trial_seed({"a": 1, "b": 2}, 0)
    assert s == sw.trial_seed({"b": 2, "a": 1}, 0)
    assert len({s, sw.trial_seed({"a": 1, "b": 2}, 1), sw.trial_seed({"a": 1, "b": 3}, 0),
                sw.trial_seed({"a": 1, "b": 2}, 0, base_seed=1)}) == 4
    assert 0 <= s < 2 ** 31


# ---------------------------------------------------------------------- sweeps
def check_sweep(results, configs, repetitions):
    assert len(results) == len(configs) * repetitions
    assert len({r.run_id for r in results}) == len(results)  # distinct runs of one experiment
    assert len({r.run_dir for r in results}) == len(results)
    for i, r in enumerate(results):
        config = configs[i // repetitions]
        assert (r.trial, r.repetition, r.config) == (i, i % repetitions, config)
        assert r.seed == sw.trial_seed(config, r.repetition)
        status, error, params, metrics = read_run(r.run_dir)
        assert params["lr"] == config["lr"] and params["depth"] == config["depth"]
        assert params["sweep.trial"] == i and params["sweep.repetition"] == r.repetition
        assert params["sweep.seed"] == r.seed and params["sweep.config_index"] == i // repetitions
        assert int(metrics[("loss", "training")]["provml:count"].value) == 3  # an xsd:long: prov keeps it a Literal
        if config.get("fail"):
            assert r.status == status == "failed" and error == "ValueError"
            assert r.error == f"ValueError: diverged at lr={config['lr']}" and "Traceback" in r.traceback
            assert r.result is None and ("score", "evaluation") not in metrics
        else:
            assert r.ok and status == "finished" and r.error is None
            assert {k: v for k, v in r.result.items() if k != "pid"} == {
                "score": config["lr"] * config["depth"], "seed_seen": r.seed, "note": "not a number"}
            assert metrics[("score", "evaluation")]["provml:last"] == config["lr"] * config["depth"]
            assert metrics[("seed_seen", "evaluation")]["provml:last"] == r.seed
            assert ("note", "evaluation") not in metrics


def test_serial_sweep_records_every_trial_and_goes_on_after_a_failure(tmp_path, capsys):
    configs = sw.configurations(GRID)[:3] + [{"lr": 0.5, "depth": 1, "fail": True}]
    results = sw.sweep(quadratic, configs, experiment_name="grid", provenance_save_dir=str(tmp_path),
                       repetitions=2, start_run_options=FAST)
    check_sweep(results, configs, 2)
    assert [r.run_id for r in results] == list(range(8))
    assert {r.result["pid"] for r in results if r.ok} == {os.getpid()}
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 8 and lines[-1].startswith("[sweep grid] 8/8 trial 7 run_7 rep 1 failed (ValueError")
    assert prov4ml.active_run() is None


def test_process_sweep_with_two_workers(tmp_path, capsys):
    configs = sw.configurations(GRID)[:3] + [{"lr": 0.5, "depth": 1, "fail": True}]
    results = sw.sweep(quadratic, configs, experiment_name="grid", provenance_save_dir=str(tmp_path),
                       repetitions=2, workers=2, start_run_options=FAST)
    check_sweep(results, configs, 2)
    assert sorted(r.run_id for r in results) == list(range(8))
    pids = {r.result["pid"] for r in results if r.ok}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {p.name for p in (tmp_path / "grid").iterdir() if p.is_dir()} == {f"run_{i}" for i in range(8)}
    assert len(capsys.readouterr().err.strip().splitlines()) == 8


def test_a_number_returned_is_the_result_metric(tmp_path):
    (r,) = sw.sweep(constant, [{"x": 1}], experiment_name="e", provenance_save_dir=str(tmp_path),
                    start_run_options=FAST, progress=False)
    assert r.result == 1.5
    assert read_run(r.run_dir)[3][("result", "evaluation")]["provml:last"] == 1.5


def test_a_lambda_cannot_go_to_spawned_workers(tmp_path):
    with pytest.raises(prov4ml.InvalidValueError, match="picklable.*workers=1"):
        sw.sweep(lambda c: 0, [{"x": 1}], experiment_name="e", provenance_save_dir=str(tmp_path), workers=2)
    assert not (tmp_path / "e").exists()
    # serially a lambda is fine
    (r,) = sw.sweep(lambda c: c["x"], [{"x": 1}], experiment_name="e", provenance_save_dir=str(tmp_path),
                    start_run_options=FAST, progress=False)
    assert r.ok and r.result == 1


def test_a_function_the_workers_cannot_import_is_named(tmp_path, monkeypatch):
    ghost = types.ModuleType("ghost_module")  # importable here only: in sys.modules, not on disk
    exec("def train(config):\n    return 0\n", ghost.__dict__)
    monkeypatch.setitem(sys.modules, "ghost_module", ghost)
    with pytest.raises(prov4ml.InvalidValueError, match="could not load fn.*ghost_module.*importable"):
        sw.sweep(ghost.train, [{"x": 1}], experiment_name="e", provenance_save_dir=str(tmp_path),
                 workers=2, progress=False)
    assert not (tmp_path / "e").exists()


def test_start_run_refusing_its_options_stops_the_sweep(tmp_path):
    with pytest.raises(prov4ml.InvalidValueError, match="save_after_n_logs"):
        sw.sweep(constant, [{"x": 1}, {"x": 2}], experiment_name="e", provenance_save_dir=str(tmp_path),
                 start_run_options={**FAST, "save_after_n_logs": 0}, progress=False)


def test_a_misbehaving_trial_fails_alone(tmp_path):
    results = sw.sweep(start_a_run, [{"x": 1}, {"x": 2}], experiment_name="e", provenance_save_dir=str(tmp_path),
                       start_run_options=FAST, progress=False)
    assert [r.status for r in results] == ["failed", "failed"]
    assert results[0].error.startswith("RunStateError") and prov4ml.active_run() is None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"backend": "dask"}, prov4ml.InvalidValueError, "known backends: serial, process, ray"),
    ({"backend": "serial", "workers": 2}, prov4ml.InvalidValueError, "backend='process'"),
    ({"repetitions": 0}, prov4ml.InvalidValueError, "repetitions"),
    ({"workers": 0}, prov4ml.InvalidValueError, "workers"),
    ({"start_run_options": {"experiment_name": "x"}}, prov4ml.InvalidValueError, "pass it to sweep"),
])
def test_bad_sweep_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        sw.sweep(constant, [{"x": 1}], experiment_name="e", provenance_save_dir=str(tmp_path), **kwargs)


def test_bad_configs_and_an_active_run_are_refused_before_any_trial(tmp_path, start):
    with pytest.raises(prov4ml.InvalidValueError, match="sweep's own"):
        sw.sweep(constant, [{"sweep.seed": 1}], experiment_name="e", provenance_save_dir=str(tmp_path))
    with pytest.raises(prov4ml.InvalidValueError, match="must be a dict"):
        sw.sweep(constant, [3], experiment_name="e", provenance_save_dir=str(tmp_path))
    start()
    with pytest.raises(prov4ml.RunStateError, match="end_run"):
        sw.sweep(constant, [{"x": 1}], experiment_name="e", provenance_save_dir=str(tmp_path))


# ---------------------------------------------------------------------- ray
def test_ray_backend_without_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(prov4ml.MissingDependencyError, match=r"prov4ml\[ray\]"):
        sw.sweep(constant, [{"x": 1}], experiment_name="e", provenance_save_dir=str(tmp_path), backend="ray")
# The Ray backend with a real Ray (local, and a two-node cluster on loopback): tests/test_cluster.py and
# tests/test_ray_cluster.py.
