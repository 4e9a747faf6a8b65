"""Hot-path figures: µs per log_metric call vs a bare list.append (same process), µs per point
end to end (with the final drain), journal and metric-file bytes per point, peak RSS, import and
start_run times.

    python benchmarks/hot_path.py [--points 1000000] [--save-after 100]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def import_time() -> tuple:
    code = "import time,sys; t=time.perf_counter(); import prov4ml; print(time.perf_counter()-t, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), out[1] == "True"


def run_journal(run) -> Path:
    return Path(run.journal_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--save-after", type=int, default=100)
    args = parser.parse_args()
    n = args.points

    seconds, torch_imported = import_time()
    print(f"import prov4ml          {seconds * 1000:8.1f} ms   (torch imported: {torch_imported})")

    import prov4ml

    values = [i * 1e-3 for i in range(1000)]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        prov4ml.start_run("www.example.org", "bench", tmp, save_after_n_logs=args.save_after, capture=False)
        started = time.perf_counter() - t
        log_metric, ctx = prov4ml.log_metric, prov4ml.Context.TRAINING
        warm = n // 5  # the writer's bounded queue fills up over the first calls
        t = time.perf_counter()
        for i in range(warm):
            log_metric("loss", values[i % 1000], ctx, step=i)
        rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for i in range(warm, n):
            log_metric("loss", values[i % 1000], ctx, step=i)
        per_call = (time.perf_counter() - t) / n * 1e6
        logged = time.perf_counter() - t
        journal = sum(p.stat().st_size for p in run_journal(prov4ml.active_run()).glob("seg.*"))
        t = time.perf_counter()
        prov_path = prov4ml.end_run()
        ended = time.perf_counter() - t
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        data = sum(p.stat().st_size for p in (prov_path.parent / "metrics").iterdir())
        prov_size = prov_path.stat().st_size

    # The baseline last: its million tuples would otherwise dominate the peak RSS.
    sink: list = []
    append = sink.append
    t = time.perf_counter()
    for i in range(n):
        append((i, values[i % 1000]))
    bare = (time.perf_counter() - t) / n * 1e6

    print(f"start_run               {started * 1000:8.1f} ms")
    print(f"bare list.append        {bare:8.3f} µs/call")
    print(f"prov4ml.log_metric      {per_call:8.3f} µs/call   ({per_call / bare:.1f}x the bare append, {n:,} calls)")
    print(f"end to end              {(logged + ended) / n * 1e6:8.3f} µs/point (logging plus end_run's drain)")
    print(f"end_run                 {ended * 1000:8.1f} ms")
    print(f"journal                 {journal / n:8.1f} bytes/point (32 per point, in 4 MiB segments; removed by end_run)")
    print(f"metric file             {data / n:8.1f} bytes/point")
    print(f"PROV-JSON               {prov_size:8d} bytes")
    print(f"peak RSS while logging  {rss_after / 1024:8.1f} MiB  "
          f"(grew {(rss_after - rss_warm) / 1024:.1f} MiB over the last {n - warm:,} calls)")


if __name__ == "__main__":
    main()
