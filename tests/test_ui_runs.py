"""The runs list of the web UI in a real headless Chromium: the filter box (``ls --where``'s grammar, applied by
the server to every run, not only to those shown), rows counted, status badges, the column chooser, constant
parameters hidden, validation metrics first, runs ticked across experiments and the comparison they open.

Oracles are the values the runs logged: which runs a filter keeps is computed here from them, the message of a
bad filter is the one the grammar raises, a cell's text is the value as JSON writes it.
"""

import pytest

import prov4ml
import prov4ml.ui.pages
from prov4ml.exceptions import InvalidValueError
from prov4ml.ui import serve
from prov4ml.ui.store import Store

from test_ui import _js_wait

NS = "www.example.org"
NEWEST = 3  # runs per experiment in the list here (LIST_NEWEST): the oldest runs of "sweep" are not shown
# run id -> (lr, use_bn, val_acc per epoch); every run has optimizer "sgd" and momentum 0.9
SWEEP = {0: (0.001, True, [0.5, 0.93]), 1: (0.1, False, [0.4, 0.6]), 2: (0.01, True, [0.6, 0.8]),
         3: (0.05, False, [0.7, 0.95]), 4: (0.003, True, [0.3, 0.5])}
OTHER = {0: (0.002, False, [0.91]), 1: (0.2, True, [0.5])}  # run 1 fails
SOLO = {0: (0.5, True, [0.2])}
METRICS = ["val_acc/validation", "test_acc/testing", "a_loss/training"]  # validation, then test, then the others


def _runs():
    for exp, runs in (("sweep", SWEEP), ("other", OTHER), ("solo", SOLO)):
        for run_id, (lr, use_bn, acc) in runs.items():
            yield exp, run_id, lr, use_bn, acc


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("ui_runs") / "prov"
    for exp, run_id, lr, use_bn, acc in _runs():
        try:
            with prov4ml.run(NS, exp, str(save_dir), capture=False):
                prov4ml.log_params({"lr": lr, "use_bn": use_bn, "optimizer": "sgd", "momentum": 0.9})
                for step, value in enumerate(acc):
                    prov4ml.log_metric("a_loss", 1 - value, prov4ml.Context.TRAINING, step=step)
                    prov4ml.log_metric("val_acc", value, prov4ml.Context.VALIDATION, step=step)
                prov4ml.log_metric("test_acc", acc[-1], prov4ml.Context.TESTING, step=len(acc))
                if exp == "other" and run_id == 1:
                    raise RuntimeError("diverged")
        except RuntimeError:
            pass
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prov4ml.ui.pages, "LIST_NEWEST", NEWEST)
        server = serve(save_dir, port=0)
        server.save_dir = save_dir
        yield server
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser, ui):  # noqa: F811 (the fixture imported above)
    """The runs list, fresh: no filter, no ticks, no chosen columns."""
    browser.get(ui.url)
    browser.execute_script("localStorage.clear(); sessionStorage.clear()")
    browser.get(ui.url)
    _js_wait(browser, "return document.getElementById('count') !== null", what="the runs list")
    return browser


def _shown(d):
    """The keys of the runs in the list's rows."""
    return d.execute_script("return [...document.querySelectorAll('table.runs input.tick')].map(b => b.value)")


def _filter(d, text):
    from selenium.webdriver.common.keys import Keys

    loads = d.execute_script("return Number(document.getElementById('experiments').dataset.loads || 0)")
    box = d.find_element("css selector", "#filter input[name=where]")
    box.clear()
    box.send_keys(text, Keys.ENTER)
    _js_wait(d, f"return Number(document.getElementById('experiments').dataset.loads || 0) > {loads}",
             what=f"the list filtered by {text!r}")


def _visible(d, table, col):
    return d.execute_script(
        "const th = document.querySelector(`#${arguments[0]} th[data-col='${arguments[1]}']`);"
        "return th.getBoundingClientRect().width > 0", table, col)


def test_a_filter_searches_every_run_and_the_rows_are_counted(page, ui):
    d = page
    newest = [f"sweep/run_{i}" for i in sorted(SWEEP)[-NEWEST:]]
    assert sorted(_shown(d)) == sorted(newest + [f"other/run_{i}" for i in OTHER] + ["solo/run_0"])
    total = len(SWEEP) + len(OTHER) + len(SOLO)
    assert d.find_element("id", "count").text == f"{total} runs; the newest {len(_shown(d))} shown (up to {NEWEST} of each experiment)"
    badge = d.find_element("css selector", "input.tick[value='other/run_1']").find_element(
        "xpath", "../../td[2]/span")
    assert (badge.text, badge.get_attribute("data-status"), badge.get_attribute("class")) == ("failed", "failed", "status")
    heading = "section[data-experiment={}] h2 .muted"
    assert d.find_element("css selector", heading.format("other")).text == "2 runs: 1 failed, 1 finished"
    assert d.find_element("css selector", heading.format("solo")).text == "1 run: 1 finished"

    where = "lr<0.005 and val_acc.best>0.9"
    _filter(d, where)
    expected = [f"{exp}/run_{i}" for exp, i, lr, _bn, acc in _runs() if lr < 0.005 and max(acc) > 0.9]
    assert sorted(_shown(d)) == sorted(expected) and "sweep/run_0" in expected  # run_0 is not among the newest
    assert d.find_element("id", "count").text == f"{len(expected)} of {total} runs match the filter"
    assert d.current_url == ui.url + "?where=lr%3C0.005+and+val_acc.best%3E0.9"
    d.refresh()  # the address keeps the filter; the server draws the same list
    _js_wait(d, "return document.getElementById('count') !== null", what="the filtered list")
    assert sorted(_shown(d)) == sorted(expected)
    assert d.find_element("css selector", "#filter input[name=where]").get_attribute("value") == where


