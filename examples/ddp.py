"""Distributed data-parallel training on CPU, provenance per rank, then one collection document.

    torchrun --standalone --nproc_per_node=2 examples/ddp.py [--out prov] [--epochs 3]
    torchrun --nnodes=2 --node-rank=K ... examples/ddp.py --out s3://bucket/prefix   (docs/cluster.md)

Every rank records its own run document (``collect_all_processes=True``), all
in one run directory: ``<out>/ddp/run_<id>/prov_rank<k>.json``. After a
barrier, rank 0 links them in ``<out>/ddp/ddp_collection.json``
(``prov4ml.prov_collection``), with a bundle per rank. With ``--out s3://...``
each node stages its ranks and end_run copies them to the bucket, where rank 0
reads every node's documents.
"""

import argparse
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import prov4ml
from prov4ml.prov_collection import create_collection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="prov", help="provenance_save_dir")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        print("examples/ddp.py runs one process per rank and is started by torchrun, which sets RANK and WORLD_SIZE:\n"
              "    torchrun --standalone --nproc_per_node=2 examples/ddp.py", file=sys.stderr)
        raise SystemExit(2)

    torch.set_num_threads(1)  # the ranks share the machine's cores
    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
    rank, world = dist.get_rank(), dist.get_world_size()

    torch.manual_seed(0)  # same data and initial weights on every rank
    x = torch.randn(1024, 16)
    y = x @ torch.randn(16, 1) + 0.1 * torch.randn(1024, 1)
    dataset = TensorDataset(x, y)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=64, sampler=sampler)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = nn.MSELoss()

    # The rank comes from torch.distributed; rank 0 picks the run id and the others join it.
    run = prov4ml.start_run("www.example.org", "ddp", args.out, collect_all_processes=True)
    prov4ml.log_params({"epochs": args.epochs, "batch_size": 64, "lr": 0.05, "world_size": world})
    prov4ml.log_dataset(loader, "train")
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        prov4ml.mark_epoch(epoch, prov4ml.Context.TRAINING)
        total = torch.zeros(2)
        for i, (xb, yb) in enumerate(loader):
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()  # DDP averages the gradients across the ranks here
            optimizer.step()
            # one point per batch, so the step is the global batch index (step=epoch would stack them)
            prov4ml.log_metric("loss", loss, prov4ml.Context.TRAINING, step=epoch * len(loader) + i)
            total += torch.stack([loss.detach() * len(xb), torch.tensor(float(len(xb)))])
        dist.all_reduce(total)  # the mean loss over every rank's samples
        prov4ml.log_metric("global_loss", total[0] / total[1], prov4ml.Context.TRAINING, step=epoch)
        prov4ml.save_model_version(model.module, "regressor", prov4ml.Context.TRAINING, step=epoch)
        if rank == 0:
            print(f"epoch {epoch}: loss over all ranks {float(total[0] / total[1]):.4f}")
    path = prov4ml.end_run()
    print(f"rank {rank}: provenance written to {path}")

    dist.barrier()  # every rank's document is on disk
    if rank == 0:
        where = run.experiment_url or run.experiment_dir  # --out s3://...: every node's ranks are in the bucket
        collection = create_collection(where, where)
        print(f"collection of {world} ranks written to {collection}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
