"""The two calls only yProv4ML 0.1.x–1.0.0 had, for code written for it."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

from .. import api
from ..run import run as _run

__all__ = ["start_run_ctx", "log_model_memory_footprint"]


@contextlib.contextmanager
def start_run_ctx(
    prov_user_namespace: str,
    experiment_name: Optional[str] = None,
    provenance_save_dir: Optional[str] = None,
    collect_all_processes: bool = False,
    save_after_n_logs: int = 100,
    rank: Optional[int] = None,
    create_graph: bool = False,
    create_svg: bool = False,
) -> Iterator["_run.Run"]:
    """For code written for yProv4ML 0.1.x: ``with start_run_ctx(namespace, experiment, save_dir):`` is
    :func:`prov4ml.run` (the run ends with the block; an exception marks it failed)."""
    with api.run(prov_user_namespace, experiment_name, provenance_save_dir, collect_all_processes,
                 save_after_n_logs, rank, create_graph=create_graph, create_svg=create_svg) as r:
        yield r


def log_model_memory_footprint(model: Any, model_name: str = "default") -> None:
    """For code written for yProv4ML 0.1.x: the model's entity with its size and memory footprint
    (``log_model`` with its info), storing no weights."""
    api.log_model(model_name, model, log_model_info=True, log_copy_in_prov_directory=False)
