"""ProvMLLogger() in a real Lightning Trainer, as yProv4ML's Lightning example uses it.

usage: python lightning_logger.py MODE   (run in an empty folder; writes seen.json there)
  MODE "active": the script starts the run itself and ends it (yProv4ML's example);
  MODE "own":    no run is started; ProvMLLogger() starts one under ./prov and ends it.
"""

import json
import sys

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import prov4ml

MODE = sys.argv[1]
EPOCHS = 2
BATCH = 8


class Regressor(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.model = torch.nn.Sequential(torch.nn.Linear(4, 1))
        self.seen = {"MSE_training": [], "MSE_validation": [], "MSE_test": []}

    def forward(self, x):
        return self.model(x)

    def _log(self, name, batch):
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log(name, loss, on_step=True, on_epoch=False)
        self.seen[name].append(loss.item())
        return loss

    def training_step(self, batch, _):
        return self._log("MSE_training", batch)

    def validation_step(self, batch, _):
        self._log("MSE_validation", batch)

    def test_step(self, batch, _):
        self._log("MSE_test", batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


if MODE == "active":
    prov4ml.start_run(prov_user_namespace="www.example.org", experiment_name="lightning_active",
                      provenance_save_dir="prov", save_after_n_logs=100)

g = torch.Generator().manual_seed(0)
x, y = torch.randn(48, 4, generator=g), torch.randn(48, 1, generator=g)
train = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=BATCH)
val = DataLoader(TensorDataset(x[32:40], y[32:40]), batch_size=BATCH)
test = DataLoader(TensorDataset(x[40:], y[40:]), batch_size=BATCH)

model = Regressor()
logger = prov4ml.ProvMLLogger()
trainer = L.Trainer(max_epochs=EPOCHS, logger=[logger], enable_checkpointing=False, log_every_n_steps=1,
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
trainer.fit(model, train, val_dataloaders=val)
fit_run = logger.run
if MODE == "active":
    prov4ml.log_model("model_version_final", model)
    trainer.test(model, test, verbose=False)
    prov_json = str(prov4ml.end_run())
    test_run = fit_run
else:
    trainer.test(model, test, verbose=False)
    test_run = logger.run
    prov_json = str(fit_run.prov_path)
with open("seen.json", "w") as fh:
    json.dump({"seen": model.seen, "prov_json": prov_json, "test_prov_json": str(test_run.prov_path),
               "experiment": fit_run.experiment_name, "name": logger.name, "version": logger.version,
               "active_after": prov4ml.active_run() is not None}, fh)
