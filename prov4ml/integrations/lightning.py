"""Lightning integration: a ``Logger`` and a ``Callback`` that record a run's provenance.

::

    from prov4ml.integrations.lightning import ProvCallback, ProvLogger

    trainer = Trainer(logger=ProvLogger("www.example.org", "mnist"), callbacks=[ProvCallback()])

:class:`ProvLogger` receives what Lightning hands every logger: hyper-parameters,
the metrics of ``self.log``, saved checkpoints, the end of each stage.
:class:`ProvCallback` records what a logger cannot see: datasets, system,
carbon and FLOPs readings, execution time, model versions, the final model.
Both only call the public ``prov4ml`` functions; ``docs/lightning.md`` explains
what they record and how a metric's context is chosen.

Importing this module imports ``lightning``; ``import prov4ml`` does not.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
import weakref
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Set, Tuple

from .._optional import require

require("lightning", "lightning", "prov4ml.integrations.lightning (ProvLogger, ProvCallback)")

from lightning.pytorch.callbacks import Callback  # noqa: E402
from lightning.pytorch.loggers import Logger  # noqa: E402

import prov4ml  # noqa: E402
from ..context import Context  # noqa: E402
from ..exceptions import MissingDependencyError, RunStateError  # noqa: E402

__all__ = ["ProvLogger", "ProvCallback", "infer_context"]

# ---------------------------------------------------------------------- context rule
#: Words that name a context when they open or close a metric key (case-insensitive).
CONTEXT_WORDS: Dict[str, Context] = {
    "train": Context.TRAINING,
    "training": Context.TRAINING,
    "val": Context.VALIDATION,
    "valid": Context.VALIDATION,
    "validation": Context.VALIDATION,
    "validate": Context.VALIDATION,
    "test": Context.TESTING,
    "testing": Context.TESTING,
    "eval": Context.EVALUATION,
    "evaluation": Context.EVALUATION,
}

#: The ``provml:source`` of the ``epoch`` series Lightning adds to every call
EPOCH_SOURCE = "lightning.epoch"
#: ``trainer.state.stage`` (a ``RunningStage`` value) -> context.
STAGE_CONTEXTS: Dict[str, Context] = {
    "train": Context.TRAINING,
    "sanity_check": Context.VALIDATION,
    "validate": Context.VALIDATION,
    "test": Context.TESTING,
    "predict": Context.EVALUATION,
}

# What Lightning appends to a key: "_step" / "_epoch" (on_step and on_epoch both
# True) and "/dataloader_idx_<k>" (several evaluation dataloaders).
_LIGHTNING_SUFFIX = re.compile(r"(/dataloader_idx_\d+)$|([_/](step|epoch))$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[_/.\-\s]+")


def _context_in_key(key: str) -> Optional[Context]:
    """The context a key names by its first or last word, after Lightning's suffixes."""
    base = key
    while True:
        stripped = _LIGHTNING_SUFFIX.sub("", base)
        if stripped == base or not stripped:
            break
        base = stripped
    words = [w for w in _SEPARATORS.split(base.lower()) if w]
    if len(words) < 2:  # a bare "val" or "loss" names no context
        return None
    return CONTEXT_WORDS.get(words[0]) or CONTEXT_WORDS.get(words[-1])


def infer_context(key: str, stage: Optional[str] = None, context_map: Optional[Mapping] = None) -> Optional[Context]:
    """The context a metric key is recorded in (``None``: the run's default context).

    In order: ``context_map[key]``; a context word opening or closing the key
    (``train_loss``, ``val/acc``, ``loss/test``, ``train_loss_epoch``); the
    stage Lightning is running (``trainer.state.stage``); else ``None``.
    """
    if context_map and key in context_map:
        return context_map[key]
    ctx = _context_in_key(key)
    if ctx is not None:
        return ctx
    if stage is not None:
        return STAGE_CONTEXTS.get(str(getattr(stage, "value", stage)))
    return None


# ---------------------------------------------------------------------- hyper-parameters
_SCALARS = (bool, int, float, str, type(None))


