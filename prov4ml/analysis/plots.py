"""Metric plots: the numbers a line is drawn from, matplotlib Axes, and light inline SVG charts.

A series may hold several points at one step: a common pattern logs every
batch with ``step=epoch``. Drawn against the step, such points make
vertical saw-teeth, so :func:`line_data` detects them and, by default,
aggregates per step (the mean, with the min–max band); ``same_step="order"``
draws every point against its position in the log instead. Either way the
plot says which was done.

:func:`plot_metric` draws with matplotlib (the ``analysis`` extra) on an Agg
figure, leaving pyplot alone. :func:`svg_chart` writes a small SVG by hand
(no matplotlib, a few milliseconds a chart) for the HTML reports.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..exceptions import InvalidValueError
from .load import ExperimentData, RunData, _pandas, experiment_data, runs_of

__all__ = ["LineData", "line_data", "spread_data", "plot_metric", "svg_chart", "axis_label", "SAME_STEP", "PALETTE"]

#: What to do with points that share a step: "aggregate" (mean, min–max band) or "order" (by position).
SAME_STEP = ("aggregate", "order")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


@dataclass
class LineData:
    """What one line of a plot is drawn from.

    ``x`` and ``y`` are the drawn coordinates. ``mode`` says what they are:
    ``"step"`` (each point at its step; no two share one), ``"step mean"``
    (several points shared a step: ``y`` is their mean, ``low``/``high``
    their min and max, ``count`` how many), ``"order"`` (``x`` is the
    point's position in the log, 0, 1, ...) or ``"runs mean"`` (the mean over
    several runs' lines at each step, ``low``/``high`` the mean ∓ their
    standard deviation, ``count`` how many runs). ``points``: the logged points.
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    mode: str
    points: int
    low: Optional[np.ndarray] = None
    high: Optional[np.ndarray] = None
    count: Optional[np.ndarray] = None

    @property
    def note(self) -> str:
        """How the line was made, in words (for a caption or an axis)."""
        if self.mode == "step mean":
            most = int(self.count.max()) if self.count is not None and len(self.count) else 0
            return f"several points per step (up to {most}): mean per step, band min–max"
        if self.mode == "order":
            return "points in logged order"
        if self.mode == "runs mean":
            return "mean over the runs at each step, band ± standard deviation"
        return ""


def line_data(points: Any, label: str = "", same_step: str = "aggregate") -> LineData:
    """The line of ``points`` (a frame, or :class:`prov4ml.runs.Points`, with ``step`` and ``value``
    columns, in logged order).

    Steps that repeat are aggregated per step (``same_step="aggregate"``:
    mean, min and max of the values logged at that step, NaN left out) or the
    points are placed by their order (``"order"``); unique steps are drawn as
    they are, sorted by step.
    """
    if same_step not in SAME_STEP:
        raise InvalidValueError(f"same_step={same_step!r}; known: {', '.join(SAME_STEP)}")
    steps = np.asarray(points["step"])
    values = np.asarray(points["value"], dtype="float64")
    if same_step == "order":
        return LineData(label, np.arange(len(values), dtype="float64"), values, "order", len(values))
    order = np.argsort(steps, kind="stable")
    x, starts, _counts = np.unique(steps[order], return_index=True, return_counts=True)
    if len(x) == len(steps):
        return LineData(label, steps[order].astype("float64"), values[order], "step", len(values))
    mean, low, high, count = _per_group(values[order], starts)
    return LineData(label, x.astype("float64"), mean, "step mean", len(values), low=low, high=high, count=count)


