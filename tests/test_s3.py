"""Runs on object storage, against a real S3 server on loopback (moto's standalone server, in a thread).

Every test gets its own bucket and staging directory; the credentials and the
endpoint reach prov4ml (and every child process) through the standard AWS
environment variables, as they would on a cluster.
"""

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest

pytest.importorskip("s3fs")

import prov4ml  # noqa: E402
import prov4ml.analysis  # noqa: E402
from conftest import ROOT  # noqa: E402
from killing import Child, assert_exact, read_rows, series_count  # noqa: E402
from prov4ml.storage import local_view, push, staging_root  # noqa: E402
from s3_server import Server, _free_port, bucket_files, s3, server  # noqa: E402,F401  (the fixtures)


def local_files(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def wait_until(check, timeout=30.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def start(url, **kw):
    kw.setdefault("capture", False)
    return prov4ml.start_run("www.example.org", "exp", url, **kw)


def test_bucket_holds_exactly_the_staged_files_after_end_run(s3, tmp_path):
    url, fs = s3
    run = start(url)
    n = 2500
    for i in range(n):
        prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    prov4ml.log_param("lr", 0.01)
    (tmp_path / "notes.txt").write_text("hello")
    prov4ml.log_artifact(str(tmp_path / "notes.txt"), prov4ml.Context.TRAINING)
    prov4ml.end_run(create_graph=True)

    assert run.run_dir == staging_root() / "s3" / url[len("s3://"):] / "exp" / "run_0"
    staged = local_files(run.run_dir)
    remote = bucket_files(fs, f"{url}/exp/run_0")
    assert remote == staged
    assert {"prov_rank0.json", "prov_rank0.dot", "metrics/loss_training_rank0.csv", "artifacts/notes.txt"} <= set(remote)
    assert not any(p.startswith(".prov4ml/") for p in remote)  # the journal of a clean run is gone from both
    rows = read_rows(run.run_dir / "metrics/loss_training_rank0.csv")
    assert rows == [(i, i * 0.5) for i in range(n)]
    prefixes = json.loads(remote["prov_rank0.json"])["prefix"]
    assert prefixes["rundir"] == f"{url}/exp/run_0/"  # locations are relative to where the run lives, not a node's cache


def test_the_bucket_holds_a_readable_document_while_the_run_records(s3):
    from prov.model import ProvDocument

    url, fs = s3
    start(url, prov_flush_interval=0.1, flush_interval=0.2)
    root = f"{url[len('s3://'):]}/exp/run_0"
    checked = 0
    for batch in range(20):
        for i in range(100 * batch, 100 * (batch + 1)):
            prov4ml.log_metric("loss", float(i), prov4ml.Context.TRAINING, step=i)
        prov4ml.flush()
        time.sleep(0.3)  # a training step
        fs.invalidate_cache()
        if fs.exists(f"{root}/metrics/loss_training_rank0.csv"):
            # the document first, then the data: the bucket's data holds at least what its document counts
            count = series_count(json.loads(fs.cat_file(f"{root}/prov_rank0.json")), "loss")
            rows = fs.cat_file(f"{root}/metrics/loss_training_rank0.csv").decode().splitlines()[1:]
            assert len(rows) >= count
            assert [float(r.split(",")[1]) for r in rows[:count]] == [float(i) for i in range(count)]
            checked += count > 0

    def mirrored():
        fs.invalidate_cache()
        data = json.loads(fs.cat_file(f"{root}/prov_rank0.json"))
        return data if series_count(data, "loss") == 2000 else None

    data = wait_until(mirrored, what="a mirror with every point")
    assert checked  # the bucket was looked at while the run recorded, not only at the end
    run = next(a for k, a in data["activity"].items() if k.endswith(".rank0"))
    assert run["provml:status"] == "running"
    ProvDocument.deserialize(content=fs.cat_file(f"{root}/prov_rank0.json").decode(), format="json")
    csv = fs.cat_file(f"{root}/metrics/loss_training_rank0.csv").decode()
    assert csv.endswith("\n") and len(csv.splitlines()) == 2001  # the header and every point the document counts
    prov4ml.end_run()


CONCURRENT = """
import os, sys, time
import prov4ml
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.001)
run = prov4ml.start_run("www.example.org", "exp", sys.argv[2], capture=False)
for i in range(200):
    prov4ml.log_metric("who", float(sys.argv[3]), "training", step=i)
prov4ml.end_run()
print(run.run_id)
"""


def test_two_hosts_starting_at_once_get_different_run_ids(s3, tmp_path):
    url, fs = s3
    go = tmp_path / "go"
    procs = []
    for k in range(2):  # separate staging directories: two hosts that share only the bucket
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(tmp_path / f"host{k}")}
        procs.append(subprocess.Popen([sys.executable, "-c", CONCURRENT, str(go), url, str(k)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    time.sleep(3)  # both are waiting at the line before start_run
    go.write_text("")
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    ids = [int(o[0].split()[-1]) for o in outs]
    assert sorted(ids) == [0, 1]
    for k, run_id in enumerate(ids):
        remote = bucket_files(fs, f"{url}/exp/run_{run_id}")
        assert remote == local_files(tmp_path / f"host{k}" / "s3" / url[len("s3://"):] / "exp" / f"run_{run_id}")
        lines = remote["metrics/who_training_rank0.csv"].decode().splitlines()[1:]
        assert len(lines) == 200 and {line.split(",")[1] for line in lines} == {f"{k}.0"}


KILLED = """
run = prov4ml.start_run("www.example.org", "crash", {url!r}, capture=False, prov_flush_interval=0.2)
flag(1)
for i in range({n}):
    prov4ml.log_metric("loss", i * 0.5, "training", step=i)
    tell(i + 1)
flag(2)
time.sleep(600)
"""


def test_a_run_killed_with_sigkill_is_completed_in_the_bucket_by_recover(s3, tmp_path):
    url, fs = s3
    n = 20000
    child = Child(tmp_path, KILLED.format(url=url, n=n).replace("{", "{{").replace("}", "}}"))
    child.wait_flag(2, timeout=120)
    child.kill(signal.SIGKILL)
    run_url = f"{url}/crash/run_0"
    assert prov4ml.recover(run_url)
    remote = bucket_files(fs, run_url)
    data = json.loads(remote["prov_rank0.json"])
    run = next(a for k, a in data["activity"].items() if k.endswith(".rank0"))
    assert run["provml:status"] == "killed"
    assert series_count(data, "loss") == n
    staged = local_view(run_url)
    assert remote == local_files(staged)  # the journal too: another host could recover it again
    assert_exact(read_rows(staged / "metrics/loss_training_rank0.csv"), n)


def test_load_run_and_load_experiment_read_a_url_on_another_host(s3, tmp_path, monkeypatch):
    url, fs = s3
    values = [0.1 * i for i in range(50)]
    for lr in (0.01, 0.1):
        start(url)
        prov4ml.log_param("lr", lr)
        for i, v in enumerate(values):
            prov4ml.log_metric("acc", v * lr, prov4ml.Context.VALIDATION, step=i)
        prov4ml.end_run()
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "laptop"))  # nothing of these runs is here
    data = prov4ml.analysis.load_run(f"{url}/exp/run_1")
    assert data.params["lr"] == 0.1
    acc = data.metrics[data.metrics["name"] == "acc"]
    assert list(acc["step"]) == list(range(50)) and list(acc["value"]) == [v * 0.1 for v in values]
    assert str(data.run_dir).startswith(str(tmp_path / "laptop"))
    exp = prov4ml.analysis.load_experiment(f"{url}/exp")
    assert [r.params["lr"] for r in exp.runs] == [0.01, 0.1]


def test_a_reader_sees_what_changed_and_never_overwrites_a_local_run(s3, tmp_path, monkeypatch):
    url, fs = s3
    start(url)
    prov4ml.log_metric("x", 1.0, "training", step=0)
    prov4ml.end_run()
    run_url = f"{url}/exp/run_0"
    here = local_view(run_url)  # the recording host: nothing is downloaded, nothing is changed
    assert local_files(here) == bucket_files(fs, run_url)
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "reader"))
    there = local_view(run_url)
    root = run_url[len("s3://"):]
    fs.pipe_file(f"{root}/extra.txt", b"new")  # the bucket changes: the reader follows
    assert (local_view(run_url) / "extra.txt").read_bytes() == b"new"
    fs.pipe_file(f"{root}/extra.txt", b"newer")
    assert (local_view(run_url) / "extra.txt").read_bytes() == b"newer"
    fs.rm_file(f"{root}/extra.txt")
    assert not (local_view(run_url) / "extra.txt").exists()
    (there / "mine.txt").write_text("local")  # a file only this host has stays
    local_view(run_url)
    assert (there / "mine.txt").read_text() == "local"


