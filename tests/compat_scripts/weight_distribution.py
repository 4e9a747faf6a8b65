"""WeightDistributionTrackedModel: log_epoch(epoch) after each epoch of a small training loop.

usage: python weight_distribution.py SAVE_DIR ARRAY_FORMAT   (zarr | npy)
Writes SAVE_DIR/expected.pt: the model's state_dict after each epoch.
"""

import sys

import torch
import torch.nn as nn

import prov4ml

SAVE_DIR, ARRAY_FORMAT = sys.argv[1], sys.argv[2]
EPOCHS = 3

prov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="weight_distribution",
    provenance_save_dir=SAVE_DIR,
)

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
model = prov4ml.WeightDistributionTrackedModel("mlp", net, context=prov4ml.Context.TRAINING, chunk_size=64,
                                               array_format=ARRAY_FORMAT)
optim = torch.optim.Adam(model.parameters(), lr=0.01)
x, y = torch.randn(32, 5), torch.randn(32, 2)

snapshots = []
for epoch in range(EPOCHS):
    for i in range(4):
        optim.zero_grad()
        nn.functional.mse_loss(model(x[i * 8:(i + 1) * 8]), y[i * 8:(i + 1) * 8]).backward()
        optim.step()
    prov4ml.log_metric("epoch", epoch, prov4ml.Context.TRAINING, step=epoch)
    model.log_epoch(epoch)
    snapshots.append({k: v.detach().clone() for k, v in net.named_parameters()})

torch.save(snapshots, f"{SAVE_DIR}/expected.pt")
print(prov4ml.end_run())
