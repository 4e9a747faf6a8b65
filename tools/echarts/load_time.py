"""What builds of ECharts cost Chromium to load: the script alone, and with the first plot drawn.

Each sample is a fresh headless Chromium (no code cache) opening a page that
loads the build and plot.js, then draws one plot of 2 series x 3,880 points
(what a run page draws of two 1,000,000-point series). The builds are taken in
turn, so a change of load on the machine falls on both.

    python tools/echarts/load_time.py FULL.min.js CUSTOM.min.js [--repeat 5]

Prints per sample and the medians: ms from before the ``<script>`` to after it
ran, and to the plot drawn.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from check import STATIC, _driver

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><script>t0 = performance.now()</script>
<script src="{build}"></script><script>t1 = performance.now()</script><script src="{plot}"></script></head>
<body><div id="host"></div><script>
const c = new P4Plot.Chart(document.getElementById("host"), "m", "m"), xs = Array.from({{ length: 3880 }}, (_, i) => i * 258);
c.set("a", {{ label: "m0", x: xs, y: xs.map(x => Math.sin(x / 5000)) }});
c.set("b", {{ label: "m1", x: xs, y: xs.map(x => Math.cos(x / 5000)) }});
c.render(); t2 = performance.now();
</script></body></html>"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("builds", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    times = {b: [] for b in args.builds}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.repeat):
            for k, build in enumerate(args.builds):
                page = Path(tmp) / f"{k}-{n}.html"  # a new URL each time: nothing cached by address
                page.write_text(PAGE.format(build=build.resolve().as_uri(), plot=(STATIC / "plot.js").as_uri()), encoding="utf-8")
                driver = _driver()
                try:
                    driver.get(page.as_uri())
                    script, drawn = driver.execute_script("return [t1 - t0, t2 - t0]")
                finally:
                    driver.quit()
                times[build].append((script, drawn))
                load = open("/proc/loadavg").read().split()[0]
                print(f"{build} ({build.stat().st_size:,} bytes) {n + 1}: script {script:.0f} ms, "
                      f"with the first plot {drawn:.0f} ms (load average {load})", flush=True)
    for build, samples in times.items():
        print(f"{build}: median script {statistics.median(s for s, _ in samples):.0f} ms, "
              f"with the first plot {statistics.median(d for _, d in samples):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
