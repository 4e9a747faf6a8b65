"""Runs side by side: status, parameters, final metrics, last and best value of each metric series.

Give several runs, or one experiment (its directory, or its name under ./prov).
When runs share a configuration (the same parameters, leaving out `seed` and
the sweep's own `sweep.*` bookkeeping), they are repetitions: each
configuration gets one column with the mean ± sample standard deviation over
its repetitions. Needs neither pandas nor matplotlib.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from ..analysis.compare import compare_rows
from ..analysis.load import of_record
from ._output import counted, fmt, print_json, print_table
from ..runs import DEFAULT_DIR, RunRecord, experiment_candidates, find_run_dirs, higher_is_better, is_run_dir, read_run, resolve_run
from ..runs.index import Index

_NOT_CONFIG = ("seed",)          # parameters that tell repetitions apart, not configurations
_BOOKKEEPING = "sweep."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="RUN|EXPERIMENT",
                        help=f"runs (directories or EXPERIMENT/run_N under ./{DEFAULT_DIR}), or one experiment")
    parser.add_argument("--metrics", nargs="+", metavar="M",
                        help="only these metric series: names (every context) or name/context")
    parser.add_argument("--json", action="store_true", help="the comparison as JSON")


def run(args: argparse.Namespace) -> int:
    records = target_records(args.targets)
    lines = compare_rows([of_record(r) for r in records], metrics=args.metrics)
    columns = list(dict.fromkeys(k for line in lines for k in line))  # every run has every column, as in a table
    rows = [_row(record, {k: line.get(k) for k in columns}) for record, line in zip(records, lines)]
    groups = _configurations(records)
    sweep = any(len(members) > 1 for members in groups.values())
    if args.json:
        out: Dict[str, Any] = {"runs": [{"run": rec.label, **row} for rec, row in zip(records, rows)]}
        if sweep:
            out["configurations"] = [_aggregate(config, [rows[i] for i in members], [records[i] for i in members])
                                     for config, members in groups.items()]
        print_json(out)
        return 0
    fields = list(dict.fromkeys(k for row in rows for k in row))
    if sweep:
        configs = [_aggregate(config, [rows[i] for i in members], [records[i] for i in members])
                   for config, members in groups.items()]
        columns = ["field"] + [f"config {n} (n={len(c['runs'])})" for n, c in enumerate(configs, 1)]
        table: List[List[Any]] = [["runs"] + [", ".join(c["runs"]) for c in configs]]
        table += [[k] + [_shown(c["fields"].get(k)) for c in configs] for k in fields]
        print_table(columns, table, title=f"{counted(len(records), 'run')}, {counted(len(configs), 'configuration')}: mean ± std over repetitions")
    else:
        columns = ["field"] + [rec.label for rec in records]
        print_table(columns, [[k] + [row.get(k) for row in rows] for k in fields], title=counted(len(records), "run"))
    return 0


def target_records(targets: Sequence[str]) -> List[RunRecord]:
    """The runs ``targets`` name: runs (read from their documents), or one experiment's (read through its index)."""
    if len(targets) == 1 and not any(is_run_dir(c) for c in experiment_candidates(targets[0])):
        for cand in experiment_candidates(targets[0]):
            if cand.is_dir():
                find_run_dirs(cand)  # says what is missing when it holds no run
                with Index(cand) as index:
                    index.refresh()
                    return index.runs()
    return [read_run(resolve_run(t), details=False) for t in targets]


def _row(record: RunRecord, line: Dict[str, Any]) -> Dict[str, Any]:
    """One run's fields: compare_runs' columns, with ``<m>/<ctx>/min`` and ``max`` folded into ``best``."""
    row: Dict[str, Any] = {}
    known = {s.key for s in record.series}
    for key, value in line.items():
        if key in ("run_id", "experiment"):
            continue
        value = _value(value)
        series, _, stat = key.rpartition("/")
        if series in known and stat in ("last", "min", "max"):
            name = series.rsplit("/", 1)[0]
            if stat == "last":
                row[f"{series} last"] = value
            elif (stat == "max") == higher_is_better(name, record.final_folds.get(name)):
                row[f"{series} best"] = value
        else:
            row[key] = value
    return row


def _value(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        value = item()
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _configurations(records: Sequence[RunRecord]) -> Dict[Tuple[Tuple[str, str], ...], List[int]]:
    groups: Dict[Tuple[Tuple[str, str], ...], List[int]] = {}
    for i, rec in enumerate(records):
        config = tuple(sorted((k, repr(v)) for k, v in rec.params.items()
                              if not k.startswith(_BOOKKEEPING) and k not in _NOT_CONFIG))
        groups.setdefault(config, []).append(i)
    return groups


def _aggregate(config: Tuple[Tuple[str, str], ...], rows: List[Dict[str, Any]], records: List[RunRecord]) -> Dict[str, Any]:
    """One configuration: its parameters, its runs, and each numeric field's mean, std and n over them."""
    fields: Dict[str, Any] = {}
    params = {k for r in records for k in r.params}
    for key in dict.fromkeys(k for row in rows for k in row):
        values = [row.get(key) for row in rows if row.get(key) is not None]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        same = len({repr(v) for v in values}) == 1
        if not values:
            fields[key] = None
        elif key in params or key.startswith("param/"):  # the configuration itself, and the repetitions' seeds
            fields[key] = values[0] if same else ", ".join(fmt(v) for v in values)
        elif numbers and len(numbers) == len(values):
            std = statistics.stdev(numbers) if len(numbers) > 1 else None
            fields[key] = {"mean": statistics.fmean(numbers), "std": std, "n": len(numbers)}
        elif same:
            fields[key] = values[0]
        else:
            counts: Dict[str, int] = {}
            for v in values:
                counts[fmt(v)] = counts.get(fmt(v), 0) + 1
            fields[key] = ", ".join(f"{v}×{n}" for v, n in counts.items())
    return {"params": dict(records[0].params), "runs": [r.label for r in records], "fields": fields}


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return fmt(value["mean"]) + (f" ± {fmt(value['std'])}" if value["std"] is not None else "")
    return fmt(value)

