"""Self-contained HTML reports: one run (:func:`html_report`) and a whole experiment (:func:`experiment_report`).

Neither pandas nor matplotlib is needed: the runs are read with
:mod:`prov4ml.runs` (NumPy columns). A report is one file that needs nothing
else to display: inline CSS, the charts as JSON (:func:`~prov4ml.analysis.plots.plot_spec`)
drawn in the browser by the web UI's own plotting module and library, both
inlined (smoothing, log scale, x = step or time, hover values, zoom, PNG/SVG/CSV
downloads, as in ``prov4ml ui``), the provenance graph as inline SVG
(Graphviz), and a small inline script that sorts tables. Nothing is fetched.
Links to the run's files are relative to the report.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..provenance import files
from ..provenance.svg import INSTALL_HINT
from ._html import Raw, Sorted, fmt, format_duration, href, native, page, status_badge, table
from ._progress import Progress, steps
from .compare import Metrics, compare_rows, select_series, sweep_rows
from .load import PathLike, RunData, artifact_rows, read, run_dirs
from .plots import PALETTE, LineData, axis_label, line_data, plot_spec, series_units, spread_data

__all__ = ["html_report", "experiment_report", "graph_svg", "format_duration", "GRAPH_MAX_PER_KIND", "GRAPH_TIMEOUT_S"]

#: Elements of one kind drawn in the report's graph; the others become one "… N more" node.
GRAPH_MAX_PER_KIND = 10
GRAPH_TIMEOUT_S = 60.0

# Environment fields in the order shown, with their row titles; other recorded fields follow by their names.
ENV_FIELDS = (
    ("python", "Python"), ("torch", "torch"), ("lightning", "lightning"), ("pytorch-lightning", "pytorch-lightning"),
    ("numpy", "numpy"), ("executable", "Python executable"), ("host", "host"), ("host_platform", "platform"),
    ("host_machine", "machine"), ("host_cpu_count", "CPUs"), ("git_commit", "git commit"), ("git_branch", "git branch"),
    ("git_dirty", "git dirty (uncommitted changes)"), ("git_remote", "git remote"), ("git_root", "git root"),
    ("source", "source code"), ("command", "command"), ("packages", "packages installed"),
)
_ENV_HIDDEN = {"git_available", "git_reason", "host_system", "host_release", "host_python_implementation"}


# ---------------------------------------------------------------------------- graph
def graph_svg(prov_file: PathLike, max_per_kind: int = GRAPH_MAX_PER_KIND) -> Tuple[Optional[str], str]:
    """``(svg, note)``: the provenance graph of ``prov_file`` as an ``<svg>`` element, and what to say under it.

    Drawn by :func:`prov4ml.prov2dot.prov_to_dot` (at most ``max_per_kind``
    elements of a kind, the rest one summary node) and Graphviz's ``dot``.
    Without ``dot``, or when it fails or takes over ``GRAPH_TIMEOUT_S``, the
    svg is None and the note says why and what to do.
    """
    exe = shutil.which("dot")
    if exe is None:
        return None, f"The graph is not drawn: Graphviz's dot program is not on PATH; {INSTALL_HINT}, then write the report again."
    from ..provenance.dot import SUMMARY_STYLE, prov_to_dot

    dot = prov_to_dot(files.read_prov(prov_file), max_per_kind=max_per_kind).to_string()
    try:
        proc = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=GRAPH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, (f"The graph is not drawn: Graphviz took more than {GRAPH_TIMEOUT_S:.0f} s; draw it apart with "
                      "python -m prov4ml.prov2dot --no_attributes.")
    start = proc.stdout.find("<svg")
    if proc.returncode != 0 or start < 0:
        detail = " ".join(proc.stderr.split())[:200] or f"exit status {proc.returncode}"
        return None, f"The graph is not drawn: Graphviz failed ({detail})."
    svg = _fit_width(proc.stdout[start:])
    note = f"Graph of {Path(prov_file).name}."
    if SUMMARY_STYLE["style"] in dot:
        note += (f" At most {max_per_kind} elements of one kind are drawn; the others are one dashed “… N more” node "
                 "(python -m prov4ml.prov2dot --max_per_kind N draws more).")
    return svg, note


def _fit_width(svg: str) -> str:
    """Graphviz's SVG scaled to the page's width (never above its own size), its height following."""
    head, sep, rest = svg.partition(">")
    m = re.search(r'\swidth="([^"]+)"\s+height="[^"]+"', head)
    if m is None:
        return svg
    head = head[:m.start()] + f' class="prov-graph" width="100%" style="max-width:{m.group(1)}"' + head[m.end():]
    return head + sep + rest


# ---------------------------------------------------------------------------- run report
def html_report(run_dir: Union[PathLike, RunData], output: Optional[PathLike] = None, metrics: Metrics = None,
                progress: Progress = None) -> Path:
    """Write a self-contained HTML report of the run in ``run_dir`` and return its path.

    Default output: ``<run_dir>/report.html``, written atomically. It shows the
    status and any error, the run's times (durations in words), each rank
    (for a run of several), the environment recorded (Python, torch, host,
    git commit / branch / dirty, command), the parameters, the metric summary
    and a chart per series with its unit, the artifacts and model versions,
    and the provenance graph inline (needs Graphviz's ``dot``; a note
    otherwise). ``metrics``: only these series (names, ``name/context``, glob
    patterns). ``progress``: a ``(done, total, what)`` callback, ``False``
    for none, ``True`` or ``None`` for a rich bar (``None``: only on a
    terminal).
    """
    run = run_dir if isinstance(run_dir, RunData) and run_dir.record is not None else read(
        run_dir.run_dir if isinstance(run_dir, RunData) else run_dir, progress=progress, frames=False)
    out = Path(output) if output is not None else run.run_dir / "report.html"
    keys = sorted(select_series(_keys(run), metrics), key=_series_order)
    with steps(progress, len(keys) + 2, "report") as step:
        text = _render_run(run, out.parent, keys, metrics, step)
        written = files.write_output(out, text)
        step("written")
    return written


def _series_order(key: Tuple[Any, Any]) -> Tuple[str, str]:
    return str(key[0]), str(key[1])


def _keys(run: RunData) -> List[Tuple[Any, Any]]:
    """``(name, context)`` of every series of ``run`` (one per rank)."""
    return [(s.name, s.context) for s in run.record.series]


def _points(run: RunData) -> Dict[Tuple[Any, Any], List[Any]]:
    """``(name, context)`` -> the points of each of its ranks, in rank order (series without points left out)."""
    out: Dict[Tuple[Any, Any], List[Any]] = {}
    for p in sorted(run.points or (), key=lambda p: p.series.rank):
        if len(p):
            out.setdefault((p.series.name, p.series.context), []).append(p)
    return out


def _blank(value: Any) -> Any:
    """NaN as None: a blank cell, not "nan"."""
    return None if isinstance(value, float) and value != value else value


def _render_run(run: RunData, output_dir: Path, keys: List[Tuple[Any, Any]], metrics: Metrics, step) -> str:
    info = run.info
    status = str(info.get("status") or "unknown")
    multi = len(run.ranks) > 1
    title = f"{info.get('experiment') or run.run_dir.parent.name} — run {info.get('run_id')}"
    body = [f'<p>{status_badge(status)} <span class="muted">{html.escape(str(run.run_dir))}</span></p>']
    body += _errors(run)
    if info.get("needs_recovery"):
        body.append(
            f'<p class="warning">The process of rank(s) {", ".join(map(str, info["needs_recovery"]))} was killed before '
            f"end_run; this report shows the last refresh. Run <code>prov4ml recover {html.escape(str(run.run_dir))}</code> "
            "to complete the run from its journal.</p>"
        )
    body += ["<h2>Run</h2>", table(["field", "value"], _run_rows(info))]
    if multi:
        body += ["<h2>Ranks</h2>", table(["rank", "status", "start", "end", "duration", "host", "error"], _rank_rows(run), sortable=True)]
    body += ["<h2>Environment</h2>", _environment(run)]

    body.append("<h2>Parameters</h2>")
    exact = [(k, repr(v) if isinstance(v, float) else v) for k, v in run.params.items()]  # 6 digits are not enough here
    body.append(table(["name", "value"], exact, sortable=True) if run.params else '<p class="muted">none recorded</p>')

    body += ["<h2>Datasets</h2>", _datasets(run)]

    body.append("<h2>Metrics</h2>")
    body += _metrics(run, keys, metrics, multi, step)
    body.append("<h2>Artifacts and model versions</h2>")
    body.append(_artifacts(run, output_dir, multi))

    body.append("<h2>Provenance</h2>")
    links = []
    for rank, prov in run.prov_files.items():
        items = [f'<a href="{href(prov, output_dir)}">{html.escape(prov.name)}</a>']
        items += [f'<a href="{href(g, output_dir)}">{html.escape(g.name)}</a>'
                  for g in (prov.with_suffix(".svg"), prov.with_suffix(".dot")) if g.is_file()]
        links.append(f"<li>rank {rank}: {' · '.join(items)}</li>")
    body.append(f"<ul>{''.join(links)}</ul>")
    lowest = run.prov_files[run.ranks[0]]
    svg, note = graph_svg(lowest)
    if svg is not None:
        body.append(f'<div class="graph">{svg}</div>')
    if multi:
        note += f" Rank {run.ranks[0]}'s document; the other ranks' are linked above."
    body.append(f'<p class="muted">{html.escape(note)}</p>')
    step("graph")
    return page(title, body, script=True, plots=True)


def _errors(run: RunData) -> List[str]:
    failed = [(rank, i) for rank, i in run.rank_info.items() if i.get("error_type")]
    out = []
    for rank, i in failed:
        where = f" (rank {rank})" if len(run.ranks) > 1 else ""
        message = f": {i['error_message']}" if i.get("error_message") else ""
        out.append(f'<div class="error"><strong>{html.escape(str(i["error_type"]))}</strong>{html.escape(message + where)}</div>')
    return out


def _run_rows(info: Dict[str, Any]) -> List[Tuple[str, Any]]:
    rows: List[Tuple[str, Any]] = []
    for key in ("run_id", "experiment", "status", "start_time", "end_time", "duration_s", "ranks", "user", "host",
                "command", "error_type", "error_message"):
        value = info.get(key)
        if value in (None, "", []):
            continue
        rows.append(("duration", format_duration(value)) if key == "duration_s" else (key, value))
    skip = {k for k, _ in rows} | {"duration_s", "final_metrics", "final_folds", "recorded_dir", "needs_recovery"}
    rows += [(k, v) for k, v in info.items() if k not in skip and v not in (None, "")]
    for name, value in (info.get("final_metrics") or {}).items():
        fold = (info.get("final_folds") or {}).get(name)
        rows.append((f"final {name}" + (f" ({fold})" if fold else ""), value))
    return rows


def _rank_rows(run: RunData) -> List[Tuple[Any, ...]]:
    rows = []
    for rank, i in run.rank_info.items():
        start, end = i.get("start_time"), i.get("end_time")
        seconds = (end - start).total_seconds() if start is not None and end is not None else None
        error = ": ".join(str(x) for x in (i.get("error_type"), i.get("error_message")) if x)
        rows.append((rank, i.get("status"), start, end, Sorted(format_duration(seconds), seconds), i.get("host"), error))
    return rows


def _environment(run: RunData) -> str:
    envs = run.rank_environment
    if not any(envs.values()):
        return '<p class="muted">none recorded</p>'
    keys = [k for k, _ in ENV_FIELDS] + [k for e in envs.values() for k in e if k not in dict(ENV_FIELDS) and k not in _ENV_HIDDEN]
    titles = dict(ENV_FIELDS)
    ranks = list(envs)
    differ = len(ranks) > 1 and any(len({repr(e.get(k)) for e in envs.values()}) > 1 for k in keys)
    shown = ranks if differ else ranks[:1]
    rows = []
    lead = envs[ranks[0]]
    if lead.get("git_available") is False:
        rows.append(("git", *[f"not available: {envs[r].get('git_reason')}" for r in shown]))
    for key in dict.fromkeys(keys):
        values = [envs[r].get(key) for r in shown]
        if all(v in (None, "") for v in values):
            continue
        rows.append((titles.get(key, key), *values))
    columns = ["field", *([f"rank {r}" for r in shown] if differ else ["value"])]
    captured = any(k != "command" for e in envs.values() for k in e)
    note = "" if captured else '<p class="muted">Only the command: the run was started with capture=False.</p>'
    return table(columns, rows) + note


def _metrics(run: RunData, keys: List[Tuple[Any, Any]], metrics: Metrics, multi: bool, step) -> List[str]:
    if not run.record.series:
        return ['<p class="muted">no metric recorded</p>']
    total = len(set(_keys(run)))
    out = []
    if metrics is not None:
        chosen = ", ".join(html.escape(str(m)) for m in ([metrics] if isinstance(metrics, str) else metrics))
        out.append(f'<p class="muted">{len(keys)} of {total} series (metrics: {chosen}).</p>')
    wanted = set(keys)
    summary = sorted((s for s in run.record.series if (s.name, s.context) in wanted),
                     key=lambda s: (str(s.name), str(s.context), s.rank))
    cols = ["name", "context", "rank", "unit", "count", "min", "max", "last", "mean", "nan_count", "first_step", "last_step"]
    if not multi:
        cols.remove("rank")
    out.append(table(cols, ([_blank(getattr(s, c)) for c in cols] for s in summary), sortable=True))
    figures = []
    groups = _points(run)
    units = series_units([run])
    for name, context in keys:
        points = groups.get((name, context))
        if points is not None:
            lines = [line_data(p, f"rank {p.series.rank}") for p in points]
            figures.append(_figure(lines, f"{name} ({context})", axis_label(name, units.get((name, context)))))
        step(f"{name} ({context})")
    out.append(f'<div class="plots">{"".join(figures)}</div>')
    return out


def _figure(lines: Sequence[LineData], title: str, ylabel: str) -> str:
    """A chart the page's plotting module draws from its JSON spec; its caption says how the lines were made."""
    spec = json.dumps(plot_spec(lines, title, ylabel), allow_nan=False).replace("</", "<\\/")
    notes = sorted({line.note for line in lines if line.note})
    hidden = sum(int((~np.isfinite(line.y)).sum()) for line in lines)
    if hidden:
        notes.append(f"{hidden} NaN or infinite value(s) not drawn")
    legend = ""
    if len(lines) > 1:
        legend = "".join(f'<span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{html.escape(line.label)}'
                         for i, line in enumerate(lines))
        legend = f"<br>{legend}"
    caption = html.escape(title + (": " + "; ".join(notes) if notes else ""))
    return (f'<figure class="plot p4fig"><script type="application/json" class="p4spec">{spec}</script>'
            f"<figcaption>{caption}{legend}</figcaption></figure>")


