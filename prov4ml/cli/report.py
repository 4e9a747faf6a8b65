"""A self-contained HTML report: of a run (parameters, metrics with plots, artifacts), or of an experiment (all its runs).

Needs the analysis extra (pandas, matplotlib). The path written is printed.
"""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

from ..exceptions import Prov4MLError
from ._output import busy
from ._runs import DEFAULT_DIR, find_run_dirs, is_run_dir, resolve_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RUN|EXPERIMENT",
                        help=f"a run (directory or EXPERIMENT/run_N under ./{DEFAULT_DIR}) or an experiment (directory or name)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="the HTML file (default: report.html in the run or experiment directory)")
    parser.add_argument("--metrics", nargs="+", metavar="M", help="only these metric series: names or name/context")


def run(args: argparse.Namespace) -> int:
    from .. import analysis

    target, is_run = _target(args.target)
    extra = {} if args.metrics is None else {"metrics": args.metrics}
    if is_run:
        write = analysis.html_report
    else:
        write = getattr(analysis, "experiment_report", None)
        if write is None:
            raise Prov4MLError(
                f"{target} is an experiment, and this prov4ml has no experiment report "
                "(prov4ml.analysis.experiment_report); report one run instead: prov4ml report EXPERIMENT/run_N"
            )
    if extra and "metrics" not in inspect.signature(write).parameters:
        raise Prov4MLError(f"this prov4ml's {write.__name__} cannot choose metrics; leave out --metrics")
    with busy(f"writing the report of {target}"):
        out = write(target, args.output, **extra)
    print(out)
    return 0


def _target(spec: str):
    """``(directory, is_run)``: a run, else an experiment (a directory, or a name under ./prov, holding runs)."""
    for cand in (Path(spec), Path(DEFAULT_DIR) / spec):
        if is_run_dir(cand):
            return cand, True
        if cand.is_dir():
            find_run_dirs(cand)  # says what is missing when it holds no run
            return cand, False
    return resolve_run(spec), True  # raises, naming what was looked for
