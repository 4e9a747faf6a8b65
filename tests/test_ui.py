"""prov4ml.ui: the JSON endpoints against what was logged, and the pages in a real headless Chromium."""

import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import prov4ml
import prov4ml.analysis
import prov4ml.run.recovery
import prov4ml.ui
from prov4ml.ui import serve
from prov4ml.runs.tail import read_new

from conftest import ROOT, run_python

# A run that logs loss = 1/(i+1) at step i, and acc = i/100 (validation) every 10th step, until told to stop.
LIVE_CHILD = r"""
import os, sys, time
import prov4ml
save_dir, stop = sys.argv[1], sys.argv[2]
prov4ml.start_run("www.example.org", "live", save_dir, capture=False, save_after_n_logs=5,
                  flush_interval=0.3, prov_flush_interval=0.3)
prov4ml.log_param("lr", 0.01)
i = 0
while not os.path.exists(stop) and i < 20000:
    prov4ml.log_metric("loss", 1.0 / (i + 1), prov4ml.Context.TRAINING, step=i)
    if i % 10 == 0:
        prov4ml.log_metric("acc", i / 100, prov4ml.Context.VALIDATION, step=i)
    i += 1
    time.sleep(0.02)
prov4ml.end_run()
with open(stop + ".count", "w") as fh:
    fh.write(str(i))
"""


def _get(url, raw=False):
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read()
    return body if raw else json.loads(body)


def _points(server, key, offsets=None):
    query = "" if offsets is None else "?offsets=" + urllib.parse.quote(json.dumps(offsets))
    return _get(f"{server.url}api/points/{key}{query}")


def _wait(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class LiveRun:
    """The child process above, logging into ``save_dir`` until :meth:`stop`."""

    def __init__(self, tmp_path, save_dir):
        self.stop_file = tmp_path / "stop"
        self.proc = subprocess.Popen([sys.executable, "-c", LIVE_CHILD, str(save_dir), str(self.stop_file)],
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})

    def stop(self, timeout=60):
        self.stop_file.touch()
        assert self.proc.wait(timeout) == 0
        return int(Path(str(self.stop_file) + ".count").read_text())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def live(tmp_path, save_dir):
    run = LiveRun(tmp_path, save_dir)
    yield run
    run.close()


@pytest.fixture
def ui(save_dir):
    save_dir.mkdir(parents=True, exist_ok=True)
    server = serve(save_dir, port=0)
    yield server
    server.shutdown()
    server.server_close()


def _finished_run(start, experiment="exp", params=None, losses=(), accs=(), artifact=None):
    start(experiment)
    prov4ml.log_params(params or {})
    for i, v in enumerate(losses):
        prov4ml.log_metric("loss", v, prov4ml.Context.TRAINING, step=i)
    for i, v in enumerate(accs):
        prov4ml.log_metric("acc", v, prov4ml.Context.VALIDATION, step=10 * i)
    if artifact is not None:
        prov4ml.log_artifact(str(artifact), prov4ml.Context.TRAINING)
    run_dir = prov4ml.active_run().run_dir
    prov4ml.end_run()
    return run_dir


# ------------------------------------------------------------------ the incremental reader
def test_read_new_reads_whole_lines_from_the_offset(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"step,value,time\n0,1.5,10.0\n1,2.5,11.0\n2,3.")
    first = read_new(path)
    assert (first.step, first.value, first.time) == ([0, 1], [1.5, 2.5], [10.0, 11.0])
    assert first.offset == len(b"step,value,time\n0,1.5,10.0\n1,2.5,11.0\n")  # the half-written line waits
    with open(path, "ab") as fh:
        fh.write(b"25,12.0\n3,nan,13.0\n")
    second = read_new(path, first.offset)
    assert second.step == [2, 3] and second.value[0] == 3.25 and math.isnan(second.value[1]) and not second.reset
    assert read_new(path, second.offset).step == []  # nothing new: nothing read
    assert second.offset == path.stat().st_size


def test_read_new_other_separator_missing_file_and_a_rewritten_file(tmp_path):
    path = tmp_path / "m.csv"
    assert read_new(path).offset == 0 and read_new(path).step == []
    path.write_text("step;value;time\n5;0.25;1.0\n")
    chunk = read_new(path)
    assert (chunk.step, chunk.value) == ([5], [0.25])
    path.write_text("step;value;time\n")  # shorter than what was read: read again from the start
    again = read_new(path, chunk.offset)
    assert again.reset and again.step == [] and again.offset == len("step;value;time\n")


