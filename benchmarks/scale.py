"""Scale figures: 10,000,000 points in one series, and 1,000 series x 10,000 points.

    python benchmarks/scale.py [--points 10000000] [--series 1000] [--per-series 10000]

For each case: logging time and µs per point, peak RSS of the training process
and of the sink process sampled every 0.25 s while logging (flat means flat),
end_run time (mostly the consumer finishing the files), PROV-JSON size, and how
far the consumer lags behind (points logged but not yet in the metric files at
the last refresh, in points and in seconds of logging).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil

import prov4ml


class Sampler(threading.Thread):
    """RSS of this process and of the sink, and the consumer's lag, every ``every`` seconds."""

    def __init__(self, run, logged, every=0.05):
        super().__init__(daemon=True)
        self.prov_run, self.logged, self.every = run, logged, every
        self.rss, self.sink_rss, self.lag_points, self.lag_s = [], [], [], []
        self.stop = threading.Event()
        proc = getattr(run._refresher._out, "_proc", None)
        self.sink = psutil.Process(proc.pid) if proc is not None else None
        self.me = psutil.Process()

    def run(self):
        last = (time.perf_counter(), 0)
        while not self.stop.wait(self.every):
            self.rss.append(self.me.memory_info().rss)
            if self.sink is not None:
                try:
                    self.sink_rss.append(self.sink.memory_info().rss)
                except psutil.Error:
                    pass
            on_disk = self.prov_run._refresher.last_report.get("points", 0)  # rows in the files, as the sink said
            now, n = time.perf_counter(), self.logged[0]
            rate = (n - last[1]) / max(now - last[0], 1e-9)
            last = (now, n)
            self.lag_points.append(n - on_disk)
            self.lag_s.append((n - on_disk) / rate if rate > 0 else 0.0)


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
    n = series * per_series
    files = sum(p.stat().st_size for p in (path.parent / "metrics").iterdir())
    mib = 1 << 20
    half = len(sampler.rss) // 2
    print(f"\n{label}: {n:,} points")
    print(f"  logging                 {logging:8.1f} s   ({logging / n * 1e6:.2f} µs/point)")
    print(f"  end_run                 {ended:8.2f} s   (the consumer finishing the files, the final document)")
    print(f"  peak RSS, training      {max(sampler.rss) / mib:8.1f} MiB  (first half of the run {max(sampler.rss[:half] or [0]) / mib:.1f}, "
          f"second half {max(sampler.rss[half:] or [0]) / mib:.1f})")
    if sampler.sink_rss:
        print(f"  peak RSS, sink          {max(sampler.sink_rss) / mib:8.1f} MiB")
    print(f"  not in the files yet    median {sorted(sampler.lag_s)[len(sampler.lag_s) // 2]:.2f} s, max {max(sampler.lag_s):.2f} s "
          f"({max(sampler.lag_points):,} points; sampled from the sink's report at each refresh, every ~2 s)")
    print(f"  PROV-JSON               {path.stat().st_size / 1024:8.1f} KiB")
    print(f"  metric files            {files / n:8.1f} bytes/point")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--per-series", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        case("one series", 1, args.points, Path(tmp) / "a")
        case(f"{args.series:,} series x {args.per_series:,} points", args.series, args.per_series, Path(tmp) / "b")


if __name__ == "__main__":
    main()
