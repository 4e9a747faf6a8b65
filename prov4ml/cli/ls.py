"""List experiments and runs: status, start, duration, ranks, key parameters, last and best of the main metrics.

DIR is a provenance_save_dir (default ./prov), an experiment directory, a
run directory, or a URL (s3://bucket/prefix). Runs are read through the
index (docs/formats.md): each run's summary is read once, and again only when
the run changed, never its metric files. The table shows the last --limit
runs of the listing (default 1000: the highest run ids of the last
experiments), or the first --limit by --sort; --json and --csv give every run.
A run whose process died before end_run shows as `killed (needs prov4ml recover)`.

Fields for --where and --sort: run_id, status, start, duration, ranks,
experiment, a parameter name, or a metric (`val_loss` is its last value;
`val_loss.best`, `.min`, `.max`, `.mean`, `.count`; `loss/training` names
the context). Best is the minimum, or the maximum for accuracy-like names
(acc, f1, auc, score, reward, ...) and for a final metric registered with MAX.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Sequence, Tuple

from ..exceptions import InvalidValueError, ProvFileError
from ._output import counted, duration, print_csv, print_json, print_table, status_style, steps
from ..runs import DEFAULT_DIR, RunRecord
from ..runs.fields import MISSING, Fields, conditions, context_rank
from ..runs.index import Index

MAIN_METRICS = 3   # metrics shown by default
KEY_PARAMS = 6     # parameters shown by default
TABLE_LIMIT = 1000  # runs the table shows by default
_BOOKKEEPING = "sweep."  # parameters a sweep logs about itself

Row = Tuple[RunRecord, Dict[str, Dict[str, Any]]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=DEFAULT_DIR, metavar="DIR",
                        help=f"provenance_save_dir, experiment or run directory (default ./{DEFAULT_DIR})")
    parser.add_argument("--where", action="append", metavar="COND",
                        help="keep runs where COND holds, e.g. 'lr<0.01', 'status==finished', "
                        "'lr<0.01 and val_acc.best>0.9' (repeat, or join with and: all must hold)")
    parser.add_argument("--sort", metavar="FIELD", help="order by FIELD, e.g. val_loss, val_loss.best, lr, duration")
    parser.add_argument("--desc", action="store_true", help="largest first (with --sort)")
    parser.add_argument("--metrics", metavar="M,M", help="metrics to show: names or name/context, comma-separated "
                        f"(default: the {MAIN_METRICS} logged by most runs, validation first)")
    parser.add_argument("--params", metavar="P,P", help="parameters to show, comma-separated "
                        f"(default: those that differ between the runs, at most {KEY_PARAMS})")
    parser.add_argument("--limit", type=int, default=TABLE_LIMIT, metavar="N",
                        help=f"the table shows the last N runs of the listing, or the first N by --sort (default {TABLE_LIMIT}; "
                        "0: all)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="every field of every run, as JSON")
    out.add_argument("--csv", action="store_true", help="one CSV row per run, every parameter and metric")


def run(args: argparse.Namespace) -> int:
    if args.desc and not args.sort:
        raise InvalidValueError("--desc orders by --sort FIELD; add --sort, e.g. --sort val_loss --desc")
    if args.limit < 0:
        raise InvalidValueError(f"--limit {args.limit}: give a number of runs, or 0 for all")
    where = conditions(args.where or ())  # a typo costs nothing: before any reading
    with Index(args.dir) as index:
        with steps("reading runs") as step:
            index.refresh(step)
        if not len(index):
            _no_runs(args.dir)
        fields = index.fields()
        for condition in where:
            condition.bind(fields)
        sort = fields.resolve(args.sort, f"--sort {args.sort!r}") if args.sort else None
        whole = args.json or args.csv or not args.limit
        rows, total = index.select(where, sort, args.desc, None if whole else args.limit, last=True)
    if args.json:
        print_json([as_json(r, f) for r, f in rows])
    elif args.csv:
        columns, table = as_csv(rows, Fields.of_runs([r for r, _f in rows], [f for _r, f in rows]))
        print_csv(columns, table)
    else:
        show_table(rows, Fields.of_runs([r for r, _f in rows], [f for _r, f in rows]), args, total)
    unreadable = [r for r, _f in rows if r.status == "unreadable"]
    for r in unreadable:  # listed, and said as `ls` says an unreadable entry: one line each, exit status 1
        print(f"prov4ml ls: {r.label}: {r.error_message}", file=sys.stderr)
    return 1 if unreadable else 0


def _no_runs(root: str) -> None:
    raise ProvFileError(
        f"{root} holds no runs (no <experiment>/run_<id>/prov_rank<k>.json under it); "
        f"give the provenance_save_dir your runs were started with (default ./{DEFAULT_DIR})"
    )


def as_json(run: RunRecord, figures: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "run": run.label, "experiment": run.experiment, "run_id": run.run_id, "run_dir": str(run.run_dir),
        "status": run.status, "needs_recovery": run.needs_recovery, "start": run.start, "end": run.end,
        "duration_s": run.duration_s, "ranks": run.ranks, "params": run.params,
        "metrics": {k: {s: v for s, v in f.items() if s != "source"} for k, f in figures.items()},
        "final_metrics": run.final_metrics,
    }


def as_csv(rows: Sequence[Row], fields: Fields) -> Tuple[List[str], List[List[Any]]]:
    fixed = ["run", "experiment", "run_id", "status", "start", "end", "duration_s", "ranks"]
    params = [f"param/{p}" if p in fixed else p for p in fields.params]
    columns = fixed + params + [f"{k}.{s}" for k in fields.metrics for s in ("last", "best")]
    table = []
    for r, f in rows:
        line = [r.label, r.experiment, r.run_id, r.status, r.start, r.end, r.duration_s, len(r.ranks)]
        line += [r.params.get(p) for p in fields.params]
        line += [f.get(k, {}).get(s) for k in fields.metrics for s in ("last", "best")]
        table.append(line)
    return columns, table


def show_table(rows: Sequence[Row], fields: Fields, args: argparse.Namespace, total: int) -> None:
    if not rows:
        print("no run matches" + (f" {' and '.join(args.where)}" if args.where else ""))
        return
    params = _chosen(args.params, fields.params, "--params") if args.params is not None else _key_params(rows)
    metrics = _metric_keys(args.metrics, rows, fields)
    columns = ["run", "status", "start", "duration", "ranks"] + params
    for key in metrics:
        columns += [f"{fields.label(key)} last", f"{fields.label(key)} best"]
    table = []
    for r, f in rows:
        line: List[Any] = [r.label, r.shown_status, r.start, duration(r.duration_s), len(r.ranks)]
        line += [r.params.get(p) for p in params]
        line += [f.get(k, {}).get(s) for k in metrics for s in ("last", "best")]
        table.append(line)
    experiments = len({r.label.rpartition("/")[0] for r, _f in rows})  # by folder: an unreadable run names none
    title = f"{counted(len(rows), 'run')} in {counted(experiments, 'experiment')}"
    if total > len(rows):
        which = "first" if args.sort else "last"
        title = f"the {which} {len(rows):,} of {total:,} runs (--limit 0 shows all, --where narrows)"
    print_table(columns, table, title=title, styled={1: status_style})


def _key_params(rows: Sequence[Row]) -> List[str]:
    """The parameters whose values differ between the runs (else the first few), the sweep's own left out."""
    names = [p for p in dict.fromkeys(k for r, _f in rows for k in r.params) if not p.startswith(_BOOKKEEPING)]
    varying = [p for p in names if len({repr(r.params.get(p, MISSING)) for r, _f in rows}) > 1]
    return (varying or names)[:KEY_PARAMS]


def _metric_keys(chosen: Any, rows: Sequence[Row], fields: Fields) -> List[str]:
    if chosen is not None:
        keys = []
        for name in _split(chosen):
            key = fields.metric_key(name)
            if key is None:
                raise InvalidValueError(
                    f"--metrics: no listed run logged {name!r}; metrics: {', '.join(sorted(fields.contexts)) or '(none)'}"
                )
            keys.append(key)
        return keys
    counts: Dict[str, int] = {}
    for _r, f in rows:
        for key, fig in f.items():
            if fig.get("source") in (None, "metric"):
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], context_rank(k.rpartition("/")[2]), k))[:MAIN_METRICS]


def _chosen(text: str, known: Sequence[str], option: str) -> List[str]:
    names = _split(text)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidValueError(f"{option}: no listed run has {', '.join(map(repr, unknown))}; known: {', '.join(known) or '(none)'}")
    return names


def _split(text: str) -> List[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
