"""The plots of the web UI and the HTML reports (one module, plot.js): driven in a real headless Chromium.

One browser and one set of runs for the module: a sweep of lr x seed with a
run killed part-way, a run whose ``rss`` sits near 3.31e8, and (API only) a
series of a million points.
"""

import json
import math
import statistics
import time
import urllib.request

import numpy as np
import pytest

import prov4ml
from prov4ml.analysis.plots import BUCKETS, minmax_indices
from prov4ml.ui import serve
from prov4ml.ui.server import points

from conftest import run_python
from test_ui import _wait

NS = "www.example.org"
SWEEP = {(0.1, 1): 0.5, (0.1, 2): 0.3, (0.01, 1): 0.9, (0.01, 2): 0.7}  # (lr, seed) -> the last loss
KILLED = (0.1, 3)  # a repetition of lr=0.1 killed after 3 of its 20 steps


def _loss(last, i):
    return last + 1.0 / (i + 1) + 0.05 * math.sin(i)


@pytest.fixture(scope="module")
def save_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots") / "prov"
    for (lr, seed), last in SWEEP.items():
        prov4ml.start_run(NS, "sweep", str(root), capture=False)
        prov4ml.log_params({"lr": lr, "seed": seed})
        for i in range(20):
            prov4ml.log_metric("loss", _loss(last, i), prov4ml.Context.TRAINING, step=i)
        prov4ml.log_metric("acc", 1 - last, prov4ml.Context.VALIDATION, step=19)
        prov4ml.end_run()
    ready = root.parent / "ready"
    proc = run_python(
        "import math, time, prov4ml\n"
        f"prov4ml.start_run({NS!r}, 'sweep', {str(root)!r}, capture=False)\n"
        f"prov4ml.log_params({{'lr': {KILLED[0]}, 'seed': {KILLED[1]}}})\n"
        "for i in range(3):\n"
        "    prov4ml.log_metric('loss', 5.0 + i, 'training', step=i)\n"
        "prov4ml.log_metric('acc', 0.01, 'validation', step=2)\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(120)\n",
        cwd=root.parent,
    )
    try:
        _wait(lambda: ready.exists(), what="the run to be killed")
        time.sleep(1.5)  # a refresh writes the points to the document's files
    finally:
        proc.kill()
        proc.wait()
    prov4ml.start_run(NS, "rss", str(root), capture=False)
    for i in range(40):
        prov4ml.log_metric("rss", 331000000.0 + i, prov4ml.Context.TRAINING, step=i)
        time.sleep(0.005)  # the points a few milliseconds apart: a wall-time axis of distinct ticks
    prov4ml.end_run()
    return root


@pytest.fixture(scope="module")
def ui(save_dir):
    server = serve(save_dir, port=0)
    yield server
    server.shutdown()
    server.server_close()


def _js(d, script, timeout=30.0):
    return _wait(lambda: d.execute_script(script), timeout, script)


def _open(d, url, plot):
    """Load ``url`` and wait for ``plot`` (a figure id) to have drawn every run's points; the chart, in JS."""
    d.get(url)
    _js(d, f"const f = document.getElementById('{plot}'); return f && f.dataset.rendered && "
           "document.getElementById('plots').dataset.live === '0'")
    return f"P4.lives[0].plots.get(document.getElementById('{plot}').querySelector('figcaption').textContent)"


def _labels(d, plot, axis):
    """The tick labels of the x or y axis, as drawn (SVG text, left to right / bottom to top)."""
    return d.execute_script(f"""
        const texts = [...document.querySelectorAll('#{plot} .p4chart svg text')], box = document.querySelector('#{plot} .p4chart').getBoundingClientRect();
        const ticks = texts.filter(t => /^[-0-9.e⁰¹²³⁴⁵⁶⁷⁸⁹⁻:]+$/.test(t.textContent)).map(t => [t.textContent, t.getBoundingClientRect()]);
        const bottom = Math.max(...ticks.map(([_, r]) => r.top));
        return '{axis}' === 'x' ? ticks.filter(([_, r]) => r.top > bottom - 4).sort((a, b) => a[1].left - b[1].left).map(t => t[0])
                                : ticks.filter(([_, r]) => r.top <= bottom - 4).sort((a, b) => b[1].top - a[1].top).map(t => t[0]);""")


