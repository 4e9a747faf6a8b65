"""Lightning integration: ProvLogger and ProvCallback on a real (tiny) training run."""

import sys
import warnings
from pathlib import Path
from argparse import Namespace

import pytest

pytest.importorskip("lightning")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import prov4ml  # noqa: E402
from conftest import entities_of_type, literal, load_doc, load_json, location, series_entity  # noqa: E402
from prov4ml.integrations.lightning import ProvCallback, ProvLogger, infer_context  # noqa: E402

C = prov4ml.Context
N_TRAIN, N_VAL, N_TEST, BATCH, EPOCHS = 64, 32, 32, 16, 2
TRAIN_BATCHES = N_TRAIN // BATCH


class TinyRegressor(pl.LightningModule):
    def __init__(self, lr=0.05, hidden=8, optim=None, hand_written=False):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        if self.hparams.hand_written:  # the reference library's style: explicit calls in the hooks
            prov4ml.log_metric("loss", loss, prov4ml.Context.TRAINING, step=self.global_step)
        else:
            self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._loss(batch)
        if self.hparams.hand_written:
            prov4ml.log_metric("val_loss", loss, prov4ml.Context.VALIDATION, step=self.current_epoch)
        else:
            self.log("val_loss", loss)
            self.log("mae", torch.nn.functional.l1_loss(self.net(batch[0]), batch[1]))  # context from the stage

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + N_VAL + N_TEST, 4, generator=g)
    y = x.sum(1, keepdim=True)
    ds = lambda a, b: TensorDataset(x[a:b], y[a:b])  # noqa: E731
    return (
        DataLoader(ds(0, N_TRAIN), batch_size=BATCH, shuffle=True),
        DataLoader(ds(N_TRAIN, N_TRAIN + N_VAL), batch_size=BATCH),
        DataLoader(ds(N_TRAIN + N_VAL, None), batch_size=BATCH),
    )


def make_trainer(tmp_path, logger, callbacks=(), **kw):
    kw.setdefault("max_epochs", EPOCHS)
    return pl.Trainer(
        logger=logger, callbacks=list(callbacks), enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        accelerator="cpu", devices=1, log_every_n_steps=1, num_sanity_val_steps=1,
        default_root_dir=str(tmp_path), **kw,
    )


def run_activity(data):
    (attrs,) = [a for a in data["activity"].values() if "provml:status" in a]
    return {k: literal(v) for k, v in attrs.items()}


def params_of(data):
    return {literal(a["prov:label"]): literal(a["prov:value"]) for a in entities_of_type(data, "mls:HyperParameterSetting").values()}


