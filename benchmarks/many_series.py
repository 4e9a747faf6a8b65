"""Many series under a low descriptor limit: every row on disk, and what end_run costs.

    python benchmarks/many_series.py [--series 100000] [--points 10] [--nofile 256] [--flush-interval 2]

A child process (its soft RLIMIT_NOFILE lowered to --nofile) logs --points
points to each of --series series, then ends the run. Printed: logging time,
end_run time and where it went (the sink finishing, the document, the summary
file, the wait for the files' last rows, which the sink writes meanwhile), the child's peak RSS, the document's size, and the rows found in the
metric files against the points logged (they must be equal). --flush-interval
is the run's prov_flush_interval: a large one leaves the sink no live document
to write.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
import prov4ml
from prov4ml import provenance
from prov4ml.provenance import summary

series, points = int(sys.argv[1]), int(sys.argv[2])
phases = {}

def timed(owner, name, phase):
    real = getattr(owner, name)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - began
    setattr(owner, name, wrapper)

run = prov4ml.start_run("www.example.org", "many", "prov", capture=False, prov_flush_interval=float(sys.argv[3]))
t0 = time.perf_counter()
for step in range(points):
    for k in range(series):
        prov4ml.log_metric(f"m{k}", k + step / 10, prov4ml.Context.TRAINING, step=step)
t1 = time.perf_counter()
timed(run._refresher, "close", "sink finishing")  # until its report of what the files will hold
timed(run._refresher, "confirm", "files written")  # the wait, after the document, for the files' last rows
timed(provenance, "write_document", "document")
timed(summary, "write_summary", "summary file")
prov4ml.end_run()
t2 = time.perf_counter()
print(json.dumps({"log_s": t1 - t0, "end_run_s": t2 - t1, "phases": phases,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--nofile", type=int, default=256)
    ap.add_argument("--flush-interval", type=float, default=2.0)
    args = ap.parse_args()

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "child.py")
        script.write_text(textwrap.dedent(CHILD))
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script), str(args.series), str(args.points),
                               str(args.flush_interval)], cwd=tmp,
                              capture_output=True, text=True, preexec_fn=limit,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        wall = time.perf_counter() - start
        if proc.returncode:
            sys.exit(proc.stderr[-3000:])
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        run_dir = Path(tmp, "prov", "many", "run_0")
        rows = files = 0
        for path in (run_dir / "metrics").iterdir():
            files += 1
            with path.open("rb") as fh:
                rows += sum(1 for _ in fh) - 1  # the header
        doc_mb = (run_dir / "prov_rank0.json").stat().st_size / 1e6
    logged = args.series * args.points
    print(f"{args.series:,} series x {args.points} points under ulimit -n {args.nofile} (child wall {wall:.1f} s)")
    print(f"  logging      {figures['log_s']:.2f} s")
    print(f"  end_run      {figures['end_run_s']:.2f} s")
    for phase, seconds in figures["phases"].items():
        print(f"    {phase:<16} {seconds:.2f} s")
    print(f"  peak RSS     {figures['rss_mb']:.0f} MB (training process)")
    print(f"  document     {doc_mb:.1f} MB")
    print(f"  metric files {files:,}; rows {rows:,} of {logged:,} logged ({'all' if rows == logged else 'MISSING ROWS'})")


if __name__ == "__main__":
    main()
