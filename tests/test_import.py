"""prov4ml import: real MLflow runs (a file store and an mlflow.db), real TensorBoard event files, real yProv4ML
run folders, each read back from the imported runs and compared value for value with what was written.

The oracle is what the test (or, for yProv4ML, the reference library, tests/data/yprov4ml_runs/) wrote: every
parameter, every metric point (step, value, time to the millisecond, as the CSV metric files keep it),
statuses, start and end times, artifact hashes, tags and git commit. TensorBoard keeps float32: its values
are compared as float32.
"""

import hashlib
import json
import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from prov4ml.cli.main import main
from prov4ml.runs import find_run_dirs, read_run

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

DATA = ROOT / "tests" / "data" / "yprov4ml_runs"
T0_MS = 1_700_000_000_000


def ms(seconds):
    return round(seconds * 1000)


def imported_runs(save_dir):
    """Each imported run by its provml:importedFrom."""
    runs = [read_run(d) for d in find_run_dirs(save_dir)]
    return {r.notes["importedFrom"]: r for r in runs}


def points_of(run):
    """(name, context) -> [(step, value, time in ms)] in file order."""
    return {(p.series.name, p.series.context): [(int(s), float(v), ms(t)) for s, v, t in zip(p.step, p.value, p.time)]
            for p in run.points()}


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------- MLflow
STATUSES = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed", "RUNNING": "running"}


