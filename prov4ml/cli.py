"""The ``prov4ml`` console command (also ``python -m prov4ml``): one subcommand per task.

Exit codes are those of every prov4ml CLI (see ``_cli``).
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from . import _cli

__all__ = ["main"]


def _recover(args: argparse.Namespace) -> int:
    from .recovery import recover

    done = recover(args.run_dir, force=args.force)
    if not done:
        print(f"{args.run_dir}: nothing to recover (the run ended, or was recovered already)")
    for path in done:
        print(f"recovered {path}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="prov4ml", description="Provenance of machine-learning runs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    rec = sub.add_parser("recover", help="complete a run killed before end_run, from its journal")
    rec.add_argument("run_dir", help="the run directory, e.g. prov/<experiment>/run_0")
    rec.add_argument("--force", action="store_true", help="do not check that the recording process is gone")
    rec.set_defaults(func=_recover)
    args = parser.parse_args(argv)
    return _cli.run(f"prov4ml {args.command}", lambda: args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
