"""Run a script written for yProv4ML, unchanged, on prov4ml: its ``import yprov4ml`` imports prov4ml.

    python -m prov4ml.compat.run_as_yprov4ml SCRIPT.py [ARGS ...]
    python -m prov4ml.compat.run_as_yprov4ml -m MODULE [ARGS ...]

The processes the script starts (spawn and forkserver children, dask
workers, torchrun ranks, subprocesses) import ``yprov4ml`` as prov4ml too:
see :mod:`prov4ml.compat.alias`. A DDP script: ``python -m
prov4ml.compat.run_as_yprov4ml -m torch.distributed.run --nproc-per-node 2
train.py``, or ``torchrun --nproc-per-node 2 -m prov4ml.compat.run_as_yprov4ml
train.py``.

Refuses (exit status 2) when a real yprov4ml is installed: the script would run on it.
"""

from __future__ import annotations

import os
import runpy
import sys
import warnings
from typing import List, Optional, Sequence

from .alias import install_yprov4ml_alias

USAGE = "usage: python -m prov4ml.compat.run_as_yprov4ml SCRIPT.py [ARGS ...] | -m MODULE [ARGS ...]"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or (args[0] == "-m" and len(args) < 2):
        print(USAGE, file=sys.stderr if not args or args[0] == "-m" else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        installed = install_yprov4ml_alias()
    if not installed:
        print(f"prov4ml.compat.run_as_yprov4ml: {caught[-1].message}", file=sys.stderr)
        return 2
    if args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))  # as `python SCRIPT.py` does
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
