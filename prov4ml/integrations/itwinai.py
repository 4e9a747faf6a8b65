"""itwinai integration: ``ProvMLItwinAILogger``, an itwinai ``Logger`` that records with prov4ml.

::

    from prov4ml.integrations.itwinai import ProvMLItwinAILogger

    logger = ProvMLItwinAILogger(experiment_name="mnist")
    with logger.start_logging(rank=0):
        logger.save_hyperparameters({"lr": 0.01})
        logger.log(loss, "train_loss", kind="metric", step=epoch, context="training")
        logger.log((model, batch), "flops", kind="flops_pb", step=epoch)
        logger.log(None, None, kind="prov_documents")  # files written so far (uploaded to MLflow if a run is active)

With itwinai installed the class subclasses ``itwinai.loggers.Logger``;
without it, it implements the same interface (``log_freq``,
``log_on_workers``, ``should_log``, ``start_logging``), so code written for
itwinai runs either way. Kinds outside ``supported_kinds`` are ignored, as
itwinai's ``LoggersCollection`` hands every kind to every logger.

======================  ====================================================
kind                    what it records (``item``, ``identifier``)
======================  ====================================================
``metric``              ``log_metric(identifier, item, context, step)``
``flops_pb``            ``log_flops_per_batch(identifier, *item)``: item = (model, batch)
``flops_pe``            ``log_flops_per_epoch(identifier, *item)``: item = (model, dataset)
``system``              ``log_system_metrics(context, step)``
``carbon``              ``log_carbon_metrics(context, step)``
``execution_time``      ``log_current_execution_time(identifier, context, step)``
``model``               ``save_model_version(item, identifier, context, step)``
``best_model``          ``log_model(item, identifier)``
``torch``               a DataLoader: ``log_dataset(item, identifier)``; else ``log_param``
``prov_documents``      ``log_provenance_documents(create_graph, create_svg)``
======================  ====================================================
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import prov4ml
from ..exceptions import InvalidValueError, Prov4MLError, RunStateError

__all__ = ["ProvMLItwinAILogger", "SUPPORTED_KINDS"]

SUPPORTED_KINDS: Tuple[str, ...] = (
    "metric", "flops_pb", "flops_pe", "system", "carbon",
    "execution_time", "model", "best_model", "torch", "prov_documents",
)


class _Logger:
    """itwinai's ``Logger`` interface, for when itwinai is not installed (same names and rules).

    ``should_log(batch_idx)``: only on the ranks of ``log_on_workers`` (an int,
    a list, or -1 for all); with a ``batch_idx``, only when ``log_freq`` is
    ``"batch"`` or divides it (``"epoch"``: never per batch).
    """

    supported_kinds: Tuple[str, ...] = ()
    worker_rank: int = 0
    is_initialized: bool = False

    def __init__(self, savedir: Union[str, Path] = "mllogs", log_freq: Union[int, str] = "epoch",
                 log_on_workers: Union[int, List[int]] = 0) -> None:
        self.savedir = Path(savedir)
        self.log_freq = log_freq
        self.log_on_workers = log_on_workers

    @property
    def log_freq(self) -> Union[int, str]:
        return self._log_freq

    @log_freq.setter
    def log_freq(self, value: Union[int, str]) -> None:
        if value not in ("epoch", "batch") and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidValueError(f"log_freq must be 'epoch', 'batch' or an integer > 0, got {value!r}")
        self._log_freq = value

    @contextlib.contextmanager
    def start_logging(self, rank: int = 0) -> Iterator[None]:
        try:
            self.create_logger_context(rank=rank)
            yield
        finally:
            self.destroy_logger_context()

    def should_log(self, batch_idx: Optional[int] = None) -> bool:
        workers = self.log_on_workers
        if not (workers == -1 or workers == self.worker_rank or (isinstance(workers, list) and self.worker_rank in workers)):
            return False
        if batch_idx is None:
            return True
        if isinstance(self.log_freq, int):
            return batch_idx % self.log_freq == 0
        return self.log_freq == "batch"


def _base() -> type:
    """itwinai's ``Logger`` when it can be imported, else this module's stand-in."""
    if importlib.util.find_spec("itwinai") is None:
        return _Logger
    try:  # pragma: no cover - itwinai is not a dependency
        from itwinai.loggers import Logger
    except ImportError as exc:  # an itwinai whose loggers import another prov4ml's modules, say
        warnings.warn(f"itwinai is installed, but itwinai.loggers cannot be imported ({exc}); "
                      "ProvMLItwinAILogger implements itwinai's Logger interface itself", stacklevel=2)
        return _Logger
    return Logger


class ProvMLItwinAILogger(_base()):  # type: ignore[misc]
    """An itwinai logger that records the run's provenance with prov4ml.

    Args (itwinai's Prov4MLLogger's, with its defaults):
        prov_user_namespace, experiment_name, provenance_save_dir,
        save_after_n_logs: passed to :func:`prov4ml.start_run`.
        create_graph, create_svg: passed to :func:`prov4ml.end_run` (and used by ``prov_documents``).
        log_freq: ``"epoch"`` (ignore calls with a ``batch_idx``), ``"batch"``
            (log them all) or N (every N-th batch).
        log_on_workers: the global rank(s) that record; -1 for all.
    """

    supported_kinds: Tuple[str, ...] = SUPPORTED_KINDS

    def __init__(
        self,
        prov_user_namespace: str = "www.example.org",
        experiment_name: str = "experiment_name",
        provenance_save_dir: Union[str, Path] = "mllogs/prov_logs",
        save_after_n_logs: int = 100,
        create_graph: bool = True,
        create_svg: bool = True,
        log_freq: Union[int, str] = "epoch",
        log_on_workers: Union[int, List[int]] = 0,
    ) -> None:
        super().__init__(savedir=provenance_save_dir, log_freq=log_freq, log_on_workers=log_on_workers)
        self.prov_user_namespace = prov_user_namespace
        self.experiment_name = experiment_name
        self.provenance_save_dir = str(provenance_save_dir)
        self.save_after_n_logs = save_after_n_logs
        self.create_graph = create_graph
        self.create_svg = create_svg
        self.prov_documents: List[str] = []  # what the last `prov_documents` call wrote
        self._run: Optional[prov4ml.Run] = None
        self._owned = False  # True when this logger started self._run (and so ends it)

    def create_logger_context(self, rank: int = 0, **kwargs: Any) -> Optional["prov4ml.Run"]:
        """Start the run of this worker (``rank`` is its global rank), if it logs.

        With a run already active (started by the caller), it records into
        that run and leaves it to the caller to end.
        """
        if self.is_initialized:
            warnings.warn(f"{type(self).__name__} is already initialized; create_logger_context() ignored", stacklevel=2)
            return self._run
        self.worker_rank = rank
        self.is_initialized = True
        if not self.should_log():
            return None
        self._run, self._owned = prov4ml.active_run(), False
        if self._run is None:
            self._run, self._owned = prov4ml.start_run(
                self.prov_user_namespace, self.experiment_name, self.provenance_save_dir,
                collect_all_processes=True,  # log_on_workers decides which ranks record
                save_after_n_logs=self.save_after_n_logs, rank=rank,
            ), True
        return self._run

    def destroy_logger_context(self) -> None:
        """End the run it started (writing the graph and SVG when asked for)."""
        self._require("destroy_logger_context")
        self.is_initialized = False
        run, self._run = self._run, None
        if run is not None and self._owned and prov4ml.active_run() is run:
            prov4ml.end_run(create_graph=self.create_graph, create_svg=self.create_svg)

    def save_hyperparameters(self, params: Dict[str, Any]) -> None:
        """Each entry as a run parameter."""
        self._require("save_hyperparameters")
        if self.should_log():
            prov4ml.log_params(dict(params))

    def log(
        self,
        item: Any,
        identifier: Any,
        kind: str = "metric",
        step: Optional[int] = None,
        batch_idx: Optional[int] = None,
        context: Any = "training",
        **kwargs: Any,
    ) -> None:
        """Record ``item`` as ``kind`` (see the module docstring); unsupported kinds are ignored."""
        self._require("log")
        if kind not in SUPPORTED_KINDS or not self.should_log(batch_idx=batch_idx):
            return
        if kind == "metric":
            prov4ml.log_metric(identifier, item, context, step=step)
        elif kind == "flops_pb":
            model, batch = item
            prov4ml.log_flops_per_batch(identifier, model, batch, context, step=step)
        elif kind == "flops_pe":
            model, dataset = item
            prov4ml.log_flops_per_epoch(identifier, model, dataset, context, step=step)
        elif kind == "system":
            prov4ml.log_system_metrics(context, step=step)
        elif kind == "carbon":
            prov4ml.log_carbon_metrics(context, step=step)
        elif kind == "execution_time":
            prov4ml.log_current_execution_time(identifier, context, step=step)
        elif kind == "model":
            prov4ml.save_model_version(item, identifier, context, step=step)
        elif kind == "best_model":
            prov4ml.log_model(item, identifier, log_model_info=True, log_as_artifact=True)
        elif kind == "torch":
            loader = sys.modules.get("torch.utils.data")
            if loader is not None and isinstance(item, loader.DataLoader):
                prov4ml.log_dataset(item, identifier)
            else:
                prov4ml.log_param(identifier, item)
        else:  # prov_documents
            self._documents()

    def _documents(self) -> None:
        try:
            self.prov_documents = prov4ml.log_provenance_documents(create_graph=self.create_graph, create_svg=self.create_svg)
        except Prov4MLError as exc:  # a missing Graphviz must not stop training: the PROV-JSON is written
            warnings.warn(f"{type(self).__name__}: prov_documents: {exc}", stacklevel=3)
            run = prov4ml.active_run()
            self.prov_documents = [str(run.prov_path)] if run is not None and run.prov_path.exists() else []
        mlflow = sys.modules.get("mlflow")  # uploaded only where the code already uses MLflow
        if mlflow is not None and mlflow.active_run() is not None:
            for path in self.prov_documents:
                mlflow.log_artifact(path)

    def _require(self, call: str) -> None:
        if not self.is_initialized:
            raise RunStateError(
                f"{type(self).__name__}.{call}(): the logger is not initialized; use `with logger.start_logging(rank):` "
                "or call logger.create_logger_context(rank) first"
            )
