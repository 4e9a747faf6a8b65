"""The web UI against what a researcher's runs throw at it: odd filters, markup in names and values, huge
artifacts, empty and degenerate series, runs of several experiments with nothing in common, bad directories
and URLs. Each test holds the UI to a line of docs/ui.md or docs/cli.md; real runs, a real server, a real
headless Chromium.
"""

import json
import math
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

import prov4ml
from prov4ml.ui import serve

from conftest import ROOT
from s3_server import s3, server  # noqa: F401 (a real S3 server on loopback)
from test_ui import _js_wait

NS = "www.example.org"
# markup a careless page would run: each sets a flag on window if it ever executes
XSS = '<img src=x onerror="window.__xss=1">'
XSS_KEY = 'p<img src=x onerror="window.__xss=2">'
XSS_METRIC = 'm<svg onload="window.__xss=3">'
BREAKOUT = '</script><script>window.__xss=6</script>'  # out of a JSON island, if one is not escaped


def _run(save_dir, experiment, params=None, metrics=None, artifacts=(), datasets=(), fail=False):
    """A finished run: ``metrics`` maps (name, context) to the values logged at steps 0, 1, ..."""
    try:
        with prov4ml.run(NS, experiment, str(save_dir), capture=False) as run:
            prov4ml.log_params(params or {})
            for (name, context), values in (metrics or {}).items():
                for step, v in enumerate(values):
                    prov4ml.log_metric(name, v, context, step=step)
            for label, path in datasets:
                prov4ml.log_dataset(path, label)
            for name, path in artifacts:
                prov4ml.log_artifact(name, str(path), prov4ml.Context.TRAINING)
            if fail:
                raise RuntimeError("stopped")
    except RuntimeError:
        pass
    return run.run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attack")
    save_dir = tmp / "prov"
    files = tmp / "files"
    files.mkdir()
    (files / "huge.log").write_text("x" * 2_000_000)
    (files / "wide.csv").write_text("a,b\n" + ("1," + "9" * 1_000_000 + "\n") * 3)
    (files / "evil.txt").write_text(XSS + "<script>window.__xss=4</script>")
    (files / "data.bin").write_bytes(b"\0" * 512)
    (files / "evil.json").write_text(json.dumps({XSS: XSS}))
    # "odd": names and values a filter must get right
    _run(save_dir, "odd", {"opt": "rock and roll", "λ": 0.5, "lr": 0.1},
         {("val_acc", "validation"): [0.2, 0.8]})
    _run(save_dir, "odd", {"opt": "adam", "λ": 0.05},  # no lr
         {("val_acc", "validation"): [float("nan"), float("nan")]})
    # "evil": markup everywhere the pages show a name or a value
    _run(save_dir, "evil", {XSS_KEY: XSS + BREAKOUT, "lr": 0.1}, {(XSS_METRIC, "training"): [1.0, 0.5]},
         artifacts=[("evil.txt", files / "evil.txt"), ("evil.json", files / "evil.json")],
         datasets=[(XSS, files / "data.bin")])
    _run(save_dir, "evil", {XSS_KEY: "other", "lr": 0.2}, {(XSS_METRIC, "training"): [2.0, 1.0]})
    # "edge": a run with no metrics, one point, all NaN, negative values, huge artifacts
    _run(save_dir, "edge", {"lr": 0.3})
    _run(save_dir, "edge", {"lr": 0.4},
         {("one", "training"): [0.7], ("nans", "training"): [float("nan")] * 3,
          ("neg", "training"): [-1.0, 0.01, 0.1, -5.0, 1.0]},
         artifacts=[("huge.log", files / "huge.log"), ("wide.csv", files / "wide.csv")])
    # two experiments with disjoint metrics
    _run(save_dir, "vision", {"lr": 0.1}, {("top1", "validation"): [0.5, 0.6]})
    _run(save_dir, "speech", {"wer_w": 3}, {("wer", "validation"): [0.4, 0.3, 0.2]})
    server = serve(save_dir, port=0)
    server.save_dir = save_dir
    yield server
    server.shutdown()
    server.server_close()


def _get(url, raw=True):
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
    return body.decode() if raw else json.loads(body)


def _shown(d):
    return sorted(d.execute_script("return [...document.querySelectorAll('table.runs input.tick')].map(b => b.value)"))


def _list(d, ui, where=None):
    d.get(ui.url + ("" if where is None else "?where=" + urllib.parse.quote(where)))
    _js_wait(d, "return document.getElementById('count') !== null || document.getElementById('filter-error') !== null",
             what="the runs list")


# ------------------------------------------------------------------ the filter's grammar
@pytest.mark.parametrize("where, expected", [
    ("opt=='rock and roll'", ["odd/run_0"]),             # cli.md: `and` inside a quoted value is part of the value
    ('opt=="rock and roll"', ["odd/run_0"]),
    ("λ<0.1", ["odd/run_1"]),                            # a parameter named in unicode
    ("lr>0.05 and experiment==odd", ["odd/run_0"]),      # "a run that lacks the field is left out"
    ("val_acc.best>0.5", ["odd/run_0"]),                 # NaN is not > 0.5
])
def test_the_filter_box_keeps_the_runs_the_grammar_keeps(browser, runs, where, expected):  # noqa: F811
    d = browser
    _list(d, runs, where)
    assert d.execute_script("return document.getElementById('filter-error')") is None, \
        d.find_element("id", "filter-error").text
    assert _shown(d) == expected


