"""Scale figures: 10,000,000 points in one series, 1,000 series x 10,000 points, and a real training loop.

    python benchmarks/scale.py [--points 10000000] [--series 1000] [--per-series 10000] [--steps 20000]
                               [--cases sink,one,many,loop] [--stages]

For each case: logging time and µs per point, peak RSS of the training process
and of the sink process sampled every 50 ms while logging (flat means flat),
end_run time (mostly the consumer finishing the files), PROV-JSON size, and how
far the sink lags behind (points logged but not yet rows in the metric files,
counted in the files every 50 ms, in points and in seconds of logging).
The last case is compare.py's MLP loop (5 floats a step, a few kHz of points):
there end_run should not depend on the run's length.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

import prov4ml


class Sampler(threading.Thread):
    """RSS of this process and of the sink, and the sink's lag, every ``every`` seconds."""

    def __init__(self, run, logged, every=0.05):
        super().__init__(daemon=True)
        self.prov_run, self.logged, self.every = run, logged, every
        self.rss, self.sink_rss, self.lag_points, self.lag_s = [], [], [], []
        self.stop = threading.Event()
        proc = getattr(run._refresher._out, "_proc", None)
        self.sink = psutil.Process(proc.pid) if proc is not None else None
        self.me = psutil.Process()
        self.metrics = Path(run.run_dir) / "metrics"
        self.read = {}  # file -> (bytes counted, newlines in them)

    def rows_on_disk(self):
        """Rows in the metric files now (their newlines, less the headers), reading only what was appended."""
        rows = 0
        for entry in os.scandir(self.metrics):
            done, lines = self.read.get(entry.path, (0, 0))
            size = entry.stat().st_size
            if size > done:
                with open(entry.path, "rb") as fh:
                    fh.seek(done)
                    lines += fh.read(size - done).count(b"\n")
                self.read[entry.path] = (size, lines)
            rows += max(lines - 1, 0)
        return rows

    def run(self):
        last = (time.perf_counter(), 0)
        rate = 0.0
        while not self.stop.wait(self.every):
            self.rss.append(self.me.memory_info().rss)
            if self.sink is not None:
                try:
                    self.sink_rss.append(self.sink.memory_info().rss)
                except psutil.Error:
                    pass
            now, n = time.perf_counter(), self.logged[0]
            on_disk = self.rows_on_disk()
            if now - last[0] >= 0.5:  # the logging rate over the last half second
                rate = (n - last[1]) / (now - last[0])
                last = (now, n)
            behind = max(n - on_disk, 0)
            self.lag_points.append(behind)
            self.lag_s.append(behind / rate if rate > 0 else 0.0)


def report(label, n, logging, ended, sampler, path):
    files = sum(p.stat().st_size for p in (path.parent / "metrics").iterdir())
    mib = 1 << 20
    half = len(sampler.rss) // 2
    print(f"\n{label}: {n:,} points")
    print(f"  logging                 {logging:8.1f} s   ({logging / n * 1e6:.2f} µs/point)")
    print(f"  end_run                 {ended:8.3f} s   ({ended / logging:.2f}x the logging time: the sink finishing the files, the final document)")
    print(f"  peak RSS, training      {max(sampler.rss) / mib:8.1f} MiB  (first half of the run {max(sampler.rss[:half] or [0]) / mib:.1f}, "
          f"second half {max(sampler.rss[half:] or [0]) / mib:.1f})")
    if sampler.sink_rss:
        print(f"  peak RSS, sink          {max(sampler.sink_rss) / mib:8.1f} MiB")
    lags = sorted(sampler.lag_s) or [0.0]
    print(f"  not in the files yet    median {lags[len(lags) // 2]:.2f} s, max {lags[-1]:.2f} s "
          f"({max(sampler.lag_points or [0]):,} points at most; counted in the files every 50 ms)")
    print(f"  PROV-JSON               {path.stat().st_size / 1024:8.1f} KiB")
    print(f"  metric files            {files / n:8.1f} bytes/point")


