"""log_metric: values, contexts, samplers, folds, bad input, threads; read back from disk."""

import csv
import math
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import torch

import prov4ml
from prov4ml import Context
from prov4ml.metrics.samplers import Identity, Ignore, MovingAverage, Pipe, Subsample, Window, make_sampler
from conftest import entities_of_type, load_json, location, series_entity


def points(run, name, context="training"):
    return pd.read_csv(run.metrics_dir / f"{name}_{context}_rank{run.rank}.csv")


def test_values_of_every_kind_are_recorded(start):
    run = start()
    w = torch.nn.Parameter(torch.tensor([2.0]))
    values = [1, 2.5, np.float32(3.5), np.int64(4), torch.tensor(5.0), (w * 3).sum(), torch.tensor([7.0]), True]
    for step, value in enumerate(values):
        prov4ml.log_metric("m", value, Context.TRAINING, step=step)
    prov4ml.end_run()
    df = points(run, "m")
    assert df["value"].tolist() == [1, 2.5, 3.5, 4, 5, 6, 7, 1]
    assert df["step"].tolist() == list(range(8))
    s = series_entity(load_json(run.prov_path), "m")
    assert (s["provml:count"], s["provml:min"], s["provml:max"], s["provml:last"]) == (8, 1.0, 7.0, 1.0)
    assert (s["provml:first_step"], s["provml:last_step"]) == (0, 7)
    assert s["prov:location"] == "metrics/m_training_rank0.csv"


def test_default_step_counts_calls_and_default_context_is_training(start):
    run = start()
    for i in range(5):
        prov4ml.log_metric("m", float(i))
    prov4ml.end_run()
    assert points(run, "m")["step"].tolist() == [0, 1, 2, 3, 4]


def test_contexts_builtin_strings_enums_and_custom(start):
    import enum

    class Stage(enum.Enum):
        TRAIN = "training"

    run = start()
    for ctx in (Context.TRAINING, "Training", "training", Stage.TRAIN, prov4ml.Contexts.TRAINING):
        prov4ml.log_metric("loss", 1.0, ctx)
    prov4ml.log_metric("loss", 2.0, "my_stage")
    lod = prov4ml.create_context("TRAINING_LOD2", Context.TRAINING)
    prov4ml.log_metric("loss", 3.0, lod)
    prov4ml.log_metric("loss", 4.0, Context.EVALUATION)
    with pytest.raises(prov4ml.InvalidValueError, match="context"):
        prov4ml.log_metric("loss", 1.0, 3.5)
    with pytest.raises(prov4ml.InvalidValueError, match="context"):
        prov4ml.log_metric("loss", 1.0, ["training"])
    prov4ml.end_run()
    data = load_json(run.prov_path)
    assert series_entity(data, "loss", "training")["provml:count"] == 5
    assert series_entity(data, "loss", "my_stage")["provml:count"] == 1
    assert series_entity(data, "loss", "training_lod2")["provml:count"] == 1
    sub = data["activity"][f"ex:exp.run_{run.run_id}.rank0.context.training_lod2"]
    assert sub["provml:parent_context"] == "training"
    parent = data["activity"][f"ex:exp.run_{run.run_id}.rank0.context.training"]
    assert parent["mls:hasPart"] == {"$": f"ex:exp.run_{run.run_id}.rank0.context.training_lod2", "type": "xsd:QName"}
    assert Context.TRAINING_LOD2 is lod and prov4ml.log_context("TRAINING_LOD2") is lod


def test_string_value_is_refused_and_nothing_is_lost(start):
    run = start(save_after_n_logs=2)
    for i in range(5):
        prov4ml.log_metric("loss", float(i))
    with pytest.raises(prov4ml.InvalidValueError, match="must be numbers"):
        prov4ml.log_metric("loss", "0.5")
    with pytest.raises(prov4ml.InvalidValueError, match="shape"):
        prov4ml.log_metric("loss", torch.ones(3))
    with pytest.raises(prov4ml.InvalidValueError, match="step must be an integer"):
        prov4ml.log_metric("loss", 1.0, step="one")
    with pytest.raises(prov4ml.InvalidValueError, match="non-empty string"):
        prov4ml.log_metric("", 1.0)
    prov4ml.log_metric("loss", 5.0)
    prov4ml.end_run()
    assert points(run, "loss")["value"].tolist() == [0, 1, 2, 3, 4, 5]


