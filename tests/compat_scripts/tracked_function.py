"""A loss and a metric wrapped with ProvenanceTrackedFunction, in the style of yProv4ML's examples.

usage: python tracked_function.py SAVE_DIR   (writes SAVE_DIR/returned.json: what the calls returned)
"""

import json
import sys

import torch
import torch.nn as nn

import prov4ml

SAVE_DIR = sys.argv[1]
EPOCHS = 3
BATCHES = 4

prov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="tracked_function",
    provenance_save_dir=SAVE_DIR,
    save_after_n_logs=5,
)

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1))
optim = torch.optim.SGD(model.parameters(), lr=0.1)

# a loss object (named after its class) and a plain function (named after itself)
loss_fn = prov4ml.ProvenanceTrackedFunction(nn.MSELoss(), context=prov4ml.Context.TRAINING).to("cpu")


def mae(y_hat, y):
    return (y_hat - y).abs().mean().item()


val_mae = prov4ml.ProvenanceTrackedFunction(mae, "Validation")

returned = {"MSELoss": [], "mae": []}
x, y = torch.randn(BATCHES * 8, 6), torch.randn(BATCHES * 8, 1)
for epoch in range(EPOCHS):
    for i in range(BATCHES):
        optim.zero_grad()
        loss = loss_fn(model(x[i * 8:(i + 1) * 8]), y[i * 8:(i + 1) * 8])
        loss.backward()
        optim.step()
        returned["MSELoss"].append(loss.item())
    with torch.no_grad():
        returned["mae"].append(val_mae(model(x), y))

with open(f"{SAVE_DIR}/returned.json", "w") as fh:
    json.dump({"returned": returned, "calls": {"MSELoss": loss_fn.calls, "mae": val_mae.calls},
               "name": loss_fn.__name__, "reduction": loss_fn.reduction}, fh)
print(prov4ml.end_run())