def make_mlflow_runs(uri, tmp_path):
    """Four runs, one per status, through MLflow's own client; returns what each got, by run id."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("mnist")
    files = tmp_path / "outputs"
    (files / "plots").mkdir(parents=True)
    written = {}
    for n, status in enumerate(STATUSES):
        start = T0_MS + 100_000 * n
        run = client.create_run(experiment, start_time=start, run_name=f"trial-{n}",
                                tags={"team": "vision", "mlflow.source.git.commit": f"{n:040x}",
                                      "mlflow.source.name": "train.py"})
        rid = run.info.run_id
        params = {"lr": 10 ** -(n + 1), "batch_size": 32 * (n + 1), "optimizer": ["sgd", "adam"][n % 2], "shuffle": n % 2 == 0}
        for key, value in params.items():
            client.log_param(rid, key, value)
        points = {"loss": [(step, 1 / (step + n + 1), start + 10 * step + 3) for step in range(40)],
                  # step 10 twice (a re-evaluation), with its own value and time
                  "val/acc": [(step, 0.5 + i / 100 + n / 1000, start + 10 * i + 5) for i, step in enumerate((0, 10, 10, 30))]}
        client.log_batch(rid, metrics=[Metric(key, value, when, step) for key, rows in points.items()
                                       for step, value, when in rows])
        (files / "model.txt").write_text(f"weights of run {n}\n")
        (files / "plots" / "loss.svg").write_text(f"<svg>{n}</svg>\n")
        client.log_artifact(rid, str(files / "model.txt"))
        client.log_artifact(rid, str(files / "plots" / "loss.svg"), artifact_path="plots")
        digests = {"model.txt": sha256(files / "model.txt"), "plots/loss.svg": sha256(files / "plots" / "loss.svg")}
        end = None
        if status != "RUNNING":
            end = start + 50_000
            client.set_terminated(rid, status, end_time=end)
        written[rid] = dict(status=STATUSES[status], start=start, end=end, params=params, points=points,
                            files=digests, tags=client.get_run(rid).data.tags)
    return written


@pytest.mark.parametrize("store", ["mlruns", "mlflow.db"])
def test_mlflow_runs_import_with_every_value_equal(store, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if store == "mlruns":
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 writes a file store only when asked to
        uri = (tmp_path / "mlruns").as_uri()
    else:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    written = make_mlflow_runs(uri, tmp_path)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # the import asks for it itself
    save_dir = tmp_path / "prov"

    code, out, _err = cli(capsys, "import", "mlflow", store, "--into", str(save_dir))
    assert code == 0, out
    assert out.splitlines()[-1] == "4 runs imported, 0 imported before"
    runs = imported_runs(save_dir)
    assert set(runs) == {f"mlflow:{rid}" for rid in written}
    for rid, w in written.items():
        run = runs[f"mlflow:{rid}"]
        assert run.experiment == "mnist"
        assert run.recorded_status == w["status"]
        assert ms(run.start.timestamp()) == w["start"]
        assert (run.end and ms(run.end.timestamp())) == w["end"]
        assert run.params == w["params"]
        got = points_of(run)
        assert set(got) == {(key, "training") for key in w["points"]}
        for key, rows in w["points"].items():
            assert sorted(got[(key, "training")]) == sorted(rows)  # MLflow orders the history as it likes
        files = {a["name"] if "/" not in a["location"][len("artifacts/"):] else a["location"][len("artifacts/"):]: a
                 for a in run.artifacts}
        assert {name: files[name]["sha256"] for name in w["files"]} == w["files"]
        for name in w["files"]:  # and the bytes are in the run
            assert sha256(run.run_dir / files[name]["location"]) == w["files"][name]
        assert sorted(run.notes["tag"]) == sorted(f"{k}: {v}" for k, v in w["tags"].items())
        assert run.environment["git_commit"] == w["tags"]["mlflow.source.git.commit"]
        assert run.command == "train.py"
        assert run.notes["importedLocation"] == f"sqlite:///{tmp_path / 'mlflow.db'}" if store == "mlflow.db" \
            else (tmp_path / "mlruns").as_uri()

    # a second import adds nothing: every run is found by its MLflow run id
    before = sorted(find_run_dirs(save_dir))
    code, out, _err = cli(capsys, "import", "mlflow", store, "--into", str(save_dir))
    assert code == 0 and out.splitlines()[-1] == "0 runs imported, 4 imported before"
    assert sorted(find_run_dirs(save_dir)) == before

    # ls and compare treat them as any run
    code, out, _err = cli(capsys, "ls", str(save_dir), "--json")
    listed = json.loads(out)
    assert code == 0 and sorted(r["status"] for r in listed) == sorted(w["status"] for w in written.values())
    code, out, _err = cli(capsys, "compare", str(save_dir / "mnist"), "--json")
    assert code == 0 and len(json.loads(out)["runs"]) == 4


# ---------------------------------------------------------------- TensorBoard
def test_tensorboard_logdir_imports_every_point_of_a_long_series(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "tb" / "resnet"
    n = 10_050  # more than the 10,000 scalars per tag EventAccumulator keeps by default
    written = {"loss/train": [(step, 1 / (step + 3), 1_700_000_000 + step * 0.25) for step in range(n)],
               "acc/val": [(step, 0.5 + step / 1000, 1_700_000_000 + step * 0.25 + 0.125) for step in range(0, n, 1000)]}
    writer = SummaryWriter(str(logdir / "lr_0.1"))
    for tag, rows in written.items():
        for step, value, when in rows:  # acc/val as a scalar tensor, as TensorFlow 2 writes scalars
            writer.add_scalar(tag, value, step, walltime=when, new_style=tag == "acc/val")
    writer.add_hparams({"lr": 0.1, "optimizer": "sgd", "nesterov": True}, {"hp/acc": 0.75}, run_name="hparams")
    writer.close()
    folder = logdir / "lr_0.1"
    default = EventAccumulator(str(folder))
    default.Reload()
    assert len(default.Scalars("loss/train")) < n  # the trap: a reader left at its defaults loses points

    save_dir = tmp_path / "prov"
    code, out, _err = cli(capsys, "import", "tensorboard", str(logdir), "--into", str(save_dir))
    assert code == 0, out
    assert out.splitlines()[-1] == "2 runs imported, 0 imported before"
    events = sorted(p for p in folder.iterdir() if p.is_file())
    runs = imported_runs(save_dir)
    run = runs[f"tensorboard:{events[0].name}"]
    assert run.experiment == "resnet" and run.recorded_status == "finished"
    got = points_of(run)
    assert set(got) == {(tag, "training") for tag in written}
    for tag, rows in written.items():
        assert len(got[(tag, "training")]) == len(rows)
        for (step, value, when), (s, v, t) in zip(rows, got[(tag, "training")]):
            assert (s, t) == (step, ms(when))
            assert v == float(np.float32(value))  # TensorBoard stores float32; prov4ml keeps it exactly
    all_times = [t for rows in written.values() for _s, _v, t in rows]
    assert ms(run.end.timestamp()) == ms(max(all_times))
    assert run.start.timestamp() <= min(all_times)  # the writer's first event precedes its first point
    used = {a["name"]: a["sha256"] for a in run.artifacts}
    assert used == {p.name: sha256(p) for p in events}

    hparams = [r for key, r in runs.items() if r is not run]
    assert len(hparams) == 1
    assert hparams[0].params == {"lr": 0.1, "optimizer": "sgd", "nesterov": True}
    assert [(s, v) for s, v, _t in points_of(hparams[0])[("hp/acc", "training")]] == [(0, 0.75)]

    code, out, _err = cli(capsys, "import", "tensorboard", str(logdir), "--into", str(save_dir))
    assert code == 0 and out.splitlines()[-1] == "0 runs imported, 2 imported before"


# ---------------------------------------------------------------- yProv4ML
@pytest.mark.parametrize("version", ["3.2.8", "2.0.10"])
def test_runs_of_the_reference_library_import_with_every_value_equal(version, tmp_path, capsys):
    source = tmp_path / "yprov4ml"
    shutil.copytree(DATA / version, source)
    expected = json.loads((source / f"expected_{version}.json").read_text())
    (folder,) = (source / "prov").iterdir()
    (doc_path,) = folder.glob("prov_*.json")
    doc = json.loads(doc_path.read_text())
    save_dir = tmp_path / "prov"

    code, out, _err = cli(capsys, "import", "yprov4ml", str(source / "prov"), "--into", str(save_dir))
    assert code == 0, out
    (run,) = imported_runs(save_dir).values()
    assert run.notes["importedFrom"] == f"yprov4ml:sha256:{sha256(doc_path)}"
    assert run.experiment == expected["experiment"] and run.recorded_status == "finished"
    assert run.params == expected["params"]
    got = points_of(run)
    for key, rows in expected["points"].items():
        name, context = key.split("/")
        if rows[0][2] is None:  # 2.x takes no timestamp: the times are those the reference wrote
            (data,) = folder.glob(f"metrics_GR0/{name}_*.csv")
            times = [int(line.split(",")[2]) for line in data.read_text().splitlines()[1:]]
            rows = [[s, v, t] for (s, v, _), t in zip(rows, times)]
        assert [list(p) for p in got[(name, context)]] == rows
    assert {a["name"]: a["sha256"] for a in run.artifacts if a["location"] == "artifacts/notes.txt"} == \
        expected["artifacts"]
    (activity,) = [a for a in doc["activity"].values() if any(k.endswith("experiment_dir") for k in a)]
    if version.startswith("3."):
        assert activity["yprov:time_zone"] == "UTC+0000"
        start = datetime.fromisoformat(activity["prov:startedAtTime"]).replace(tzinfo=timezone.utc)
        end = datetime.fromisoformat(activity["prov:endedAtTime"]).replace(tzinfo=timezone.utc)
        assert (run.start, run.end) == (start, end)
        assert run.host == activity["yprov:host_name"]
    else:
        start = float(activity["yProv4ML:execution_start_time"]["$"])
        end = float(activity["yProv4ML:execution_end_time"]["$"])
        assert math.isclose(run.start.timestamp(), start, abs_tol=1e-6)
        assert math.isclose(run.end.timestamp(), end, abs_tol=1e-6)

    code, out, _err = cli(capsys, "import", "yprov4ml", str(source / "prov"), "--into", str(save_dir))
    assert code == 0 and out.splitlines()[-1] == "0 runs imported, 1 imported before"


# ---------------------------------------------------------------- errors
def test_errors_name_the_problem_and_the_fix(tmp_path, capsys):
    code, _out, err = cli(capsys, "import", "yprov4ml", str(tmp_path / "nowhere"), "--into", str(tmp_path / "prov"))
    assert code == 1 and "does not exist" in err and "provenance_save_dir" in err
    code, _out, err = cli(capsys, "import", "tensorboard", str(tmp_path / "nowhere"))
    assert code == 1 and "tensorboard --logdir" in err
    code, _out, err = cli(capsys, "import", "mlflow", str(tmp_path / "nowhere"))
    assert code == 1 and "tracking URI" in err
    with pytest.raises(SystemExit) as exc:
        main(["import", "wandb", "x"])
    assert exc.value.code == 2
    (tmp_path / "prov_x_GR0_0.json").write_text(json.dumps({"activity": {"a": {}}}))
    code, _out, err = cli(capsys, "import", "yprov4ml", str(tmp_path / "prov_x_GR0_0.json"), "--into",
                          str(tmp_path / "prov"))
    assert code == 1 and "not a document written by yProv4ML" in err
    assert not (tmp_path / "prov").exists()  # nothing was written
