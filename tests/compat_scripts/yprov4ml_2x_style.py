"""A training script in the style of yProv4ML 2.0.x, as itwinai's users wrote them, run unchanged.

usage: python -m prov4ml.compat.run_as_yprov4ml yprov4ml_2x_style.py SAVE_DIR   (writes SAVE_DIR/seen.json)

The Context enum, `save_model_version(name, model, context, step)` with a
positional step, `Contexts.MODELS`, `log_model(..., log_model_layers=True)`,
a dask task that imports yprov4ml itself, and PROV4ML_DATA read after end_run.
"""

import json
import sys

import torch
import yprov4ml
from yprov4ml import Context, Contexts


def dask_task(save_dir):
    import yprov4ml as y

    y.start_run(prov_user_namespace="www.example.org", experiment_name="dask_eval", provenance_save_dir=save_dir)
    y.log_metric("acc", 0.5, y.Context.EVALUATION, step=0)
    y.end_run()
    return y.PROV4ML_DATA.EXPERIMENT_DIR


if __name__ == "__main__":
    save_dir = sys.argv[1]
    torch.manual_seed(0)
    yprov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="style_2x", provenance_save_dir=save_dir)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    yprov4ml.log_param("lr", 0.1)
    for epoch in range(3):
        loss = net(torch.randn(8, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        yprov4ml.log_metric("loss", float(loss), Context.TRAINING, step=epoch)
        yprov4ml.save_model_version("net", net, Context.TRAINING, epoch)  # 2.x: the step is the 4th, positional
    yprov4ml.log_model("net", net, Contexts.MODELS, log_model_layers=True)
    yprov4ml.end_run(create_graph=False, create_svg=False)
    experiment_dir = yprov4ml.PROV4ML_DATA.EXPERIMENT_DIR  # the reference's scripts read it after end_run

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dask_dir = client.submit(dask_task, save_dir).result()
    with open(f"{save_dir}/seen.json", "w") as fh:
        json.dump({"experiment_dir": str(experiment_dir), "dask_dir": str(dask_dir)}, fh)
