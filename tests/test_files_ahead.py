"""With many series, the sink makes a series' metric file as soon as the series is described in the journal,
before its rows are read (making files is most of what 100,000 series cost; made during the loop, end_run only
appends). A file made ahead is empty until its first rows (with the header); one whose series never gets a row
is removed at the run's end, and by recover."""

from __future__ import annotations

import pytest

import prov4ml
from killing import prov_json, read_rows, series_count, wait_for
from prov4ml.metrics import _sink

SERIES = _sink.FEW_SERIES + 200


def test_files_are_made_ahead_of_rows_and_a_series_without_a_row_keeps_no_file(tmp_path):
    run = prov4ml.start_run("www.example.org", "ahead", str(tmp_path), capture=False)
    run_dir = run.run_dir
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", float(k), prov4ml.Context.TRAINING, step=0)
    wait_for(lambda: len(list((run_dir / "metrics").glob("*.csv"))) == SERIES, timeout=20.0)  # the sink knows many series now
    with pytest.raises((TypeError, ValueError)):
        prov4ml.log_metric("refused", "not a number", prov4ml.Context.TRAINING)  # its series is described
    prov4ml.log_metric("late", 1.5, prov4ml.Context.TRAINING, step=3)
    refused = run_dir / "metrics" / "refused_training_rank0.csv"
    late = run_dir / "metrics" / "late_training_rank0.csv"
    wait_for(refused.exists, timeout=20.0)  # made from its line alone: no row of it was ever journaled
    assert refused.read_bytes() == b""  # the header comes with the first rows
    for k in range(SERIES):
        prov4ml.log_metric(f"m{k}", k + 0.5, prov4ml.Context.TRAINING, step=1)
    prov4ml.end_run()

    assert not refused.exists()
    names = sorted(p.name for p in (run_dir / "metrics").iterdir())
    assert names == sorted([f"m{k}_training_rank0.csv" for k in range(SERIES)] + [late.name])
    assert read_rows(late) == [(3, 1.5)]
    for k in (0, 700, SERIES - 1):
        assert read_rows(run_dir / "metrics" / f"m{k}_training_rank0.csv") == \
            [(0, float(k)), (1, k + 0.5)]
    data = prov_json(run_dir)
    assert series_count(data, "late") == 1 and series_count(data, "m700") == 2
    refused_entity = [v for v in data["entity"].values() if v.get("provml:name") == "refused"]
    assert len(refused_entity) == 1 and "prov:location" not in refused_entity[0]


def test_a_group_kill_then_recover_keeps_no_file_for_a_series_without_a_row(tmp_path):
    from killing import Child, wait_for_sinks

    from prov4ml.run.recovery import recover

    child = Child(tmp_path, f"""
run = prov4ml.start_run("www.example.org", "crash", {{save_dir!r}}, capture=False)
for k in range({SERIES}):
    prov4ml.log_metric(f"m{{{{k}}}}", float(k), prov4ml.Context.TRAINING, step=0)
try:
    prov4ml.log_metric("refused", "not a number", prov4ml.Context.TRAINING)
except (TypeError, ValueError):
    pass
tell({SERIES})
flag(1)
time.sleep(600)
""", group=True)
    child.wait_flag()
    refused = child.run_dir() / "metrics" / "refused_training_rank0.csv"
    wait_for(refused.exists, timeout=20.0)
    child.kill()
    wait_for_sinks(child.run_dir())
    recover(child.run_dir())
    assert not refused.exists()
    files = sorted(p.name for p in (child.run_dir() / "metrics").iterdir())
    assert files == sorted(f"m{k}_training_rank0.csv" for k in range(SERIES))
    for k in (0, SERIES - 1):
        assert read_rows(child.run_dir() / "metrics" / f"m{k}_training_rank0.csv") == [(0, float(k))]


def test_series_whose_names_and_contexts_make_the_same_file_name_keep_files_of_their_own(tmp_path):
    run = prov4ml.start_run("www.example.org", "names", str(tmp_path), capture=False)
    prov4ml.log_metric("a_b", 1.5, "c", step=1)
    prov4ml.log_metric("a", 2.5, "b_c", step=2)
    prov4ml.log_metric("a_b", 3.5, "c-2", step=3)  # the name the second would have taken
    prov4ml.end_run()
    metrics = run.run_dir / "metrics"
    assert sorted(p.name for p in metrics.iterdir()) == ["a_b_c-2-2_rank0.csv", "a_b_c-2_rank0.csv", "a_b_c_rank0.csv"]
    assert read_rows(metrics / "a_b_c_rank0.csv") == [(1, 1.5)]
    assert read_rows(metrics / "a_b_c-2_rank0.csv") == [(2, 2.5)]
    assert read_rows(metrics / "a_b_c-2-2_rank0.csv") == [(3, 3.5)]
    locations = {(v["provml:name"], v["provml:context"]): v["prov:location"]["$"]
                 for v in prov_json(run.run_dir)["entity"].values() if "provml:name" in v and "prov:location" in v}
    assert locations[("a", "b_c")].endswith("metrics/a_b_c-2_rank0.csv")
