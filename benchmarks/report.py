"""Report figures: the HTML report of a run with 200 metric series.

    python benchmarks/report.py [--series 200] [--points 500] [--repeat 3]

The run is recorded with prov4ml itself: ``--series`` series (half the names in
training, half in validation), ``--points`` points each at global steps, plus
20 parameters. Printed: the time to record it and to load it, then for ``html_report`` (all
series from the loaded run, from the directory, and ``metrics=`` of one name)
and ``experiment_report`` the best build time of ``--repeat`` and the size of
the page. ``progress`` is off: the figures are the work alone. Run it with
``PYTHONPATH`` at an older checkout to measure that one.
"""

from __future__ import annotations

import argparse
import inspect
import math
import tempfile
import time
from pathlib import Path

import prov4ml
from _timing import best_of
from prov4ml import analysis


def record(base: Path, n_series: int, n_points: int) -> Path:
    prov4ml.start_run("www.example.org", "bench", str(base), capture=False)
    run_dir = prov4ml.active_run().run_dir
    prov4ml.log_params({f"p{i}": i * 0.5 for i in range(20)})
    contexts = (prov4ml.Context.TRAINING, prov4ml.Context.VALIDATION)
    for s in range(n_series):
        name, ctx = f"metric_{s // 2:03d}", contexts[s % 2]
        for step in range(n_points):
            prov4ml.log_metric(name, math.sin(step / 50 + s) + s, ctx, step=step)
    prov4ml.end_run()
    return Path(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run_dir = record(Path(tmp), args.series, args.points)
        print(f"recorded {args.series} series x {args.points} points in {time.perf_counter() - t:.1f} s")
        run = analysis.load_run(run_dir)
        # progress off where offered (an older html_report has no progress=, and no metrics=)
        quiet = {"progress": False} if "progress" in inspect.signature(analysis.html_report).parameters else {}
        out = Path(tmp) / "report.html"
        cases = [("load_run", lambda: analysis.load_run(run_dir)),
                 ("html_report of the loaded run, every series", lambda: analysis.html_report(run, out, **quiet)),
                 ("html_report(run_dir), loading included", lambda: analysis.html_report(run_dir, out, **quiet)),
                 ("html_report, metrics=['metric_000']", lambda: analysis.html_report(run, out, metrics=["metric_000"], **quiet))]
        if hasattr(analysis, "experiment_report"):
            cases.append(("experiment_report", lambda: analysis.experiment_report(run_dir.parent, out, **quiet)))
        for label, fn in cases:
            try:
                seconds = best_of(fn, args.repeat)
            except TypeError as exc:  # an older html_report without metrics=
                print(f"{label}: not offered ({exc})")
                continue
            size = f", {out.stat().st_size / 1e6:.2f} MB" if label != "load_run" else ""
            print(f"{label}: {seconds:.2f} s{size}")


if __name__ == "__main__":
    main()
