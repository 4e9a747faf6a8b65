"""Screenshots of the web UI for the docs, and its first paint in headless Chromium.

    python benchmarks/ui_screenshot.py [--out docs/img] [--runs 1000]

Records a small sweep (2 learning rates x 3 repetitions, through
``prov4ml.sweep``) and one run that keeps training in a child process, serves
them with ``prov4ml.ui``, and saves ``ui-runs.png``, ``ui-runs-filter.png`` (the list filtered, two
runs ticked, the column chooser open), ``ui-run.png``, ``ui-experiment.png`` and ``ui-graph.png``. Then prints the runs list's first
paint: the time from navigation to the runs table in the DOM (the page's
``runs-table-rendered`` performance mark) and Chromium's first contentful
paint, for the first load of a fresh server (every document read) and the
median of 5 loads after it. ``--runs N`` times the list again over N runs
(copies of the sweep's runs, each with its own run id); ``--points N`` times
opening a finished run of N points (and 30 short series) until all are plotted. Needs Debian's
``chromium`` and ``chromium-driver`` and ``pip install selenium``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import prov4ml  # noqa: E402
from prov4ml.sweep import configurations, sweep  # noqa: E402
from prov4ml.ui import serve  # noqa: E402

LIVE = r"""
import math, os, random, sys, time
import prov4ml
prov4ml.start_run("docs", "demo", sys.argv[1], save_after_n_logs=10, flush_interval=0.5, prov_flush_interval=0.5)
prov4ml.log_params({"lr": 0.03, "batch_size": 64})
rng = random.Random(7)
step = 0
while not os.path.exists(sys.argv[2]):
    loss = 2.3 * math.exp(-0.03 * step) + 0.1 + rng.gauss(0, 0.03)
    prov4ml.log_metric("loss", loss, prov4ml.Context.TRAINING, step=step)
    if step % 10 == 0:
        prov4ml.log_metric("accuracy", 1 - loss / 2.5, prov4ml.Context.VALIDATION, step=step)
    step += 1
    time.sleep(0.05)
prov4ml.end_run()
"""


def train(config, seed):
    """A stand-in for a training loop: a noisy exponential decay whose speed is the learning rate."""
    rng = random.Random(seed)
    rate = config["lr"] * (1 + 0.25 * rng.gauss(0, 1))  # repetitions differ: the bands show by how much
    for step in range(80):
        loss = 2.3 * math.exp(-rate * step) + 0.1 + rng.gauss(0, 0.04)
        prov4ml.log_metric("loss", loss, prov4ml.Context.TRAINING, step=step)
        if step % 10 == 0:
            prov4ml.log_metric("accuracy", 1 - loss / 2.5, prov4ml.Context.VALIDATION, step=step)
    return {"final_loss": loss}


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1100",
                "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def wait(driver, script, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(script):
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out: {script}")


def runs_list_tools(driver, out: Path) -> None:
    """``ui-runs-filter.png``: the runs list filtered, two runs ticked, the column chooser open."""
    driver.find_element("css selector", "#filter input[name=where]").send_keys("lr<0.05 and status==finished\n")
    wait(driver, "return document.getElementById('experiments').dataset.loads === '1'")
    for tick in driver.find_elements("css selector", "input.tick")[:2]:
        tick.click()
    driver.find_element("css selector", "#columns summary").click()
    driver.save_screenshot(str(out / "ui-runs-filter.png"))
    driver.execute_script("sessionStorage.clear()")


def first_paint(driver, url):
    """(table in the DOM, first contentful paint), in ms from navigation start."""
    driver.get(url)
    wait(driver, "return performance.getEntriesByName('runs-table-rendered').length === 1")
    wait(driver, "return performance.getEntriesByType('paint').length > 0")
    return driver.execute_script(
        "return [performance.getEntriesByName('runs-table-rendered')[0].startTime,"
        " performance.getEntriesByName('first-contentful-paint')[0].startTime]")


def report_paint(driver, root, label):
    server = serve(root, port=0)
    try:
        cold = first_paint(driver, server.url)
        warm = [first_paint(driver, server.url) for _ in range(5)]
    finally:
        server.shutdown()
        server.server_close()
    med = [statistics.median(w[i] for w in warm) for i in range(2)]
    print(f"{label}: first load {cold[0]:.0f} ms to the runs table ({cold[1]:.0f} ms first contentful paint); "
          f"then median of 5: {med[0]:.0f} ms ({med[1]:.0f} ms)")


def open_big_run(driver, tmp, n):
    """Seconds from navigation to a finished run's page with its ``n`` + 3,000 points all plotted."""
    save = tmp / "big"
    prov4ml.start_run("docs", "big", str(save), capture=False)
    for i in range(n):
        prov4ml.log_metric("loss", 1 / (i + 1), prov4ml.Context.TRAINING, step=i)
    for k in range(30):
        for i in range(100):
            prov4ml.log_metric(f"m{k}", i * 0.1, prov4ml.Context.VALIDATION, step=i)
    prov4ml.end_run()
    server = serve(save, port=0)
    try:
        began = time.perf_counter()
        driver.get(server.url + "run/big/run_0")
        wait(driver, f"const p = document.getElementById('plots'); return p.dataset.live === '0' && p.dataset.points === '{n + 3000}'")
        return time.perf_counter() - began
    finally:
        server.shutdown()
        server.server_close()