def _datasets(run: RunData) -> str:
    """Each dataset: its label, size in samples and bytes, batch size, location and digest."""
    found = run.record.datasets
    if not found:
        return '<p class="muted">none recorded</p>'
    rows = [(d.get("label"), d.get("context"), d.get("size"), d.get("size_bytes"), d.get("batch_size"), d.get("location"),
             Raw(f"<code>{html.escape(str(d.get('sha256') or d.get('digest'))[:12])}</code>") if d.get("sha256") or d.get("digest") else "")
            for d in found]
    return table(["label", "context", "samples", "bytes", "batch size", "location", "sha256"], rows, sortable=True)


def _artifacts(run: RunData, output_dir: Path, multi: bool) -> str:
    found = artifact_rows(run.record)
    if not found:
        return '<p class="muted">none recorded</p>'
    rows = []
    for a in found:
        loc, sha256 = a["location"], a["sha256"]
        link = Raw(f'<a href="{href(run.run_dir / loc, output_dir)}">{html.escape(str(loc))}</a>') if isinstance(loc, str) and loc else ""
        sha = Raw(f"<code>{html.escape(sha256[:12])}</code>") if isinstance(sha256, str) else ""
        rows.append(((a["rank"],) if multi else ()) + (a["kind"], a["name"], link, a["model_name"], a["version"], a["step"],
                                                       a["context"], a["size_bytes"], sha))
    cols = ["kind", "name", "location", "model", "version", "step", "context", "bytes", "sha256"]
    return table((["rank"] if multi else []) + cols, rows, sortable=True)


