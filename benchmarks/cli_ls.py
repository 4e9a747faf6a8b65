"""How long `prov4ml ls` takes over many runs.

    python benchmarks/cli_ls.py [--runs 1000] [--dir /tmp/prov4ml_cli_ls] [--repeat 5]

Records ``--runs`` real runs once (10 experiments; parameters lr, batch_size,
optimizer; 20 epochs of loss, val_loss and val_acc; a final metric; every
50th run fails) into ``--dir``, reused when it already holds that many, then
times the whole command as a user runs it (a fresh interpreter each time):
``ls``, ``ls --json``, ``ls --where lr<0.01 --sort val_loss``, printing the
median and best wall time of ``--repeat`` runs of each.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = 10


def record(save_dir: Path, runs: int) -> None:
    import prov4ml

    for i in range(runs):
        lr = (0.1, 0.03, 0.01, 0.003, 0.001)[i % 5]
        try:
            with prov4ml.run("www.example.org", f"exp{i % EXPERIMENTS}", str(save_dir), capture=False):
                prov4ml.log_params({"lr": lr, "batch_size": 32 << (i % 3), "optimizer": ("sgd", "adam")[i % 2]})
                prov4ml.register_final_metric("val_loss", math.inf, prov4ml.FoldOperation.MIN)
                for epoch in range(20):
                    prov4ml.log_metric("loss", 1 / (epoch + 1) + lr, prov4ml.Context.TRAINING, step=epoch)
                    prov4ml.log_metric("val_loss", 1.5 / (epoch + 1) + lr, prov4ml.Context.VALIDATION, step=epoch)
                    prov4ml.log_metric("val_acc", 1 - 1 / (epoch + 2), prov4ml.Context.VALIDATION, step=epoch)
                if i % 50 == 49:
                    raise RuntimeError("diverged")
        except RuntimeError:
            pass
        if (i + 1) % 100 == 0:
            print(f"  recorded {i + 1}/{runs} runs", flush=True)


def count_runs(save_dir: Path) -> int:
    return sum(1 for _ in save_dir.glob("*/run_*/prov_rank0.json"))


def time_command(args, repeat: int) -> tuple:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "prov4ml", *args], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            raise SystemExit(f"prov4ml {' '.join(args)} failed: {out.stderr.strip()}")
    return statistics.median(times), min(times), out.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--dir", default="/tmp/prov4ml_cli_ls")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    save_dir = Path(args.dir)
    have = count_runs(save_dir)
    if have != args.runs:
        if have:
            raise SystemExit(f"{save_dir} holds {have} runs, not {args.runs}; remove it or give another --dir")
        print(f"recording {args.runs} runs into {save_dir} (once)", flush=True)
        t0 = time.perf_counter()
        record(save_dir, args.runs)
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    size = sum(p.stat().st_size for p in save_dir.glob("*/run_*/prov_rank0.json"))
    print(f"{args.runs} runs, PROV-JSON {size / args.runs / 1024:.1f} kB per run")
    base_median, base_best, _ = time_command(["--version"], args.repeat)
    print(f"{'python -m prov4ml --version (start-up)':<58} median {base_median:6.3f} s  best {base_best:6.3f} s")
    for cmd in (["ls", str(save_dir)], ["ls", str(save_dir), "--json"],
                ["ls", str(save_dir), "--where", "lr<0.01", "--sort", "val_loss"]):
        median, best, stdout = time_command(cmd, args.repeat)
        lines = stdout.count("\n")
        print(f"{'prov4ml ' + ' '.join(cmd):<58} median {median:6.3f} s  best {best:6.3f} s  ({lines} lines)")


if __name__ == "__main__":
    main()