def _lines(d, plot):
    return d.execute_script(f"return [...document.querySelectorAll('#{plot} .p4chart svg path')]"
                            ".filter(p => p.getAttribute('fill') === 'none' && ((p.getAttribute('d') || '').match(/L/g) || []).length >= 10)"
                            ".map(p => p.getAttribute('d'))")  # the lines of 20 points, not the toolbox's icons


def _finished(save_dir):
    runs = {}
    for run_dir in sorted((save_dir / "sweep").iterdir()):
        doc = json.loads((run_dir / "prov_rank0.json").read_text())
        runs[run_dir.name] = doc
    return runs


# ------------------------------------------------------------------ decimation (no browser)
def test_decimation_keeps_every_extreme_and_the_full_series_is_a_click_away(tmp_path):
    rng = np.random.default_rng(7)
    values = rng.normal(size=1_000_000)
    values[123_457], values[876_543] = 50.0, -50.0  # one spike each way
    prov4ml.start_run(NS, "big", str(tmp_path), capture=False)
    for i, v in enumerate(values.tolist()):
        prov4ml.log_metric("loss", v, prov4ml.Context.TRAINING, step=i)
    prov4ml.end_run()
    server = serve(tmp_path, port=0)
    try:
        body = points(server.store, "big/run_0", {})
        (s,) = body["series"]
        assert s["total"] == 1_000_000 and len(s["value"]) <= 4 * BUCKETS
        assert min(s["value"]) == values.min() == -50.0 and max(s["value"]) == values.max() == 50.0
        assert [values[i] for i in s["step"]] == s["value"]  # the kept points are logged points, at their steps
        assert s["step"] == minmax_indices(values).tolist()
        # the whole file was read: following the run from here gives nothing new
        assert points(server.store, "big/run_0", {s["key"]: [s["location"], s["offset"]]})["series"][0]["value"] == []
        with urllib.request.urlopen(server.url.rstrip("/") + s["full"], timeout=60) as resp:
            assert resp.read() == (tmp_path / "big" / "run_0" / s["location"]).read_bytes()  # every point
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ a run's plots
def test_log_scale_labels_are_powers(browser, ui):
    chart = _open(browser, ui.url + "run/sweep/run_2", "plot-loss__training_")
    linear = _labels(browser, "plot-loss__training_", "y")
    browser.find_element("css selector", "#plot-loss__training_ input.p4log").click()
    _js(browser, f"return {chart}.fig.dataset.log === '1'")
    logs = _labels(browser, "plot-loss__training_", "y")
    assert logs != linear and all(t.startswith("10") and t[2:] and set(t[2:]) <= set("⁰¹²³⁴⁵⁶⁷⁸⁹⁻") for t in logs), logs
    assert logs == ["10⁰"] or len(logs) >= 1  # the loss spans 0.9..1.9: one decade, 10⁰


def test_smoothing_changes_the_line_and_keeps_the_raw_one_faint(browser, ui):
    _open(browser, ui.url + "run/sweep/run_0", "plot-loss__training_")
    before = _lines(browser, "plot-loss__training_")
    browser.execute_script("const s = document.querySelector('#plot-loss__training_ input.p4smooth');"
                           "s.value = '0.8'; s.dispatchEvent(new Event('input'));")
    after = _lines(browser, "plot-loss__training_")
    assert len(before) == 1 and len(after) == 2  # the smoothed line and the raw one behind it
    assert before[0] in after and any(d != before[0] for d in after)
    faint = browser.execute_script("return [...document.querySelectorAll('#plot-loss__training_ .p4chart svg path')]"
                                   ".filter(p => p.getAttribute('d') === arguments[0]).map(p => p.getAttribute('stroke-opacity') || p.style.strokeOpacity || p.getAttribute('opacity'))", before[0])
    assert any(f and float(f) < 0.5 for f in faint), faint


