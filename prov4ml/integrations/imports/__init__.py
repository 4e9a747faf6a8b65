"""Runs of other tools as prov4ml runs: ``prov4ml import mlflow|tensorboard|yprov4ml SOURCE``.

Each reader (one module per tool, its package imported only when used)
lists the runs of its source; each run not imported yet is read whole and
written as a new prov4ml run by :mod:`.writer`, with the run's own recorders,
marked ``provml:importedFrom "<tool>:<the tool's id of the run>"``. A run
already imported into the destination (its summary says the same
``imported_from``) is skipped, so importing a source twice adds only the
runs it gained since. docs/import.md says what is taken from each tool.

::

    from prov4ml.integrations.imports import import_runs

    for result in import_runs("mlflow", "mlruns", "prov"):
        print(result.run_dir, "skipped" if result.skipped else "imported")
"""

from __future__ import annotations

import importlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from ...exceptions import InvalidValueError
from .source import Found
from .writer import imported, record

__all__ = ["READERS", "Imported", "import_runs"]

#: tool -> the module of this package that reads it
READERS = {"mlflow": "from_mlflow", "tensorboard": "from_tensorboard", "yprov4ml": "from_yprov4ml"}


@dataclass(frozen=True)
class Imported:
    """One run of the source: the prov4ml run it is (``skipped``: imported by an earlier import)."""

    label: str
    imported_from: str
    run_dir: Path
    skipped: bool


def import_runs(
    tool: str,
    source: str,
    save_dir: Union[str, Path] = "prov",
    namespace: str = "www.example.org",
    experiment: Optional[str] = None,
    found: Optional[Callable[[Found], None]] = None,
) -> Iterator[Imported]:
    """Import every run of ``source`` (read by ``tool``) into ``save_dir``, one at a time, as they are written.

    ``experiment`` puts every run into that experiment (default: the source's experiment of each run);
    ``found`` is called with each run before it is read (progress).
    """
    if tool not in READERS:
        raise InvalidValueError(f"prov4ml import: unknown source {tool!r}; known: {', '.join(READERS)}")
    reader = importlib.import_module(f"{__name__}.{READERS[tool]}")
    save_dir = Path(save_dir).expanduser().resolve()
    done = imported(save_dir)
    for run in reader.find(source):
        if found is not None:
            found(run)
        if run.imported_from in done:
            yield Imported(run.label, run.imported_from, done[run.imported_from], skipped=True)
            continue
        with tempfile.TemporaryDirectory(prefix="prov4ml-import-") as scratch:
            run_dir = record(run.load(Path(scratch)), save_dir, namespace, experiment)
        done[run.imported_from] = run_dir
        yield Imported(run.label, run.imported_from, run_dir, skipped=False)
