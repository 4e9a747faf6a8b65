"""Small runs: what start_run, 500 points and end_run cost, and a sweep of many short trials.

Each measure runs in its own fresh process. A run logs ``--series`` series of ``--points`` points
in all (5 x 100 steps by default). The first run of a process is shown apart (it starts the sink
process); the figures are the median of ``--runs`` later runs. The sweep runs ``--sweep`` short
trials one after another in one process, each a whole run with the same points.

    python benchmarks/small_runs.py [--runs 30] [--sweep 1000] [--peers]

``--peers`` adds MLflow (``pip install -e ".[bench]"``): ``start_run``, one ``log_metric`` per point
and ``end_run`` in a local file store.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PHASES = ("start", "points", "end", "total")


def _points(log, series: int, steps: int) -> None:
    names = [f"m{k}" for k in range(series)]
    for i in range(steps):
        for name in names:
            log(name, i * 0.5, step=i)


def prov4ml_runs(n: int, series: int, steps: int, capture: bool) -> list:
    import prov4ml

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(n):
            t0 = time.perf_counter()
            prov4ml.start_run("www.example.org", "small", tmp, capture=capture)
            t1 = time.perf_counter()
            _points(prov4ml.log_metric, series, steps)
            t2 = time.perf_counter()
            prov4ml.end_run()
            t3 = time.perf_counter()
            out.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    return out


def mlflow_runs(n: int, series: int, steps: int, capture: bool) -> list:
    import logging

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local file store, as in compare.py
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri("file://" + tmp)
        mlflow.set_experiment("small")
        for _ in range(n):
            t0 = time.perf_counter()
            mlflow.start_run()
            t1 = time.perf_counter()
            _points(lambda k, v, step: mlflow.log_metric(k, v, step=step), series, steps)
            t2 = time.perf_counter()
            mlflow.end_run()
            t3 = time.perf_counter()
            out.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    return out


TOOLS = {"prov4ml": prov4ml_runs, "mlflow": mlflow_runs}


def one(spec: dict) -> dict:
    """One measure, in this process: per-run phase times, or a sweep's total."""
    runs = TOOLS[spec["tool"]]
    if spec["kind"] == "sweep":
        t = time.perf_counter()
        runs(spec["n"], spec["series"], spec["steps"], spec["capture"])
        return {"total": time.perf_counter() - t}
    times = runs(spec["n"] + 1, spec["series"], spec["steps"], spec["capture"])
    return {"first": times[0], "median": [statistics.median(t[i] for t in times[1:]) for i in range(4)]}


def measure(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{spec}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--series", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--sweep", type=int, default=1000, help="trials in each sweep (0: no sweep)")
    parser.add_argument("--peers", action="store_true", help="also MLflow (local file store)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return 0
    import prov4ml

    base = {"series": args.series, "steps": args.steps}
    print(f"prov4ml from {os.path.dirname(prov4ml.__file__)}; {args.series} series x {args.steps} steps = "
          f"{args.series * args.steps} points a run; load average {os.getloadavg()[0]:.2f}")
    print(f"\n{'run (ms)':34s}" + "".join(f"{p:>9s}" for p in PHASES) + f"{'1st run':>10s}")
    cases = [("prov4ml, capture off", "prov4ml", False), ("prov4ml, default capture", "prov4ml", True)]
    if args.peers:
        cases.append(("MLflow, local file store", "mlflow", False))
    for label, tool, capture in cases:
        got = measure({**base, "tool": tool, "capture": capture, "kind": "runs", "n": args.runs})
        print(f"{label:34s}" + "".join(f"{v * 1e3:9.1f}" for v in got["median"]) + f"{got['first'][3] * 1e3:10.1f}")
    if args.sweep:
        print(f"\nsweep of {args.sweep} trials, one process")
        for label, tool, capture in cases[:2]:  # prov4ml's (a peer's sweep would take minutes)
            got = measure({**base, "tool": tool, "capture": capture, "kind": "sweep", "n": args.sweep})
            print(f"{label:34s} {got['total']:8.1f} s   {got['total'] / args.sweep * 1e3:7.1f} ms a trial")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
