"""What creating a metric file costs this machine's file system, without prov4ml: the floor under many series.

    python benchmarks/file_creation.py [--files 40000] [--rounds 5]

Each round creates --files files in a fresh folder (beside the temporary
folder the many-series benchmark uses) as the sink does: open with O_CREAT
and O_APPEND, write a header and a row, close. Printed per round: the wall
time, the microseconds per file and the CPU the kernel spent (the system time
of this process). A run of many_series.py with 100,000 series creates 100,000
such files; what it waits for after its document is this cost for the files
not created yet. On ext4 without a journal, files made within minutes of a
mass deletion cost ten times more (ext4 skips inodes freed in the last 60 s:
docs/performance.md, "The spread"); run it with TMPDIR on another file system
to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    for n in range(args.rounds):
        folder = tempfile.mkdtemp(prefix="prov4ml-files-")  # under TMPDIR
        try:
            began, cpu = time.perf_counter(), os.times()
            for i in range(args.files):
                fd = os.open(os.path.join(folder, f"m{i}_training_rank0.csv"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.write(fd, b"step,value,time\n0,1.5,1767225600.0\n")
                os.close(fd)
            wall, sys_s = time.perf_counter() - began, os.times().system - cpu.system
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"round {n + 1}: {args.files:,} files in {wall:.2f} s, {wall / args.files * 1e6:.0f} µs a file "
              f"(kernel CPU {sys_s:.2f} s)", flush=True)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
