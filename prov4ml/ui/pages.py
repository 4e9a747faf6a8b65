"""The UI's HTML pages: tables rendered here, plots and graphs drawn by ``static/ui.js`` in the browser.

A run's page and the graph page are in :mod:`prov4ml.ui.run_page`.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import quote, urlencode

from ..exceptions import InvalidValueError
from ..runs.fields import metric_order
from .store import RunHead, Section, Store, duration_s

__all__ = ["runs_list", "experiments_fragment", "live_box", "error_page",
           "MAX_PARAM_COLUMNS", "MAX_METRIC_COLUMNS"]

MAX_PARAM_COLUMNS = 6  # shown at first in the runs list (the column chooser shows the others); the experiment page shows them all
MAX_METRIC_COLUMNS = 6
LIST_NEWEST = 100  # runs per experiment in the runs list; the experiment page shows them all


# ------------------------------------------------------------------ formatting
def fmt(value: Any) -> str:
    """A cell's text: booleans as JSON and the console write them (``true``), floats to 6 significant
    digits, datetimes to the second, lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
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


def page(title: str, body: str, store: Store, prefetch: Sequence[str] = ()) -> str:
    """A whole page around ``body``; ``prefetch``: keys of runs whose first metric points are asked for
    first thing (``static/prefetch.js``, before the stylesheets and ECharts take the browser's connections)."""
    early = (f'<script src="/static/prefetch.js" async data-runs="{html.escape(json.dumps(list(prefetch)))}"></script>'
             if prefetch else "")
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{early}"
        f'<title>{html.escape(title)} · prov4ml</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/ui.css"><script src="/static/vendor/echarts.min.js" defer></script>'
        '<script src="/static/plot.js" defer></script><script src="/static/ui.js" defer></script>'
        '<script src="/static/runs.js" defer></script></head><body>'
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

    With a ``limit`` (the ones the runs list shows at first), a sweep's bookkeeping is
    left out but for ``sweep.repetition``, which tells repetitions apart.
    """
    return _param_order(*_params_seen(runs), limit)


def _params_seen(runs: Sequence[RunHead]) -> Tuple[Dict[str, set], List[str]]:
    """Each parameter's values (as JSON), and those that vary: two values, or missing in a readable run."""
    seen: Dict[str, set] = {}
    for r in runs:
        for k, v in r.params.items():
            seen.setdefault(k, set()).add(json.dumps(v, default=str, sort_keys=True))
    return seen, [k for k, vals in seen.items() if len(vals) > 1 or any(k not in r.params for r in runs if r.readable)]


def _param_order(seen: Dict[str, set], varying: List[str], limit: Optional[int]) -> List[str]:
    ordered = sorted(varying, key=lambda k: (k.startswith("sweep."), k)) + sorted(k for k in seen if k not in varying)
    if limit is None:
        return ordered
    return [k for k in ordered if not k.startswith("sweep.") or k == "sweep.repetition"][:limit]


def _metric_columns(lasts: Sequence[Dict[str, Any]], limit: Optional[int]) -> List[str]:
    """Every ``name/context``, validation and test metrics first (as ``prov4ml ls`` orders them); ``limit``: the first few."""
    names = sorted({n for d in lasts for n in d}, key=metric_order)
    return names if limit is None else names[:limit]


def _th(title: str, col: str, hide: str = "") -> str:
    """A runs-table header: ``data-col`` names the column for the chooser (runs.js); ``data-hide`` says why
    it is hidden at first (``constant``: one value in every run; ``more``: beyond the first few)."""
    extra = f' data-hide="{hide}"' if hide else ""
    return f'<th data-col="{html.escape(col)}"{extra}>{html.escape(title)}</th>'


