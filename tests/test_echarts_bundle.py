"""The vendored ECharts is a custom build (tools/echarts): it must hold every part plot.js asks for.

A part left out of the build is ignored without an error, so a new option in
plot.js (a title, a markLine, an inside dataZoom) would draw nothing until the
bundle is rebuilt with it. Here every plot of ``tools/echarts/check.py``'s
scenarios (the drawing paths of plot.js) is drawn with the vendored bundle in
Chromium, each ``setOption`` recorded, and every component and series type
asked for must be one ECharts made a model of. A left-out feature that is not a
component (``grid.containLabel`` without ``LegacyGridContainLabel``) only shows
in what is drawn: ``tools/echarts/build.sh`` checks that against the full build.
"""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "prov4ml" / "ui" / "static" / "vendor"
STATIC = VENDOR.parent

_spec = importlib.util.spec_from_file_location("echarts_check", ROOT / "tools" / "echarts" / "check.py")
CHECK = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(CHECK)

# Every instance's setOption (the instances share one prototype), judged as it returns: the components
# asked for that ECharts made no model for (it keeps an unknown one's option as plain data, so
# getOption() still shows it), the series types asked and made.
RECORD = r"""
const probe = echarts.init(document.createElement("div")), proto = Object.getPrototypeOf(probe);
probe.dispose();
const set = proto.setOption, list = v => v === undefined ? [] : Array.isArray(v) ? v : [v];
window.asked = [];
proto.setOption = function (option, ...rest) {
  const r = set.call(this, option, ...rest), model = this.getModel();
  const made = k => model.queryComponents({ mainType: k }).length;
  const missing = Object.keys(option).filter(k => typeof option[k] === "object" && option[k] !== null
    && list(option[k]).length > 0 && made(k) !== list(option[k]).length);
  asked.push({ keys: Object.keys(option).sort(), missing: missing,
               asked: list(option.series).map(s => s.type), kept: model.getSeries().map(s => s.subType) });
  return r;
};
"""


def test_every_part_plot_js_asks_for_is_in_the_bundle(browser, tmp_path):
    page = tmp_path / "bundle.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<script src="{(VENDOR / "echarts.min.js").as_uri()}"></script><script src="{(STATIC / "plot.js").as_uri()}"></script>'
        '</head><body><div id="host"></div></body></html>', encoding="utf-8")
    browser.get(page.as_uri())
    browser.execute_script(RECORD)
    browser.execute_script(CHECK.SCENARIOS)
    calls = browser.execute_script("return asked")
    # the scenarios reach every kind of plot and every component plot.js names
    assert {t for c in calls for t in c["asked"]} == {"line", "scatter", "parallel"}
    assert {"grid", "legend", "tooltip", "toolbox", "xAxis", "yAxis", "parallel", "parallelAxis", "visualMap"} <= {
        k for c in calls for k in c["keys"]}
    for call in calls:
        assert call["missing"] == [], f"the bundle ignores {call['missing']}: add them to tools/echarts/entry.js and run tools/echarts/build.sh"
        assert call["kept"] == call["asked"]


def test_the_bundle_is_the_release_its_header_and_the_docs_name(browser, tmp_path):
    header = (VENDOR / "echarts.min.js").read_text(encoding="utf-8")[:2000]
    version = re.search(r"A custom build of Apache ECharts (\d+\.\d+\.\d+)", header).group(1)
    page = tmp_path / "version.html"
    page.write_text(f'<!DOCTYPE html><script src="{(VENDOR / "echarts.min.js").as_uri()}"></script>', encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.execute_script("return echarts.version") == version
    assert f"ECharts]({'https://echarts.apache.org'}) {version}" in (ROOT / "docs" / "ui.md").read_text(encoding="utf-8")
    for name in ("LICENSE.echarts", "NOTICE.echarts", "LICENSE.d3", "LICENSE.zrender", "LICENSE.tslib"):
        assert (VENDOR / name).stat().st_size > 0