def _flatten_params(params: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """``{"opt": {"lr": 0.1}}`` -> ``("opt.lr", 0.1)``; a Namespace counts as a dict."""
    if isinstance(params, Namespace):
        params = vars(params)
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, Mapping) and value:
            yield from _flatten_params(value, name + ".")
        elif isinstance(value, _SCALARS) or _is_number_like(value):
            yield name, value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, _SCALARS) for v in value):
            yield name, list(value)  # prov4ml records it as JSON text
        else:
            yield name, str(value)


def _is_number_like(value: Any) -> bool:
    """A one-element tensor or a NumPy scalar (prov4ml keeps it typed)."""
    if not callable(getattr(value, "item", None)):
        return False
    numel = getattr(value, "numel", None)
    return (numel() if callable(numel) else getattr(value, "size", None)) == 1


# ---------------------------------------------------------------------- logger
class ProvLogger(Logger):
    """A Lightning logger that records the run as W3C PROV with prov4ml.

    Takes the parameters of :func:`prov4ml.start_run` (``**options`` go to it
    unchanged). The run starts at first use (Lightning's setup) unless one is
    already active: then the logger records into that run and never ends it.

    Args:
        prov_user_namespace: the user's namespace; may be omitted when you start
            the run yourself.
        experiment_name, provenance_save_dir, save_after_n_logs, rank,
        collect_all_processes: as in :func:`prov4ml.start_run`.
        create_graph, create_svg: passed to :func:`prov4ml.end_run`.
        context_map: ``{metric key: context}`` for keys the rule gets wrong.
        log_epoch: record Lightning's ``epoch`` key as an ``epoch`` series in
            each context, one point per step (maps steps to epochs).
        log_checkpoints: record each checkpoint ``ModelCheckpoint`` saves as a
            model version (copied into the run's artifacts).
        checkpoint_model_name: the model name of those versions.
        prefix: recorded metric names are ``<prefix>-<key>`` (as Lightning's
            CSV logger writes them); the context is chosen by the key.
    """

    def __init__(
        self,
        prov_user_namespace: Optional[str] = None,
        experiment_name: Optional[str] = None,
        provenance_save_dir: Optional[str] = None,
        save_after_n_logs: int = 100,
        rank: Optional[int] = None,
        collect_all_processes: bool = False,
        create_graph: bool = False,
        create_svg: bool = False,
        *,
        context_map: Optional[Mapping[str, Any]] = None,
        log_epoch: bool = True,
        log_checkpoints: bool = True,
        checkpoint_model_name: str = "checkpoint",
        prefix: str = "",
        **options: Any,
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self._start_args: Dict[str, Any] = dict(
            prov_user_namespace=prov_user_namespace,
            experiment_name=experiment_name,
            provenance_save_dir=provenance_save_dir,
            collect_all_processes=collect_all_processes,
            save_after_n_logs=save_after_n_logs,
            rank=rank,
            **options,
        )
        self.create_graph = create_graph
        self.create_svg = create_svg
        self.context_map = {k: prov4ml.Context(v) if isinstance(v, str) else v for k, v in (context_map or {}).items()}
        self.log_epoch = log_epoch
        self.log_checkpoints = log_checkpoints
        self.checkpoint_model_name = checkpoint_model_name
        self._run: Optional[prov4ml.Run] = None  # the run logged to (kept after it ends, for name/version)
        self._owned = False  # True when this logger started self._run (and so ends it)
        self._trainer_ref: Optional[Callable[[], Any]] = None
        self._context_cache: Dict[Tuple[str, Optional[str]], Optional[Context]] = {}
        self._epoch_logged: Dict[Optional[Context], int] = {}
        self._checkpoints_seen: Set[Tuple[str, int]] = set()

    # ------------------------------------------------------------ the run
    def _ensure_run(self) -> "prov4ml.Run":
        """The active run; start one (first use, or a new stage after this logger ended its run)."""
        active = prov4ml.active_run()
        if active is not None:
            if active is not self._run:
                self._run, self._owned = active, False
                self._reset_run_state()
            return active
        if self._start_args["prov_user_namespace"] is None:
            raise RunStateError(
                "ProvLogger has no active run to record into and no prov_user_namespace to start one: "
                "pass ProvLogger(prov_user_namespace=..., experiment_name=...) or call prov4ml.start_run(...) first"
            )
        previous = self._run if self._owned else None
        run = prov4ml.start_run(**self._start_args)
        self._run, self._owned = run, True
        self._reset_run_state()
        if previous is not None and previous.experiment_name == run.experiment_name:
            # A second stage (trainer.test after trainer.fit) of this logger: say which run it follows.
            prov4ml.log_param("lightning.previous_run_id", previous.run_id)
        return run

    def _reset_run_state(self) -> None:
        self._epoch_logged.clear()
        self._checkpoints_seen.clear()

    def _current(self) -> "prov4ml.Run":
        """The run whose names and directories the properties report (starts one only if none yet)."""
        return self._run if self._run is not None else self._ensure_run()

    @property
    def experiment(self) -> "prov4ml.Run":
        """The prov4ml Run; Lightning reads this at setup, which starts the run."""
        return self._ensure_run()

    @property
    def run(self) -> "prov4ml.Run":
        """The prov4ml Run this logger records into (or last recorded into)."""
        return self._current()

    @property
    def name(self) -> str:
        """The experiment's folder name (the experiment name, made file-name-safe)."""
        return self._current().experiment_dir.name

    @property
    def version(self) -> str:
        """The run's folder name, ``run_<id>``: so ``save_dir/name/version`` is the run directory."""
        return self._current().run_dir.name

    @property
    def run_id(self) -> int:
        """The prov4ml run id (:func:`prov4ml.get_run_id`)."""
        return self._current().run_id

    @property
    def save_dir(self) -> str:
        """``provenance_save_dir``; Lightning puts checkpoints in ``save_dir/name/version/checkpoints``."""
        return str(self._current().save_dir)

    @property
    def root_dir(self) -> str:
        return str(self._current().experiment_dir)

    @property
    def log_dir(self) -> str:
        """The run directory."""
        return str(self._current().run_dir)

    # ------------------------------------------------------------ trainer
    def _bind_trainer(self, trainer: Any) -> None:
        if trainer is not None:
            try:
                self._trainer_ref = weakref.ref(trainer)
            except TypeError:
                self._trainer_ref = lambda: trainer

    @property
    def _trainer(self) -> Any:
        return self._trainer_ref() if self._trainer_ref is not None else None

    def _stage(self) -> Optional[str]:
        trainer = self._trainer
        stage = getattr(getattr(trainer, "state", None), "stage", None)
        return None if stage is None else str(getattr(stage, "value", stage))

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Called by Lightning at the start of each stage: learn the trainer (for the stage) and its checkpoint."""
        trainer = getattr(model, "_trainer", None)  # `.trainer` raises when detached
        self._bind_trainer(trainer)
        self._ensure_run()
        fn = getattr(getattr(trainer, "state", None), "fn", None)
        ckpt = getattr(trainer, "ckpt_path", None)
        if fn is not None and ckpt:  # trainer.test(ckpt_path=...): the checkpoint is an input of the stage
            stage = str(getattr(fn, "value", fn))
            if os.path.isfile(ckpt):
                prov4ml.log_artifact(f"lightning.{stage}.checkpoint", ckpt, context=STAGE_CONTEXTS.get(stage, Context.TRAINING),
                                     log_copy_in_prov_directory=False, is_input=True)
            else:  # a path Lightning could not resolve to a file here
                prov4ml.log_param(f"lightning.{stage}.ckpt_path", str(ckpt))

    # ------------------------------------------------------------ logging
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Each hyper-parameter as a run parameter; nested keys joined with '.'."""
        self._ensure_run()
        if params is None:
            return
        prov4ml.log_params(dict(_flatten_params(params)))

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        """Each metric in the context :func:`infer_context` gives; ``epoch`` as an ``epoch`` series."""
        self._ensure_run()
        stage = self._stage()
        epoch = None
        contexts = set()
        cache = self._context_cache
        for key, value in metrics.items():
            if key == "epoch":  # Lightning adds it to every call
                epoch = value
                continue
            try:
                ctx = cache[(key, stage)]
            except KeyError:
                ctx = cache[(key, stage)] = infer_context(key, stage, self.context_map)
            prov4ml.log_metric(f"{self.prefix}-{key}" if self.prefix else key, value, ctx, step=step)
            contexts.add(ctx)
        if epoch is not None and self.log_epoch:
            if not contexts:
                contexts.add(infer_context("epoch", stage, self.context_map))
            for ctx in contexts:
                if step is None or self._epoch_logged.get(ctx) != step:
                    # a counter, not an evaluation (only metrics are typed mls:ModelEvaluation)
                    prov4ml.log_metric("epoch", epoch, ctx, step=step, source=EPOCH_SOURCE)
                    self._epoch_logged[ctx] = step

    # ------------------------------------------------------------ checkpoints
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record the file ``ModelCheckpoint`` just saved as a new model version."""
        if not self.log_checkpoints:
            return
        self._ensure_run()
        trainer = self._trainer
        step = getattr(trainer, "global_step", None)
        if step is None:
            step = getattr(checkpoint_callback, "_last_global_step_saved", None)
        for path in _saved_checkpoints(checkpoint_callback):
            try:
                key = (os.path.realpath(path), os.stat(path).st_mtime_ns)
            except OSError:
                continue  # removed already (save_top_k), or not local
            if key in self._checkpoints_seen:
                continue
            self._checkpoints_seen.add(key)
            prov4ml.save_model_version(Path(path), self.checkpoint_model_name, Context.TRAINING, step=step)

    # ------------------------------------------------------------ end
    def save(self) -> None:
        """Nothing to do: prov4ml writes every ``save_after_n_logs`` logs and at the end."""

    def finalize(self, status: str) -> None:
        """End of a stage: end the run this logger started ("failed" marks it failed); else flush."""
        run = self._run
        if run is None or prov4ml.active_run() is not run:
            return  # never started, or already ended
        if not self._owned:
            if status != "failed":
                prov4ml.flush()
            return  # the user's run: the user ends it
        if status == "success":
            prov4ml.end_run(self.create_graph, self.create_svg)
        elif status == "failed":
            # Lightning calls finalize("failed") inside its except block: the error is at hand.
            error = sys.exc_info()[1]
            if error is not None:
                run.end(self.create_graph, self.create_svg, error=error)
            else:
                run.end(self.create_graph, self.create_svg, status="failed")
        else:  # "finished" from the SLURM requeue handler: the job goes on elsewhere
            prov4ml.flush()

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_run"] = None
        state["_owned"] = False
        state["_trainer_ref"] = None
        return state


def _saved_checkpoints(callback: Any) -> Iterator[str]:
    """The file the callback just saved (Lightning >= 2.1), else every file it knows of."""
    last = getattr(callback, "_last_checkpoint_saved", None)
    if last:
        yield str(last)
        return
    paths = list(getattr(callback, "best_k_models", {}) or {})
    paths.append(getattr(callback, "last_model_path", "") or "")
    for path in paths:
        if path:
            yield str(path)


# ---------------------------------------------------------------------- callback
class ProvCallback(Callback):
    """Records what a logger cannot see. Each feature has a switch; defaults are cheap.

    Args:
        log_datasets: each train / val / test dataloader, when first used (``log_dataset``).
        execution_time: seconds since the run started, at each training epoch end.
        system_metrics: CPU, memory, disk (and GPU) readings at each training epoch end.
        carbon_metrics: energy and emissions at each training epoch end (codecarbon;
            its first reading costs about a second).
        flops_per_epoch: FLOPs of an epoch over the train dataloader (fvcore or torch).
        model_versions: the module's state dict as a new model version at each
            training epoch end (ModelCheckpoint + ProvLogger already record checkpoints).
        log_model: the trained module (weights, parameter counts, architecture) at fit end.
        epochs: each training and validation epoch as a ``provml:Epoch`` activity
            (``prov4ml.mark_epoch`` at its start); checkpoints and versions saved
            during an epoch are generated by it.
        model_name: the name of the model and its versions; default: the module's class name.

    A feature whose optional package is missing (or that fails) warns once,
    naming the fix, and is switched off; training goes on.
    """

    def __init__(
        self,
        log_datasets: bool = True,
        execution_time: bool = True,
        system_metrics: bool = True,
        carbon_metrics: bool = False,
        flops_per_epoch: bool = False,
        model_versions: bool = False,
        log_model: bool = True,
        model_name: Optional[str] = None,
        epochs: bool = True,
    ) -> None:
        super().__init__()
        self.features = {
            "log_datasets": log_datasets,
            "execution_time": execution_time,
            "system_metrics": system_metrics,
            "carbon_metrics": carbon_metrics,
            "flops_per_epoch": flops_per_epoch,
            "model_versions": model_versions,
            "log_model": log_model,
            "epochs": epochs,
        }
        self.model_name = model_name
        self._datasets_logged: Set[str] = set()

    def _name(self, pl_module: Any) -> str:
        return self.model_name or type(pl_module).__name__

    def _do(self, feature: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run one feature; a missing extra or an error warns once and switches the feature off."""
        if not self.features.get(feature):
            return
        try:
            call(*args, **kwargs)
        except MissingDependencyError as exc:
            self.features[feature] = False
            warnings.warn(f"ProvCallback: {feature} switched off: {exc}", stacklevel=2)
        except Exception as exc:  # provenance must never stop training
            self.features[feature] = False
            warnings.warn(
                f"ProvCallback: {feature} switched off after an error: {type(exc).__name__}: {exc}. "
                f"Pass ProvCallback({feature}=False) to silence this.",
                stacklevel=2,
            )

    # ------------------------------------------------------------ setup
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        for logger in getattr(trainer, "loggers", ()):
            if isinstance(logger, ProvLogger):
                logger._bind_trainer(trainer)
                logger._ensure_run()
        if prov4ml.active_run() is None:
            raise RunStateError(
                "ProvCallback needs an active run: add ProvLogger(...) to the Trainer's loggers "
                "or call prov4ml.start_run(...) before trainer.fit()"
            )
        self._datasets_logged.clear()

    # ------------------------------------------------------------ datasets
    def _log_loaders(self, loaders: Any, label: str) -> None:
        if loaders is None or label in self._datasets_logged:
            return
        self._datasets_logged.add(label)
        if isinstance(loaders, Mapping):
            items = [(f"{label}_{k}", v) for k, v in loaders.items()]
        elif isinstance(loaders, (list, tuple)):
            items = [(label if len(loaders) == 1 else f"{label}_{i}", v) for i, v in enumerate(loaders)]
        else:
            items = [(label, loaders)]
        for name, loader in items:
            self._do("log_datasets", prov4ml.log_dataset, loader, name)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._log_loaders(trainer.train_dataloader, "train_dataloader")

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._log_loaders(trainer.val_dataloaders, "val_dataloader")

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._log_loaders(trainer.test_dataloaders, "test_dataloader")

    # ------------------------------------------------------------ per epoch
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._do("epochs", prov4ml.mark_epoch, trainer.current_epoch, Context.TRAINING)

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._do("epochs", prov4ml.mark_epoch, trainer.current_epoch, Context.VALIDATION)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        ctx = Context.TRAINING
        self._do("execution_time", prov4ml.log_current_execution_time, "execution_time", ctx, step=epoch)
        self._do("system_metrics", prov4ml.log_system_metrics, ctx, step=epoch)
        self._do("carbon_metrics", prov4ml.log_carbon_metrics, ctx, step=epoch)
        if self.features["flops_per_epoch"] and trainer.train_dataloader is not None:
            self._do(
                "flops_per_epoch", prov4ml.log_flops_per_epoch,
                "flops_per_epoch", pl_module, trainer.train_dataloader, ctx, step=epoch,
            )
        self._do("model_versions", prov4ml.save_model_version, pl_module, self._name(pl_module), ctx, step=epoch)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._do("log_model", prov4ml.log_model, pl_module, self._name(pl_module))
