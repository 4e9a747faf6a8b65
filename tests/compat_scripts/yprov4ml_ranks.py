"""A distributed script written for yProv4ML: every torchrun rank imports `yprov4ml`.

usage: python -m prov4ml.compat.run_as_yprov4ml -m torch.distributed.run --standalone --nproc-per-node 2 \
           yprov4ml_ranks.py SAVE_DIR        (each rank writes SAVE_DIR/rank<k>.json)
"""

import json
import os
import sys

import torch
import torch.distributed as dist

import prov4ml
import yprov4ml

save_dir = sys.argv[1]
dist.init_process_group("gloo")
rank = dist.get_rank()
yprov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="ranks", provenance_save_dir=save_dir,
                   collect_all_processes=True)
total = torch.tensor([rank + 1.0])
dist.all_reduce(total)
yprov4ml.log_metric("rank_value", float(rank + 1), yprov4ml.Context.TRAINING, step=0)
yprov4ml.log_metric("sum", total.item(), yprov4ml.Context.TRAINING, step=0)
prov_json = str(yprov4ml.end_run())
with open(os.path.join(save_dir, f"rank{rank}.json"), "w") as fh:
    json.dump({"rank": rank, "is_prov4ml": yprov4ml is prov4ml, "sum": total.item(), "prov_json": prov_json,
               "pythonpath": os.environ.get("PYTHONPATH", "")}, fh)
dist.destroy_process_group()