# ------------------------------------------------------------------ JSON endpoints
def test_points_endpoint_returns_exactly_the_points_logged(start, save_dir, ui):
    losses = [1.0 / (i + 1) for i in range(37)] + [float("nan")]
    accs = [0.1, 0.25, 0.5]
    _finished_run(start, losses=losses, accs=accs)
    body = _points(ui, "exp/run_0")
    assert body["status"] == "finished"
    series = {s["key"]: s for s in body["series"]}
    assert set(series) == {"loss/training/0", "acc/validation/0"}
    loss = series["loss/training/0"]
    assert loss["step"] == list(range(38))
    assert loss["value"] == losses[:-1] + [None]  # JSON has no NaN: it travels as null
    assert series["acc/validation/0"]["step"] == [0, 10, 20] and series["acc/validation/0"]["value"] == accs
    assert loss["location"] == "metrics/loss_training_rank0.csv"
    assert loss["offset"] == (save_dir / "exp" / "run_0" / loss["location"]).stat().st_size
    again = _points(ui, "exp/run_0", {k: [s["location"], s["offset"]] for k, s in series.items()})
    assert all(s["step"] == [] and s["value"] == [] for s in again["series"])


def test_points_of_a_running_run_arrive_incrementally_and_add_up_to_the_run(live, save_dir, ui):
    key = "live/run_0"
    _wait(lambda: (save_dir / "live" / "run_0" / "prov_rank0.json").exists(), what="the run's document")
    offsets, got, growing = {}, {}, 0
    deadline = time.monotonic() + 60
    while growing < 3:  # three answers in a row that each bring new points of the running run
        assert time.monotonic() < deadline, "the running run's points did not arrive"
        body = _points(ui, key, offsets)
        assert body["status"] == "running"
        new = 0
        for s in body["series"]:
            got.setdefault(s["key"], []).extend(zip(s["step"], s["value"]))
            offsets[s["key"]] = [s["location"], s["offset"]]
            new += len(s["step"]) if s["key"] == "loss/training/0" else 0
        growing = growing + 1 if new else 0
        time.sleep(0.7)
    n = live.stop()
    for _ in range(2):  # the end of the run, then nothing more
        body = _points(ui, key, offsets)
        for s in body["series"]:
            got[s["key"]].extend(zip(s["step"], s["value"]))
            offsets[s["key"]] = [s["location"], s["offset"]]
    assert body["status"] == "finished"
    assert got["loss/training/0"] == [(i, 1.0 / (i + 1)) for i in range(n)]
    assert got["acc/validation/0"] == [(i, i / 100) for i in range(0, n, 10)]


def test_a_long_history_comes_in_answers_of_a_bounded_size(start, ui):
    losses = [1.0 / (i + 1) for i in range(500)]
    _finished_run(start, losses=losses)
    got, offsets, answers = [], {}, 0
    while True:
        body = prov4ml.ui.server.points(ui.store, "exp/run_0", offsets, limit=1000)
        (series,) = body["series"]
        assert len(json.dumps(series["value"])) < 1000
        got += zip(series["step"], series["value"])
        offsets[series["key"]] = [series["location"], series["offset"]]
        answers += 1
        if not series["more"]:
            break
    assert got == list(enumerate(losses)) and answers > 10
    assert prov4ml.ui.server.points(ui.store, "exp/run_0", offsets)["series"][0]["step"] == []


def test_ranks_are_series_of_their_own(start, save_dir, ui):
    for rank in (0, 1):
        start("exp", rank=rank, run_id=0, collect_all_processes=True)
        prov4ml.log_metric("loss", float(rank), prov4ml.Context.TRAINING, step=0)
        prov4ml.end_run()
    body = _points(ui, "exp/run_0")
    assert sorted((s["key"], s["value"]) for s in body["series"]) == [("loss/training/0", [0.0]), ("loss/training/1", [1.0])]
    (row,) = _get(ui.url + "api/runs")
    assert row["ranks"] == [0, 1] and row["last"] == {"loss/training": 0.0}  # the lowest rank's


