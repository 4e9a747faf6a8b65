"""Where a training loop's overhead comes from: wall time and the training thread's CPU time, side by side.

    python benchmarks/loop_cpu.py [--variants none one one_thread five five_capture] [--repeats 3]

The loop of compare.py (MLP 784-256-10, batch 64, CPU, 1 thread), 16 pairs of
250 bare and 250 logged steps per repeat, each variant in its own process.
When the two ratios agree, the cost is the training thread's own work (calls,
caches), not waits for the GIL or descheduling.

Variants: ``none`` (``loss.item()`` only: the baseline's noise), ``one`` (1
metric a step), ``one_thread`` (the same with ``writer_process=False``),
``five`` (5 floats a step) and ``five_capture`` (the same with the
environment capture on).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("none", "one", "one_thread", "five", "five_capture")


def child(variant: str, repeats: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import compare

    torch, model, opt, xs, ys = compare._setup()
    args = (torch, model, opt, xs, ys)
    compare._loop(300, None, *args)
    options = {"capture": variant == "five_capture", "writer_process": variant != "one_thread"}
    tool_name = "prov4ml_floats" if variant.startswith("five") else "prov4ml_one"
    out = {"wall": [], "cpu": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            if variant == "none":
                def log(i, loss, acc, lr, gn, dt):
                    loss.item()
                close = None
            else:  # the very loops compare.py measures
                log, close = compare._tool(tool_name, Path(tmp), **options)
            for _ in range(16):
                c = time.thread_time()
                bare = compare._loop(250, None, *args)
                bare_cpu = time.thread_time() - c
                c = time.thread_time()
                tool = compare._loop(250, log, *args)
                tool_cpu = time.thread_time() - c
                out["wall"].append(tool / bare)
                out["cpu"].append(tool_cpu / bare_cpu)
            if close is not None:
                close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'variant':<14}{'wall median':>13}{'wall mean':>11}{'CPU median':>12}{'CPU mean':>10}")
    for variant in args.variants:
        code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import loop_cpu; "
                f"print(json.dumps(loop_cpu.child({variant!r}, {args.repeats})))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode:
            print(f"{variant:<14} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:100]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        pct = lambda f, xs: f"{(f(xs) - 1) * 100:+.2f}%"
        print(f"{variant:<14}{pct(statistics.median, r['wall']):>13}{pct(statistics.mean, r['wall']):>11}"
              f"{pct(statistics.median, r['cpu']):>12}{pct(statistics.mean, r['cpu']):>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
