"""The reference library's MNIST example, on synthetic 28x28 digits generated here (no download).

    python examples/mnist_style.py [--out prov] [--epochs 2]

A small CNN trained with a plain PyTorch loop, logging as yProv4ML users do:
the loss per batch, system, carbon (when codecarbon is installed) and FLOP
metrics per epoch, the execution time, a model version per epoch, then the
graph of the run.
"""

import argparse
import importlib.util

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prov4ml


def synthetic_digits(n: int, seed: int) -> TensorDataset:
    """Ten classes of 28x28 images: a class-specific blob plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = 0.3 * torch.randn(n, 1, 28, 28, generator=g)
    for digit in range(10):
        row, col = 4 + 2 * (digit // 5) * 5, 4 + 4 * (digit % 5)
        images[labels == digit, :, row:row + 8, col:col + 4] += 1.0
    return TensorDataset(images, labels)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.max_pool2d(F.relu(self.conv(x)), 2), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="prov", help="provenance_save_dir")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    train_loader = DataLoader(synthetic_digits(2048, 0), batch_size=64, shuffle=True)
    test_loader = DataLoader(synthetic_digits(512, 1), batch_size=256)
    model = Net()
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)

    prov4ml.start_run(
        prov_user_namespace="www.example.org",
        experiment_name="mnist_style",
        provenance_save_dir=args.out,
        save_after_n_logs=100,
        disable_codecarbon=importlib.util.find_spec("codecarbon") is None,
    )
    prov4ml.log_param("batch_size", 64)
    prov4ml.log_optimizer(optim)
    prov4ml.log_dataset(train_loader, "train_dataset")
    prov4ml.log_dataset(test_loader, "test_dataset")

    for epoch in range(args.epochs):
        model.train()
        for i, (x, y) in enumerate(train_loader):
            optim.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optim.step()
            # one point per batch, so the step is the global batch index (step=epoch would stack them)
            prov4ml.log_metric("MSE_train", loss, prov4ml.Context.TRAINING, step=epoch * len(train_loader) + i)
        prov4ml.log_flops_per_epoch("train_flops", model, train_loader, prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_carbon_metrics(prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_system_metrics(prov4ml.Context.TRAINING, step=epoch)
        prov4ml.log_current_execution_time("train_epoch_time", prov4ml.Context.TRAINING, epoch)
        prov4ml.save_model_version(model, f"mnist_model_version_{epoch}", prov4ml.Context.TRAINING, epoch)
        print(f"epoch {epoch}: last batch loss {loss.item():.3f}")

    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += int((model(x).argmax(1) == y).sum())
            prov4ml.log_metric("MSE_test", F.cross_entropy(model(x), y), prov4ml.Context.TESTING)
    prov4ml.log_metric("accuracy", correct / len(test_loader.dataset), prov4ml.Context.TESTING)
    prov4ml.log_model(model, "mnist_model_final")

    path = prov4ml.end_run(create_graph=True, create_svg=True)
    print(f"test accuracy {correct / len(test_loader.dataset):.3f}")
    print(f"provenance written to {path} (graph: {path.with_suffix('.svg')})")


if __name__ == "__main__":
    main()
