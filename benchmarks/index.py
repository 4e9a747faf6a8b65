"""The index at scale: 100,000 runs listed, rebuilt, filtered; a run added shows at the next `ls`.

    python benchmarks/index.py [--runs 100000] [--dir /tmp/prov4ml_index] [--repeat 3]

Writes ``--runs`` small runs once into ``--dir`` (reused when it already holds
that many): 10 experiments, each run's PROV-JSON and summary written by the
library's own writers (``build_document``, ``write_summary``) from a snapshot
with 4 parameters and 3 metric series, 1 in 50 failed. Then times, each as a
user runs it (a fresh interpreter; the best and median of ``--repeat``):

- ``prov4ml index --rebuild``: the cold build, every summary read;
- ``prov4ml ls`` warm (the table of the newest 1,000), ``ls --csv`` (every run),
  ``ls --where 'lr<0.01' --where 'val_loss.best<0.5' --sort val_loss --desc``;
- a run started, then finished, between two ``ls``: whether each shows it;
- with ``--ui N``: the web UI's runs list over the first N runs (their own
  save dir), first paint in headless Chromium as ``ui_screenshot.py`` times
  it: a fresh server on a cold index, then on a warm one (needs Debian's
  ``chromium`` and ``chromium-driver``, and ``pip install selenium``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = 10


def snapshot(i: int):
    from prov4ml.context import Context
    from prov4ml.records.model import FinalValue, ParamRecord, RunSnapshot, SeriesSummary

    start = datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(seconds=37 * i)
    end = start + timedelta(seconds=30 + i % 600)
    lr = (0.1, 0.03, 0.01, 0.003, 0.001)[i % 5]
    series = []
    for name, ctx, base in (("loss", "training", 1.0), ("val_loss", "validation", 1.2), ("val_acc", "validation", 0.5)):
        last = base / (1 + (i % 97) / 10)
        series.append(SeriesSummary(name, Context(ctx), "metric", None, None, f"metrics/{name}_{ctx}_rank0.csv",
                                    20, 0, last, base, last, (base + last) / 2, 0, 19, start, end))
    return RunSnapshot(
        user_namespace="http://example.org/", user="bench", experiment_name=f"exp{i % EXPERIMENTS}",
        run_id=i // EXPERIMENTS, rank=0, run_dir="", start_time=start, end_time=end,
        status="failed" if i % 50 == 49 else "finished",
        error=("RuntimeError", "diverged") if i % 50 == 49 else None, library_version="bench",
        params=[ParamRecord("lr", lr), ParamRecord("batch_size", 32 << (i % 3)),
                ParamRecord("optimizer", ("sgd", "adam")[i % 2]), ParamRecord("seed", i)],
        series=series, final_metrics=[FinalValue("val_loss", series[1].min, "min")],
        environment={"host": "bench-host"}, command="train.py",
    )


def write(args):
    save_dir, first, last = args
    from prov4ml._fs import atomic_write_text
    from prov4ml.provenance import build_document, to_json
    from prov4ml.provenance.summary import write_summary

    for i in range(first, last):
        snap = snapshot(i)
        run_dir = Path(save_dir, snap.experiment_name, f"run_{snap.run_id}")
        run_dir.mkdir(parents=True, exist_ok=True)
        snap.run_dir = str(run_dir)
        atomic_write_text(run_dir / "prov_rank0.json", to_json(build_document(snap)))
        write_summary(run_dir, snap)
    return last - first


def make(save_dir: Path, runs: int) -> None:
    chunk = 1000
    jobs = [(str(save_dir), a, min(a + chunk, runs)) for a in range(0, runs, chunk)]
    done, t0 = 0, time.perf_counter()
    with multiprocessing.Pool(os.cpu_count()) as pool:
        for n in pool.imap_unordered(write, jobs):
            done += n
            print(f"\r  written {done:,}/{runs:,} runs ({time.perf_counter() - t0:.0f} s)", end="", flush=True)
    print()


def count_runs(save_dir: Path) -> int:
    if not save_dir.is_dir():
        return 0
    return sum(1 for e in save_dir.iterdir() if e.is_dir() for _ in e.glob("run_*/summary_rank0.json"))


def timed(args, repeat: int, env=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "prov4ml", *args], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            raise SystemExit(f"prov4ml {' '.join(args)} failed: {out.stderr}")
    return min(times), statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--dir", default="/tmp/prov4ml_index")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ui", type=int, default=0, help="also time the UI's runs list over this many runs")
    args = parser.parse_args()
    save_dir = Path(args.dir)
    if count_runs(save_dir) != args.runs:
        import shutil

        shutil.rmtree(save_dir, ignore_errors=True)
        print(f"writing {args.runs:,} runs into {save_dir} (once) ...")
        make(save_dir, args.runs)
    d = str(save_dir)
    print(f"{args.runs:,} runs in {EXPERIMENTS} experiments, {os.cpu_count()} cores")
    best, med, out = timed(["index", "--rebuild", d], 1)
    print(f"  index --rebuild (cold)        {best:7.2f} s")
    for label, cmd in (("ls (table, newest 1,000)", ["ls", d]), ("ls --csv (every run)", ["ls", d, "--csv"]),
                       ("ls --where x2 --sort --desc", ["ls", d, "--where", "lr<0.01", "--where", "val_loss.best<0.5",
                                                        "--sort", "val_loss", "--desc"])):
        best, med, out = timed(cmd, args.repeat)
        print(f"  {label:<29} {best:7.2f} s best, {med:.2f} s median   ({len(out.stdout.splitlines()):,} lines)")
    # a run added, then finished: each shows at the next ls
    import prov4ml

    with prov4ml.run("http://example.org/", "exp0", d, capture=False) as r:
        which = ["ls", d, "--where", f"run==exp0/run_{r.run_id}", "--csv"]
        _b, _m, out = timed(which, 1)
        print(f"  a running run in the next ls:  {'yes' if ',running,' in out.stdout else 'NO'}")
    _b, _m, out = timed(which, 1)
    print(f"  it finished, in the next ls:   {'yes' if ',finished,' in out.stdout else 'NO'}")
    import shutil

    for line in out.stdout.splitlines()[1:]:
        shutil.rmtree(save_dir / line.split(",")[0])  # the run added: the next invocation finds the runs it made
    if args.ui:
        ui_paint(save_dir, args.ui)


def ui_paint(save_dir: Path, n: int) -> None:
    import shutil

    sys.path.insert(0, str(Path(__file__).parent))
    from ui_screenshot import browser, first_paint

    from prov4ml.ui import serve

    small = save_dir.with_name(f"{save_dir.name}_ui{n}")
    if count_runs(small) != n:
        shutil.rmtree(small, ignore_errors=True)
        make(small, n)
    driver = browser()
    try:
        for label in ("cold index", "warm index"):
            if label == "cold index":
                (small / ".prov4ml-index/index.sqlite").unlink(missing_ok=True)
            server = serve(small, port=0)
            try:
                table, paint = first_paint(driver, server.url)
            finally:
                server.shutdown()
                server.server_close()
            print(f"  UI runs list, {n:,} runs, {label}: {table / 1000:.2f} s to the runs table "
                  f"({paint / 1000:.2f} s first contentful paint)")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