def test_a_stopped_server_mid_run_costs_a_warning_not_a_hang_and_a_later_push_uploads(tmp_path, monkeypatch, caplog):
    import boto3
    import fsspec

    srv = Server()
    srv.start()
    for key, value in dict(AWS_ENDPOINT_URL=srv.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                           AWS_DEFAULT_REGION="us-east-1", PROV4ML_STAGING=str(tmp_path / "staging")).items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket="outage")
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    url = "s3://outage/p"
    try:
        run = start(url, prov_flush_interval=0.1, flush_interval=0.2, mirror_timeout=3)
        for i in range(100):
            prov4ml.log_metric("loss", i * 0.5, "training", step=i)
        prov4ml.flush()
        wait_until(lambda: series_count(json.loads(fs.cat_file("outage/p/exp/run_0/prov_rank0.json")), "loss") == 100,
                   what="the first mirror")
        srv.stop()
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="prov4ml"):
            for i in range(100, 5000):
                prov4ml.log_metric("loss", i * 0.5, "training", step=i)
            prov4ml.flush()
            wait_until(lambda: "could not copy the run" in caplog.text, what="a warning about the copy")
            assert time.monotonic() - began < 30  # logging and flushing never waited for the storage
            with pytest.warns(UserWarning, match=r"prov4ml\.storage\.push\('s3://outage/p/exp/run_0'\)") as caught:
                prov4ml.end_run()
            assert caught[0].filename == __file__  # it points at the user's end_run
        assert time.monotonic() - began < 45
        assert_exact(read_rows(run.run_dir / "metrics/loss_training_rank0.csv"), 5000)  # every point, locally
        assert prov4ml.analysis.load_run(run.run_dir).info["status"] == "finished"

        with pytest.raises(prov4ml.StorageError, match="cannot use s3://outage/p/exp/run_0"):
            push(f"{url}/exp/run_0", {"config_kwargs": {"retries": {"max_attempts": 1}}})  # still down: one clear error
        srv.start()  # the storage is back: a later mirror sends what changed
        sent = push(f"{url}/exp/run_0")
        assert sent >= 2  # at least the metric file and the final document
        assert bucket_files(fs, f"{url}/exp/run_0") == local_files(run.run_dir)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                srv.stop()
            except Exception:
                pass


