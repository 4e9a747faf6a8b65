"""Draws the same plots with two builds of ECharts in headless Chromium and compares what they draw.

``build.sh`` runs it after bundling, against the full build of the same npm
install (``dist/echarts.min.js``): every plot ``prov4ml/ui/static/plot.js``
makes (lines with symbols, smoothing, log scale, wall and relative time, bands,
a scrolling legend, gaps, point order, an empty plot, parallel coordinates with
a continuous visualMap, scatter on value and category axes) is drawn with each
build, then hovered (the tooltip) and box-zoomed with the real mouse. The SVG
of every plot (``renderToSVGString``), the tooltip's HTML, the zoomed ranges and
the options ECharts kept (``getOption``) must be the same, character for
character: a part missing from the custom build is ignored without an error,
so only a difference in what is drawn shows it.

    python tools/echarts/check.py FULL.min.js [CUSTOM.min.js]   # exit 1 on a difference

Needs selenium, chromium and chromedriver (the test extra's browser).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "prov4ml" / "ui" / "static"

# Every drawing path of plot.js, on fixed data; each entry of `out` is compared between the builds.
SCENARIOS = r"""
const out = {}, host = document.getElementById("host");
const n = k => Array.from({ length: k }, (_, i) => i);
const wave = (k, shift) => n(k).map(i => 1.5 + Math.sin(i / 7) + i / k + (shift || 0));
const times = k => n(k).map(i => 1.7e9 + i * 0.37);
// the options ECharts kept, by component name; a build's registered but unused components (empty) left out
const kept = chart => { const o = chart.getOption(), named = {};
  for (const k of Object.keys(o).sort()) if (!(Array.isArray(o[k]) && o[k].length === 0)) named[k] = o[k];
  return JSON.stringify(named, (key, v) => typeof v === "function" ? "fn" : v); };
const opt = c => kept(c.chart);
const keep = (name, c) => { out[name] = c.svg(); out[name + " option"] = opt(c); };
const one = new P4Plot.Chart(host, "loss", "one");
one.set("a", { label: "loss", x: n(30), t: times(30), y: wave(30) }); one.render(); keep("line", one);
one.smooth = 0.6; one.render(); keep("smoothed", one);
one.log = true; one.render(); keep("log", one);
one.smooth = 0; one.log = false; one.xmode = "wall"; one.render(); keep("wall time", one);
one.xmode = "relative"; one.render(); keep("relative time", one);
const band = new P4Plot.Chart(host, "a band", "band");
for (let k = 0; k < 14; k++) {
  const y = wave(300, k / 3);
  band.set(String(k), { label: "lr=0.0" + k + ", seed=" + k, x: n(300), y: y, lo: y.map(v => v - 0.8), hi: y.map(v => v + 0.3), run: "r" + k });
}
band.render(); keep("band and scrolling legend", band);
band.log = true; band.render(); keep("band on the log scale", band);
const odd = new P4Plot.Chart(host, "gaps", "odd");
odd.set("a", { label: "gaps", x: [0, 1, 1, 2, 3, 4], y: [1, null, NaN, 3e8, Infinity, 2] }); odd.render(); keep("gaps, point order", odd);
const none = new P4Plot.Chart(host, "empty", "none");
none.set("a", { label: "nan", x: [0, 1], y: [NaN, NaN] }); none.render(); keep("nothing to draw", none);
none.series.clear(); none.render(); out["no series"] = none.fig.dataset.empty + none.chart.getDom().innerHTML;
const rows = [["0.1", 1, "adam", 0.5], ["0.01", 2, "sgd", 0.3], ["0.001", 3, "adam", 0.9], ["0.1", 4, "sgd", 0.7]];
const spec = { dims: ["lr", "seed", "opt", "loss"], rows: rows.map((v, i) => ({ label: "run_" + i, values: [Number(v[0]), v[1], v[2], v[3]],
  params: { lr: Number(v[0]), seed: v[1], opt: v[2] }, metrics: { loss: v[3] } })) };
