"""A self-contained HTML report: of a run (parameters, metrics with plots, artifacts), or of an experiment (all its runs).

Needs neither pandas nor matplotlib (the charts are inline SVG). The path written is printed; a progress bar shows on a terminal.
"""

from __future__ import annotations

import argparse

from ..analysis.report import experiment_report, html_report
from ..runs import DEFAULT_DIR, experiment_candidates, find_run_dirs, is_run_dir, resolve_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RUN|EXPERIMENT",
                        help=f"a run (directory or EXPERIMENT/run_N under ./{DEFAULT_DIR}) or an experiment (directory or name)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="the HTML file (default: report.html in the run or experiment directory)")
    parser.add_argument("--metrics", nargs="+", metavar="M", help="only these metric series: names or name/context")


def run(args: argparse.Namespace) -> int:
    target, is_run = _target(args.target)
    write = html_report if is_run else experiment_report
    print(write(target, args.output, metrics=args.metrics))  # a progress bar on a terminal, from analysis
    return 0


def _target(spec: str):
    """``(directory, is_run)``: a run, else an experiment (a directory, or a name under ./prov, holding runs)."""
    for cand in experiment_candidates(spec):
        if is_run_dir(cand):
            return cand, True
        if cand.is_dir():
            find_run_dirs(cand)  # says what is missing when it holds no run
            return cand, False
    return resolve_run(spec), True  # raises, naming what was looked for