def test_nan_and_inf_are_recorded_as_such(start):
    run = start()
    for v in (1.0, float("nan"), float("inf"), -2.0, float("-inf")):
        prov4ml.log_metric("x", v)
    prov4ml.end_run()
    values = points(run, "x")["value"].tolist()
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf and values[4] == -math.inf
    s = series_entity(load_json(run.prov_path), "x")
    assert s["provml:count"] == 5 and s["provml:nan_count"] == 1
    assert s["provml:min"] == -math.inf and s["provml:max"] == math.inf
    assert s["provml:last"] == -math.inf
    from prov.model import ProvDocument

    ProvDocument.deserialize(str(run.prov_path)).get_provn()


def test_keys_with_slashes_and_spaces_get_safe_distinct_files(start):
    run = start()
    for key in ("train/loss", "train_loss", "val acc", "../evil"):
        prov4ml.log_metric(key, 1.0)
    prov4ml.end_run()
    files = sorted(p.name for p in run.metrics_dir.iterdir())
    assert len(files) == 4
    assert all("/" not in f and " " not in f and not f.startswith(".") for f in files)
    assert "train_loss_training_rank0.csv" in files
    locations = {e["provml:name"]: location(e["prov:location"]) for e in load_json(run.prov_path)["entity"].values() if "provml:name" in e}
    for key in ("train/loss", "val acc", "../evil"):
        assert (run.run_dir / locations[key]).exists()


def test_log_metrics_dict(start):
    run = start()
    prov4ml.log_metrics({"a": 1.0, "b": 2}, Context.VALIDATION, step=3)
    prov4ml.end_run()
    assert points(run, "a", "validation")["step"].tolist() == [3]
    assert points(run, "b", "validation")["value"].tolist() == [2]


# --- samplers ---------------------------------------------------------------

def feed(sampler, values):
    return [v for v in (sampler.next(x) for x in values) if v is not None]


def test_sampler_semantics():
    assert feed(Identity(), [1, 2]) == [1, 2]
    assert feed(Ignore(), [1, 2]) == []
    assert feed(Subsample(2), ["hi", "there", "friend"]) == ["hi", "friend"]
    w = Window(3)
    assert feed(w, [0, 1, 2, 3, 4]) == [1.0] and w.end() == 3.5 and w.end() is None
    assert feed(MovingAverage(0.99), [0, 1]) == pytest.approx([0, 0.01])
    assert feed(Pipe(Subsample(10), Subsample(100)), range(3000)) == [0, 1000, 2000]
    assert feed(Pipe(MovingAverage(0.5), Subsample(2)), [2, 4, 6]) == [2, 4.5]


def test_sampler_specs_and_errors():
    assert make_sampler("identity") is None
    assert isinstance(make_sampler("subsample:10"), Subsample)
    assert make_sampler("moving_average:0.9").decay == 0.9
    with pytest.raises(prov4ml.InvalidValueError, match="unknown sampler 'median'"):
        make_sampler("median")
    with pytest.raises(prov4ml.InvalidValueError, match="needs an argument"):
        make_sampler("window")
    with pytest.raises(prov4ml.InvalidValueError):
        Subsample(0)
    with pytest.raises(prov4ml.InvalidValueError):
        MovingAverage(1.5)


def test_samplers_per_metric_in_a_run_and_lazy_values(start):
    calls = []

    def expensive():
        calls.append(1)
        return 42.0

    run = start(metric_samplers={"sub": prov4ml.Subsample(10), "win": "window:4", "skip": prov4ml.Ignore(),
                                 "lazy": prov4ml.Subsample(100)})
    for i in range(30):
        prov4ml.log_metric("sub", float(i))
        prov4ml.log_metric("win", float(i))
        prov4ml.log_metric("skip", float(i))
        prov4ml.log_metric("lazy", expensive)
        prov4ml.log_metric("sub", float(i), Context.VALIDATION)  # its own sampler instance
    prov4ml.end_run()
    assert points(run, "sub")["value"].tolist() == [0, 10, 20]
    assert points(run, "sub")["step"].tolist() == [0, 10, 20]
    assert points(run, "sub", "validation")["value"].tolist() == [0, 10, 20]
    # 7 full windows, then the partial window (28, 29) flushed by end_run
    assert points(run, "win")["value"].tolist() == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 28.5]
    assert not (run.metrics_dir / "skip_training_rank0.csv").exists()
    assert len(calls) == 1 and points(run, "lazy")["value"].tolist() == [42.0]
    s = series_entity(load_json(run.prov_path), "sub")
    assert s["provml:sampler"] == "Subsample(10)"


