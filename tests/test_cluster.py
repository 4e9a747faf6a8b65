"""Sweeps on object storage and with a real Ray: every trial's run in the bucket, no Ray-level retries, our own
``retries=`` (each retry a new run naming the failed one), and a lost worker's trial naming its (recovered) run.

A real S3 server on loopback (moto) and a real local Ray instance, started once for the module with the
bucket's credentials in its environment (as a cluster's nodes would have them).
"""

import json
import os
import uuid

import pytest

pytest.importorskip("s3fs")
ray = pytest.importorskip("ray")

import prov4ml  # noqa: E402
import prov4ml.analysis  # noqa: E402
from cluster_helpers import POINTS, flaky, train  # noqa: E402
from conftest import ROOT, literal  # noqa: E402
from prov4ml.sweep import sweep  # noqa: E402
from s3_server import bucket_files, server  # noqa: E402,F401  (the fixture)


@pytest.fixture(scope="module")
def cluster(server, tmp_path_factory):
    """The bucket's endpoint and credentials in this process's and Ray's environment; a local Ray instance."""
    env = dict(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", PROV4ML_STAGING=str(tmp_path_factory.mktemp("staging")))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {**env, "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}"}})
    yield
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def bucket(cluster):
    import boto3
    import fsspec

    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return f"s3://{name}/prefix", fsspec.filesystem("s3", skip_instance_cache=True)


def run_folders(fs, url):
    fs.invalidate_cache()
    return sorted(k.rsplit("/", 1)[-1] for k in fs.ls(url[len("s3://"):], detail=False))


def status_of(document):
    return next(a["provml:status"] for k, a in document["activity"].items() if k.endswith(".rank0"))


def read_elsewhere(monkeypatch, tmp_path, url):
    """Every run of the experiment, read from another host's staging folder: {run id: RunData}."""
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "laptop"))
    return {r.run_id: r for r in prov4ml.analysis.load_experiment(url).runs}


def losses(data):
    return list(data.metrics[data.metrics["name"] == "loss"]["value"])


@pytest.mark.parametrize("backend", ["serial", "ray"])
def test_a_sweep_to_a_bucket_puts_every_trial_in_it_readable_from_another_host(backend, bucket, tmp_path, monkeypatch):
    url, fs = bucket
    monkeypatch.chdir(tmp_path)
    configs = [{"x": x} for x in range(3)]
    results = sweep(train, configs, experiment_name="sw", provenance_save_dir=url, backend=backend,
                    workers=None if backend == "serial" else 2, start_run_options={"capture": False}, progress=False)
    assert sorted(r.run_id for r in results) == [0, 1, 2]  # Ray's trials start in any order
    assert [(r.run_dir, r.status, r.result) for r in results] == [
        (f"{url}/sw/run_{r.run_id}", "finished", x * 2.0) for x, r in enumerate(results)]
    assert os.listdir(tmp_path) == []  # nothing local, and no ./s3:/ folder
    assert run_folders(fs, f"{url}/sw") == ["run_0", "run_1", "run_2"]  # the sweep's markers are gone
    runs = read_elsewhere(monkeypatch, tmp_path, f"{url}/sw")
    for x, r in enumerate(results):
        assert losses(runs[r.run_id]) == [x * 1000 + step for step in range(POINTS)]
        assert runs[r.run_id].params["x"] == x


def test_ray_runs_eight_trials_two_of_them_killed_as_eight_runs_none_left_running(bucket, tmp_path, monkeypatch):
    url, fs = bucket
    configs = [{"x": x, **({"crash": True} if x in (2, 5) else {})} for x in range(8)]
    results = sweep(train, configs, experiment_name="sw", provenance_save_dir=url, backend="ray", workers=2,
                    start_run_options={"capture": False}, progress=False)
    assert sorted(r.run_id for r in results) == list(range(8))  # every trial names its run, lost ones too
    assert [r.status for r in results] == ["killed" if x in (2, 5) else "finished" for x in range(8)]
    for r in results:
        assert r.run_dir == f"{url}/sw/run_{r.run_id}"
        assert (r.error is not None) == (r.config["x"] in (2, 5))
    assert "WorkerCrashedError" in results[2].error and results[2].attempts == 1
    assert run_folders(fs, f"{url}/sw") == [f"run_{i}" for i in range(8)]  # no run Ray ran twice
    objects = bucket_files(fs, f"{url}/sw")
    assert not [k for k in objects if k.endswith("lease.json")]
    for r in results:
        assert status_of(json.loads(objects[f"run_{r.run_id}/prov_rank0.json"])) == r.status
    runs = read_elsewhere(monkeypatch, tmp_path, f"{url}/sw")
    for r in results:  # a killed trial's points were all journaled before its worker died
        assert losses(runs[r.run_id]) == [r.config["x"] * 1000 + step for step in range(POINTS)]


