"""A run page whose series hold 1,000,000 points each, in headless Chromium: time to the first drawn plot, bytes sent.

    python benchmarks/ui_plots.py [--points 1000000] [--series 2] [--repeat 3] [--cold]

Records a real run (``log_metric`` in a loop, CSV metric files), serves it with
``prov4ml ui`` and opens its page in Chromium: the time is from navigation
start to the moment the last series' plot first drew (plot.js notes the
``performance.now()`` of each plot's first render, so this script asks only
every 50 ms and its own questions to the page do not slow the page), the
bytes are what the page fetched (the Resource Timing API: HTML, scripts,
points). The first load reads the files cold; the later ones are the same page
opened again (the browser keeps the scripts, the server its cut of the files).
The server cuts the newest runs' long series as it starts, as ``prov4ml ui``
does; ``--cold`` leaves that to the first page. The target (issue 25): at most 1 s.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import prov4ml
from prov4ml.ui import serve
from ui_screenshot import browser


def record(root: Path, points: int, series: int) -> str:
    prov4ml.start_run("www.example.org", "bench", str(root), capture=False)
    names = [f"m{k}" for k in range(series)]
    log = prov4ml.log_metric
    for i in range(points):
        for k, name in enumerate(names):
            log(name, math.sin(i / 5000 + k) + (i % 97) / 970, prov4ml.Context.TRAINING, step=i)
    prov4ml.end_run()
    return "bench/run_0"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--series", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="no cut at the server's start: the first page makes it")
    args = ap.parse_args()
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if binary is None or shutil.which("chromedriver") is None:
        print("ui_plots: needs Chromium and chromedriver on PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "prov"
        t = time.perf_counter()
        key = record(root, args.points, args.series)
        print(f"recorded {args.series} series x {args.points:,} points in {time.perf_counter() - t:.1f} s")
        server = serve(root, port=0, warm=not args.cold)
        driver = browser()  # the screenshots' headless Chromium
        try:
            for n in range(args.repeat):
                driver.get(f"{server.url}run/{key}")
                deadline = time.monotonic() + 120
                drawn = None
                while drawn is None and time.monotonic() < deadline:
                    drawn = driver.execute_script(
                        "const f = [...document.querySelectorAll('figure.p4plot')];"
                        f" if (f.length < {args.series} || !f.every(x => x.dataset.rendered)) return null;"
                        " const e = performance.getEntriesByType('resource');"
                        " return [Math.max(...f.map(x => Number(x.dataset.drawnAt))), e.reduce((s, r) => s + (r.transferSize || r.encodedBodySize), 0)"
                        " + performance.getEntriesByType('navigation')[0].transferSize,"
                        " f.map(x => Number(x.dataset.points)), e.filter(r => r.name.includes('/api/points/')).map(r => r.duration)]")
                    time.sleep(0.05)
                if drawn is None:
                    print("the plots were not drawn within 120 s", file=sys.stderr)
                    return 1
                ms, sent, shown, api = drawn
                print(f"load {n + 1}: first drawn plots after {ms:.0f} ms; {sent / 1e6:.2f} MB sent "
                      f"(points answer {api[0] if api else 0:.0f} ms); points drawn per plot {shown}")
        finally:
            driver.quit()
            server.shutdown()
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