# ---------------------------------------------------------------------------- experiment report
def experiment_report(experiment_dir: PathLike, output: Optional[PathLike] = None, metrics: Metrics = None,
                      progress: Progress = None) -> Path:
    """Write a self-contained HTML report of every run of ``experiment_dir`` and return its path.

    Default output: ``<experiment_dir>/report.html``, written atomically. It
    holds every run in a table sorted by clicking a header (status, start,
    duration, ranks, parameters, final metrics, the last value of each
    series), for a sweep (runs sharing a configuration, see
    :func:`~prov4ml.analysis.sweep_summary`) the mean ± std of each series per
    configuration, and a chart per series with a line per run. ``metrics`` and
    ``progress`` as for :func:`html_report`.
    """
    experiment_dir = Path(experiment_dir)
    dirs = run_dirs(experiment_dir)
    runs = []
    with steps(progress, len(dirs), "loading runs") as step:
        for d in dirs:
            runs.append(read(d, frames=False))
            step(d.name)
    out = Path(output) if output is not None else experiment_dir / "report.html"
    all_keys = {k for r in runs for k in _keys(r)}
    keys = sorted(select_series(all_keys, metrics), key=_series_order)
    with steps(progress, len(keys) + 1, "experiment report") as step:
        text = _render_experiment(experiment_dir, runs, out.parent, keys, step)
        written = files.write_output(out, text)
        step("written")
    return written


