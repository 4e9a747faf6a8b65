"""``python -m prov4ml.analysis``: reports and comparisons from the shell (exit codes as in ``prov4ml._cli``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .. import _commands
from ..provenance import files
from .compare import compare_runs
from .report import experiment_report, html_report

__all__ = ["main"]


def _compare(experiment_path: str, output: Optional[str], metrics: Optional[Sequence[str]]) -> Optional[Path]:
    text = compare_runs(experiment_path, metrics).to_csv(index=False)
    if output is None:
        print(text, end="")
        return None
    return files.write_output(output, text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _commands.parser("prov4ml.analysis", "Reports and comparisons of recorded runs.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="a self-contained HTML report of one run, or of every run of an experiment")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--run_dir", help="the run directory (<save_dir>/<experiment>/run_<id>)")
    which.add_argument("--experiment_path", help="the experiment directory (<save_dir>/<experiment>): the runs side by side")
    r.add_argument("--output", default=None, help="the HTML file (default: report.html in the directory given)")
    c = sub.add_parser("compare", help="one CSV row per run: status, parameters, last/min/max of each metric")
    c.add_argument("--experiment_path", required=True, help="the experiment directory (<save_dir>/<experiment>)")
    c.add_argument("--output", default=None, help="the CSV file (default: print to stdout)")
    for sp in (r, c):
        sp.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                        help="only these series: names, name/context, or glob patterns ('loss*'); default: all")
    args = p.parse_args(argv)
    if args.command == "report":
        if args.run_dir is not None:
            return _commands.run("prov4ml.analysis", lambda: html_report(args.run_dir, args.output, metrics=args.metrics))
        return _commands.run("prov4ml.analysis", lambda: experiment_report(args.experiment_path, args.output, metrics=args.metrics))
    return _commands.run("prov4ml.analysis", lambda: _compare(args.experiment_path, args.output, args.metrics))
