"""The pieces of the HTML reports: values as text, tables (sortable ones with a small inline script), the page.

The charts are drawn by the web UI's plotting module (``prov4ml/ui/static/plot.js``)
and the library it uses (``static/vendor/echarts.min.js``), inlined into the page:
one plotting path for both, so a fix to a plot lands in the UI and the reports.
The files are read as data, not imported: they are the browser's.
"""

from __future__ import annotations

import html
import math
import os
from datetime import datetime
from pathlib import Path
from functools import lru_cache
from typing import Any, Iterable, Optional, Sequence
from urllib.parse import quote

STATUS_COLOURS = {"finished": "#2e7d32", "running": "#1565c0", "incomplete": "#f9a825", "interrupted": "#ef6c00",
                  "terminated": "#ef6c00", "killed": "#6a1b9a", "failed": "#c62828"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:78em;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:.9em}
table.sortable th{cursor:pointer;user-select:none}table.sortable th[data-dir=asc]::after{content:" \\25B2"}
table.sortable th[data-dir=desc]::after{content:" \\25BC"}.wide{overflow-x:auto}
.status{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;font-weight:600}
.warning{background:#fff3cd;border:1px solid #e0b252;padding:.5em .8em;border-radius:.3em}
.error{background:#fdecea;border:1px solid #c62828;padding:.5em .8em;border-radius:.3em;white-space:pre-wrap}
.plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:.85em;color:#555;max-width:480px}
.muted{color:#777}.swatch{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .6em;border-radius:.2em}
.graph{overflow:auto;max-height:48em;border:1px solid #ddd}
figure.plot{border:1px solid #ddd;border-radius:4px;padding:.4em}
"""

#: The plotting module and its library, in the order the page runs them.
PLOT_ASSETS = ("vendor/echarts.min.js", "plot.js")
STATIC = Path(__file__).resolve().parent.parent / "ui" / "static"

# Sorting for every table.sortable: click a header to sort by it, again to reverse. A cell sorts by its
# data-v attribute when it has one (full-precision numbers, seconds), else by its text; numbers before
# text, empty cells last. Shipped inline: the page fetches nothing.
SORT_JS = """
function prov4mlKey(cell){var v=cell.hasAttribute("data-v")?cell.getAttribute("data-v"):cell.textContent.trim();
if(v==="")return[2,""];var n=Number(v);return isNaN(n)?[1,v.toLowerCase()]:[0,n];}
function prov4mlCompare(a,b){if(a[0]!==b[0])return a[0]-b[0];return a[1]<b[1]?-1:a[1]>b[1]?1:0;}
document.querySelectorAll("table.sortable").forEach(function(table){
table.querySelectorAll("thead th").forEach(function(th,i){th.title="click to sort";th.addEventListener("click",function(){
var asc=th.getAttribute("data-dir")!=="asc",body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
table.querySelectorAll("thead th").forEach(function(h){h.removeAttribute("data-dir");});th.setAttribute("data-dir",asc?"asc":"desc");
rows.sort(function(r,s){var x=prov4mlKey(r.cells[i]),y=prov4mlKey(s.cells[i]);if(x[0]===2||y[0]===2)return x[0]-y[0];
return asc?prov4mlCompare(x,y):prov4mlCompare(y,x);});rows.forEach(function(r){body.appendChild(r);});});});});
"""


def native(value: Any) -> Any:
    """A NumPy scalar as a plain Python value, pandas' NA and NaT as None."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return value


def format_duration(seconds: Optional[float]) -> str:
    """A duration people read: ``350 ms``, ``4.2 s``, ``3 min 07 s``, ``2 h 05 min``, ``3 d 4 h``."""
    seconds = native(seconds)
    if seconds is None or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def fmt(value: Any) -> str:
    value = native(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


class Raw(str):
    """HTML already escaped: a table puts it in a cell as it is."""


class Sorted:
    """A cell shown as ``text`` (HTML) and sorted by ``key``."""

    def __init__(self, text: str, key: Any) -> None:
        self.text, self.key = text, key


def cell(value: Any) -> str:
    if isinstance(value, Sorted):
        key = native(value.key)
        attr = "" if key is None else f' data-v="{html.escape(repr(key) if isinstance(key, float) else str(key))}"'
        return f'<td class="num"{attr}>{value.text}</td>'
    if isinstance(value, Raw):
        return f"<td>{value}</td>"
    value = native(value)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    text = html.escape(fmt(value))
    if isinstance(value, float) and math.isfinite(value):
        return f'<td class="num" data-v="{value!r}">{text}</td>'
    return f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], sortable: bool = False) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    cls = ' class="sortable"' if sortable else ""
    return f'<div class="wide"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def href(target: Path, start: Path) -> str:
    return quote(Path(os.path.relpath(os.path.abspath(target), os.path.abspath(start))).as_posix())


def status_badge(status: str) -> str:
    return f'<span class="status" style="background:{STATUS_COLOURS.get(status, "#555")}">{html.escape(status)}</span>'


@lru_cache(maxsize=1)
def plot_script() -> str:
    """The plotting library and module as one inline script, then the call that draws every chart."""
    parts = [(STATIC / name).read_text(encoding="utf-8") for name in PLOT_ASSETS]
    return "\n".join(parts + ["P4Plot.mountAll(document);"])


def page(title: str, body: Sequence[str], script: bool = False, plots: bool = False) -> str:
    """A whole HTML page: inline CSS (the sorting script, the plotting module when asked), nothing fetched."""
    stamp = datetime.now().isoformat(sep=" ", timespec="seconds")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *body,
        f'<p class="muted">Written by prov4ml.analysis on {stamp}.</p>',
        f"<script>{SORT_JS}</script>" if script else "",
        f"<script>{plot_script()}</script>" if plots else "",
        "</body></html>\n",
    ])