def _render_experiment(experiment_dir: Path, runs: List[RunData], output_dir: Path, keys: List[Tuple[Any, Any]], step) -> str:
    name = runs[0].experiment or experiment_dir.name
    counts = Counter(str(r.info.get("status") or "unknown") for r in runs)
    body = [
        f"<p>{len(runs)} run(s): " + " ".join(f"{status_badge(s)} {n}" for s, n in sorted(counts.items()))
        + f' <span class="muted">{html.escape(str(experiment_dir))}</span></p>',
        "<h2>Runs</h2>",
        '<p class="muted">Click a column header to sort by it.</p>',
        _runs_table(runs, output_dir, keys),
    ]
    multi = any(len(r.ranks) > 1 for r in runs)
    units = series_units(runs)
    grouped: Dict[Tuple[Any, Any], List[Tuple[RunData, Any]]] = {}
    for r in runs:
        for key, points in _points(r).items():
            grouped.setdefault(key, []).append((r, points))
    sweep = sweep_rows(runs, [f"{n}/{c}" for n, c in keys])
    configs = _configurations(sweep) if any(row["runs"] > 1 for row in sweep) else {}
    overlays, spreads = [], []
    for key in keys:
        title, ylabel = f"{key[0]} ({key[1]})", axis_label(key[0], units.get(key))
        lines, per_config = [], {}
        for r, points in grouped.get(key, []):
            for p in points:
                rank = p.series.rank
                lines.append(line_data(p, f"run {r.run_id}" + (f" rank {rank}" if multi else "")))
                if rank == r.ranks[0] and r.run_id in configs:
                    per_config.setdefault(configs[r.run_id], []).append(lines[-1])
        if lines:
            overlays.append(_figure(lines, title, ylabel))
        if per_config:
            spreads.append(_figure([spread_data(v, label) for label, v in per_config.items()], title, ylabel))
        step(title)
    if configs:
        body += ["<h2>Sweep: mean ± std per configuration</h2>",
                 '<p class="muted">Runs with equal parameters (all but sweep.* and seed) are repetitions of one '
                 "configuration: mean ± sample standard deviation of each series' last value, and of each step "
                 "in the charts (the lowest rank of each run).</p>",
                 _sweep_table(sweep, keys), f'<div class="plots">{"".join(spreads)}</div>']
    body.append("<h2>Metrics across runs</h2>")
    body.append(f'<div class="plots">{"".join(overlays)}</div>' if overlays else '<p class="muted">no metric recorded</p>')
    return page(f"{name} — {len(runs)} run(s)", body, script=True, plots=True)


