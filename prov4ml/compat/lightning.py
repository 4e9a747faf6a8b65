"""``ProvMLLogger``, yProv4ML's Lightning logger, for code written for it: ``Trainer(logger=ProvMLLogger())``.

It is :class:`prov4ml.integrations.lightning.ProvLogger` with yProv4ML's
arguments and defaults. Importing this module imports ``lightning``.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from ..exceptions import InvalidValueError
from ..integrations.lightning import ProvLogger

__all__ = ["ProvMLLogger"]


class ProvMLLogger(ProvLogger):
    """For code written for yProv4ML: a Lightning logger usable with no arguments.

    With a run active (started by ``prov4ml.start_run``, as yProv4ML's
    examples do), it records into that run and leaves it to you to end.
    Otherwise it starts a run of the experiment ``name`` in the namespace
    ``www.example.org`` under ``prov/`` and ends it when the Trainer finishes.

    Args:
        name: the experiment name of a run it starts (yProv4ML's default, ``"lightning_logs"``).
        version: the run id of a run it starts (default: the next free one).
        prefix: metric names are recorded as ``<prefix>-<key>``.
        flush_logs_every_n_steps: ``save_after_n_logs`` of a run it starts.
        kwargs: any other :class:`~prov4ml.integrations.lightning.ProvLogger` argument
            (``prov_user_namespace``, ``provenance_save_dir``, ``context_map`` ...).

    Metric contexts follow :func:`~prov4ml.integrations.lightning.infer_context`:
    a context word at either end of the key (``MSE_validation``, ``test_acc``),
    else the stage Lightning is running.
    """

    def __init__(
        self,
        name: Optional[str] = "lightning_logs",
        version: Optional[Union[int, str]] = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("prov_user_namespace", "www.example.org")
        kwargs.setdefault("experiment_name", name or "lightning_logs")
        kwargs.setdefault("save_after_n_logs", flush_logs_every_n_steps)
        if version is not None:
            if isinstance(version, str) and version.removeprefix("version_").isdigit():
                version = int(version.removeprefix("version_"))
            if not isinstance(version, int) or isinstance(version, bool):
                raise InvalidValueError(f"ProvMLLogger(version=...) must be a run id (an integer), got {version!r}")
            kwargs.setdefault("run_id", version)
        super().__init__(prefix=prefix, **kwargs)
