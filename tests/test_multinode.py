"""Ranks of a multi-node launch on object storage: two ``torchrun --nnodes=2`` (gloo, CPU) launches, each with
its own staging folder (``PROV4ML_STAGING``) standing for a node's disk, recording to a real S3 server on
loopback (moto). Collection sees every rank from any host; a rank killed with SIGKILL is recovered from a
third "node" with exactly the points whose journal reached the bucket; its lease tells other hosts it is dead.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("torch")

import prov4ml  # noqa: E402
import prov4ml.analysis  # noqa: E402
from conftest import ROOT  # noqa: E402
from killing import read_rows  # noqa: E402
from s3_server import _free_port, bucket_files, s3, server  # noqa: E402,F401  (the fixtures)

pytestmark = pytest.mark.cluster

N = 2000


def launch(url, tmp_path, script, *args, ttl=30):
    """Two torchrun launches, node ranks 0 and 1, each with its own staging folder (a node's own disk)."""
    port = _free_port()
    procs = []
    for node in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(tmp_path / f"node{node}"),
               "OMP_NUM_THREADS": "1", "LEASE_TTL": str(ttl)}
        cmd = ["torchrun", "--nnodes=2", "--nproc-per-node=1", f"--node-rank={node}", "--master-addr=127.0.0.1",
               f"--master-port={port}", str(script), *map(str, args)]
        procs.append(subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, start_new_session=True))
    return procs


def finish(procs, timeout=300):
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[-3000:] for o in outs]
    return outs


def bundles(data):
    return sorted(data.get("bundle", {}))


def elsewhere(monkeypatch, tmp_path, name="node2"):
    """This test process becomes a third node: its own staging folder, nothing of the launch's files."""
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / name))


def cli(tmp_path, *args, module=("-m", "prov4ml")):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, *module, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_two_nodes_to_a_bucket_collect_both_ranks_in_the_run_and_from_the_clis(s3, tmp_path, monkeypatch):
    url, fs = s3
    finish(launch(url, tmp_path, ROOT / "tests" / "cluster_rank.py", url, N, tmp_path))
    remote = bucket_files(fs, f"{url}/multi")
    run = {k[len("run_0/"):] for k in remote if k.startswith("run_0/")}
    assert {"prov_rank0.json", "prov_rank1.json", "summary_rank0.json", "summary_rank1.json",
            "metrics/loss_training_rank0.csv", "metrics/loss_training_rank1.csv"} <= run
    assert not [k for k in run if k.startswith(".prov4ml/")]  # journals removed after a clean end, leases released
    for rank in (0, 1):  # each node staged only its own rank
        staged = tmp_path / f"node{rank}" / "s3" / url[len("s3://"):] / "multi" / "run_0"
        assert sorted(p.name for p in staged.glob("prov_rank*.json")) == [f"prov_rank{rank}.json"]
    in_run = json.loads(remote["multi_collection.json"])  # end_run(create_provenance_collection=True) on rank 0
    assert len(bundles(in_run)) == 2
    elsewhere(monkeypatch, tmp_path)
    out = cli(tmp_path, "collect", f"{url}/multi", "-o", str(tmp_path / "cli"))
    assert out.strip() == str(tmp_path / "cli" / "multi_collection.json")
    shim = tmp_path / "shim"
    cli(tmp_path, "--experiment_path", f"{url}/multi", "--output_dir", str(shim), module=("-m", "prov4ml.prov_collection"))
    to_bucket = cli(tmp_path, "collect", f"{url}/multi", "-o", f"{url}/collections").strip()
    assert to_bucket == f"{url}/collections/multi_collection.json"
    for data in (json.loads((tmp_path / "cli" / "multi_collection.json").read_text()),
                 json.loads((shim / "multi_collection.json").read_text()),
                 json.loads(fs.cat_file(to_bucket[len("s3://"):]))):
        assert len(bundles(data)) == 2
        assert data["prefix"]["collection"] == f"{url}/multi/"  # the documents are named by their URLs, not paths
        locations = sorted(e["prov:location"]["$"] for e in data["entity"].values() if "prov:location" in e)
        assert locations == ["collection:run_0/prov_rank0.json", "collection:run_0/prov_rank1.json"]
    assert not (tmp_path / "s3:").exists()
    data = prov4ml.analysis.load_run(f"{url}/multi/run_0")
    assert data.ranks == [0, 1]
    for rank in (0, 1):
        rows = data.metrics[(data.metrics["name"] == "loss") & (data.metrics["rank"] == rank)]
        assert list(rows["value"]) == [i * 0.5 for i in range(N)]
    show = cli(tmp_path, "show", f"{url}/multi/run_0", "--json")
    assert json.loads(show)["status"] == "finished"