@pytest.mark.parametrize("where", ["nosuch>1", "lr>fast", "lr<0.1 and"])
def test_a_bad_filter_says_what_the_grammar_says(page, ui, where):
    with pytest.raises(InvalidValueError) as raised:
        Store(ui.save_dir).overview(NEWEST, where)
    d = page
    _filter(d, where)
    assert d.find_element("id", "filter-error").text == str(raised.value)
    assert str(raised.value).startswith("filter ")
    assert len(_shown(d)) == NEWEST + len(OTHER) + len(SOLO)  # and the whole list under it
    assert "Traceback" not in d.page_source


def test_constant_parameters_are_hidden_until_asked_for(page):
    d = page
    table = d.execute_script("return document.querySelector('section[data-experiment=sweep] table.runs').id")
    assert [_visible(d, table, c) for c in ("lr", "use_bn", "optimizer", "momentum")] == [True, True, False, False]
    d.find_element("id", "show-constant").click()
    assert _visible(d, table, "optimizer") and _visible(d, table, "momentum")
    cells = d.execute_script(
        "const t = document.getElementById(arguments[0]), heads = [...t.tHead.rows[0].cells].map(h => h.dataset.col);"
        "return [...t.tBodies[0].rows].map(r => [r.querySelector('input.tick').value,"
        " r.cells[heads.indexOf('optimizer')].textContent, r.cells[heads.indexOf('use_bn')].textContent])", table)
    assert cells == [[f"sweep/run_{i}", "sgd", "true" if SWEEP[i][1] else "false"] for i in sorted(SWEEP)[-NEWEST:]]
    d.find_element("id", "show-constant").click()
    assert not _visible(d, table, "optimizer")


def test_the_column_chooser_is_remembered_after_a_reload(page):
    d = page
    table = d.execute_script("return document.querySelector('table.runs').id")
    assert _visible(d, table, "lr")
    d.find_element("css selector", "#columns summary").click()
    d.find_element("css selector", "#columns input[value='lr']").click()
    assert not _visible(d, table, "lr") and _visible(d, table, "use_bn")
    d.refresh()
    _js_wait(d, "return document.getElementById('runs-columns') !== null", what="the columns applied")
    assert not _visible(d, table, "lr") and _visible(d, table, "use_bn")
    assert not d.find_element("css selector", "#columns input[value='lr']").is_selected()
    d.find_element("css selector", "#columns summary").click()
    d.find_element("id", "columns-reset").click()
    assert _visible(d, table, "lr")


def test_validation_and_test_metrics_come_first(page):
    cols = page.execute_script("return [...document.querySelectorAll('table.runs')[0].tHead.rows[0].cells]"
                               ".map(h => h.dataset.col).filter(c => c.includes('/'))")
    assert cols == METRICS


def test_runs_ticked_in_two_experiments_open_their_comparison(page, ui):
    d = page
    d.find_element("css selector", "input.tick[value='sweep/run_3']").click()
    assert d.find_element("id", "compare").text == "Compare 1 run" and not d.find_element("id", "compare").is_enabled()
    _filter(d, "lr<0.005")  # the other run is found by a filter, which hides the first: its tick is kept
    assert "sweep/run_3" not in _shown(d) and d.find_element("id", "compare").text == "Compare 1 run"
    d.find_element("css selector", "input.tick[value='other/run_0']").click()
    button = d.find_element("id", "compare")
    assert button.text == "Compare 2 runs" and button.is_enabled()
    button.click()
    _js_wait(d, "return location.pathname === '/compare'", what="the comparison page")
    assert d.find_element("tag name", "h1").text == "2 runs compared"
    assert sorted(_shown(d)) == ["other/run_0", "sweep/run_3"]
    plot = "document.getElementById('plot-val_acc__validation_')"
    points = len(SWEEP[3][2]) + len(OTHER[0][2])
    _js_wait(d, f"const s = {plot}; return s && Number(s.dataset.points) === {points}", what="both runs' val_acc")
    assert d.execute_script(f"return {plot}.dataset.series") == "2"
