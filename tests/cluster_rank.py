"""One rank of a two-node torchrun launch that records to a bucket (tests/test_multinode.py).

    torchrun --nnodes=2 --nproc-per-node=1 --node-rank=K --master-addr=127.0.0.1 --master-port=P \
        tests/cluster_rank.py URL N FLAGS [KILL_RANK]

Each rank logs ``loss`` = 0.5 * step for steps 0..N-1. Without KILL_RANK every rank ends its run with
``create_provenance_collection=True``. With it, that rank flushes, writes ``FLAGS/ready`` (its pid and
run id) and goes on logging until it is killed, writing the count it logged to ``FLAGS/logged``; the
other ranks end their runs and wait.
"""

import json
import os
import sys
import time

import torch.distributed as dist

import prov4ml

url, n, flags = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kill_rank = int(sys.argv[4]) if len(sys.argv) > 4 else None
dist.init_process_group("gloo")
rank = dist.get_rank()
run = prov4ml.start_run("www.example.org", "multi", url, collect_all_processes=True, capture=False,
                        prov_flush_interval=0.2, flush_interval=float(os.environ.get("FLUSH_INTERVAL", "5")),
                        lease_ttl=float(os.environ.get("LEASE_TTL", "30")))
prov4ml.log_param("world_size", dist.get_world_size())
for i in range(n):
    prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
if kill_rank is None:
    prov4ml.end_run(create_provenance_collection=True)
    dist.destroy_process_group()
elif rank == kill_rank:
    prov4ml.flush()
    with open(os.path.join(flags, "ready.tmp"), "w") as fh:
        json.dump({"pid": os.getpid(), "run_id": run.run_id}, fh)
    os.replace(os.path.join(flags, "ready.tmp"), os.path.join(flags, "ready"))
    i = n
    while True:  # until SIGKILL
        prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
        i += 1
        time.sleep(float(os.environ.get("RANK_SLEEP", "0.002")))
else:
    prov4ml.end_run()
    time.sleep(600)  # the node stays up; the test ends it
