"""Quickstart: a small PyTorch model trained for a few epochs on synthetic data, with provenance.

    python examples/quickstart.py [--out prov]
"""

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

import prov4ml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="prov", help="provenance_save_dir")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = (x @ torch.randn(8, 1) + 0.1 * torch.randn(512, 1)).squeeze(1)
    train_set, val_set = random_split(TensorDataset(x, y), [448, 64])
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=64)

    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.MSELoss()

    with prov4ml.run("www.example.org", "quickstart", args.out, create_graph=True) as run:
        prov4ml.log_params({"epochs": args.epochs, "batch_size": 32, "hidden": 32})
        prov4ml.log_optimizer(optimizer)
        prov4ml.log_dataset(train_loader, "train")
        prov4ml.log_dataset(val_loader, "validation")
        prov4ml.register_final_metric("val_loss", float("inf"), prov4ml.FoldOperation.MIN)

        for epoch in range(args.epochs):
            model.train()
            for i, (xb, yb) in enumerate(train_loader):
                optimizer.zero_grad()
                loss = loss_fn(model(xb).squeeze(1), yb)
                loss.backward()
                optimizer.step()
                # A tensor is fine: no .item() (and no host-device sync) per call. One point per
                # batch, so the step is the global batch index (step=epoch would stack them).
                prov4ml.log_metric("loss", loss, prov4ml.Context.TRAINING, step=epoch * len(train_loader) + i)

            model.eval()
            with torch.no_grad():
                val = sum(loss_fn(model(xb).squeeze(1), yb) for xb, yb in val_loader) / len(val_loader)
            prov4ml.log_metric("val_loss", val, prov4ml.Context.VALIDATION, step=epoch)
            prov4ml.log_current_execution_time("epoch_time", prov4ml.Context.TRAINING, step=epoch)
            prov4ml.save_model_version(model, "regressor", prov4ml.Context.TRAINING, step=epoch)
            print(f"epoch {epoch}: validation loss {float(val):.4f}")

        prov4ml.log_model(model, "regressor")

    print(f"provenance written to {run.prov_path}")
    print(f"metrics in {run.metrics_dir}, artifacts in {run.artifacts.root}")


if __name__ == "__main__":
    main()
