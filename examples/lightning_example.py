"""Lightning: a small classifier trained with ProvLogger and ProvCallback on synthetic data.

    pip install "prov4ml[lightning]"
    python examples/lightning_example.py [--out prov] [--epochs 3] [--graph]

Runs in a few seconds on a laptop CPU. ``trainer.fit`` records one run (hyper-
parameters, training and validation metrics, datasets, system readings,
checkpoints as model versions, the final model); ``trainer.test`` records a
second run of the same experiment that names the first and the checkpoint it
tested. To record fit and test as one run, open the run yourself:
``with prov4ml.run(...): trainer.fit(...); trainer.test(...)`` with ``ProvLogger()``.
"""

import argparse

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

from prov4ml.integrations.lightning import ProvCallback, ProvLogger


class Classifier(pl.LightningModule):
    def __init__(self, n_features: int = 16, hidden: int = 32, n_classes: int = 3, lr: float = 1e-2):
        super().__init__()
        self.save_hyperparameters()  # ProvLogger records these as run parameters
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def _step(self, batch):
        x, y = batch
        logits = self.net(x)
        return nn.functional.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()

    def training_step(self, batch, batch_idx):
        loss, acc = self._step(batch)
        # "train_" names the context; on_step + on_epoch give train_loss_step and train_loss_epoch
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.log("train_acc", acc, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, acc = self._step(batch)
        self.log("val_loss", loss)
        self.log("acc", acc)  # no context word: the stage (validation) decides

    def test_step(self, batch, batch_idx):
        loss, acc = self._step(batch)
        self.log("test_loss", loss)
        self.log("test_acc", acc)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def synthetic_data(n: int = 1200, n_features: int = 16, n_classes: int = 3, seed: int = 0):
    """Gaussian blobs, one per class."""
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(n_classes, n_features, generator=g)
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = centres[y] + torch.randn(n, n_features, generator=g)
    return random_split(TensorDataset(x, y), [0.7, 0.15, 0.15], generator=g)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="prov", help="provenance_save_dir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--graph", action="store_true", help="also write the DOT graph and SVG at the end")
    args = parser.parse_args()

    pl.seed_everything(0, verbose=False)
    train, val, test = synthetic_data()
    train_loader = DataLoader(train, batch_size=32, shuffle=True)
    val_loader = DataLoader(val, batch_size=64)
    test_loader = DataLoader(test, batch_size=64)

    logger = ProvLogger(
        "www.example.org", "lightning_example", args.out,
        create_graph=args.graph, create_svg=args.graph,
    )
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        logger=logger,
        callbacks=[
            # saved into <run dir>/checkpoints; each file becomes a model version
            ModelCheckpoint(monitor="val_loss", save_top_k=1),
            ProvCallback(),  # datasets, execution time, system metrics per epoch, final model
        ],
        accelerator="cpu",
        devices=1,
        log_every_n_steps=5,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = Classifier()
    trainer.fit(model, train_loader, val_loader)
    fit_run = logger.run
    trainer.test(model, test_loader, ckpt_path="best", verbose=False)
    test_run = logger.run

    print(f"training run:  {fit_run.prov_path}")
    print(f"  metrics in {fit_run.metrics_dir}, checkpoints in {fit_run.run_dir / 'checkpoints'}")
    print(f"test run:      {test_run.prov_path} (follows run {fit_run.run_id})")


if __name__ == "__main__":
    main()