def test_sorting_by_val_acc_keeps_a_diverged_run_last_either_way(browser, runs):  # noqa: F811
    """A diverged run (val_acc NaN: no best, no value to rank) sorted by val_acc must not come first when the
    researcher sorts largest first to find the best runs; cli.md's order puts runs without the field "last either
    way", and ui.md's list is sorted by a click on the header."""
    d = browser
    _list(d, runs)
    table = d.find_element("css selector", "section[data-experiment=odd] table.runs")
    header = table.find_element("css selector", "th[data-col='val_acc/validation']")
    orders = []
    for _ in range(2):
        header.click()
        orders.append(d.execute_script("return [...arguments[0].tBodies[0].rows].map(r => r.querySelector('input.tick').value)",
                                       table))
    assert sorted(orders) == [["odd/run_0", "odd/run_1"]] * 2, orders  # odd/run_1's val_acc is NaN


def test_a_filter_with_markup_is_shown_as_text(browser, runs):  # noqa: F811
    d = browser
    where = 'x"><img src=x onerror="window.__xss=5"> and nosuch<1'
    _list(d, runs, where)
    assert d.execute_script("return window.__xss") is None
    assert d.execute_script("return document.querySelectorAll('img[src=x]').length") == 0
    assert d.find_element("css selector", "#filter input[name=where]").get_attribute("value") == where


# ------------------------------------------------------------------ markup in names and values
@pytest.mark.parametrize("path", ["", "experiment/evil", "run/evil/run_0", "compare?runs=evil/run_0,evil/run_1"])
def test_markup_in_params_metrics_datasets_and_artifacts_never_runs(browser, runs, path):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains

    d = browser
    d.get(runs.url + path)
    _js_wait(d, "return document.readyState === 'complete'")
    if path:  # the plot of the metric named in markup: its title, legend and hover readout
        figure = _js_wait(d, "return [...document.querySelectorAll('figure[data-rendered]')].find(f => f.textContent.includes('onload'))",
                          what="the plot of the markup metric")
        ActionChains(d).move_to_element(figure.find_element("css selector", ".p4chart")).perform()
        _js_wait(d, "return [...document.querySelectorAll('.p4tip')].some(t => t.style.display !== 'none')", what="the hover")
    assert d.execute_script("return window.__xss") is None
    injected = d.execute_script(
        "return [...document.querySelectorAll('img[src=x], svg[onload], script')]"
        ".filter(e => e.tagName !== 'SCRIPT' || (!e.src && e.type !== 'application/json'))"  # the pages' own: files, JSON
        ".map(e => e.outerHTML.slice(0, 120))")
    assert injected == []
    assert XSS_KEY in d.find_element("tag name", "body").text  # shown as text


# ------------------------------------------------------------------ huge artifacts
def test_a_huge_artifact_preview_is_bounded(runs):
    page = _get(runs.url + "run/edge/run_1")
    # ui.md: "the first 16 KiB of text" (a 2 MB log); a CSV of 1 MB cells is not sent whole either
    assert max(len(m) for m in re.findall("x+", page)) == 16 * 1024
    assert len(page) < 100_000, f"the run page is {len(page):,} bytes for 5 MB of artifacts"


# ------------------------------------------------------------------ lists with 0, 1 run, runs with no metrics
def test_an_empty_directory_lists_no_runs(tmp_path):
    (tmp_path / "prov").mkdir()
    server = serve(tmp_path / "prov", port=0)
    try:
        page = _get(server.url)
        assert "Traceback" not in page and "No runs under" in page
        assert _get(server.url + "api/runs", raw=False) == []
    finally:
        server.shutdown()
        server.server_close()


def test_one_run_is_one_run_and_a_run_without_metrics_is_listed(runs):
    page = _get(runs.url + "?where=" + urllib.parse.quote("lr==0.3"))
    assert "1 of 8 runs match the filter" in page and "1 runs" not in page
    (row,) = [r for r in _get(runs.url + "api/runs", raw=False) if r["key"] == "edge/run_0"]
    assert row["last"] == {} and row["status"] == "finished"


# ------------------------------------------------------------------ compare: disjoint metrics
def test_compare_across_experiments_with_disjoint_metrics_plots_each(browser, runs):  # noqa: F811
    d = browser
    d.get(runs.url + "compare?runs=vision/run_0,speech/run_0")
    for plot, points in (("plot-top1__validation_", 2), ("plot-wer__validation_", 3)):
        _js_wait(d, f"const f = document.getElementById('{plot}'); return f && Number(f.dataset.points) === {points}",
                 what=plot)
        assert d.execute_script(f"return document.getElementById('{plot}').dataset.series") == "1"


