"""What the log calls of one step cost inside a real training loop (caches cold after each step), C path and Python path.

    python benchmarks/in_loop.py [--rounds 30]

The loop of compare.py (MLP 784-256-10, batch 64, CPU, 1 thread). Each
step's log calls are timed with perf_counter around them; the variants run in
turn, 100 steps each, for ``--rounds`` rounds, in one process per path (the
path is chosen at import: ``PROV4ML_PURE_PYTHON=1`` forces the Python one).
"items" makes the same ``.item()`` calls to a function that does nothing: the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(per_step: int, rounds: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import compare
    import prov4ml

    torch, model, opt, xs, ys = compare._setup()
    args = (torch, model, opt, xs, ys)
    compare._loop(300, None, *args)
    ctx = prov4ml.Context.TRAINING

    name = "prov4ml_floats" if per_step == 5 else "prov4ml_one"

    with tempfile.TemporaryDirectory() as tmp:
        prov4ml.start_run("www.example.org", "in_loop", tmp, capture=False)
        path = type(prov4ml.log_metric).__name__  # HotPath: the C path
        variants = {"items": compare.prov4ml_calls(name, lambda *a: None, ctx),
                    "prov4ml": compare.prov4ml_calls(name, prov4ml.log_metric, ctx)}
        times = {name: [] for name in variants}
        clock = time.perf_counter

        def timed(name):
            inner, record = variants[name], times[name].append

            def log(*a):
                t = clock()
                inner(*a)
                record(clock() - t)
            return log

        wrapped = {name: timed(name) for name in variants}
        time.sleep(2)  # the sink's start-up is over
        for _ in range(rounds):
            for name in variants:
                compare._loop(100, wrapped[name], *args)
        prov4ml.end_run()
    out = {}
    for name, ds in times.items():
        ds.sort()
        out[name] = {"mean": sum(ds) / len(ds) * 1e6, "p50": ds[len(ds) // 2] * 1e6, "p99": ds[int(len(ds) * 0.99)] * 1e6}
    out["path"] = path
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(f"µs per step spent in the step's log calls, mean (p50) [p99]; {args.rounds} rounds of 100 steps per variant")
    print(f"{'variant':<28}{'1 metric/step':>24}{'5 metrics/step':>24}")
    rows = {}
    for pure in (False, True):
        for per_step in (1, 5):
            env = dict(os.environ, PROV4ML_PURE_PYTHON="1" if pure else "0")
            code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import in_loop; "
                    f"print(json.dumps(in_loop.child({per_step}, {args.rounds})))")
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
            if proc.returncode:
                print(f"failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:100]}")
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            label = "Python path" if pure else ("C path" if r["path"] == "HotPath" else "C path (not built!)")
            rows.setdefault("the .item() calls alone", {}).setdefault(per_step, r["items"])
            rows.setdefault(f"prov4ml, {label}", {})[per_step] = r["prov4ml"]
    cell = lambda f: f"{f['mean']:.1f} ({f['p50']:.1f}) [{f['p99']:.0f}]" if f else "-"
    for label, by_n in rows.items():
        print(f"{label:<28}{cell(by_n.get(1)):>24}{cell(by_n.get(5)):>24}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