def versions_of(data, model_name):
    out = {i: a for i, a in entities_of_type(data, "provml:ModelVersion").items() if literal(a["provml:model_name"]) == model_name}
    return dict(sorted(out.items(), key=lambda kv: literal(kv[1]["provml:version"])))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One fit + test with ProvLogger, ProvCallback and ModelCheckpoint; shared by the tests below."""
    tmp = tmp_path_factory.mktemp("lightning")
    train, val, test = loaders()
    logger = ProvLogger("www.example.org", "lit", str(tmp / "prov"), capture=False)
    ckpt = ModelCheckpoint(save_top_k=-1, every_n_epochs=1)
    callback = ProvCallback(model_versions=True)
    trainer = make_trainer(tmp, logger, [ckpt, callback])
    model = TinyRegressor(optim={"name": "sgd", "betas": (0.9, 0.99)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, train, val)
        fit_run = logger.run
        assert prov4ml.active_run() is None  # finalize ended the run it started
        trainer.test(model, test, ckpt_path="best")
        test_run = logger.run
    assert prov4ml.active_run() is None
    ours = [str(w.message) for w in caught if "ProvCallback" in str(w.message)]
    return Namespace(logger=logger, trainer=trainer, ckpt=ckpt, fit_run=fit_run, test_run=test_run,
                     fit=load_json(fit_run.prov_path), test=load_json(test_run.prov_path), warnings=ours)


def test_documents_deserialize_and_runs_ended(fitted):
    for run in (fitted.fit_run, fitted.test_run):
        doc = load_doc(run.prov_path)
        assert doc.get_records()
    assert run_activity(fitted.fit)["provml:status"] == "finished"
    assert run_activity(fitted.test)["provml:status"] == "finished"


def test_logger_names_the_run_and_checkpoints_land_in_it(fitted):
    run = fitted.fit_run
    assert fitted.logger.name == fitted.test_run.experiment_dir.name == "lit"
    assert fitted.logger.version == f"run_{fitted.test_run.run_id}"
    assert fitted.test_run.run_id == run.run_id + 1
    assert fitted.logger.log_dir == str(fitted.test_run.run_dir)
    assert fitted.ckpt.dirpath == str(run.run_dir / "checkpoints")


def test_hyperparameters_flattened(fitted):
    params = params_of(fitted.fit)
    assert params["lr"] == 0.05 and params["hidden"] == 8 and params["hand_written"] is False
    assert params["optim.name"] == "sgd"
    assert "0.9" in params["optim.betas"] and "0.99" in params["optim.betas"]


def test_metric_contexts_and_counts(fitted):
    data = fitted.fit
    steps = EPOCHS * TRAIN_BATCHES
    assert series_entity(data, "train_loss_step", "training")["provml:count"] == steps
    assert series_entity(data, "train_loss_epoch", "training")["provml:count"] == EPOCHS
    assert series_entity(data, "val_loss", "validation")["provml:count"] == EPOCHS  # the sanity check logs nothing
    assert series_entity(data, "mae", "validation")["provml:count"] == EPOCHS  # from the stage, not the name
    epoch = series_entity(data, "epoch", "training")
    assert epoch["provml:min"] == 0 and epoch["provml:max"] == EPOCHS - 1
    assert series_entity(data, "epoch", "validation")["provml:count"] == EPOCHS
    evaluations = {(literal(a["provml:name"]), literal(a["provml:context"]))
                   for a in entities_of_type(data, "mls:ModelEvaluation").values()}
    assert ("val_loss", "validation") in evaluations and ("mae", "validation") in evaluations
    assert not [e for e in evaluations if e[0] == "epoch"]  # a counter, not an evaluation
    assert epoch["provml:source"] == series_entity(data, "epoch", "validation")["provml:source"] == "lightning.epoch"
    names = {(literal(a["provml:name"]), literal(a["provml:context"])) for a in entities_of_type(data, "provml:Metric").values()}
    assert ("val_loss", "training") not in names and ("mae", "training") not in names
    test = series_entity(fitted.test, "test_loss", "testing")
    assert test["provml:count"] == 1
    csv = (fitted.fit_run.run_dir / series_entity(data, "train_loss_step", "training")["prov:location"]).read_text()
    lines = csv.splitlines()
    assert lines[0] == "step,value,time" and [int(line.split(",")[0]) for line in lines[1:]] == list(range(steps))


def test_checkpoints_are_chained_model_versions(fitted):
    data = fitted.fit
    versions = versions_of(data, "checkpoint")
    assert len(versions) == EPOCHS
    for attrs in versions.values():
        assert "mls:Model" in [t["$"] if isinstance(t, dict) else t for t in attrs["prov:type"]]
        assert (fitted.fit_run.run_dir / location(attrs["prov:location"])).is_file()
    assert [literal(a["provml:step"]) for a in versions.values()] == [TRAIN_BATCHES * (e + 1) for e in range(EPOCHS)]
    first, second = list(versions)
    derivations = [d for d in data.get("wasDerivedFrom", {}).values()
                   if d["prov:generatedEntity"] == second and d["prov:usedEntity"] == first]
    assert derivations, "the second checkpoint version is not derived from the first"
    originals = [d["prov:usedEntity"] for d in data["wasDerivedFrom"].values() if d["prov:generatedEntity"] == first]
    assert any(".ckpt" in location(data["entity"][o].get("prov:location", "")) for o in originals if o in data["entity"])


def test_test_run_records_its_checkpoint_and_previous_run(fitted):
    params = params_of(fitted.test)
    assert params["lightning.previous_run_id"] == fitted.fit_run.run_id
    assert "lightning.test.ckpt_path" not in params
    data = fitted.test
    checkpoint = [k for k, e in data["entity"].items() if e.get("prov:label") == "lightning.test.checkpoint"]
    assert len(checkpoint) == 1
    where = location(data["entity"][checkpoint[0]]["prov:location"])
    assert where == str(Path(fitted.ckpt.best_model_path).resolve())  # recorded where it is, not copied
    testing = [k for k, a in data["activity"].items() if a.get("provml:context") == "testing"]
    assert [u["prov:activity"] for u in data["used"].values() if u["prov:entity"] == checkpoint[0]] == testing
    assert not [g for g in data.get("wasGeneratedBy", {}).values() if g["prov:entity"] == checkpoint[0]]
    assert params["lr"] == 0.05


def test_callback_features(fitted):
    data = fitted.fit
    epochs = sorted((literal(a["provml:context"]), literal(a["provml:epoch"]))
                    for a in data["activity"].values() if "provml:Epoch" in str(a["prov:type"]))
    assert epochs == [(c, e) for c in ("training", "validation") for e in range(EPOCHS)]
    assert series_entity(data, "execution_time", "training")["provml:count"] == EPOCHS
    labels = {literal(a["prov:label"]) for a in entities_of_type(data, "mls:Dataset").values()}
    assert {"train_dataloader", "val_dataloader"} <= labels
    assert len(versions_of(data, "TinyRegressor")) == EPOCHS  # model_versions=True
    models = [a for a in entities_of_type(data, "mls:Model").values() if "provml:ModelVersion" not in str(a["prov:type"])]
    # log_model at fit end; "checkpoint" is the model its checkpoint versions specialize
    assert sorted(literal(a["prov:label"]) for a in models) == ["TinyRegressor", "checkpoint"]
    labels = {literal(a["prov:label"]) for a in entities_of_type(fitted.test, "mls:Dataset").values()}
    assert "test_dataloader" in labels
    if prov4ml._optional.available("psutil") and not any("system_metrics" in w for w in fitted.warnings):
        system = [a for a in entities_of_type(data, "provml:Metric").values() if literal(a.get("provml:source")) == "system_metric"]
        assert system and all(literal(a["provml:count"]) == EPOCHS for a in system)


def test_one_run_across_fit_and_test_when_the_user_starts_it(tmp_path, start):
    train, val, test = loaders()
    logger = ProvLogger()  # no namespace: records into the user's run
    with prov4ml.run("www.example.org", "lit_user", str(tmp_path / "prov"), capture=False) as run:
        trainer = make_trainer(tmp_path, logger, max_epochs=1)
        model = TinyRegressor()
        trainer.fit(model, train, val)
        assert prov4ml.active_run() is run  # the logger does not end a run it did not start
        trainer.test(model, test)
        prov4ml.log_metric("after", 1.0)
    data = load_json(run.prov_path)
    assert run_activity(data)["provml:status"] == "finished"
    assert series_entity(data, "train_loss_step", "training")["provml:count"] == TRAIN_BATCHES
    assert series_entity(data, "val_loss", "validation")["provml:count"] == 1
    assert series_entity(data, "test_loss", "testing")["provml:count"] == 1
    assert logger.version == run.run_dir.name


def test_hand_written_hooks_without_the_logger(tmp_path):
    train, val, _ = loaders()
    run = prov4ml.start_run("www.example.org", "hooks", str(tmp_path / "prov"), capture=False)
    trainer = make_trainer(tmp_path, logger=False)
    trainer.fit(TinyRegressor(hand_written=True), train, val)
    prov4ml.end_run()
    data = load_json(run.prov_path)
    assert series_entity(data, "loss", "training")["provml:count"] == EPOCHS * TRAIN_BATCHES
    # validation_step runs in the sanity check too (1 batch), then every batch of each epoch
    assert series_entity(data, "val_loss", "validation")["provml:count"] == 1 + EPOCHS * (N_VAL // BATCH)


def test_hand_written_hooks_beside_the_logger_and_callback(tmp_path):
    train, val, _ = loaders()
    logger = ProvLogger("www.example.org", "hooks_logger", str(tmp_path / "prov"), capture=False)
    trainer = make_trainer(tmp_path, logger, [ProvCallback(system_metrics=False)], max_epochs=1)
    trainer.fit(TinyRegressor(hand_written=True), train, val)
    data = load_json(logger.run.prov_path)
    assert series_entity(data, "loss", "training")["provml:count"] == TRAIN_BATCHES
    assert run_activity(data)["provml:status"] == "finished"


class Exploding(TinyRegressor):
    def training_step(self, batch, batch_idx):
        if self.global_step == 2:
            raise RuntimeError("boom at step 2")
        return super().training_step(batch, batch_idx)


def test_failed_fit_marks_the_run_failed(tmp_path):
    train, val, _ = loaders()
    logger = ProvLogger("www.example.org", "boom", str(tmp_path / "prov"), capture=False)
    trainer = make_trainer(tmp_path, logger)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit(Exploding(), train, val)
    assert prov4ml.active_run() is None
    data = load_json(logger.run.prov_path)
    run = run_activity(data)
    assert run["provml:status"] == "failed"
    assert run["provml:error_type"] == "RuntimeError" and "boom" in run["provml:error_message"]
    assert series_entity(data, "train_loss_step", "training")["provml:count"] == 2  # kept


def test_missing_extra_warns_once_and_training_goes_on(tmp_path, monkeypatch):
    calls = []

    def no_codecarbon(*args, **kwargs):
        calls.append(args)
        raise prov4ml.MissingDependencyError('carbon needs codecarbon: pip install "prov4ml[carbon]"')

    monkeypatch.setattr(prov4ml, "log_carbon_metrics", no_codecarbon)
    train, val, _ = loaders()
    logger = ProvLogger("www.example.org", "nocarbon", str(tmp_path / "prov"), capture=False)
    callback = ProvCallback(carbon_metrics=True, system_metrics=False)
    trainer = make_trainer(tmp_path, logger, [callback])
    with pytest.warns(UserWarning, match=r"carbon_metrics switched off.*prov4ml\[carbon\]") as record:
        trainer.fit(TinyRegressor(), train, val)
    assert len(calls) == 1 and sum("carbon_metrics" in str(w.message) for w in record) == 1
    assert run_activity(load_json(logger.run.prov_path))["provml:status"] == "finished"


def test_callback_without_a_run_names_the_fix(tmp_path):
    train, val, _ = loaders()
    trainer = make_trainer(tmp_path, logger=False, callbacks=[ProvCallback()])
    with pytest.raises(prov4ml.RunStateError, match="ProvLogger"):
        trainer.fit(TinyRegressor(), train, val)


def test_logger_without_namespace_or_run_names_the_fix():
    with pytest.raises(prov4ml.RunStateError, match="prov_user_namespace"):
        ProvLogger().log_metrics({"loss": 1.0}, step=0)


def test_context_rule():
    assert infer_context("train_loss") == C.TRAINING
    assert infer_context("train_loss_step") == C.TRAINING
    assert infer_context("val_acc_epoch") == C.VALIDATION
    assert infer_context("val/loss") == C.VALIDATION
    assert infer_context("Loss/Test") == C.TESTING
    assert infer_context("val_loss/dataloader_idx_1") == C.VALIDATION
    assert infer_context("training.accuracy") == C.TRAINING
    assert infer_context("value_loss") is None  # "val" must be a whole word
    assert infer_context("loss") is None and infer_context("val") is None
    assert infer_context("loss", "validate") == C.VALIDATION
    assert infer_context("loss", "sanity_check") == C.VALIDATION
    assert infer_context("acc", "test") == C.TESTING
    assert infer_context("train_loss", "validate") == C.TRAINING  # the name wins over the stage
    assert infer_context("loss", "train", {"loss": C.EVALUATION}) == C.EVALUATION


def test_logger_outside_a_trainer(tmp_path, start):
    start("plain")
    logger = ProvLogger()
    logger.log_hyperparams(Namespace(lr=0.1, model=Namespace(depth=3), act=torch.nn.ReLU))
    logger.log_metrics({"val_acc": 0.5, "loss": 1.0, "epoch": 0}, step=10)
    logger.log_metrics({"val_acc": 0.6, "epoch": 0}, step=10)  # same step: no second epoch point
    logger.finalize("success")
    assert prov4ml.active_run() is not None  # not the logger's run
    path = prov4ml.end_run()
    data = load_json(path)
    params = params_of(data)
    assert params["lr"] == 0.1 and params["model.depth"] == 3 and "ReLU" in params["act"]
    assert series_entity(data, "val_acc", "validation")["provml:count"] == 2
    assert series_entity(data, "loss", "training")["provml:count"] == 1  # the run's default context
    assert series_entity(data, "epoch", "validation")["provml:count"] == 1


def test_import_prov4ml_does_not_import_lightning(tmp_path):
    from conftest import run_python

    code = "import sys, prov4ml; assert 'lightning' not in sys.modules and 'pytorch_lightning' not in sys.modules"
    proc = run_python(code, cwd=tmp_path)
    assert proc.wait(timeout=60) == 0


def test_missing_lightning_names_the_extra(monkeypatch):
    import importlib

    monkeypatch.setitem(sys.modules, "lightning", None)  # makes `import lightning` fail
    monkeypatch.delitem(sys.modules, "prov4ml.integrations.lightning")
    with pytest.raises(prov4ml.MissingDependencyError, match=r'pip install "prov4ml\[lightning\]"'):
        importlib.import_module("prov4ml.integrations.lightning")


def test_the_fit_and_test_documents_pass_the_standards_checks(fitted, tmp_path):
    for module in ("lxml", "rdflib", "jsonschema"):
        pytest.importorskip(module)
    import provcheck

    paths = sorted(fitted.fit_run.run_dir.parent.glob("run_*/prov_rank0.json"))
    assert len(paths) >= 2  # the fit and the test run
    for path in paths:
        provcheck.check_all(path, tmp_path)
