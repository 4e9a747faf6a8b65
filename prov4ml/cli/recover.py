"""Complete a run killed before end_run (SIGKILL, the OOM killer, a power cut) from its journal.

The metric files are rebuilt from the journal, the summaries recomputed and
each rank's PROV-JSON rewritten with status `killed`. Running it again changes
nothing; a run whose process is still alive is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._fs import is_url
from ..records.state import STATE_DIR
from ..runs import DEFAULT_DIR, resolve_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help=f"the run: a run directory, EXPERIMENT/run_N under ./{DEFAULT_DIR}, "
                        "or a run's URL (s3://bucket/prefix/EXPERIMENT/run_N)")
    parser.add_argument("--force", action="store_true",
                        help="do not check that the recording process is gone (its pid here, its lease in a bucket)")


def run(args: argparse.Namespace) -> int:
    from ..run.recovery import recover

    # a run killed inside start_run may have its records but no document yet: its folder is taken as given
    given = Path(args.run)
    run_dir = args.run if is_url(args.run) or (given / STATE_DIR).is_dir() else resolve_run(args.run)
    done = recover(run_dir, force=args.force)
    if not done:
        print(f"{run_dir}: nothing to recover (the run ended, or was recovered already)")
    for path in done:
        print(f"recovered {path}")
    return 0