def runs_table(runs: Sequence[RunHead], tid: str, params_limit: Optional[int] = MAX_PARAM_COLUMNS,
               metrics_limit: Optional[int] = MAX_METRIC_COLUMNS) -> str:
    """The sortable table of ``runs``: the run, status, start, duration, ranks, parameters, last metric values.

    Every parameter and metric has a column; those beyond ``params_limit`` parameters (the ones that differ
    first) and ``metrics_limit`` metrics (validation and test first), and the parameters with one value in
    every run, start hidden: the page's column chooser (runs.js) shows them.
    """
    seen, varying = _params_seen(runs)
    pcols, mcols = _param_order(seen, varying, None), _metric_columns([r.last for r in runs], None)
    # one value in every run: hidden at first, when there are two runs or more to tell apart
    constant = set(seen) - set(varying) if sum(r.readable for r in runs) > 1 else set()
    first_params = set(_param_order(seen, varying, params_limit))
    first_metrics = set(_metric_columns([r.last for r in runs], metrics_limit))
    several = len({r.experiment for r in runs}) > 1  # runs of several experiments (a comparison): named in full
    rows = []
    for run in runs:  # runs.js puts a tick box before each run's link (not sent: 1,000 rows parse sooner)
        name = run.key if several else run.run_dir.name
        link = f'<a href="{href("run", run.key)}">{html.escape(name)}</a>'
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
    head = [_th(c, c) for c in ("run", "status", "start", "duration", "ranks")]
    head += [_th(k, k, "constant" if k in constant else "" if k in first_params else "more") for k in pcols]
    head += [_th(f"{m} (last)", m, "" if m in first_metrics else "more") for m in mcols]
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return (f'<div class="scroll"><table class="sortable runs" id="{tid}"><thead><tr>{"".join(head)}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def experiments_fragment(store: Store, where: str = "") -> str:
    """The runs counted and every experiment's section of the runs list, its runs filtered by ``where``
    (``prov4ml ls --where``'s grammar); also what the list's filter box and live refresh fetch.

    A filter that does not parse, or names no field, is said in the page (``#filter-error``) above the whole list.
    """
    problem = ""
    try:
        sections = store.overview(LIST_NEWEST, where)
    except InvalidValueError as exc:
        problem = f'<p class="error" id="filter-error">{html.escape(str(exc))}</p>'
        sections, where = store.overview(LIST_NEWEST), ""
    if not sections:
        return (f'<p class="warning">No runs under {html.escape(str(store.root))} yet. Start one with '
                f"<code>prov4ml.start_run(..., provenance_save_dir=\"{html.escape(str(store.root))}\")</code>; "
                "this page shows it as soon as its first document is written.</p>")
    filtered = bool(where.strip())
    parts = [problem, _counted(sections, filtered)]
    for i, section in enumerate(sections):
        if filtered and not section.matching:
            continue
        parts.append(_section(section, f"runs-{i}", filtered))
    return "".join(parts)


def _counted(sections: Sequence[Section], filtered: bool) -> str:
    """``12 of 3,400 runs match the filter``, or ``1,000 of 10,000 runs shown``: the rows of the page, counted."""
    total = sum(s.total for s in sections)
    matching = sum(s.matching for s in sections)
    shown = sum(len(s.runs) for s in sections)
    text = f"{matching:,} of {_runs(total)} match the filter" if filtered else _runs(total)
    if shown < matching:
        text += f"; the newest {shown:,} shown (up to {LIST_NEWEST} of each experiment)"
    return (f'<p id="count" data-total="{total}" data-matching="{matching}" data-shown="{shown}">'
            f"{html.escape(text)}</p>")


def _runs(n: int) -> str:
    return f"{n:,} run{'s' * (n != 1)}"


def _section(section: Section, tid: str, filtered: bool) -> str:
    key, runs = section.key, section.runs
    title = _experiment_title(key, runs)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(section.counts.items()))
    more = ""
    if section.matching > len(runs):
        which = "matching runs" if filtered else "runs"
        more = (f'<p class="muted">the newest {len(runs)} of {section.matching:,} {which}; '
                f'<a href="{href("experiment", key)}">every run on the experiment page</a></p>')
    matching = f"{section.matching:,} of " if filtered else ""
    return (f'<section class="experiment" data-experiment="{html.escape(key)}">'
            f'<h2><a href="{href("experiment", key)}">{html.escape(title)}</a> '
            f'<span class="muted">{matching}{_runs(section.total)}: {html.escape(summary)}</span></h2>'
            f"{runs_table(runs, tid)}{more}</section>")


FILTER_HELP = ("FIELD OP VALUE, several joined by and; FIELD: run_id, status, start, duration, ranks, experiment, "
               "a parameter, or a metric (val_acc is its last value; val_acc.best, .min, .max, .mean, .count; "
               "loss/training names the context); OP: < <= > >= == !=")


def runs_list(store: Store, where: str = "") -> str:
    """The front page: the filter box, the tools of the runs tables (runs.js), every experiment's runs."""
    src = "/?" + urlencode({"fragment": 1, "where": where}) if where else "/?fragment=1"
    form = ('<form id="filter" action="/" method="get">'
            f'<input type="search" name="where" value="{html.escape(where)}" size="60" '
            f'placeholder="filter, e.g. lr&lt;0.01 and val_acc.best&gt;0.9" title="{html.escape(FILTER_HELP)}">'
            '<button type="submit">filter</button> <a href="/">clear</a></form>')
    body = (f'<h1>Experiments and runs</h1>{form}<div id="runs-tools"></div>'
            f'<div id="experiments" data-src="{html.escape(src)}">{experiments_fragment(store, where)}</div>')
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