def test_hover_reads_every_series_at_the_cursor(browser, ui, save_dir):
    from selenium.webdriver.common.action_chains import ActionChains

    _open(browser, ui.url + "experiment/sweep", "plot-loss__training_")
    box = browser.find_element("css selector", "#plot-loss__training_ .p4chart")
    ActionChains(browser).move_to_element_with_offset(box, 30, 20).perform()
    tip = _js(browser, "const t = [...document.querySelectorAll('.p4tip')].find(t => t.style.display !== 'none' && t.querySelector('.p4row'));"
                       " return t && [t.querySelector('.p4head').textContent, [...t.querySelectorAll('.p4row')].map(r => [r.dataset.name, Number(r.dataset.value)])]")
    head, rows = tip
    step = int(head.split()[-1])
    expected = {f"lr={lr}, seed={seed}": _loss(last, step) for (lr, seed), last in SWEEP.items()}
    if step < 3:
        expected[f"lr={KILLED[0]}, seed={KILLED[1]}"] = 5.0 + step
    assert dict(rows) == expected


def test_box_zoom_and_reset(browser, ui):
    from selenium.webdriver.common.action_chains import ActionChains

    chart = _open(browser, ui.url + "run/sweep/run_0", "plot-loss__training_")
    full = browser.execute_script(f"return {chart}.ranges()")
    box = browser.find_element("css selector", "#plot-loss__training_ .p4chart")
    ActionChains(browser).move_to_element_with_offset(box, -60, 0).click_and_hold().move_by_offset(120, 60).release().perform()
    zoomed = _js(browser, f"const r = {chart}.ranges(); return r.x[1] - r.x[0] < {full['x'][1] - full['x'][0]} && r")
    assert full["x"][0] <= zoomed["x"][0] < zoomed["x"][1] <= full["x"][1]
    assert zoomed["y"][1] - zoomed["y"][0] < full["y"][1] - full["y"][0]
    browser.find_element("css selector", "#plot-loss__training_ button[data-act=reset]").click()
    assert browser.execute_script(f"return {chart}.ranges()") == full


def test_csv_download_is_the_points_shown(browser, ui, save_dir):
    chart = _open(browser, ui.url + "run/sweep/run_1", "plot-loss__training_")
    rows = browser.execute_script(f"return {chart}.csv()").splitlines()
    assert rows[0] == "series,step,time,x,value"
    got = [(int(r.split(",")[1]), float(r.split(",")[4])) for r in rows[1:]]
    assert got == [(i, _loss(SWEEP[(0.1, 2)], i)) for i in range(20)]
    csv = (save_dir / "sweep" / "run_1" / "metrics" / "loss_training_rank0.csv").read_text().splitlines()[1:]
    assert [float(r.split(",")[2]) for r in rows[1:]] == [float(c.split(",")[2]) for c in csv]  # the wall times, as recorded
    # the button saves that text (a blob link clicked)
    href = browser.execute_script("const made = []; const orig = URL.createObjectURL; URL.createObjectURL = b => { made.push(b); return orig(b); };"
                                  "document.querySelector('#plot-loss__training_ button[data-act=csv]').click(); URL.createObjectURL = orig;"
                                  "return made[0].text().then(t => t);")
    assert href == "\n".join(rows) + "\n"


def test_wall_time_x_axis_and_distinct_ticks(browser, ui):
    from selenium.webdriver.support.ui import Select

    chart = _open(browser, ui.url + "run/rss/run_0", "plot-rss__training_")
    ys, xs = _labels(browser, "plot-rss__training_", "y"), _labels(browser, "plot-rss__training_", "x")
    assert len(ys) >= 3 and len(set(ys)) == len(ys), ys  # not 3.31e+8 four times
    assert all(float(y) - 331000000 in range(0, 41) for y in ys), ys
    assert len(set(xs)) == len(xs) and all(x.isdigit() for x in xs), xs
    Select(browser.find_element("css selector", "#plot-rss__training_ select.p4x")).select_by_value("wall")
    _js(browser, f"return {chart}.fig.dataset.x === 'wall'")
    walls = _labels(browser, "plot-rss__training_", "x")
    assert walls != xs and len(set(walls)) == len(walls) and all(w.count(":") == 2 for w in walls), walls
    Select(browser.find_element("css selector", "#plot-rss__training_ select.p4x")).select_by_value("relative")
    _js(browser, f"return {chart}.fig.dataset.x === 'relative'")
    assert browser.execute_script(f"return {chart}.shown().lines[0].x[0]") == 0


