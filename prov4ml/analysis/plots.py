"""Metric plots: the numbers a line is drawn from, matplotlib Axes, and light inline SVG charts.

A series may hold several points at one step: a common pattern logs every
batch with ``step=epoch``. Drawn against the step, such points make
vertical saw-teeth, so :func:`line_data` detects them and, by default,
aggregates per step (the mean, with the min–max band); ``same_step="order"``
draws every point against its position in the log instead. Either way the
plot says which was done.

:func:`plot_metric` draws with matplotlib (the ``analysis`` extra) on an Agg
figure, leaving pyplot alone. :func:`plot_spec` is what the HTML reports
embed for the browser: the lines as JSON, drawn by the same plotting module
as the web UI (``prov4ml/ui/static/plot.js``), long lines cut to every
bucket's min and max by :func:`minmax_indices` (the UI's server decimates
with it too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .._optional import require
from ..exceptions import InvalidValueError
from .load import ExperimentData, RunData, _pandas, experiment_data, runs_of

__all__ = ["LineData", "line_data", "spread_data", "plot_metric", "plot_spec", "minmax_indices", "axis_label",
           "SAME_STEP", "PALETTE", "BUCKETS"]

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
    ``time``: each drawn point's wall time (seconds since the epoch) where
    each is one logged point (modes ``"step"`` and ``"order"``).
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    mode: str
    points: int
    low: Optional[np.ndarray] = None
    high: Optional[np.ndarray] = None
    count: Optional[np.ndarray] = None
    time: Optional[np.ndarray] = None

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
    times = _column(points, "time", len(values))
    if same_step == "order":
        return LineData(label, np.arange(len(values), dtype="float64"), values, "order", len(values), time=times)
    order = np.argsort(steps, kind="stable")
    x, starts, _counts = np.unique(steps[order], return_index=True, return_counts=True)
    if len(x) == len(steps):
        return LineData(label, steps[order].astype("float64"), values[order], "step", len(values),
                        time=None if times is None else times[order])
    mean, low, high, count = _per_group(values[order], starts)
    return LineData(label, x.astype("float64"), mean, "step mean", len(values), low=low, high=high, count=count)


def _column(points: Any, name: str, n: int) -> Optional[np.ndarray]:
    try:
        col = np.asarray(points[name], dtype="float64")
    except (KeyError, TypeError, ValueError):
        return None
    return col if len(col) == n else None


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


# ---------------------------------------------------------------------------- the browser's plots
BUCKETS = 1000  # runs of consecutive points a long line is cut to: up to 4 points each (first, last, min, max)


def minmax_indices(values: np.ndarray, buckets: int = BUCKETS) -> np.ndarray:
    """The sorted indices to keep of ``values``: per bucket of consecutive points the first, the last,
    the lowest and the highest (NaN never wins a min or a max); all of them when there are few.

    A plot shows at most a low and a high value per pixel column, so a line drawn
    from these has the same spikes, both ways, as the whole one, and its minimum
    and maximum are exactly the whole line's.
    """
    n = len(values)
    if n <= 4 * buckets:
        return np.arange(n)
    size = -(-n // buckets)
    full = n // size * size
    v = np.asarray(values, dtype="float64")
    nan = np.isnan(v)
    low, high = np.where(nan, np.inf, v), np.where(nan, -np.inf, v)
    starts = np.arange(0, full, size)
    keep = [starts, starts + size - 1,
            starts + low[:full].reshape(-1, size).argmin(1), starts + high[:full].reshape(-1, size).argmax(1)]
    if full < n:  # the last, shorter bucket
        keep.append(np.array([full, n - 1, full + int(low[full:].argmin()), full + int(high[full:].argmax())]))
    return np.unique(np.concatenate(keep))


def _numbers(a: Optional[np.ndarray], keep: np.ndarray) -> Optional[list]:
    if a is None:
        return None
    a = np.asarray(a, dtype="float64")[keep]
    return [float(v) if np.isfinite(v) else None for v in a.tolist()]


def plot_spec(lines: Sequence[LineData], title: str, ylabel: str, buckets: int = BUCKETS) -> Dict[str, Any]:
    """What the browser's plotting module (``plot.js``, shared with the web UI) draws of ``lines``: a JSON-able
    dict ``{title, ylabel, series: [{label, color, x, y, lo?, hi?, t?, total}]}``, NaN as None.
    Lines longer than ``4 * buckets`` points are cut to :func:`minmax_indices` of their values and band."""
    series = []
    for i, line in enumerate(lines):
        keep = minmax_indices(line.y, buckets)
        if len(keep) < len(line.y) and line.low is not None and line.high is not None:
            keep = np.union1d(keep, np.union1d(minmax_indices(line.low, buckets), minmax_indices(line.high, buckets)))
        s: Dict[str, Any] = {"label": line.label, "color": PALETTE[i % len(PALETTE)], "x": _numbers(line.x, keep),
                             "y": _numbers(line.y, keep), "total": len(line.y), "run": line.label}
        if line.low is not None and line.high is not None:
            s["lo"], s["hi"] = _numbers(line.low, keep), _numbers(line.high, keep)
        if line.time is not None:
            s["t"] = _numbers(line.time, keep)
        series.append(s)
    return {"title": title, "ylabel": ylabel, "series": series}