def test_lazy_value_without_sampler_is_called_every_time(start):
    run = start()
    prov4ml.log_metric("lazy", lambda: 1.5)
    prov4ml.log_metric("lazy", lambda: torch.tensor(2.5))
    prov4ml.end_run()
    assert points(run, "lazy")["value"].tolist() == [1.5, 2.5]


# --- folds ------------------------------------------------------------------

@pytest.mark.parametrize(
    "op, initial, expected",
    [
        (prov4ml.FoldOperation.MAX, -math.inf, 9.0),
        (prov4ml.FoldOperation.MIN, math.inf, 0.0),
        (prov4ml.FoldOperation.ADD, 0, 45.0),
        (prov4ml.FoldOperation.SUBTRACT, 100, 55.0),
        (lambda x, y: x + 2 * y, 0, 90.0),
    ],
)
def test_final_metrics(start, op, initial, expected):
    run = start(save_after_n_logs=3)
    prov4ml.register_final_metric("acc", initial, op)
    for i in range(10):
        prov4ml.log_metric("acc", float(i))
    prov4ml.end_run()
    (final,) = entities_of_type(load_json(run.prov_path), "provml:FinalMetric").values()
    assert final["provml:name"] == "acc" and float(final["prov:value"]["$"]) == expected


def test_bad_fold_is_refused(start):
    start()
    with pytest.raises(prov4ml.InvalidValueError, match="callable"):
        prov4ml.register_final_metric("acc", 0, "max")


# --- concurrency ------------------------------------------------------------

