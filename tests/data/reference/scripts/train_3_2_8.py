"""A small training run recorded by yprov4ml 3.2.8 (its 3.x call forms), for prov4ml's test fixtures.

usage (in a folder of its own): python train_3_2_8.py   -> prov/ref3_0/
"""

import torch
from torch.utils.data import DataLoader, TensorDataset

import yprov4ml

torch.manual_seed(0)
x = torch.randn(32, 4)
y = (x.sum(dim=1) > 0).long()
train = DataLoader(TensorDataset(x[:24], y[:24]), batch_size=8, shuffle=True)
valid = DataLoader(TensorDataset(x[24:], y[24:]), batch_size=8)
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = torch.nn.CrossEntropyLoss()

yprov4ml.start_run(
    prov_user_namespace="www.example.org",
    experiment_name="ref3",
    provenance_save_dir="prov",
    save_after_n_logs=100,
    collect_all_processes=False,
    metrics_file_type="csv",
)
yprov4ml.log_param("lr", 0.1)
yprov4ml.log_param("batch_size", 8)
yprov4ml.log_dataset("train_dataset", train, context="Training")
yprov4ml.log_dataset("val_dataset", valid, context="Validation")
for epoch in range(3):
    model.train()
    for xb, yb in train:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        yprov4ml.log_metric("loss", loss.item(), context="Training", step=epoch)
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(xb) for xb, _ in valid])
        yv = torch.cat([yb for _, yb in valid])
        yprov4ml.log_metric("val_loss", loss_fn(out, yv).item(), context="Validation", step=epoch)
        yprov4ml.log_metric("val_acc", (out.argmax(1) == yv).float().mean().item(), context="Validation", step=epoch)
    yprov4ml.save_model_version("net", model, context="Training", step=epoch)
with open("notes.txt", "w") as fh:
    fh.write("a file logged as an artifact\n")
yprov4ml.log_artifact("notes", "notes.txt", context="Training")
yprov4ml.log_model("net_final", model, context="Training", log_model_layers=True)
yprov4ml.end_run(create_graph=False, create_svg=False)
