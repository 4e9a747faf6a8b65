"""The UI's HTML pages: tables rendered here, plots and graphs drawn by ``static/ui.js`` in the browser.

A run's page and the graph page are in :mod:`prov4ml.ui.run_page`.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import quote

from .store import RunHead, Store, duration_s

__all__ = ["runs_list", "experiments_fragment", "live_box", "error_page",
           "MAX_PARAM_COLUMNS", "MAX_METRIC_COLUMNS"]

MAX_PARAM_COLUMNS = 6  # in the runs list; the experiment page shows them all
MAX_METRIC_COLUMNS = 6
LIST_NEWEST = 100  # runs per experiment in the runs list; the experiment page shows them all


# ------------------------------------------------------------------ formatting
def fmt(value: Any) -> str:
    """A cell's text: floats to 6 significant digits, datetimes to the second, lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")  # this machine's time, as the browser shows
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


def duration(seconds: Optional[float]) -> str:
    """``0.42 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def href(prefix: str, key: str) -> str:
    return f"/{prefix}/{quote(key)}" if key != "." else f"/{prefix}/."


def _esc(value: Any) -> str:
    return html.escape(fmt(value))


def _cell(value: Any, sort: Any = None) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    attrs = ' class="num"' if numeric else ""
    if sort is not None:
        attrs += f' data-sort="{html.escape(str(sort))}"'
    return f"<td{attrs}>{_esc(value)}</td>"


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "", tid: str = "") -> str:
    """A table of pre-rendered ``<td>`` cells."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    attrs = (f' class="{cls}"' if cls else "") + (f' id="{tid}"' if tid else "")
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(rows: Iterable[Tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th>{_cell(v)}</tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def _status(status: str, sid: str = "") -> str:
    ident = f' id="{sid}"' if sid else ""
    return f'<span class="status"{ident} data-status="{html.escape(status)}">{html.escape(status)}</span>'


def page(title: str, body: str, store: Store) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<title>{html.escape(title)} · prov4ml</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/ui.css"><script src="/static/vendor/echarts.min.js" defer></script>'
        '<script src="/static/plot.js" defer></script><script src="/static/ui.js" defer></script></head><body>'
        f'<header><a href="/">prov4ml</a><span class="dir">{html.escape(str(store.root))}</span></header>'
        f"<main>{body}</main></body></html>\n"
    )


def error_page(store: Store, message: str) -> str:
    return page("error", f'<h1>Cannot show this</h1><p class="error">{html.escape(message)}</p><p><a href="/">all runs</a></p>', store)


# ------------------------------------------------------------------ the runs list
def _experiment_title(key: str, runs: Sequence[RunHead]) -> str:
    named = next((r.experiment_name for r in runs if r.experiment_name), None)
    return str(named or (key if key != "." else "experiment"))


def _param_columns(runs: Sequence[RunHead], limit: Optional[int]) -> List[str]:
    """Parameters that differ between the runs first (they tell the runs apart), then the others.

    With a ``limit`` (the runs list), a sweep's bookkeeping is left to the experiment
    page but for ``sweep.repetition``, which tells repetitions apart.
    """
    seen: Dict[str, set] = {}
    for r in runs:
        for k, v in r.params.items():
            if limit is None or not k.startswith("sweep.") or k == "sweep.repetition":
                seen.setdefault(k, set()).add(json.dumps(v, default=str, sort_keys=True))
    varying = [k for k, vals in seen.items() if len(vals) > 1 or any(k not in r.params for r in runs if r.readable)]
    ordered = sorted(varying, key=lambda k: (k.startswith("sweep."), k)) + sorted(k for k in seen if k not in varying)
    return ordered if limit is None else ordered[:limit]


def _metric_columns(lasts: Sequence[Dict[str, Any]], limit: Optional[int]) -> List[str]:
    names = sorted({n for d in lasts for n in d})
    return names if limit is None else names[:limit]


def runs_table(runs: Sequence[RunHead], tid: str, params_limit: Optional[int] = MAX_PARAM_COLUMNS,
               metrics_limit: Optional[int] = MAX_METRIC_COLUMNS) -> str:
    """The sortable table of ``runs``: status, start, duration, ranks, key parameters, last metric values."""
    pcols, mcols = _param_columns(runs, params_limit), _metric_columns([r.last for r in runs], metrics_limit)
    rows = []
    for run in runs:
        link = f'<a href="{href("run", run.key)}">{html.escape(run.run_dir.name)}</a>'
        if not run.readable:
            rows.append([f"<td>{link}</td>", f"<td>{_status('unreadable')}</td>",
                         f'<td colspan="{3 + len(pcols) + len(mcols)}" class="error">{html.escape(run.error or "")}</td>'])
            continue
        dur = duration_s(run)
        cells = [
            f'<td data-sort="{html.escape(str(run.run_id))}">{link}</td>',
            f'<td data-sort="{html.escape(run.label)}">{_status(run.label)}</td>',
            _cell(run.start, run.start.timestamp() if run.start else ""),
            f'<td class="num" data-sort="{dur if dur is not None else ""}">{html.escape(duration(dur))}</td>',
            _cell(len(run.ranks)),
        ]
        cells += [_cell(run.params.get(k)) for k in pcols]
        cells += [_cell(run.last.get(k)) for k in mcols]
        rows.append(cells)
    columns = ["run", "status", "start", "duration", "ranks"] + pcols + [f"{m} (last)" for m in mcols]
    return f'<div class="scroll">{_table(columns, rows, "sortable runs", tid)}</div>'


def experiments_fragment(store: Store) -> str:
    """Every experiment's section of the runs list (also what the list's live refresh fetches)."""
    experiments = store.overview(LIST_NEWEST)
    if not experiments:
        return (f'<p class="warning">No runs under {html.escape(str(store.root))} yet. Start one with '
                f"<code>prov4ml.start_run(..., provenance_save_dir=\"{html.escape(str(store.root))}\")</code>; "
                "this page shows it as soon as its first document is written.</p>")
    parts = []
    for i, (key, counts, runs) in enumerate(experiments):
        title = _experiment_title(key, runs)
        total = sum(counts.values())
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        more = ""
        if total > len(runs):
            more = (f'<p class="muted">the newest {len(runs)} of {total:,} runs; '
                    f'<a href="{href("experiment", key)}">every run on the experiment page</a></p>')
        parts.append(f'<section class="experiment" data-experiment="{html.escape(key)}">'
                     f'<h2><a href="{href("experiment", key)}">{html.escape(title)}</a> '
                     f'<span class="muted">{total:,} run{"s" if total != 1 else ""}: {html.escape(summary)}</span></h2>'
                     f"{runs_table(runs, f'runs-{i}')}{more}</section>")
    return "".join(parts)


def runs_list(store: Store) -> str:
    body = f'<h1>Experiments and runs</h1><div id="experiments" data-src="/?fragment=1">{experiments_fragment(store)}</div>'
    return page("runs", body, store)


# ------------------------------------------------------------------ a run
def live_box(runs: Sequence[Tuple[str, str, str]], groups: Sequence[Dict[str, Any]] = (), run_page: bool = False) -> str:
    """The box ui.js fills with live plots of ``runs`` (key, line label, status); on a run's page it
    also keeps the summary table fresh."""
    data = html.escape(json.dumps([{"key": k, "label": label, "status": status} for k, label, status in runs]))
    attrs = f' data-runs="{data}"'
    if groups:
        attrs += f' data-groups="{html.escape(json.dumps(groups))}"'
    if run_page:
        attrs += ' data-reload-on-end="1" data-summary="#summary table"'
    return f'<div class="live" id="plots"{attrs}></div>'


