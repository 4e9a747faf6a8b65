"""Bring the index of DIR (or a URL) up to date, or rebuild it from scratch with --rebuild.

The index is a cache of every run's summary that `ls`, `compare` and the UI
read instead of every run's documents (docs/formats.md). Commands keep it up
to date by themselves; --rebuild forgets it and reads every run again (it is
always safe: the runs' own files are the source of truth). It lives in DIR
as .prov4ml-index/index.sqlite on a local disk, else in the user's cache.
"""

from __future__ import annotations

import argparse
import time

from ._output import steps
from ..runs import DEFAULT_DIR
from ..runs.index import Index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=DEFAULT_DIR, metavar="DIR|URL",
                        help=f"provenance_save_dir or experiment directory, or a URL (default ./{DEFAULT_DIR})")
    parser.add_argument("--rebuild", action="store_true", help="forget the index and read every run again")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    with Index(args.dir) as index, steps("reading runs") as step:
        if args.rebuild:
            count, read, dropped = index.rebuild(step), None, 0
        else:
            read, dropped = index.refresh(step, full=True)
            count = len(index)
        where = "in memory" if index.location == ":memory:" else index.location
    done = "rebuilt" if args.rebuild else f"{read:,} read again, {dropped:,} dropped"
    print(f"{count:,} run{'s' * (count != 1)} indexed ({done}) in {time.perf_counter() - start:.2f} s: {where}")
    return 0
