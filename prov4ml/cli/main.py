"""``prov4ml COMMAND ...``: one console command, one module per subcommand.

A subcommand is a module of this package with ``add_arguments(parser)`` and
``run(args) -> int``, registered by one line of ``COMMANDS``. Errors that
prov4ml raises on purpose become one line on stderr and an exit status
(those of every prov4ml CLI, :mod:`prov4ml._commands`), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional, Sequence, Tuple

from .. import _commands
from .._version import __version__

__all__ = ["main", "COMMANDS", "build_parser"]

#: (name, module of this package, one-line help), in the order ``--help`` lists them.
COMMANDS: Sequence[Tuple[str, str, str]] = (
    ("ls", "ls", "list experiments and runs: status, duration, key parameters, last and best metrics"),
    ("show", "show", "one run: parameters, metric summaries, artifacts, model versions, environment, status"),
    ("compare", "compare", "runs side by side; for a sweep, mean ± std over the repetitions of each configuration"),
    ("report", "report", "a self-contained HTML report of a run or an experiment"),
    ("watch", "watch", "a live view of a run while it trains, until it ends"),
    ("graph", "graph", "the provenance graph of a run as DOT, or SVG with --svg"),
    ("convert", "convert", "a PROV-JSON document as PROV-N, PROV-XML, Turtle or TriG"),
    ("collect", "collect", "one PROV document linking every run and rank of an experiment"),
    ("lineage", "lineage", "where a run or a file came from and what came of it, across experiments (by content)"),
    ("index", "index", "bring the index of the runs up to date, or rebuild it (--rebuild)"),
    ("recover", "recover", "complete a run killed before end_run, from its journal"),
    ("import", "import_", "turn MLflow runs, TensorBoard event files or yProv4ML runs into prov4ml runs"),
    ("query", "query", "answer a SPARQL query over an experiment's provenance (a table, or --csv)"),
    ("ui", "ui", "a local web UI: runs, live plots of running runs, comparisons, the provenance graph"),
)

EPILOG = """\
RUN is a run directory, or EXPERIMENT/run_N (or EXPERIMENT/N) under ./prov.

exit status:
  0    done (a command that writes a file prints its path)
  1    bad input: no such run or directory, a corrupt or non-PROV document,
       a bad --where/--sort/--metrics, an unwritable output
  2    bad command line
  3    a dependency is missing: a Python extra (the message names it) or Graphviz `dot`
  130  interrupted (Ctrl-C); `watch` ends with 0 on Ctrl-C
"""


def build_parser(wanted: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``wanted`` (a command name) only that command's module is imported, the others are listed."""
    parser = argparse.ArgumentParser(
        prog="prov4ml", description="Look at, compare and export the provenance of machine-learning runs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"prov4ml {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        if wanted is not None and name != wanted:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f"{__package__}.{module_name}")
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip(),
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``prov4ml`` with ``argv`` (default: the process's arguments); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)  # the command: only its module is imported
    known = {name for name, _m, _h in COMMANDS}
    helping = any(a in ("-h", "--help") for a in argv[:argv.index(first)] if first in known) if first else \
        any(a in ("-h", "--help") for a in argv)
    wanted = None if helping else (first if first in known else "")  # "": no command's module is needed
    args = build_parser(wanted).parse_args(argv)
    code = _commands.EXIT_OK
    reader_left = False

    def action() -> None:
        nonlocal code, reader_left
        try:
            code = args._run(args)
            sys.stdout.flush()
        except BrokenPipeError:  # `prov4ml ls | head`: the reader left, which is no error
            reader_left = True

    status = _commands.run(f"prov4ml {args.command}", action)
    if reader_left:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
    return status if status != _commands.EXIT_OK else code


if __name__ == "__main__":
    raise SystemExit(main())