def test_the_mirror_catches_up_by_itself_when_the_server_comes_back(tmp_path, monkeypatch):
    import boto3
    import fsspec

    srv = Server()
    srv.start()
    for key, value in dict(AWS_ENDPOINT_URL=srv.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                           AWS_DEFAULT_REGION="us-east-1", PROV4ML_STAGING=str(tmp_path / "staging")).items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket="blip")
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    key = "blip/p/exp/run_0/prov_rank0.json"
    try:
        start("s3://blip/p", prov_flush_interval=0.1, flush_interval=0.2)
        wait_until(lambda: fs.cat_file(key), what="the first mirror")
        srv.stop()
        for i in range(1000):
            prov4ml.log_metric("loss", i * 0.5, "training", step=i)
        prov4ml.flush()
        time.sleep(1)
        srv.start()

        def caught_up():
            fs.invalidate_cache()
            return series_count(json.loads(fs.cat_file(key)), "loss") == 1000

        wait_until(caught_up, timeout=60, what="the retried mirror")
        prov4ml.end_run()
    finally:
        srv.stop()


def test_a_url_without_its_driver_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path))
    if importlib.util.find_spec("gcsfs") is None:  # fsspec knows gs://, its driver is not installed
        with pytest.raises(prov4ml.MissingDependencyError, match=r"gcsfs"):
            prov4ml.start_run("www.example.org", "exp", "gs://bucket/p", capture=False)
    with pytest.raises(prov4ml.InvalidValueError, match=r"not a URL fsspec knows"):
        prov4ml.start_run("www.example.org", "exp", "nosuchproto-xyz://bucket/p", capture=False)
    assert not list(tmp_path.iterdir())  # nothing was created


