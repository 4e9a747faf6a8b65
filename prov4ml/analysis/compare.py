"""Runs side by side: one row per run, the series a user picks, sweeps as mean ± std per configuration."""

from __future__ import annotations

import math
import statistics
from fnmatch import fnmatchcase
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from ..exceptions import InvalidValueError
from .load import RunData, RunsLike, _pandas, runs_of

__all__ = ["compare_runs", "compare_rows", "sweep_summary", "sweep_rows", "select_series", "configuration", "COMPARE_STATS", "STATS"]

COMPARE_STATS = ("last", "min", "max")
STATS = ("count", "last", "max", "mean", "min")
#: Parameters that tell repetitions of one configuration apart rather than define it.
REPETITION_PARAMS = ("seed",)
_SWEEP_PREFIX = "sweep."  # the bookkeeping parameters prov4ml.sweep logs per trial

Metrics = Optional[Union[str, Iterable[str]]]


def select_series(keys: Iterable[Tuple[Any, Any]], metrics: Metrics) -> Set[Tuple[Any, Any]]:
    """The ``(name, context)`` of ``keys`` that ``metrics`` chooses (all of them for None).

    Each entry of ``metrics`` is a metric name or ``name/context``, and may be
    a glob pattern (``"loss*"``, ``"*/validation"``, ``"gpu?_*"``); one that
    matches no series is an error listing the known names.
    """
    keys = set(keys)
    if metrics is None:
        return keys
    patterns = [metrics] if isinstance(metrics, str) else list(metrics)
    chosen: Set[Tuple[Any, Any]] = set()
    unmatched = []
    for pattern in patterns:
        hits = {k for k in keys if pattern in (str(k[0]), f"{k[0]}/{k[1]}")
                or fnmatchcase(str(k[0]), pattern) or fnmatchcase(f"{k[0]}/{k[1]}", pattern)}
        if not hits:
            unmatched.append(pattern)
        chosen |= hits
    if unmatched:
        names = sorted({str(n) for n, _ in keys})
        raise InvalidValueError(
            f"no metric series {unmatched} in these runs; known: {', '.join(names) or '(none)'} "
            "(give a name, name/context, or a glob pattern such as 'loss*')"
        )
    return chosen


def compare_runs(runs: RunsLike, metrics: Metrics = None, stats: Sequence[str] = COMPARE_STATS):
    """One row per run: ``run_id``, ``experiment``, ``status``, a column per parameter,
    ``final/<name>`` per registered final metric, and ``<metric>/<context>/<stat>``
    (``stats``: ``last``, ``min``, ``max`` by default) per metric series.

    ``runs``: an experiment directory, a list of run directories, or loaded data.
    ``metrics``: only these series (see :func:`select_series`: names,
    ``"name/context"``, glob patterns). In a run of several ranks ``min`` and
    ``max`` are over all ranks; ``last``, ``mean`` and ``count`` are those of
    its lowest rank. A parameter named like a fixed column (``status``, say)
    becomes ``param/<name>``.
    """
    pd = _pandas("prov4ml.analysis.compare_runs")
    return pd.DataFrame(compare_rows(runs_of(runs), metrics, stats))


def compare_rows(loaded: Sequence[RunData], metrics: Metrics = None,
                 stats: Sequence[str] = COMPARE_STATS) -> List[Dict[str, Any]]:
    """:func:`compare_runs`' rows as dicts, without pandas (a series a run lacks is absent from its row)."""
    bad = [s for s in stats if s not in STATS]
    if bad:
        raise InvalidValueError(f"unknown statistic(s) {bad}; known: {', '.join(STATS)}")
    wanted = select_series(((s.name, s.context) for r in loaded for s in _series(r)), metrics)
    fixed = ("run_id", "experiment", "status")
    rows = []
    for r in loaded:
        row: Dict[str, Any] = {"run_id": r.run_id, "experiment": r.experiment, "status": r.info.get("status")}
        for key, value in r.params.items():
            row[f"param/{key}" if key in fixed else key] = value
        for key, value in (r.info.get("final_metrics") or {}).items():
            row[f"final/{key}"] = value
        groups: Dict[Tuple[str, str], List[Any]] = {}
        for s in _series(r):
            groups.setdefault((s.name, s.context), []).append(s)
        for (name, context), group in sorted(groups.items()):
            if (name, context) not in wanted:
                continue
            lead = min(group, key=lambda s: s.rank)
            for stat in stats:
                if stat in ("min", "max"):
                    values = [v for v in (getattr(s, stat) for s in group) if _number(v)]
                    value = (min(values) if stat == "min" else max(values)) if values else math.nan
                else:
                    value = getattr(lead, stat)
                row[f"{name}/{context}/{stat}"] = value
        rows.append(row)
    return rows


def _series(run: RunData) -> List[Any]:
    """The series summaries of a run (:class:`prov4ml.runs.Series`), read from its documents."""
    return run.record.series if run.record is not None else []


def configuration(params: Dict[str, Any]) -> Dict[str, Any]:
    """The parameters that define a run's configuration: all but the sweep's bookkeeping and ``seed``."""
    return {k: v for k, v in params.items() if not k.startswith(_SWEEP_PREFIX) and k not in REPETITION_PARAMS}


def sweep_summary(runs: RunsLike, metrics: Metrics = None, stat: str = "last"):
    """Mean and standard deviation over the runs of each configuration: one row per configuration.

    Runs share a configuration when their parameters, except ``sweep.*`` and
    ``seed`` (see :func:`configuration`), are equal. Columns: a column per
    configuration parameter, ``runs`` (how many), ``run_ids``, then for each
    series (its ``stat``, the last value by default, of each run's lowest rank)
    and each final metric ``<key>/mean`` and ``<key>/std``: ``statistics.mean``
    and ``statistics.stdev`` (the sample deviation) of the runs' values,
    leaving out runs without a value; std is NaN below two values. Rows come in
    the order of each configuration's first run.
    """
    pd = _pandas("prov4ml.analysis.sweep_summary")
    return pd.DataFrame(sweep_rows(runs_of(runs), metrics, stat))


def sweep_rows(loaded: Sequence[RunData], metrics: Metrics = None, stat: str = "last") -> List[Dict[str, Any]]:
    """:func:`sweep_summary`'s rows as dicts, without pandas."""
    table = compare_rows(loaded, metrics, stats=(stat,))
    value_cols = list(dict.fromkeys(c for row in table for c in row if c.startswith("final/") or c.endswith(f"/{stat}")))
    groups: Dict[Tuple[Tuple[str, str], ...], List[int]] = {}
    configs: Dict[Tuple[Tuple[str, str], ...], Dict[str, Any]] = {}
    for i, run in enumerate(loaded):
        config = configuration(run.params)
        key = tuple(sorted((k, repr(v)) for k, v in config.items()))
        groups.setdefault(key, []).append(i)
        configs.setdefault(key, config)
    rows = []
    for key, members in groups.items():
        row: Dict[str, Any] = dict(configs[key])
        row["runs"] = len(members)
        row["run_ids"] = [loaded[i].run_id for i in members]
        for col in value_cols:
            values = [float(table[i][col]) for i in members if _number(table[i].get(col))]
            base = col[: -len(f"/{stat}")] if col.endswith(f"/{stat}") and not col.startswith("final/") else col
            row[f"{base}/mean"] = statistics.mean(values) if values else math.nan
            row[f"{base}/std"] = statistics.stdev(values) if len(values) > 1 else math.nan
        rows.append(row)
    return rows


def _number(value: Any) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False