def test_a_parquet_run_is_followed_then_sent_whole_once_converted(start, ui):
    pytest.importorskip("pyarrow")
    start("pq", metrics_file_type="parquet", save_after_n_logs=5, flush_interval=0.2, prov_flush_interval=0.2)
    for i in range(30):
        prov4ml.log_metric("loss", i * 0.5, prov4ml.Context.TRAINING, step=i)
    body = _wait(lambda: (lambda b: b if b["series"] and len(b["series"][0]["step"]) == 30 else None)(
        _points(ui, "pq/run_0")), what="the side file to hold every point")
    (live_series,) = body["series"]
    assert live_series["location"] == "metrics/loss_training_rank0.parquet.csv" and body["status"] == "running"
    offsets = {live_series["key"]: [live_series["location"], live_series["offset"]]}
    prov4ml.end_run()
    (done,) = _points(ui, "pq/run_0", offsets)["series"]
    assert done["location"] == "metrics/loss_training_rank0.parquet" and done["reset"] and done["offset"] == -1
    assert list(zip(done["step"], done["value"])) == [(i, i * 0.5) for i in range(30)]
    assert _points(ui, "pq/run_0", {done["key"]: [done["location"], -1]})["series"] == []  # sent once


def test_runs_json_and_pages_of_finished_runs(start, save_dir, ui, tmp_path):
    art = tmp_path / "weights.txt"
    art.write_text("hello")
    _finished_run(start, params={"lr": 0.1, "depth": 2, "clip": float("nan")}, losses=[0.5, 0.25], accs=[0.75],
                  artifact=art)
    (row,) = _get(ui.url + "api/runs")
    assert row["key"] == "exp/run_0" and row["status"] == "finished" and row["run_id"] == 0 and row["ranks"] == [0]
    assert row["params"] == {"lr": 0.1, "depth": 2, "clip": None}  # JSON has no NaN
    assert row["last"] == {"loss/training": 0.25, "acc/validation": 0.75}
    assert row["duration_s"] > 0 and row["needs_recovery"] == []
    page = _get(ui.url + "run/exp/run_0", raw=True).decode()
    for text in ("<h2>Parameters</h2>", "<th>lr</th><td>0.1</td>", "<th>depth</th>", "weights.txt", 'data-status="finished"'):
        assert text in page
    location = next(a for a in prov4ml.analysis.load_run(save_dir / "exp" / "run_0").artifacts["location"] if "weights" in a)
    assert _get(f"{ui.url}files/exp/run_0?path={urllib.parse.quote(location)}", raw=True) == b"hello"
    listing = _get(ui.url, raw=True).decode()
    assert 'href="/run/exp/run_0"' in listing and 'id="runs-0"' in listing and "0.25" in listing


def test_a_failed_run_shows_its_error(save_dir, ui):
    with pytest.raises(ValueError):
        with prov4ml.run("www.example.org", "exp", str(save_dir), capture=False):
            prov4ml.log_metric("loss", 1.0, prov4ml.Context.TRAINING, step=0)
            raise ValueError("the loss went to NaN")
    (row,) = _get(ui.url + "api/runs")
    assert row["status"] == "failed"
    page = _get(ui.url + "run/exp/run_0", raw=True).decode()
    assert '<p class="error"><b>ValueError</b>: the loss went to NaN</p>' in page


def test_refuses_paths_outside_the_run_and_unknown_pages(start, ui):
    _finished_run(start, losses=[1.0])
    for path in ("files/exp/run_0?path=../../../etc/passwd", "run/..%2F..%2F..", "run/nope", "static/../server.py",
                 "experiment/nope", "api/graph/exp/run_0?rank=7", "nothing"):
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(ui.url + path, raw=True)
        assert err.value.code == 404, path
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(ui.url + "api/points/exp/run_0?offsets=%5B", raw=True)
    assert err.value.code == 404 and "offsets must be JSON" in json.loads(err.value.read())["error"]


def test_experiment_page_gives_mean_and_std_over_repetitions(start, ui):
    finals = {(0.1, 1): 0.5, (0.1, 2): 0.3, (0.1, 3): 0.4, (0.01, 1): 0.9}
    for (lr, seed), last in finals.items():
        _finished_run(start, params={"lr": lr, "seed": seed}, losses=[1.0, last])
    page = _get(ui.url + "experiment/exp", raw=True).decode()
    values = [0.5, 0.3, 0.4]
    mean, std = statistics.fmean(values), statistics.stdev(values)
    assert f"{mean:.6g} ± {std:.3g}" in page  # 0.4 ± 0.1: only lr=0.1 has repetitions
    assert "lr=0.1</td><td class=\"num\">3</td>" in page and "lr=0.01" not in page.split('id="sweep"')[1].split("</table>")[0]
    params = page.split('id="params"')[1].split("</table>")[0]
    assert all(f"<th>run {i}</th>" in params for i in range(4)) and '<th class=diff>lr</th>' in params