def test_threads_logging_concurrently_lose_nothing(start):
    run = start(save_after_n_logs=7)
    n, workers = 5000, 4

    def work(k):
        for i in range(n):
            prov4ml.log_metric("shared", float(i), step=i)
            prov4ml.log_metric(f"own{k}", float(i), step=i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    prov4ml.end_run()
    shared = points(run, "shared")
    assert len(shared) == n * workers
    assert sorted(shared["step"].tolist()) == sorted(list(range(n)) * workers)
    for k in range(workers):
        assert points(run, f"own{k}")["step"].tolist() == list(range(n))
    assert series_entity(load_json(run.prov_path), "shared")["provml:count"] == n * workers


def test_metric_file_reads_with_csv_module(start):
    run = start()
    prov4ml.log_metric("m", 0.1, step=7, timestamp=1_700_000_000_000)
    prov4ml.end_run()
    with open(run.metrics_dir / "m_training_rank0.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"step": "7", "value": "0.1", "time": "1700000000.000"}]


def test_parquet_format(start):
    pytest.importorskip("pyarrow")
    run = start(metrics_file_type=prov4ml.MetricsType.PARQUET)
    for i in range(250):
        prov4ml.log_metric("loss", float(i), step=i)
    prov4ml.flush()
    assert (run.metrics_dir / "loss_training_rank0.parquet.csv").exists()  # readable while running
    prov4ml.end_run()
    assert not (run.metrics_dir / "loss_training_rank0.parquet.csv").exists()
    df = pd.read_parquet(run.metrics_dir / "loss_training_rank0.parquet")
    assert df["step"].tolist() == list(range(250)) and df["value"].tolist() == [float(i) for i in range(250)]
    assert series_entity(load_json(run.prov_path), "loss")["prov:location"] == "metrics/loss_training_rank0.parquet"


def test_a_lazy_value_that_raises_is_a_clear_error_and_log_metrics_records_none(start):
    run = start()
    prov4ml.log_metric("acc", 1.0, "training")
    with pytest.raises(prov4ml.InvalidValueError, match="raised ZeroDivisionError"):
        prov4ml.log_metric("loss", lambda: 1 / 0, "training")
    with pytest.raises(prov4ml.InvalidValueError, match="raised ZeroDivisionError"):
        prov4ml.log_metrics({"a2": 2.0, "loss": lambda: 1 / 0, "b2": 3.0}, "training")
    prov4ml.log_metrics({"a2": 2.0, "lazy": lambda: 4.0}, "training", step=7)
    prov4ml.end_run()
    files = sorted(p.name for p in (run.run_dir / "metrics").iterdir())
    assert files == ["a2_training_rank0.csv", "acc_training_rank0.csv", "lazy_training_rank0.csv"]
    assert (run.run_dir / "metrics" / "lazy_training_rank0.csv").read_text().splitlines()[1].startswith("7,4.0,")


@pytest.mark.parametrize("values, mean", [
    ([1.0, math.nan, 3.0], 2.0),  # NaN points are counted apart, the mean is of the others
    ([1.0, math.inf], math.inf),
    ([1.0, math.nan, math.inf, -math.inf, 0.5], math.nan),  # inf - inf: no mean
    ([1e308, 1e308], 1e308),  # the sum overflows, the mean does not
    ([sys.float_info.max] * 3, sys.float_info.max),  # a "best so far" start value: even the scaled sum rounds over
    ([1e308, 1e308, math.inf, -math.inf], math.nan),  # overflow and both infinities in one chunk
    ([-0.0], -0.0),
    ([-0.0, 0.0], 0.0),
])
@pytest.mark.parametrize("flush_each", [False, True], ids=["one chunk", "a chunk per point"])
def test_the_mean_of_a_series_follows_ieee_over_the_points_that_are_numbers(tmp_path, values, mean, flush_each):
    _check_mean(tmp_path, values, mean, flush_each)


@pytest.mark.parametrize("values, mean", [
    ([1e16, 1.0, -1e16], 1 / 3),  # a running sum loses the 1.0
    ([sys.float_info.max] * 1000 + [-sys.float_info.max] * 999, sys.float_info.max / 1999),  # the sum overflows
])
def test_the_mean_within_a_chunk_is_exact(tmp_path, values, mean):
    """A chunk's points are summed exactly (fsum); chunks fold as a running mean, which cancellation defeats."""
    _check_mean(tmp_path, values, mean, flush_each=False)


def _check_mean(tmp_path, values, mean, flush_each):
    prov4ml.start_run("www.example.org", "means", str(tmp_path), capture=False)
    for v in values:
        prov4ml.log_metric("x", v, "training")
        if flush_each:
            prov4ml.flush()  # the summary is folded across chunks
    path = prov4ml.end_run()
    import json

    (series,) = [e for e in json.loads(path.read_text())["entity"].values() if e.get("provml:name") == "x"]
    got = float(series["provml:mean"]["$"].replace("INF", "inf"))
    assert (math.isnan(got) and math.isnan(mean)) or (got == mean and math.copysign(1, got) == math.copysign(1, mean))
    assert int(series["provml:nan_count"]["$"]) == sum(1 for v in values if v != v)
    numbers = [v for v in values if v == v]
    if numbers == [-0.0, 0.0]:  # IEEE minimum and maximum: -0.0 is below +0.0
        assert str(series["provml:min"]["$"]) in ("-0.0", "-0") and str(series["provml:max"]["$"]) in ("0.0", "0")


@pytest.mark.parametrize("bad", ["yesterday", float("nan"), 1e300])
def test_a_rejected_timestamp_does_not_count_as_a_call(start, bad):
    """The default step counts calls; a call refused for its timestamp is not one."""
    run = start()
    prov4ml.log_metric("loss", 1.0, Context.TRAINING)
    with pytest.raises(prov4ml.InvalidValueError, match="timestamp"):
        prov4ml.log_metric("loss", 2.0, Context.TRAINING, timestamp=bad)
    prov4ml.log_metric("loss", 3.0, Context.TRAINING)
    prov4ml.end_run()
    with open(run.run_dir / "metrics" / "loss_training_rank0.csv") as fh:
        rows = [line.split(",")[:2] for line in fh.read().splitlines()[1:]]
    assert rows == [["0", "1.0"], ["1", "3.0"]]
