"""What a lost node takes with it: a rank recording to a bucket, SIGKILLed with its node, recovered from another.

    python benchmarks/cluster.py [--repeat 3] [--sleep 0.002] [--flush-interval 2]

Starts a real S3 server on loopback (moto), then, per repeat, two ``torchrun --nnodes=2`` launches (gloo,
CPU), each node with its own staging folder (``PROV4ML_STAGING``), running ``tests/cluster_rank.py``: rank 1
logs points until it and its whole node are SIGKILLed, 2 s after its first flush. Prints, per repeat:

- ``logged``: points whose ``log_metric`` had returned (the journal in the lost node's own staging folder);
- ``in bucket``: points whose journal had reached the bucket at the kill;
- ``recovered``: points ``prov4ml recover URL`` restored from a third staging folder, and whether they are
  exactly the first ``in bucket`` points;
- ``lost``: the window the node took with it, in points and in seconds of logging.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def journal_points(directory: Path) -> int:
    from prov4ml.metrics.journal import JournalReader, read_series

    sids = [s for s, meta in read_series(str(directory)).items() if meta["name"] == "loss"]
    return sum(1 for r in JournalReader(str(directory)).read(final=True, limit=1 << 30) if r[0] in sids)


def once(url: str, work: Path, fs, sleep: float, flush_interval: float) -> dict:
    port, flags = _free_port(), work / "flags"
    flags.mkdir(parents=True)
    procs = []
    for node in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(work / f"node{node}"),
               "OMP_NUM_THREADS": "1", "LEASE_TTL": "30", "RANK_SLEEP": str(sleep), "FLUSH_INTERVAL": str(flush_interval)}
        procs.append(subprocess.Popen(
            ["torchrun", "--nnodes=2", "--nproc-per-node=1", f"--node-rank={node}", "--master-addr=127.0.0.1",
             f"--master-port={port}", str(ROOT / "tests" / "cluster_rank.py"), url, "1000", str(flags), "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    while not (flags / "ready").exists():
        time.sleep(0.05)
    ready = json.loads((flags / "ready").read_text())
    began = time.monotonic()
    time.sleep(2.0)
    os.kill(ready["pid"], signal.SIGKILL)
    lasted = time.monotonic() - began
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    run_url = f"{url}/multi/run_{ready['run_id']}"
    local = work / "node1" / "s3" / url[len("s3://"):] / "multi" / f"run_{ready['run_id']}" / ".prov4ml" / "rank1"
    logged = journal_points(local)
    bucket = work / "bucket-journal"
    bucket.mkdir()
    for key in fs.find(f"{run_url[len('s3://'):]}/.prov4ml/rank1"):
        (bucket / key.rsplit("/", 1)[-1]).write_bytes(fs.cat_file(key))
    in_bucket = journal_points(bucket)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROV4ML_STAGING": str(work / "node2")}
    subprocess.run([sys.executable, "-m", "prov4ml", "recover", run_url], env=env, check=True, capture_output=True)
    rows = fs.cat_file(f"{run_url[len('s3://'):]}/metrics/loss_training_rank1.csv").decode().splitlines()[1:]
    exact = [float(r.split(",")[1]) for r in rows] == [i * 0.5 for i in range(in_bucket)]
    rate = (logged - 1000) / lasted
    return {"logged": logged, "in_bucket": in_bucket, "recovered": len(rows), "exact": exact,
            "lost": logged - in_bucket, "lost_s": (logged - in_bucket) / rate if rate else 0.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sleep", type=float, default=0.002, help="seconds between two points of the killed rank")
    p.add_argument("--flush-interval", type=float, default=2.0, help="the run's flush_interval (s)")
    args = p.parse_args()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    try:
        for i in range(args.repeat):
            bucket = f"b-{uuid.uuid4().hex[:12]}"
            boto3.client("s3").create_bucket(Bucket=bucket)
            with tempfile.TemporaryDirectory() as work:
                r = once(f"s3://{bucket}/prefix", Path(work), fs, args.sleep, args.flush_interval)
            print(f"repeat {i}: logged {r['logged']}, in bucket {r['in_bucket']}, recovered {r['recovered']} "
                  f"(exactly those: {r['exact']}), lost {r['lost']} points = {r['lost_s']:.2f} s of logging", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