def case(label, series, per_series, save_dir):
    run = prov4ml.start_run("www.example.org", "scale", str(save_dir), capture=False)
    logged = [0]
    sampler = Sampler(run, logged)
    sampler.start()
    names = [f"m{k}" for k in range(series)]
    lm, ctx = prov4ml.log_metric, prov4ml.Context.TRAINING
    t = time.perf_counter()
    chunk = max(1, 100_000 // series)  # steps between updates of the count the lag sampler reads
    for start in range(0, per_series, chunk):
        for i in range(start, min(start + chunk, per_series)):
            v = i * 1e-3
            for name in names:
                lm(name, v, ctx, i)
        logged[0] = min(start + chunk, per_series) * series
    logging = time.perf_counter() - t
    sampler.stop.set()
    sampler.join()
    t = time.perf_counter()
    path = prov4ml.end_run()
    ended = time.perf_counter() - t
    report(label, series * per_series, logging, ended, sampler, path)


def training_loop(steps, save_dir):
    """compare.py's MLP loop, logging 5 floats a step."""
    sys.path.insert(0, str(Path(__file__).parent))
    import compare

    torch, model, opt, xs, ys = compare._setup()
    compare._loop(200, None, torch, model, opt, xs, ys)  # warm up
    run = prov4ml.start_run("www.example.org", "scale", str(save_dir), capture=False)
    logged = [0]
    calls = compare.prov4ml_calls("prov4ml_floats", prov4ml.log_metric, prov4ml.Context.TRAINING)

    def log(i, *values):
        calls(i, *values)
        logged[0] += 5

    sampler = Sampler(run, logged)
    sampler.start()
    logging = compare._loop(steps, log, torch, model, opt, xs, ys)
    sampler.stop.set()
    sampler.join()
    t = time.perf_counter()
    path = prov4ml.end_run()
    ended = time.perf_counter() - t
    report(f"a training loop (MLP, {steps / logging:,.0f} steps/s, 5 floats a step)", logged[0], logging, ended,
           sampler, path)


class Stages:
    """CPU time and page faults of each stage of the sink (``--stages``): functions wrapped for the measurement."""

    def __init__(self):
        self.spent = {}  # label -> [CPU seconds, minor faults]

    def wrap(self, owner, name, label):
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            cpu, faults = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            try:
                return inner(*args, **kwargs)
            finally:
                spent = self.spent.setdefault(label, [0.0, 0])
                spent[0] += time.process_time() - cpu
                spent[1] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults

        setattr(owner, name, timed)
        return inner

    def report(self, points):
        for label, (cpu, faults) in self.spent.items():
            print(f"  {label:38s} {cpu / points * 1e9:5.0f} ns CPU/point, {faults:,} page faults")


def sink_throughput(points, save_dir, stages=False):
    """The sink alone, on one core: a journal of ``points`` points of one series turned into a CSV file."""
    from prov4ml.metrics import _sink
    from prov4ml.metrics.journal import Journal, JournalReader

    journal, out = Path(save_dir, "journal"), Path(save_dir, "metrics")
    out.mkdir(parents=True)
    j = Journal(str(journal))
    j.add_series({"sid": 0, "name": "loss", "context": "training", "kind": "metric", "unit": None, "file": "loss.csv"})
    t0 = time.time()
    for i in range(points):
        j.append(0, i, 1.0 / (i + 1), t0 + i * 1e-6)  # values of 17 digits, times of every millisecond
    j.close()
    timer = Stages() if stages else None
    if timer is not None:
        restore = [(owner, name, timer.wrap(owner, name, label)) for owner, name, label in (
            (JournalReader, "read_slots", "reading committed slots (read_slots)"),
            (_sink, "rows", "grouping, formatting, summaries (rows)"),
            (_sink.Consumer, "_flush_backlog", "joining and writing (_flush_backlog)"))]
    consumer = _sink.Consumer(str(journal), str(out))
    wall, cpu = time.perf_counter(), time.process_time()
    consumer.poll(final=True)
    consumer.fsync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    consumer.close()
    if timer is not None:
        for owner, name, inner in restore:
            setattr(owner, name, inner)
    size = (out / "loss.csv").stat().st_size
    how = "C" if getattr(_sink, "rows", None) not in (None, getattr(_sink, "_rows_py", None)) else "Python"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nthe sink alone ({how} rows): {points:,} points into CSV (load average {load})")
    print(f"  {wall:.2f} s wall, {cpu:.2f} s CPU: {points / wall / 1e6:.1f} M points/s ({size / wall / 1e6:.0f} MB/s), "
          f"{points / cpu / 1e6:.1f} M points per CPU second")
    if timer is not None:
        timer.report(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--per-series", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=20_000, help="steps of the training loop")
    parser.add_argument("--cases", default="sink,one,many,loop",
                        help="which to run: the sink alone, the tight loops of one and of many series, the training loop")
    parser.add_argument("--stages", action="store_true", help="the sink alone: CPU time of each stage (slower)")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "sink" in cases:
            sink_throughput(args.points, Path(tmp) / "s", args.stages)
        if "one" in cases:
            case("one series", 1, args.points, Path(tmp) / "a")
        if "many" in cases:
            case(f"{args.series:,} series x {args.per_series:,} points", args.series, args.per_series, Path(tmp) / "b")
        if "loop" in cases:
            training_loop(args.steps, Path(tmp) / "c")


if __name__ == "__main__":
    main()
