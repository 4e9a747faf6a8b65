"""Runs compared: curves labelled by the parameters that differ, mean ± std over repetitions, sweep charts.

:func:`comparison` renders the comparison of any list of runs (an
experiment's, or runs ticked across experiments); :func:`experiment_page`
is an experiment's page around it. Repetitions of a configuration (runs with
equal parameters but ``sweep.*`` and ``seed``) are averaged from finished
runs only: a killed, failed or still running run stopped part-way and would
pull the mean towards its early values. A toggle includes them.
"""

from __future__ import annotations

import html
import json
from typing import Any, Dict, List, Sequence

from .pages import _cell, _experiment_title, _param_columns, _runs, _table, fmt, href, live_box, page, runs_table
from ..runs.fields import metric_order
from .store import RunHead, Store, sweep_groups

__all__ = ["comparison", "experiment_page", "compare_page", "run_labels", "COMPLETE"]

#: The statuses of runs that count as repetitions by default (ui.js has the same set).
COMPLETE = frozenset({"finished"})


def _differing(runs: Sequence[RunHead]) -> List[str]:
    """Parameters whose value differs between ``runs`` (or that some lack), ``sweep.*`` bookkeeping left out."""
    values: Dict[str, set] = {}
    for r in runs:
        for k, v in r.params.items():
            if not k.startswith("sweep.") or k == "sweep.repetition":
                values.setdefault(k, set()).add(json.dumps(v, default=str, sort_keys=True))
    return sorted(k for k, vals in values.items() if len(vals) > 1 or any(k not in r.params for r in runs))


def run_labels(runs: Sequence[RunHead]) -> Dict[str, str]:
    """Run key -> its line label: the parameters that differ between the runs (``lr=0.1, seed=2``);
    the run id where none differs or two runs share a label, the key where run ids repeat too."""
    keys = _differing(runs)
    labels = {r.key: ", ".join(f"{k}={fmt(r.params[k])}" for k in keys if k in r.params) for r in runs}
    ids = [str(r.run_id) for r in runs]
    for r in runs:
        tag = f"run {r.run_id}" if ids.count(str(r.run_id)) == 1 else r.key
        if not labels[r.key]:
            labels[r.key] = tag
        elif list(labels.values()).count(labels[r.key]) > 1:
            labels[r.key] += f" ({tag})"
    return labels


def _sweep_table(groups: List[Dict[str, Any]], tid: str, include: str, hidden: bool) -> str:
    metrics = sorted({m for g in groups for m in g["metrics"]}, key=metric_order)
    rows = []
    for g in groups:
        label = ", ".join(f"{k}={fmt(v)}" for k, v in g["params"].items()) or "(no parameters)"
        cells = [f"<td>{html.escape(label)}</td>", _cell(len(g["runs"]))]
        for m in metrics:
            s = g["metrics"].get(m)
            text = "" if s is None else (f"{s['mean']:.6g} ± {s['std']:.3g}" if s["std"] is not None else f"{s['mean']:.6g}")
            cells.append(f'<td class="num" data-sort="{"" if s is None else s["mean"]}">{html.escape(text)}</td>')
        rows.append(cells)
    table = _table(["configuration", "runs"] + [f"{m} (last)" for m in metrics], rows, "sortable", tid)
    return f'<div class="scroll" data-include="{include}"{" hidden" if hidden else ""}>{table}</div>'


def _sweep_charts(runs: Sequence[RunHead], labels: Dict[str, str]) -> str:
    """Parallel coordinates and a parameter-vs-metric scatter, drawn by ui.js from the JSON they carry."""
    params = [k for k in _differing(runs) if k != "sweep.repetition"]
    metrics = sorted({m for r in runs for m, v in r.last.items() if isinstance(v, (int, float))}, key=metric_order)
    if len(runs) < 2 or not params or not metrics:
        return ""
    rows = [{"key": r.key, "label": labels[r.key], "status": r.label, "params": {k: r.params.get(k) for k in params},
             "metrics": {m: r.last.get(m) for m in metrics}} for r in runs]
    data = json.dumps({"params": params, "metrics": metrics, "rows": rows}, default=str).replace("</", "<\\/")
    options = lambda names: "".join(f'<option value="{html.escape(n)}">{html.escape(n)}</option>' for n in names)  # noqa: E731
    return ("<h2>Sweep: parameters and metrics</h2>"
            f'<p class="p4sel"><label>metric <select id="sweep-metric">{options(metrics)}</select></label> '
            f'<label>parameter <select id="sweep-param">{options(params)}</select></label> '
            '<span class="muted">(the last value of each run; one line or point per run)</span></p>'
            '<div class="sweep-charts"><div id="parallel" class="p4chart wide"></div><div id="scatter" class="p4chart"></div></div>'
            f'<script type="application/json" id="sweep-data">{data}</script>')