# ------------------------------------------------------------------ degenerate series
def test_a_run_page_plots_one_point_all_nan_and_negative_values_under_log(browser, runs):  # noqa: F811
    d = browser
    d.get(runs.url + "run/edge/run_1")
    _js_wait(d, "return document.getElementById('plots').dataset.live === '0'", what="the plots loaded")
    one = _js_wait(d, "const f = document.getElementById('plot-one__training_'); return f && f.dataset.rendered && f.dataset.points",
                   what="the one-point plot")
    assert one == "1"
    assert _js_wait(d, "return document.getElementById('plot-nans__training_').dataset.rendered")  # drawn, empty
    d.find_element("css selector", "#plot-neg__training_ input.p4log").click()
    _js_wait(d, "return document.getElementById('plot-neg__training_').dataset.log === '1'")
    note = d.find_element("css selector", "#plot-neg__training_").text.splitlines()[-1]
    assert note == "2 value(s) ≤ 0 not drawn on the log scale"  # ui.md: values ≤ 0 left out, the note counts them


def test_csv_of_every_point_matches_the_logged_points_nan_included(runs):
    body = _get(runs.url + "api/series/edge/run_1?key=" + urllib.parse.quote("neg/training/0"))
    lines = body.strip().splitlines()
    assert lines[0] == "step,value,time"
    assert [(int(r.split(",")[0]), float(r.split(",")[1])) for r in lines[1:]] == list(enumerate([-1.0, 0.01, 0.1, -5.0, 1.0]))
    nans = _get(runs.url + "api/series/edge/run_1?key=" + urllib.parse.quote("nans/training/0")).strip().splitlines()
    assert [math.isnan(float(r.split(",")[1])) for r in nans[1:]] == [True] * 3


# ------------------------------------------------------------------ the command line
def _ui(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "prov4ml", "ui", *args, "--port", "0"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout)


def test_ui_on_a_missing_directory_says_so(tmp_path):
    done = _ui(str(tmp_path / "nope"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and str(tmp_path / "nope") in done.stderr


def test_ui_on_an_unknown_protocol_names_it(tmp_path):
    done = _ui("nosuchproto://bucket/prefix", env={"PROV4ML_STAGING": str(tmp_path / "staging")})
    assert done.returncode == 1 and "Traceback" not in done.stderr and "nosuchproto" in done.stderr, done.stderr


@pytest.mark.parametrize("where", ["s3://", "a bucket that does not exist"])
def test_ui_on_a_bad_bucket_url_does_not_blame_the_port(s3, where):  # noqa: F811
    """ui.md: exit status 1 "for a missing directory or a port already taken"; a bad URL is neither, and the fix
    it names must be about the URL (the port is free: --port 0)."""
    url = "s3://" if where == "s3://" else "s3://no-such-bucket-" + s3[0].split("/")[2] + "/prefix"
    done = _ui(url)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "check the URL" in done.stderr and "choose another port" not in done.stderr, done.stderr


def test_ui_on_an_empty_bucket_prefix_waits_for_runs_as_on_an_empty_directory(s3, tmp_path):  # noqa: F811
    """An empty local directory is served ("No runs under ... yet"); the same empty place in a bucket is refused."""
    port = str(__import__("s3_server")._free_port())
    proc = subprocess.Popen([sys.executable, "-m", "prov4ml", "ui", s3[0], "--port", port], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = proc.stdout.readline()
        if "serving" not in line:
            proc.wait(30)
            pytest.fail(proc.stderr.read())
        assert "No runs under" in _get(f"http://127.0.0.1:{port}/")
    finally:
        proc.terminate()
        proc.wait(30)


# ------------------------------------------------------------------ a series with nothing to draw
def test_an_all_nan_series_says_so_in_the_plots_place_on_the_page_comparison_and_report(browser, runs, tmp_path):  # noqa: F811
    from prov4ml import analysis

    d = browser
    wanted = "all 3 values are NaN or infinite"
    for url in ("run/edge/run_1", "compare?runs=edge/run_1"):
        d.get(runs.url + url)
        _js_wait(d, "return document.getElementById('plots').dataset.live === '0'", what="the plots loaded")
        said = _js_wait(d, "const f = document.getElementById('plot-nans__training_'); return f && f.dataset.rendered && f.dataset.empty",
                        what="the note of the all-NaN plot")
        assert said == wanted
        shown = d.find_element("css selector", "#plot-nans__training_ .p4empty")
        assert shown.is_displayed() and shown.text == wanted
        assert not d.find_element("css selector", "#plot-nans__training_ .p4chart").is_displayed()
        assert d.execute_script("return document.getElementById('plot-one__training_').dataset.empty") is None  # one point: drawn
    report = analysis.html_report(runs.save_dir / "edge" / "run_1", tmp_path / "edge.html", progress=False)
    d.get(report.as_uri())
    notes = _js_wait(d, "const f = [...document.querySelectorAll('figure.p4plot')]; return f.length && f.every(x => x.dataset.rendered)"
                        " && f.filter(x => x.dataset.empty).map(x => x.querySelector('.p4empty').textContent)", what="the report's plots")
    assert notes == [wanted]
