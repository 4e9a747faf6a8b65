"""Import runs recorded by another tool as prov4ml runs: MLflow, TensorBoard or yProv4ML (docs/import.md).

  mlflow SOURCE        an mlruns/ folder, an mlflow.db file or a tracking URI (http://host:5000)
  tensorboard LOGDIR   every folder of LOGDIR that holds event files is a run
  yprov4ml DIR         the reference's provenance_save_dir, a run folder or a document

Each run keeps its parameters, every metric point (step, value, time), its
artifacts (with their sha256), tags, status, times and git commit where the
source has them, and is marked provml:importedFrom. A run imported before
into DIR is skipped: importing a source again adds only its new runs.
"""

from __future__ import annotations

import argparse

from ..runs import DEFAULT_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..integrations.imports import READERS

    parser.add_argument("tool", choices=sorted(READERS), help="the tool that recorded the runs")
    parser.add_argument("source", metavar="SOURCE", help="where its runs are: a folder, a file or a tracking URI")
    parser.add_argument("--into", default=DEFAULT_DIR, metavar="DIR",
                        help=f"the provenance_save_dir to write the runs into (default ./{DEFAULT_DIR})")
    parser.add_argument("--experiment", metavar="NAME", help="put every run into this experiment "
                        "(default: each run's experiment in the source)")
    parser.add_argument("--namespace", default="www.example.org", help="the runs' prov_user_namespace")


def run(args: argparse.Namespace) -> int:
    from ..integrations.imports import import_runs

    new = old = 0
    for result in import_runs(args.tool, args.source, args.into, args.namespace, args.experiment):
        if result.skipped:
            old += 1
            print(f"skipped   {result.label}: imported before as {result.run_dir}")
        else:
            new += 1
            print(f"imported  {result.label} -> {result.run_dir}")
    print(f"{new} run{'s' * (new != 1)} imported, {old} imported before")
    return 0