def comparison(store: Store, runs: Sequence[RunHead]) -> str:
    """The comparison of ``runs`` as an HTML fragment: their parameters side by side, mean ± std over the
    repetitions of each configuration (finished runs; a toggle includes the others), overlaid live
    curves labelled by the parameters that differ, and for a sweep its parallel coordinates and scatter."""
    readable = [r for r in runs if r.readable]
    labels = run_labels(readable)
    parts = []
    pcols = _param_columns(readable, None)
    if pcols:
        rows = []
        for k in pcols:
            values = [r.params.get(k) for r in readable]
            differ = len({json.dumps(v, default=str) for v in values}) > 1
            rows.append([f'<th{" class=diff" if differ else ""}>{html.escape(k)}</th>'] + [_cell(v) for v in values])
        parts.append("<h2>Parameters</h2><div class=\"scroll\">"
                     + _table(["parameter"] + [f"run {r.run_id}" for r in readable], rows, "", "params") + "</div>")
    every = sweep_groups(readable)
    if every:
        complete = sweep_groups([r for r in readable if r.label in COMPLETE])
        left_out = sum(1 for g in every for key in g["runs"] if store.head(key).label not in COMPLETE)
        parts.append("<h2>Sweep: mean ± std over repetitions</h2>"
                     '<p class="muted">Runs with the same parameters (less <code>sweep.*</code> and <code>seed</code>) '
                     "are repetitions of one configuration; std is the sample standard deviation of the last values. "
                     f"Only finished runs count unless ticked ({left_out} killed, failed or running).</p>"
                     '<p><label><input type="checkbox" id="include-all"> include killed, failed and running runs</label></p>'
                     + _sweep_table(complete, "sweep", "complete", False) + _sweep_table(every, "sweep-all", "all", True))
    parts.append("<h2>Metrics</h2>")
    if every:
        parts.append('<div class="modes"><button data-mode="run" class="on">one line per run</button>'
                     '<button data-mode="config">mean ± std per configuration</button></div>')
    groups = [{"label": ", ".join(f"{k}={fmt(v)}" for k, v in g["params"].items()) or "(no parameters)", "runs": g["runs"]}
              for g in every]
    parts.append(live_box([(r.key, labels[r.key], r.label) for r in readable], groups))
    parts.append(_sweep_charts(readable, labels))
    return "".join(parts)


def experiment_page(store: Store, key: str, runs: Sequence[RunHead]) -> str:
    """An experiment's page: every run in a sortable table, then their :func:`comparison`."""
    title = _experiment_title(key, runs)
    parts = [f"<h1>{html.escape(title)}</h1><p class=\"muted\">{_runs(len(runs))} · {html.escape(str(store.resolve(key)))}</p>",
             "<h2>Runs</h2>", runs_table(runs, "runs-0", params_limit=None, metrics_limit=None), comparison(store, runs)]
    return page(title, "".join(parts), store, prefetch=[r.key for r in runs if r.readable])


def compare_page(store: Store, runs: Sequence[RunHead]) -> str:
    """The page of runs ticked in a runs list (``/compare?runs=``, also across experiments): their
    table, then their :func:`comparison`."""
    links = " · ".join(f'<a href="{href("run", r.key)}">{html.escape(r.key)}</a>' for r in runs)
    body = (f"<h1>{_runs(len(runs))} compared</h1><p><a href=\"/\">all runs</a> · {links}</p>"
            + runs_table(runs, "runs-0", params_limit=None, metrics_limit=None) + comparison(store, runs))
    return page("compare", body, store, prefetch=[r.key for r in runs if r.readable])