def _runs_table(runs: List[RunData], output_dir: Path, keys: List[Tuple[Any, Any]]) -> str:
    cmp = compare_rows(runs, [f"{n}/{c}" for n, c in keys], stats=("last",))
    present = {c for row in cmp for c in row}
    params = list(dict.fromkeys(k for r in runs for k in r.params))
    finals = list(dict.fromkeys(k for r in runs for k in (r.info.get("final_metrics") or {})))
    series = [c for c in (f"{n}/{c}/last" for n, c in keys) if c in present]
    columns = ["run", "status", "start", "duration", "ranks", *params, *[f"final {k}" for k in finals],
               *[c[: -len("/last")] for c in series]]
    rows = []
    for r, row in zip(runs, cmp):
        report = r.run_dir / "report.html"
        target = report if report.is_file() else r.prov_files[r.ranks[0]]
        link = Raw(f'<a href="{href(target, output_dir)}">{html.escape(str(r.run_id))}</a>')
        seconds = r.info.get("duration_s")
        rows.append((Sorted(link, r.run_id), r.info.get("status"), r.info.get("start_time"),
                     Sorted(format_duration(seconds), seconds), len(r.ranks),
                     *[r.params.get(k) for k in params], *[(r.info.get("final_metrics") or {}).get(k) for k in finals],
                     *[row.get(c, math.nan) for c in series]))
    return table(columns, rows, sortable=True)


