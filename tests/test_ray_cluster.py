"""A two-node Ray 2.60 cluster on loopback (``ray start --head`` + ``ray start --address``), each node with its
own staging folder (its own disk), sweeping into a real S3 server (moto): every trial's run reaches the bucket
whichever node ran it, a worker killed on a node is a ``killed`` run that names itself, and another host
reads every run with exact counts. Slow and sensitive to load: ``.ci/run`` runs it in its serial step
(``pytest -m cluster``).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("ray")

import prov4ml.analysis  # noqa: E402
from cluster_helpers import POINTS  # noqa: E402
from conftest import ROOT  # noqa: E402
from s3_server import _free_port, bucket_files, s3, server  # noqa: E402,F401  (the fixtures)

pytestmark = pytest.mark.cluster

DRIVER = """
import json, sys, time
import ray
from prov4ml.sweep import sweep
import cluster_helpers
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + 120
while sum(n["Alive"] for n in ray.nodes()) < 2:
    assert time.monotonic() < deadline, ray.nodes()
    time.sleep(0.2)
configs = [{"x": x, **({"crash": True} if x == 3 else {})} for x in range(6)]
results = sweep(cluster_helpers.train, configs, experiment_name="sw", provenance_save_dir=sys.argv[2],
                backend="ray", workers=2, start_run_options={"capture": False}, progress=False)
print(json.dumps([[r.run_id, r.run_dir, r.status, r.error] for r in results]))
"""


def ray_node(tmp_path, name, *args):
    """One `ray start --block` node in its own process group (ended by its group id, never by `ray stop`)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PROV4ML_STAGING": str(tmp_path / name),
           "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(["ray", "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(nodes):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for node in nodes:
            try:
                os.killpg(node.pid, sig)
            except ProcessLookupError:
                pass
        for node in nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass


def test_a_two_node_ray_cluster_on_loopback_sweeps_into_a_bucket(s3, tmp_path, monkeypatch):
    url, fs = s3
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    nodes = [ray_node(tmp_path, "node0", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}")]
    try:
        time.sleep(2)
        nodes.append(ray_node(tmp_path, "node1", f"--address=127.0.0.1:{port}"))
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PROV4ML_STAGING": str(tmp_path / "driver"),
               "PYTHONPATH": f"{ROOT / 'tests'}:{ROOT}"}
        out = subprocess.run([sys.executable, "-c", DRIVER, f"127.0.0.1:{port}", f"{url}"], env=env,
                             capture_output=True, text=True, timeout=400)
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        stop(nodes)
        shutil.rmtree(temp, ignore_errors=True)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(r[0] for r in results) == list(range(6))
    assert [r[2] for r in results] == ["killed" if x == 3 else "finished" for x in range(6)]
    assert [r[1] for r in results] == [f"{url}/sw/run_{r[0]}" for r in results]
    staged = {node: {p.name for p in (tmp_path / node).glob("s3/*/prefix/sw/run_*")} for node in ("node0", "node1")}
    assert staged["node0"] and staged["node1"]  # both nodes ran trials
    objects = bucket_files(fs, f"{url}/sw")
    assert sorted({k.split("/")[0] for k in objects}) == [f"run_{i}" for i in range(6)]
    assert not [k for k in objects if k.endswith("lease.json")]
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "laptop"))
    runs = {r.run_id: r for r in prov4ml.analysis.load_experiment(f"{url}/sw").runs}
    for x, (run_id, _where, status, _error) in enumerate(results):  # in trial order
        data = runs[run_id]
        values = list(data.metrics[data.metrics["name"] == "loss"]["value"])
        if status == "finished":
            assert values == [x * 1000 + step for step in range(POINTS)]
        else:  # killed on its node: the points its journal had in the bucket, recovered by the driver's host
            assert values == [x * 1000 + step for step in range(len(values))]
            assert data.info["status"] == "killed"