def test_retries_make_each_retry_a_new_run_influenced_by_the_failed_one(bucket, tmp_path):
    url, fs = bucket
    flags = tmp_path / "flags"
    flags.mkdir()
    configs = [{"x": 0, "flag_dir": str(flags)}, {"x": 1, "flag_dir": str(flags), "crash": True}]
    results = sweep(flaky, configs, experiment_name="sw", provenance_save_dir=url, backend="ray", workers=2,
                    retries=1, start_run_options={"capture": False}, progress=False)
    assert [(r.status, r.attempts, r.result) for r in results] == [("finished", 2, 0.0), ("finished", 2, 1.0)]
    objects = bucket_files(fs, f"{url}/sw")
    assert sorted({k.split("/")[0] for k in objects}) == [f"run_{i}" for i in range(4)]
    for r in results:
        (failed,) = r.retried_runs
        assert failed != r.run_id
        old = json.loads(objects[f"run_{failed}/prov_rank0.json"])
        assert status_of(old) == ("killed" if r.config.get("crash") else "failed")
        new = json.loads(objects[f"run_{r.run_id}/prov_rank0.json"])
        (run_id,) = [k for k in new["activity"] if k.endswith(f"run_{r.run_id}.rank0")]
        (failed_id,) = [k for k in new["activity"] if k.endswith(f"run_{failed}.rank0")]
        assert new["activity"][run_id]["provml:retryOf"] == {"$": failed_id, "type": "xsd:QName"}
        assert [(i["prov:influencee"], i["prov:influencer"]) for i in new["wasInfluencedBy"].values()] == [(run_id, failed_id)]
        assert not any(w["prov:informant"] == failed_id for w in new.get("wasInformedBy", {}).values())
        params = {e["prov:label"]: e["prov:value"] for e in new["entity"].values()
                  if "prov:value" in e and isinstance(e.get("prov:label"), str)}
        assert literal(params["sweep.retry_of"]) == failed and literal(params["sweep.attempt"]) == 1


def test_ray_options_cannot_turn_ray_retries_back_on(tmp_path):
    with pytest.raises(prov4ml.InvalidValueError, match=r"sweep\(retries=N\)"):
        sweep(train, [{"x": 0}], experiment_name="sw", provenance_save_dir=str(tmp_path), backend="ray",
              ray_options={"max_retries": 3})


def test_ray_on_a_shared_folder_passes_ray_options_and_logs_each_trial(tmp_path):
    configs = [{"x": x, **({"fail": True} if x == 1 else {})} for x in range(3)]
    results = sweep(train, configs, experiment_name="sw", provenance_save_dir=str(tmp_path / "prov"), backend="ray",
                    workers=2, ray_options={"num_cpus": 1}, start_run_options={"capture": False}, progress=False)
    assert [r.status for r in results] == ["finished", "failed", "finished"]
    assert sorted(r.run_id for r in results) == [0, 1, 2]
    assert results[1].error == "RuntimeError: trial x=1 diverged"
    assert [r.run_dir for r in results] == [str(tmp_path / "prov" / "sw" / f"run_{r.run_id}") for r in results]
    assert sorted(p.name for p in (tmp_path / "prov" / "sw").iterdir()) == ["run_0", "run_1", "run_2"]  # no markers
    for x in (0, 2):
        data = prov4ml.analysis.load_run(results[x].run_dir)
        assert losses(data) == [x * 1000 + step for step in range(POINTS)]


def _cli(*args):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "prov4ml", *args], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_every_reading_entry_point_takes_the_url(bucket, tmp_path, monkeypatch):
    url, fs = bucket
    sweep(train, [{"x": 0}, {"x": 1}], experiment_name="sw", provenance_save_dir=url,
          start_run_options={"capture": False}, progress=False)
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "laptop"))  # another host
    monkeypatch.chdir(tmp_path)
    shown = json.loads(_cli("show", f"{url}/sw/run_1", "--json"))
    assert shown["status"] == "finished" and shown["params"]["x"] == 1
    assert _cli("report", f"{url}/sw", "-o", str(tmp_path / "sw.html")).strip() == str(tmp_path / "sw.html")
    assert "nothing to recover" in _cli("recover", f"{url}/sw/run_0")
    assert prov4ml.needs_recovery(f"{url}/sw/run_0") == []
    assert len(_cli("ls", url, "--csv").splitlines()) == 3  # a header and two runs
    from prov4ml.ui.store import Store

    store = Store(url)
    assert store.url == url and sorted(h.key for h in store.runs()) == ["sw/run_0", "sw/run_1"]
    assert not (tmp_path / "s3:").exists()