def clone_runs(src_experiment, dest, n):
    """``n`` runs in ``dest``: copies of the runs of ``src_experiment``, each document given its own run id."""
    runs = sorted(p for p in src_experiment.iterdir() if (p / "prov_rank0.json").exists())
    for k in range(n):
        target = dest / f"exp{k % 10}" / f"run_{k}"
        shutil.copytree(runs[k % len(runs)], target, ignore=shutil.ignore_patterns(".prov4ml"))
        doc = target / "prov_rank0.json"
        doc.write_text(re.sub(r'("provml:run_id": \{"\$": ")\d+', rf"\g<1>{k}", doc.read_text()))
        summary = target / "summary_rank0.json"  # after the document: a summary older than it is not read
        summary.write_text(re.sub(r'("run_id":)\d+', rf"\g<1>{k}", summary.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="where the PNGs go (default docs/img)")
    parser.add_argument("--runs", type=int, default=0, help="also time the list over this many runs")
    parser.add_argument("--points", type=int, default=0, help="also time opening a finished run of this many points")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save = Path(tmp) / "prov"
        sweep(train, configurations({"lr": [0.1, 0.03]}), experiment_name="demo", repetitions=3,
              provenance_save_dir=str(save), prov_user_namespace="docs", workers=1, progress=False,
              start_run_options={"capture": False})
        stop = Path(tmp) / "stop"
        child = subprocess.Popen([sys.executable, "-c", LIVE, str(save), str(stop)],
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        driver = browser()
        server = serve(save, port=0)
        try:
            while not (save / "demo" / "run_6" / "prov_rank0.json").exists():
                time.sleep(0.1)
            time.sleep(4)  # let the live run draw a curve
            driver.get(server.url)
            wait(driver, "return document.querySelector('#runs-0') !== null")
            driver.save_screenshot(str(out / "ui-runs.png"))
            runs_list_tools(driver, out)
            driver.get(server.url + "run/demo/run_6")
            wait(driver, "const s = document.querySelector('#plots figure.p4plot'); return s && Number(s.dataset.points) > 40")
            driver.save_screenshot(str(out / "ui-run.png"))
            driver.get(server.url + "experiment/demo")
            wait(driver, "const s = document.querySelector('#plots figure.p4plot'); return s && s.dataset.series === '7'")
            driver.find_element("css selector", "button[data-mode=config]").click()
            driver.execute_script("document.getElementById('sweep').scrollIntoView()")
            driver.save_screenshot(str(out / "ui-experiment.png"))
            driver.get(server.url + "graph/demo/run_0")
            wait(driver, "const g = document.getElementById('graph'); return g && Number(g.dataset.nodes) > 0")
            driver.save_screenshot(str(out / "ui-graph.png"))
            print(f"wrote {', '.join(f'ui-{n}.png' for n in ('runs', 'run', 'experiment', 'graph'))} in {out}")
            stop.touch()
            child.wait(60)
            report_paint(driver, save, "7 runs")
            if args.runs:
                many = Path(tmp) / "many"
                clone_runs(save / "demo", many, args.runs)
                report_paint(driver, many, f"{args.runs} runs")
            if args.points:
                seconds = open_big_run(driver, Path(tmp), args.points)
                print(f"a finished run of {args.points} + 3000 points (31 series): all plotted {seconds:.2f} s after navigation")
        finally:
            driver.quit()
            server.shutdown()
            if child.poll() is None:
                child.kill()


if __name__ == "__main__":
    main()