const box = id => { const d = document.createElement("div"); d.id = id; d.style.cssText = "width:640px;height:300px"; host.appendChild(d); return d; };
const par = P4Plot.parallel(box("parallel"), spec);
out.parallel = par.renderToSVGString(); out["parallel option"] = kept(par);
const sbox = box("scatter"), sc = P4Plot.scatter(sbox, spec, "lr", "loss");
out.scatter = sc.renderToSVGString();
P4Plot.scatter(sbox, spec, "opt", "loss"); out["scatter on categories"] = sc.renderToSVGString();  // the same instance
out["scatter option"] = kept(sc);
one.xmode = "step"; one.render();
window.charts = { one: one, band: band };
return out;
"""

TOOLTIP = ("const t = [...document.querySelectorAll('.p4tip')].find(t => t.style.display !== 'none' && t.querySelector('.p4row'));"
           " return t ? t.innerHTML : null")


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        sys.exit("check.py needs chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def _wait(fn, what: str, timeout: float = 10.0):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        time.sleep(0.05)
    raise SystemExit(f"check.py: timed out waiting for {what}")


def draw(driver, build: Path, page: Path) -> Dict[str, str]:
    """What the scenarios draw with ``build``, then a hover and a box zoom with the mouse."""
    from selenium.webdriver.common.action_chains import ActionChains

    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        "<script>window.errors = []; addEventListener('error', e => errors.push(String(e.message)));</script>"
        f'<script src="{build.resolve().as_uri()}"></script><script src="{(STATIC / "plot.js").as_uri()}"></script>'
        '</head><body style="margin:0"><div id="host"></div></body></html>', encoding="utf-8")
    driver.get(page.as_uri())
    out = driver.execute_script(SCENARIOS)
    box = driver.find_element("css selector", "#one .p4chart")
    ActionChains(driver).move_to_element_with_offset(box, 40, 10).perform()
    out["tooltip"] = _wait(lambda: driver.execute_script(TOOLTIP), "the tooltip")
    out["hover"] = driver.execute_script("return charts.one.svg()")
    ActionChains(driver).move_to_element_with_offset(box, -80, -20).click_and_hold().move_by_offset(140, 70).release().perform()
    out["zoomed ranges"] = json.dumps(_wait(lambda: driver.execute_script(
        "return charts.one.fig.dataset.zoomed === '1' && charts.one.ranges()"), "the box zoom"))
    driver.find_element("css selector", "#one button[data-act=reset]").click()
    out["reset ranges"] = json.dumps(driver.execute_script("return charts.one.ranges()"))
    out["errors"] = json.dumps(driver.execute_script("return window.errors"))
    return out


def compare(full: Dict[str, str], custom: Dict[str, str]) -> list:
    """The scenarios whose output differs, each with the first differing characters."""
    diffs = []
    for name in full:
        a, b = full[name], custom.get(name)
        if a != b:
            b = b or ""
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            diffs.append(f"{name}: differs at character {at} of {len(a)}/{len(b)}:\n  full:   {a[max(0, at - 60):at + 100]!r}\n"
                         f"  custom: {b[max(0, at - 60):at + 100]!r}")
    return diffs


def main(argv: list) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    full_build = Path(argv[0])
    custom_build = Path(argv[1]) if len(argv) > 1 else STATIC / "vendor" / "echarts.min.js"
    driver = _driver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            full = draw(driver, full_build, Path(tmp) / "full.html")
            custom = draw(driver, custom_build, Path(tmp) / "custom.html")
    finally:
        driver.quit()
    diffs = compare(full, custom)
    for d in diffs:
        print(d)
    print(f"{len(full)} outputs compared ({sum(map(len, full.values())):,} characters), {len(diffs)} differ; "
          f"errors: {full['errors']} (full) / {custom['errors']} (custom)")
    return 1 if diffs or full["errors"] != "[]" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