# ------------------------------------------------------------------ the comparison
def test_comparison_labels_runs_by_the_parameters_that_differ(browser, ui):
    chart = _open(browser, ui.url + "experiment/sweep", "plot-loss__training_")
    labels = browser.execute_script(f"return [...{chart}.series.values()].map(s => s.label)")
    assert sorted(labels) == sorted([f"lr={lr}, seed={seed}" for lr, seed in [*SWEEP, KILLED]])
    legend = browser.execute_script("return [...document.querySelectorAll('#plot-loss__training_ svg text')].map(t => t.textContent)")
    assert "lr=0.01, seed=2" in legend


def test_killed_run_is_left_out_of_mean_and_std_unless_included(browser, ui):
    from selenium.webdriver.common.by import By

    chart = _open(browser, ui.url + "experiment/sweep", "plot-loss__training_")
    lasts = [_loss(SWEEP[(0.1, seed)], 19) for seed in (1, 2)]  # lr=0.1's finished runs; the killed one stopped at step 2
    cell = browser.find_element(By.XPATH, "//table[@id='sweep']//td[text()='lr=0.1']/following-sibling::td[3]").text
    assert cell == f"{statistics.fmean(lasts):.6g} ± {statistics.stdev(lasts):.3g}"
    browser.find_element(By.CSS_SELECTOR, "button[data-mode=config]").click()
    mean = f"[...{chart}.series.values()].find(s => s.label.startsWith('lr=0.1 '))"
    first = [_loss(SWEEP[(0.1, seed)], 0) for seed in (1, 2)]  # step 0
    label, y, hi = browser.execute_script(f"const s = {mean}; return [s.label, s.y[0], s.hi[0]]")
    assert label == "lr=0.1 (mean ± std, n=2)" and y == pytest.approx(statistics.fmean(first))
    assert hi - y == pytest.approx(statistics.stdev(first))
    browser.find_element(By.ID, "include-all").click()
    label, y, hi = browser.execute_script(f"const s = {mean}; return [s.label, s.y[0], s.hi[0]]")
    assert label == "lr=0.1 (mean ± std, n=3)" and y == pytest.approx(statistics.fmean(first + [5.0]))
    assert hi - y == pytest.approx(statistics.stdev(first + [5.0]))
    assert not browser.find_element(By.ID, "sweep").is_displayed() and browser.find_element(By.ID, "sweep-all").is_displayed()
    browser.find_element(By.ID, "include-all").click()


def test_parallel_coordinates_and_scatter(browser, ui):
    from selenium.webdriver.support.ui import Select

    browser.get(ui.url + "experiment/sweep")
    _js(browser, "return document.getElementById('parallel').dataset.lines")
    assert browser.execute_script("return document.getElementById('parallel').dataset.lines") == "4"  # finished runs
    axes = browser.execute_script("return [...document.querySelectorAll('#parallel svg text')].map(t => t.textContent)")
    assert "lr" in axes and "seed" in axes and "acc/validation" in axes
    Select(browser.find_element("css selector", "#sweep-param")).select_by_value("lr")
    Select(browser.find_element("css selector", "#sweep-metric")).select_by_value("loss/training")
    assert browser.execute_script("return document.getElementById('scatter').dataset.points") == "4"
    names = browser.execute_script("return [...document.querySelectorAll('#scatter svg text')].map(t => t.textContent)")
    assert "lr" in names and "loss/training" in names


