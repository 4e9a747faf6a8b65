"""ProvMLItwinAILogger driven as itwinai's trainers drive a logger, through every kind it supports.

usage: python itwinai_logger.py SAVE_DIR   (writes SAVE_DIR/seen.json)
"""

import json
import sys

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import prov4ml

SAVE_DIR = sys.argv[1]
EPOCHS = 2

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
data = TensorDataset(torch.randn(32, 4), torch.randn(32, 1))
loader = DataLoader(data, batch_size=8)
optim = torch.optim.SGD(model.parameters(), lr=0.05)

logger = prov4ml.ProvMLItwinAILogger(
    experiment_name="itwinai", provenance_save_dir=SAVE_DIR, create_graph=True, create_svg=True, log_freq=2,
)
seen = {"supported_kinds": list(logger.supported_kinds), "logged": [], "skipped_batches": []}
with logger.start_logging(rank=0):
    logger.save_hyperparameters({"lr": 0.05, "batch_size": 8, "epochs": EPOCHS})
    logger.log(loader, "train_dataloader", kind="torch")
    logger.log("sgd", "optimizer", kind="torch")
    for epoch in range(EPOCHS):
        for batch_idx, (x, y) in enumerate(loader):
            optim.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optim.step()
            # log_freq=2: batches 0 and 2 are recorded, 1 and 3 are not
            logger.log(loss.item(), "batch_loss", kind="metric", step=epoch * 4 + batch_idx, batch_idx=batch_idx)
            if batch_idx % 2 == 0:
                seen["logged"].append([epoch * 4 + batch_idx, loss.item()])
            else:
                seen["skipped_batches"].append(epoch * 4 + batch_idx)
        logger.log((model, x), "flops_per_batch", kind="flops_pb", step=epoch, context="training")
        logger.log((model, data), "flops_per_epoch", kind="flops_pe", step=epoch, context="training")
        logger.log(None, None, kind="system", step=epoch, context="training")
        logger.log(None, None, kind="carbon", step=epoch, context="training")
        logger.log(None, "epoch_time", kind="execution_time", step=epoch, context="training")
        logger.log(model, "model", kind="model", step=epoch, context="training")
        logger.log(None, "a_figure", kind="figure")  # another logger's kind: ignored
    logger.log(model, "best_model", kind="best_model")
    logger.log(None, None, kind="prov_documents")
    seen["prov_documents"] = logger.prov_documents
    seen["run_dir"] = str(prov4ml.active_run().run_dir)

seen["active_after"] = prov4ml.active_run() is not None
worker = prov4ml.ProvMLItwinAILogger(experiment_name="itwinai", provenance_save_dir=SAVE_DIR, log_on_workers=[0])
worker.create_logger_context(rank=3)  # not a logging worker: no run, every call ignored
worker.log(1.0, "ignored", kind="metric")
seen["worker_3_run"] = prov4ml.active_run() is not None
worker.destroy_logger_context()
with open(f"{SAVE_DIR}/seen.json", "w") as fh:
    json.dump(seen, fh)