def test_a_killed_run_shows_as_needing_recovery(tmp_path, save_dir, ui):
    proc = run_python(
        "import prov4ml, time\n"
        f"prov4ml.start_run('www.example.org', 'k', {str(save_dir)!r}, capture=False)\n"
        "prov4ml.log_metric('loss', 1.0, 'training', step=0)\n"
        "open('ready', 'w').close()\n"
        "time.sleep(60)\n",
        cwd=tmp_path,
    )
    try:
        _wait(lambda: (tmp_path / "ready").exists(), what="the child's run")
        (row,) = _get(ui.url + "api/runs")
        assert row["status"] == "running"
    finally:
        proc.kill()
        proc.wait()
    row = _wait(lambda: next((r for r in _get(ui.url + "api/runs") if r["status"] != "running"), None), what="the kill")
    assert row["status"] == "killed (needs recover)" and row["needs_recovery"] == [0]
    assert "prov4ml recover" in _get(ui.url + "run/k/run_0", raw=True).decode()
    prov4ml.recover(save_dir / "k" / "run_0")
    (row,) = _get(ui.url + "api/runs")
    assert row["status"] == "killed" and row["needs_recovery"] == []


def test_graph_is_svg_and_collapses_big_runs(start, ui):
    start("exp")
    prov4ml.log_params({f"p{i:02d}": i for i in range(40)})
    prov4ml.end_run()
    svg = _get(ui.url + "api/graph/exp/run_0?per_kind=6", raw=True).decode()
    assert svg.startswith("<svg") and 'class="node"' in svg
    assert "34 more" in svg and "p39" in svg and "p20" not in svg  # 3 first, 3 last, 34 in one summary node
    full = _get(ui.url + "api/graph/exp/run_0?per_kind=100&attributes=0", raw=True).decode()
    assert "p20" in full and "more" not in full.replace("… 1 more", "")