def _columns(sweep: List[Dict[str, Any]]) -> List[str]:
    return list(dict.fromkeys(c for row in sweep for c in row))


def _params(sweep: List[Dict[str, Any]]) -> List[str]:
    return [c for c in _columns(sweep) if c not in ("runs", "run_ids") and not c.endswith(("/mean", "/std"))]


def _configurations(sweep: List[Dict[str, Any]]) -> Dict[Any, str]:
    """Run id -> the label of its configuration: the parameters that differ between configurations."""
    params = _params(sweep)
    varying = [c for c in params if len({str(row.get(c, math.nan)) for row in sweep}) > 1]
    labels = {}
    for row in sweep:
        label = ", ".join(f"{c}={fmt(row.get(c))}" for c in varying) or "all runs"
        labels.update((run_id, label) for run_id in row["run_ids"])
    return labels


def _sweep_table(sweep: List[Dict[str, Any]], keys: List[Tuple[Any, Any]]) -> str:
    value_cols = [c[: -len("/mean")] for c in _columns(sweep) if c.endswith("/mean")]
    params = _params(sweep)
    rows = []
    for row in sweep:
        cells: List[Any] = [row.get(c) for c in params] + [row["runs"], ", ".join(map(str, row["run_ids"]))]
        for col in value_cols:
            mean, std = native(row.get(f"{col}/mean", math.nan)), native(row.get(f"{col}/std", math.nan))
            text = fmt(mean) + ("" if std is None or std != std else f" ± {fmt(std)}")
            cells.append(Sorted(html.escape(text), mean if mean == mean else None))
        rows.append(cells)
    return table([*params, "runs", "run ids", *value_cols], rows, sortable=True)