def test_an_unreachable_endpoint_at_start_run_is_one_clear_error(s3, monkeypatch):
    url, _ = s3
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    began = time.monotonic()
    with pytest.raises(prov4ml.StorageError, match=r"cannot use s3://.*/exp \(EndpointConnectionError.*AWS_ENDPOINT_URL"):
        start(url, storage_options={"config_kwargs": {"retries": {"max_attempts": 1}}})
    assert time.monotonic() - began < 30
    assert prov4ml.active_run() is None


RANK = """
import json, os, sys, time
import prov4ml
rank = int(os.environ["RANK"])
run_id = None
if rank:
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.01)
    run_id = int(open(sys.argv[2]).read())
run = prov4ml.start_run("www.example.org", "exp", sys.argv[1], capture=False, collect_all_processes=True, run_id=run_id)
if not rank:
    open(sys.argv[2] + ".tmp", "w").write(str(run.run_id))
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
for i in range(300):
    prov4ml.log_metric("loss", i + rank / 10, "training", step=i)
prov4ml.end_run()
"""


def test_ranks_on_two_hosts_fill_one_run_in_the_bucket_without_clobbering(s3, tmp_path):
    url, fs = s3
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(tmp_path / f"host{rank}"),
               "RANK": str(rank), "WORLD_SIZE": "2"}
        procs.append(subprocess.Popen([sys.executable, "-c", RANK, url, str(tmp_path / "run_id")], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    staged = [local_files(tmp_path / f"host{rank}" / "s3" / url[len("s3://"):] / "exp" / "run_0") for rank in (0, 1)]
    assert not set(staged[0]) & set(staged[1])  # every file is one host's
    assert bucket_files(fs, f"{url}/exp/run_0") == {**staged[0], **staged[1]}
    data = prov4ml.analysis.load_run(f"{url}/exp/run_0")
    assert data.ranks == [0, 1]
    for rank in (0, 1):
        rows = data.metrics[(data.metrics["name"] == "loss") & (data.metrics["rank"] == rank)]
        assert list(rows["value"]) == [i + rank / 10 for i in range(300)]


def test_a_shared_file_system_url_works_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "staging"))
    share = tmp_path / "share"
    url = f"file://{share}"
    for _ in range(2):
        run = start(url)
        for i in range(100):
            prov4ml.log_metric("loss", i * 0.5, "training", step=i)
        prov4ml.end_run()
    assert run.run_id == 1
    assert local_files(share / "exp" / "run_1") == local_files(run.run_dir)
    assert not list(share.rglob("*.uploading"))
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "reader"))
    data = prov4ml.analysis.load_run(f"{url}/exp/run_1")
    assert list(data.metrics["value"]) == [i * 0.5 for i in range(100)]
    with pytest.raises(prov4ml.StorageError, match="holds nothing"):
        local_view(f"{url}/exp/run_7")


KILLED_AFTER_A_MIRROR = """
run = prov4ml.start_run("www.example.org", "crash", {url!r}, capture=False, prov_flush_interval=0.2)
for i in range({n}):
    prov4ml.log_metric("loss", i * 0.5, "training", step=i)
    tell(i + 1)
prov4ml.flush()
flag(1)
time.sleep(600)
"""


def test_another_host_recovers_a_killed_run_from_the_journal_in_the_bucket(s3, tmp_path, monkeypatch):
    url, fs = s3
    n = 3000
    child = Child(tmp_path, KILLED_AFTER_A_MIRROR.format(url=url, n=n).replace("{", "{{").replace("}", "}}"))
    child.wait_flag(1, timeout=120)
    key = f"{url[len('s3://'):]}/crash/run_0/prov_rank0.json"

    def mirrored():  # the document goes last in a pass: the journal of every point is there too
        fs.invalidate_cache()
        return series_count(json.loads(fs.cat_file(key)), "loss") == n

    wait_until(mirrored, what="a mirror with every point")
    child.kill(signal.SIGKILL)
    monkeypatch.setenv("PROV4ML_STAGING", str(tmp_path / "other-host"))  # the node's disk is out of reach
    assert prov4ml.recover(f"{url}/crash/run_0")
    remote = bucket_files(fs, f"{url}/crash/run_0")
    data = json.loads(remote["prov_rank0.json"])
    assert series_count(data, "loss") == n
    assert next(a for k, a in data["activity"].items() if k.endswith(".rank0"))["provml:status"] == "killed"
    (tmp_path / "loss.csv").write_bytes(remote["metrics/loss_training_rank0.csv"])
    assert_exact(read_rows(tmp_path / "loss.csv"), n)


