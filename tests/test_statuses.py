"""The run statuses are defined once (prov4ml.records.model.STATUSES) and every place that shows one knows each."""

import re

from conftest import ROOT
from prov4ml.analysis import STATUS_COLOURS
from prov4ml.cli._output import STATUS_STYLE
from prov4ml.provenance.vocabulary import TERMS
from prov4ml.records.model import SEVERITY, STATUSES
from prov4ml.ui.store import STATUS_ORDER


def test_every_status_has_a_severity_a_style_a_colour_and_a_line_in_the_docs():
    names = set(STATUSES)
    assert set(SEVERITY) == names and set(STATUS_ORDER) == names
    assert set(STATUS_STYLE) == names and set(STATUS_COLOURS) == names
    css = (ROOT / "prov4ml" / "ui" / "static" / "ui.css").read_text()
    assert {s for s in names if re.search(rf"data-status\^?={s}\]", css)} == names
    formats = (ROOT / "docs" / "formats.md").read_text()
    assert {s for s in names if f"| `{s}` |" in formats} == names
    assert all(s in TERMS["status"].comment for s in names)