def test_module_command_serves_and_reports_a_bad_directory(tmp_path, start, save_dir):
    _finished_run(start, losses=[2.0])
    bad = subprocess.run([sys.executable, "-m", "prov4ml.ui", str(tmp_path / "missing")], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert bad.returncode == 1 and "no such directory" in bad.stderr and "Traceback" not in bad.stderr
    assert prov4ml.ui.main([str(tmp_path / "missing")]) == 1
    proc = subprocess.Popen([sys.executable, "-m", "prov4ml.ui", str(save_dir), "--port", "0"], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert [r["key"] for r in _get(url + "api/runs")] == ["exp/run_0"]
        port = url.rstrip("/").rsplit(":", 1)[1]
        taken = subprocess.run([sys.executable, "-m", "prov4ml.ui", str(save_dir), "--port", port], capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert taken.returncode == 1 and "choose another port with --port" in taken.stderr
    finally:
        proc.terminate()
        proc.wait(30)


# ------------------------------------------------------------------ in Chromium
def _js_wait(driver, script, timeout=30.0, what=None):
    return _wait(lambda: driver.execute_script(script), timeout, what or script)


def test_browser_follows_a_running_run(browser, live, save_dir, ui, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    _wait(lambda: (save_dir / "live" / "run_0" / "prov_rank0.json").exists(), what="the run's document")
    d = browser
    d.get(ui.url)
    _js_wait(d, "return document.querySelector('#runs-0 tbody tr') !== null", what="the runs table")
    assert d.execute_script("return performance.getEntriesByName('runs-table-rendered').length") == 1
    row = d.find_element(By.CSS_SELECTOR, "#runs-0 tbody tr")
    assert row.find_element(By.CSS_SELECTOR, ".status").text == "running"

    row.find_element(By.LINK_TEXT, "run_0").click()
    plot = "document.getElementById('plot-loss__training_')"
    first = _js_wait(d, f"const s = {plot}; return s && Number(s.dataset.points)", what="the loss plot's first points")
    later = _js_wait(d, f"const s = {plot}; return Number(s.dataset.points) > {first} && Number(s.dataset.points)",
                     what="the loss plot to gain points")
    assert later > first
    assert d.execute_script(f"return {plot}.dataset.series") == "1"
    assert d.execute_script("return document.getElementById('run-status').textContent") == "running"
    # the summary table follows the points the plot holds: count and last step (steps 0, 1, ...) are theirs
    same = (f"const n = Number({plot}.dataset.points), row = document.querySelector('#summary tr[data-key=\"loss/training/0\"]');"
            " return row && Number(row.cells[3].textContent) === n && Number(row.cells[9].textContent) === n - 1 && n")
    assert _js_wait(d, same, what="the summary to match the plot") >= later
    shot = Image.open(io.BytesIO(d.get_screenshot_as_png())).convert("RGB")
    colours = shot.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50, "the screenshot has almost no colours: the page did not render"
    white = sum(n for n, c in colours if c == (255, 255, 255))
    assert white < 0.9 * shot.width * shot.height

    _js_wait(d, "return document.querySelector('#graph svg g.node') !== null", what="the inline graph")
    d.find_element(By.LINK_TEXT, "provenance graph").click()
    nodes = _js_wait(d, "const g = document.getElementById('graph'); return g && Number(g.dataset.nodes)", what="graph")
    assert nodes >= 8
    d.find_element(By.CSS_SELECTOR, "button[data-zoom=in]").click()
    assert d.execute_script("return document.getElementById('graph').dataset.zoom") == "1.250"
    d.execute_script("const s = document.querySelector('#graph svg'), r = s.getBoundingClientRect();"
                     "s.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: r.left + 10, clientY: r.top + 10,"
                     " bubbles: true, cancelable: true}))")
    assert d.execute_script("return document.getElementById('graph').dataset.zoom") == "1.500"

    d.back()
    d.find_element(By.LINK_TEXT, "experiment").click()
    _js_wait(d, f"const s = {plot}; return s && Number(s.dataset.points) > 0", what="the experiment's plots")

    d.get(ui.url)  # the list follows the run to its end, in the order the user chose
    d.find_element(By.XPATH, "//table[@id='runs-0']//th[text()='duration']").click()
    n = live.stop()
    _js_wait(d, "return document.querySelector('#runs-0 tbody tr .status').textContent === 'finished'",
             what="the runs list to show the run finished")
    assert d.execute_script("return document.querySelector('#runs-0 th[data-dir]').textContent") == "duration"

    d.get(ui.url + "experiment/live")
    _js_wait(d, "return document.getElementById('plots').dataset.live === '0'", what="the polling to stop at the end")
    assert d.execute_script(f"return Number({plot}.dataset.points)") == n


def test_browser_overlays_runs_and_sweeps_on_the_experiment_page(browser, start, ui):
    from selenium.webdriver.common.by import By

    for lr, seed, last in ((0.1, 1, 0.5), (0.1, 2, 0.3), (0.01, 1, 0.9)):
        _finished_run(start, params={"lr": lr, "seed": seed}, losses=[1.0, 0.7, last])
    d = browser
    d.get(ui.url + "experiment/exp")
    plot = "document.getElementById('plot-loss__training_')"
    _js_wait(d, f"const s = {plot}; return s && s.dataset.points === '9'", what="three runs of three points")
    assert d.execute_script(f"return {plot}.dataset.series") == "3"

    d.find_element(By.CSS_SELECTOR, "button[data-mode=config]").click()
    assert d.execute_script(f"return {plot}.dataset.series") == "1"  # only lr=0.1 has repetitions
    assert d.execute_script(f"return P4.lives[0].plots.get('loss (training)').series.size") == 1
    assert d.execute_script("return [...P4.lives[0].plots.get('loss (training)').series.values()].map(s => [s.label, !!s.hi])") == \
        [["lr=0.1 (mean ± std, n=2)", True]]  # the line and its band
    headers = [th.text for th in d.find_elements(By.CSS_SELECTOR, "#runs-0 thead th")]
    assert "seed" in headers and "lr" in headers
    d.find_elements(By.CSS_SELECTOR, "#runs-0 thead th")[headers.index("loss/training (last)")].click()
    firsts = [r.find_elements(By.TAG_NAME, "td")[0].text for r in d.find_elements(By.CSS_SELECTOR, "#runs-0 tbody tr")]
    assert firsts == ["run_1", "run_0", "run_2"]  # sorted by the last loss: 0.3, 0.5, 0.9


def test_browser_plots_by_point_order_when_points_share_a_step(browser, start, ui, monkeypatch):
    monkeypatch.setattr(prov4ml.ui.server, "MAX_BYTES", 64)  # the points come in several answers
    start("exp")
    for i in range(12):  # every batch logged with step=epoch
        prov4ml.log_metric("loss", 1.0 / (i + 1), prov4ml.Context.TRAINING, step=i // 4)
    prov4ml.end_run()
    browser.get(ui.url + "run/exp/run_0")
    plot = "document.getElementById('plot-loss__training_')"
    _js_wait(browser, f"const s = {plot}; return s && s.dataset.points === '12'", what="the plot")
    assert browser.execute_script(f"return {plot}.dataset.x") == "order"
    assert browser.find_element("css selector", "#plot-loss__training_ .note").text == \
        "x: point order (several points share a step)"