MISSING = """
import sys
sys.modules[sys.argv[1]] = None  # as if it were not installed
import prov4ml, prov4ml.analysis
for call in (lambda: prov4ml.start_run("www.example.org", "exp", "s3://bucket/p", capture=False),
             lambda: prov4ml.analysis.load_run("s3://bucket/p/exp/run_0")):
    try:
        call()
    except prov4ml.MissingDependencyError as exc:
        print(exc)
print(prov4ml.active_run())
"""


@pytest.mark.parametrize("missing, named", [("fsspec", "'fsspec' package"), ("s3fs", "s3fs")])
def test_without_the_s3_extra_the_error_names_it(missing, named, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", MISSING, missing], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stderr[-2000:]
    for line in lines[:2]:  # the writer and the reader
        assert named in line and 'pip install "prov4ml[s3]"' in line, line
    assert lines[2] == "None"


NO_END_RUN = """
import prov4ml
prov4ml.start_run("www.example.org", "exp", {url!r}, capture=False)
for i in range(3000):
    prov4ml.log_metric("loss", i * 0.5, "training", step=i)
"""


def test_a_script_that_never_calls_end_run_still_reaches_the_bucket(s3, tmp_path):
    url, fs = s3
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    began = time.monotonic()
    child = subprocess.run([sys.executable, "-c", NO_END_RUN.format(url=url)], env=env, capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0 and "could not copy" not in child.stderr, child.stderr[-2000:]
    assert time.monotonic() - began < 60
    run_dir = staging_root() / "s3" / url[len("s3://"):] / "exp" / "run_0"
    remote = bucket_files(fs, f"{url}/exp/run_0")
    assert remote == local_files(run_dir)  # the atexit end, copied by a fresh interpreter
    data = json.loads(remote["prov_rank0.json"])
    assert series_count(data, "loss") == 3000
    assert next(a for k, a in data["activity"].items() if k.endswith(".rank0"))["provml:status"] == "finished"


def _ls_elsewhere(url, tmp_path, *args):
    """``prov4ml ls URL --csv`` as another host runs it: its own staging and cache directories."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(tmp_path / "laptop"),
           "XDG_CACHE_HOME": str(tmp_path / "laptop-cache")}
    out = subprocess.run([sys.executable, "-m", "prov4ml", "ls", url, "--csv", *args], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    import csv
    import io

    return list(csv.DictReader(io.StringIO(out.stdout)))


def test_runs_in_a_bucket_are_listed_from_another_hosts_index_without_their_files(s3, tmp_path):
    url, fs = s3
    for lr in (0.01, 0.1):
        start(url)
        prov4ml.log_param("lr", lr)
        for i in range(30):
            prov4ml.log_metric("loss", lr * i, prov4ml.Context.TRAINING, step=i)
        prov4ml.end_run()
    assert {"prov_rank0.json", "summary_rank0.json"} <= set(bucket_files(fs, f"{url}/exp/run_0"))
    rows = _ls_elsewhere(url, tmp_path)
    assert [(r["run"], r["status"], r["lr"], r["loss/training.last"]) for r in rows] == [
        ("exp/run_0", "finished", "0.01", repr(0.01 * 29)), ("exp/run_1", "finished", "0.1", repr(0.1 * 29))]
    assert not (tmp_path / "laptop").exists()  # listed from the summaries alone: nothing was copied
    assert len(list((tmp_path / "laptop-cache" / "prov4ml" / "index").glob("*.sqlite"))) == 1
    start(url)  # a run added in the bucket shows at the next listing
    prov4ml.log_param("lr", 1.0)
    prov4ml.end_run()
    rows = _ls_elsewhere(url, tmp_path, "--where", "lr>0.05", "--sort", "lr", "--desc")
    assert [(r["run"], r["lr"]) for r in rows] == [("exp/run_2", "1.0"), ("exp/run_1", "0.1")]