def test_the_ddp_example_on_two_nodes_collects_both_ranks_from_the_bucket(s3, tmp_path):
    url, fs = s3
    outs = finish(launch(url, tmp_path, ROOT / "examples" / "ddp.py", "--out", url, "--epochs", "1"))
    assert "collection of 2 ranks written to" in outs[0], outs[0][-2000:]
    data = json.loads(bucket_files(fs, f"{url}/ddp")["ddp_collection.json"])
    assert len(bundles(data)) == 2


def journal_points(fs, url, rank):
    """The points of rank ``rank``'s journal as the bucket holds it (read straight from the objects)."""
    import tempfile

    from prov4ml.metrics.journal import JournalReader, read_series

    root = f"{url[len('s3://'):]}/.prov4ml/rank{rank}"
    with tempfile.TemporaryDirectory() as tmp:
        for key in fs.find(root):
            with open(os.path.join(tmp, key.rsplit("/", 1)[-1]), "wb") as fh:
                fh.write(fs.cat_file(key))
        (sid,) = [s for s, meta in read_series(tmp).items() if meta["name"] == "loss"]
        return sum(1 for record in JournalReader(tmp).read(final=True, limit=1 << 30) if record[0] == sid)


def test_a_rank_killed_on_one_node_is_recovered_from_another_with_every_point_in_the_bucket(s3, tmp_path, monkeypatch):
    url, fs = s3
    flags = tmp_path / "flags"
    flags.mkdir()
    procs = launch(url, tmp_path, ROOT / "tests" / "cluster_rank.py", url, N, flags, 1, ttl=4)
    deadline = time.monotonic() + 180
    while not (flags / "ready").exists():
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.poll() for p in procs]
        time.sleep(0.05)
    ready = json.loads((flags / "ready").read_text())
    run_url = f"{url}/multi/run_{ready['run_id']}"
    monkeypatch.setattr(socket, "gethostname", lambda: "node2")  # this process reads as another host would
    elsewhere(monkeypatch, tmp_path)
    time.sleep(1.0)  # the rank goes on logging; its mirror keeps copying
    assert prov4ml.needs_recovery(run_url) == []  # alive: its lease is fresh
    with pytest.raises(prov4ml.RecoveryError, match=r"rank 1 \(pid \d+ on .*lease renewed"):
        prov4ml.recover(run_url)
    os.kill(ready["pid"], signal.SIGKILL)  # the rank, then its whole node
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    in_bucket = journal_points(fs, run_url, 1)
    assert in_bucket >= N
    deadline = time.monotonic() + 60
    while prov4ml.needs_recovery(run_url) != [1]:  # until its lease expires (4 s after its last renewal)
        assert time.monotonic() < deadline
        time.sleep(0.5)
    out = cli(tmp_path, "recover", run_url)  # the console command, from a fresh process on "node2"
    assert out.strip() == f"recovered {run_url}/prov_rank1.json"
    remote = bucket_files(fs, run_url)
    assert not [k for k in remote if k.endswith("lease.json")]
    data = json.loads(remote["prov_rank1.json"])
    assert next(a for k, a in data["activity"].items() if k.endswith(".rank1"))["provml:status"] == "killed"
    (tmp_path / "loss.csv").write_bytes(remote["metrics/loss_training_rank1.csv"])
    assert read_rows(tmp_path / "loss.csv") == [(i, i * 0.5) for i in range(in_bucket)]  # what reached the bucket
    assert prov4ml.needs_recovery(run_url) == []
    assert prov4ml.recover(run_url) == []  # a second recover changes nothing