def _per_group(values: np.ndarray, starts: np.ndarray):
    """Mean, min, max and count of the non-NaN ``values`` of each group (groups start at ``starts``)."""
    valid = ~np.isnan(values)
    count = np.add.reduceat(valid.astype("int64"), starts)
    total = np.add.reduceat(np.where(valid, values, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    with np.errstate(invalid="ignore"):
        low = np.fmin.reduceat(values, starts)
        high = np.fmax.reduceat(values, starts)
    return mean, low, high, count


def spread_data(lines: Sequence[LineData], label: str = "") -> LineData:
    """The mean of ``lines`` (the runs of one configuration) at each x, with a band of ± their sample
    standard deviation (``statistics.stdev``; no band where only one run has a value)."""
    xs = np.concatenate([line.x for line in lines]) if lines else np.empty(0)
    ys = np.concatenate([line.y for line in lines]) if lines else np.empty(0)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    x, starts = np.unique(xs, return_index=True)
    if not len(x):
        empty = np.empty(0)
        return LineData(label, empty, empty, "runs mean", 0, low=empty, high=empty, count=np.empty(0, "int64"))
    mean, _low, _high, count = _per_group(ys, starts)
    valid = ~np.isnan(ys)
    group = np.repeat(np.arange(len(x)), np.diff(np.r_[starts, len(ys)]))
    squares = np.where(valid, (ys - mean[group]) ** 2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(count > 1, np.sqrt(np.add.reduceat(squares, starts) / np.maximum(count - 1, 1)), 0.0)
    std = np.nan_to_num(std)
    return LineData(label, x.astype("float64"), mean, "runs mean", sum(line.points for line in lines),
                    low=mean - std, high=mean + std, count=count)


def axis_label(name: Any, unit: Any = None) -> str:
    """``name [unit]``, or the name alone when no unit was recorded."""
    return f"{name} [{unit}]" if isinstance(unit, str) and unit else str(name)


def x_label(lines: Sequence[LineData]) -> str:
    return "point (logged order)" if any(line.mode == "order" for line in lines) else "step"


# ---------------------------------------------------------------------------- matplotlib
def _long_frame(data: Any, pd):
    """The long-format metric points (with a run_id column) of ``data``."""
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, ExperimentData):
        frame = data.metrics
    else:
        where = Path(data) if isinstance(data, (str, os.PathLike)) else Path(".")
        frame = experiment_data(where, runs_of(data)).metrics
    missing = [c for c in ("name", "step", "value") if c not in frame.columns]
    if missing:
        raise InvalidValueError(f"the frame lacks the column(s) {', '.join(missing)}; give RunData.metrics or ExperimentData.metrics")
    return frame


def series_units(runs: Sequence[RunData]) -> Dict[Tuple[Any, Any], str]:
    """``(name, context) -> unit`` of the series that recorded one (the first run's, where runs differ)."""
    units: Dict[Tuple[Any, Any], str] = {}
    for run in runs:
        for s in (run.record.series if run.record is not None else ()):
            if isinstance(s.unit, str) and s.unit:
                units.setdefault((s.name, s.context), s.unit)
    return units


def _figure(figsize: Tuple[float, float] = (6.4, 3.6)):
    """A Figure on the Agg canvas, without pyplot (no global figure manager, no backend switch)."""
    require("matplotlib", "analysis", "prov4ml.analysis plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


_LABELS = {"run_id": lambda v: f"run {v}", "context": str, "rank": lambda v: f"rank {v}"}


def plot_metric(data: Any, name: str, context: Optional[str] = None, ax: Any = None, same_step: str = "aggregate"):
    """Draw ``name`` (in ``context``, else every context) against the step, a line per run, context and rank.

    ``data``: a :class:`RunData`, an :class:`ExperimentData`, a list of RunData,
    a run or experiment directory, or a metrics DataFrame. ``ax``: the Axes to
    draw on (``plt.gca()`` in a notebook); by default a new Agg figure's, saved
    with ``ax.figure.savefig(path)``. Points sharing a step are drawn as their
    mean with a min–max band, or by their order (``same_step="order"``; see
    :func:`line_data`); the x label says which. The y label carries the
    series' unit where one was recorded. Returns the Axes.
    """
    pd = _pandas("prov4ml.analysis.plot_metric")
    require("matplotlib", "analysis", "prov4ml.analysis.plot_metric")
    if same_step not in SAME_STEP:
        raise InvalidValueError(f"same_step={same_step!r}; known: {', '.join(SAME_STEP)}")
    frame = _long_frame(data, pd)
    sel = frame[frame["name"] == name]
    if context is not None:
        sel = sel[sel["context"] == str(context)] if "context" in sel.columns else sel.iloc[0:0]
    if sel.empty:
        known = sorted(frame["name"].dropna().unique()) if context is None else sorted(
            frame.loc[frame["name"] == name, "context"].dropna().unique()) if "context" in frame.columns else []
        what = "metrics" if context is None or not known else f"contexts of {name!r}"
        raise InvalidValueError(
            f"no points of {name!r}" + ("" if context is None else f" in context {str(context)!r}")
            + f"; {what}: {', '.join(map(str, known)) or '(none)'}"
        )
    if ax is None:
        ax = _figure().add_subplot()
    keys = [k for k in ("run_id", "context", "rank") if k in sel.columns]
    varying = [k for k in keys if sel[k].nunique(dropna=False) > 1]
    groups = sel.groupby(keys, sort=True, dropna=False) if keys else [((), sel)]
    lines = []
    for key, points in groups:
        key = key if isinstance(key, tuple) else (key,)
        parts = dict(zip(keys, key))
        line = line_data(points, ", ".join(_LABELS[k](parts[k]) for k in varying) or name, same_step)
        (drawn,) = ax.plot(line.x, line.y, label=line.label, marker="." if len(line.x) < 30 else None)
        if line.mode == "step mean":
            ax.fill_between(line.x, line.low, line.high, color=drawn.get_color(), alpha=0.2, linewidth=0)
        lines.append(line)
    from matplotlib.ticker import MaxNLocator

    notes = sorted({line.note for line in lines if line.note})
    ax.set_xlabel(x_label(lines) + (f" ({'; '.join(notes)})" if notes else ""))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    runs = data.runs if isinstance(data, ExperimentData) else [data] if isinstance(data, RunData) else []
    units = {u for (n, c), u in series_units(runs).items() if n == name and (context is None or c == str(context))}
    ax.set_ylabel(axis_label(name, units.pop() if len(units) == 1 else None))
    ax.set_title(name if context is None else f"{name} ({context})")
    if varying:
        ax.legend(fontsize="small")
    return ax


# ---------------------------------------------------------------------------- SVG
_W, _H = 480, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 14, 26, 40


def svg_chart(lines: Sequence[LineData], title: str, ylabel: str, width: int = _W, height: int = _H) -> str:
    """A line chart of ``lines`` as an ``<svg>`` element (colours from :data:`PALETTE`, in order).

    Long lines are thinned to at most two points (min and max) per pixel
    column, which keeps the shape and the extremes; non-finite values are
    not drawn. A line with ``low`` and ``high`` gets its band.
    """
    pw, ph = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    finite = [a[np.isfinite(a)] for line in lines for a in (line.y, line.low, line.high) if a is not None]
    ys = np.concatenate(finite) if finite else np.empty(0)
    xs = np.concatenate([line.x for line in lines]) if lines else np.empty(0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">',
        f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" class="t">{_esc(title)}</text>',
    ]
    if not len(ys) or not len(xs):
        out.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" class="m">no finite value</text></svg>')
        return "".join(out)
    x0, x1 = _span(float(xs.min()), float(xs.max()))
    y0, y1 = _span(float(ys.min()), float(ys.max()))
    xt, yt = _ticks(x0, x1, 6, integer=True), _ticks(y0, y1, 5)
    x0, x1 = min(x0, xt[0]), max(x1, xt[-1])
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])

    def px(x):
        return _LEFT + (np.asarray(x, dtype="float64") - x0) / (x1 - x0) * pw

    def py(y):
        return _TOP + (1 - (np.asarray(y, dtype="float64") - y0) / (y1 - y0)) * ph

    out.append('<g class="grid">')
    out += [f'<line x1="{_LEFT}" x2="{_LEFT + pw}" y1="{v:.1f}" y2="{v:.1f}"/>' for v in py(yt)]
    out.append("</g>")
    out += [f'<text x="{_LEFT - 5}" y="{v + 3.5:.1f}" text-anchor="end">{_tick(t)}</text>' for t, v in zip(yt, py(yt))]
    out += [f'<text x="{v:.1f}" y="{_TOP + ph + 14}" text-anchor="middle">{_tick(t)}</text>' for t, v in zip(xt, px(xt))]
    out.append(f'<rect class="frame" x="{_LEFT}" y="{_TOP}" width="{pw}" height="{ph}"/>')
    out.append(f'<text x="{_LEFT + pw / 2:.0f}" y="{height - 6}" text-anchor="middle">{_esc(x_label(lines))}</text>')
    out.append(f'<text transform="translate(13 {_TOP + ph / 2:.0f}) rotate(-90)" text-anchor="middle">{_esc(ylabel)}</text>')
    for i, line in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        if line.low is not None and line.high is not None:
            ok = np.isfinite(line.low) & np.isfinite(line.high)
            bx, blo, bhi = _thin_band(px(line.x[ok]), py(line.low[ok]), py(line.high[ok]), pw)
            if len(bx):
                ring = np.concatenate([np.stack([bx, bhi], 1), np.stack([bx, blo], 1)[::-1]])
                out.append(f'<path class="band" fill="{colour}" d="M{_coords(ring)}Z"/>')
        ok = np.isfinite(line.y)
        lx, ly = _thin(px(line.x[ok]), py(line.y[ok]), pw)
        tip = f"<title>{_esc(line.label)}</title>" if line.label else ""
        if len(lx) < 30:
            out.append(f'<g fill="{colour}">' + "".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2"/>' for a, b in zip(lx, ly)) + "</g>")
        if len(lx) > 1:
            out.append(f'<path class="line" stroke="{colour}" d="M{_coords(np.stack([lx, ly], 1))}">{tip}</path>')
    out.append("</svg>")
    return "".join(out)


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _span(lo: float, hi: float) -> Tuple[float, float]:
    if hi > lo:
        return lo, hi
    pad = abs(lo) * 0.05 or 0.5  # one value: centre it
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, n: int, integer: bool = False) -> np.ndarray:
    """About ``n`` round tick values (1, 2, 5 times a power of ten) covering ``[lo, hi]``."""
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.floor(lo / step) * step
    count = int(math.ceil((hi - first) / step - 1e-9)) + 1
    return first + step * np.arange(count)


def _tick(value: float) -> str:
    return format(float(value), ".4g").replace("e+0", "e").replace("e-0", "e-")


def _coords(xy: np.ndarray) -> str:
    return "L".join(f"{a:.1f},{b:.1f}" for a, b in xy)


def _columns(x: np.ndarray, width: int) -> Optional[np.ndarray]:
    """The start index of each pixel column of the sorted ``x``, or None when thinning is not needed."""
    if len(x) <= 2 * width:
        return None
    col = np.floor(x).astype("int64")
    return np.flatnonzero(np.r_[True, col[1:] != col[:-1]])


def _thin(x: np.ndarray, y: np.ndarray, width: int) -> Tuple[np.ndarray, np.ndarray]:
    starts = _columns(x, width)
    if starts is None:
        return x, y
    lo, hi = np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)
    return np.repeat(x[starts], 2), np.stack([lo, hi], 1).ravel()


def _thin_band(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, width: int):
    starts = _columns(x, width)
    if starts is None:
        return x, lo, hi
    # Screen y grows downwards: the band's top edge is the smallest y of a column, its bottom the largest.
    return x[starts], np.maximum.reduceat(lo, starts), np.minimum.reduceat(hi, starts)