# ------------------------------------------------------------------ the HTML reports: the same module
def test_reports_draw_with_the_same_module(browser, save_dir, tmp_path):
    from prov4ml import analysis

    out = analysis.experiment_report(save_dir / "sweep", tmp_path / "sweep.html", progress=False)
    browser.get(out.as_uri())
    n = _js(browser, "const f = [...document.querySelectorAll('figure.p4plot')]; return f.length && f.every(x => x.dataset.rendered) && f.length")
    assert n == 2 * 2  # loss and acc: the sweep's mean ± std and the runs overlaid
    assert browser.execute_script("return typeof P4Plot.Chart === 'function' && document.querySelectorAll('.p4bar input.p4log').length") == n
    # the wide runs table scrolls inside its box: the page itself never runs off the right edge
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    run = analysis.html_report(save_dir / "rss" / "run_0", tmp_path / "rss.html", progress=False)
    browser.get(run.as_uri())
    _js(browser, "const f = document.querySelector('figure.p4plot'); return f && f.dataset.rendered")
    overlap = browser.execute_script("""
        const texts = [...document.querySelectorAll('figure.p4plot svg text')];
        const name = texts.find(t => t.textContent === 'rss').getBoundingClientRect();
        return texts.filter(t => t.textContent !== 'rss').map(t => t.getBoundingClientRect())
          .some(r => r.left < name.right && name.left < r.right && r.top < name.bottom && name.top < r.bottom);""")
    assert overlap is False  # the axis name clear of its tick labels (3.3100001e8...)


# ------------------------------------------------------------------ mean ± std on a log scale
def _bands(d, plot):
    """The drawn bands: filled SVG paths at the band's opacity."""
    return d.execute_script(f"return [...document.querySelectorAll('#{plot} .p4chart svg path')]"
                            ".filter(p => Math.abs(Number(p.getAttribute('fill-opacity')) - 0.18) < 1e-6).length")


def test_mean_and_std_band_is_drawn_on_a_log_scale(browser, ui):
    from selenium.webdriver.common.by import By

    chart = _open(browser, ui.url + "experiment/sweep", "plot-loss__training_")
    browser.find_element(By.CSS_SELECTOR, "button[data-mode=config]").click()
    assert _bands(browser, "plot-loss__training_") == 2  # lr=0.1 and lr=0.01
    browser.find_element(By.CSS_SELECTOR, "#plot-loss__training_ input.p4log").click()
    _js(browser, f"return {chart}.fig.dataset.log === '1'")
    assert _bands(browser, "plot-loss__training_") == 2  # still there, on the log axis
    assert "band" not in browser.find_element(By.CSS_SELECTOR, "#plot-loss__training_ .note").text  # all above 0: nothing cut
    browser.find_element(By.CSS_SELECTOR, "#plot-loss__training_ input.p4log").click()
    browser.find_element(By.CSS_SELECTOR, "button[data-mode=run]").click()


def test_a_band_below_zero_is_cut_at_the_smallest_positive_value_on_a_log_scale(browser, ui):
    browser.get(ui.url + "run/sweep/run_0")
    _js(browser, "return window.P4Plot && document.getElementById('plots').dataset.live === '0'")
    # mean 1, 2, 4 with std 2, 1, 1: the first step's band reaches below 0
    low, note, drawn = browser.execute_script("""
        const c = new P4Plot.Chart(document.querySelector('main'), 'band', 'plot-band');
        c.set('g', {label: 'g (mean ± std, n=3)', x: [0, 1, 2], y: [1, 2, 4], lo: [-1, 1, 3], hi: [3, 3, 5]});
        c.log = true; c.logBox.checked = true; c.render();
        const lows = c.chart.getOption().series.find(s => s.name.endsWith('(low)')).data.map(p => p[1]);
        return [lows, c.note.textContent, document.querySelectorAll('#plot-band .p4chart svg path[fill-opacity="0.18"]').length];""")
    assert low == [1, 1, 3]  # -1 cut at 1, the smallest positive value drawn
    assert note == "the band's lower edge cut at 1 (the smallest positive value) at 1 step(s) on the log scale"
    assert drawn == 1
