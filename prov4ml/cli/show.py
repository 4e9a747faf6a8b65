"""One run: status and error, parameters, metric summaries, final metrics, artifacts, model versions, datasets, environment.

Read from each rank's PROV-JSON only (the series entities hold the summaries).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Dict, List

from ._output import duration, fmt, print_json, print_table, status_style
from ..runs import DEFAULT_DIR, RunRecord, read_run, resolve_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help=f"a run directory or EXPERIMENT/run_N under ./{DEFAULT_DIR}")
    parser.add_argument("--json", action="store_true", help="everything, as JSON")


def run(args: argparse.Namespace) -> int:
    record = read_run(resolve_run(args.run))
    if args.json:
        data = dataclasses.asdict(record)
        data.update(run=record.label, run_dir=str(record.run_dir), duration_s=record.duration_s)
        print_json(data)
        return 0
    show(record)
    return 0


def show(r: RunRecord) -> None:
    print(f"{r.label}  {r.shown_status}")
    facts = [("status", r.shown_status), ("directory", str(r.run_dir)), ("start", fmt(r.start)),
             ("end", fmt(r.end)), ("duration", duration(r.duration_s)), ("ranks", fmt(r.ranks)),
             ("user", r.user), ("host", r.host), ("command", r.command)]
    if r.error_type:
        facts.append(("error", f"{r.error_type}: {r.error_message or ''}".rstrip(": ")))
    if r.needs_recovery:
        facts.append(("note", f"rank(s) {fmt(r.needs_recovery)} died before end_run: run prov4ml recover {r.run_dir}"))
    print_table(["field", "value"], [(k, v) for k, v in facts if v not in (None, "")],
                styled={1: lambda v: status_style(v) if v == r.shown_status else ""})

    _heading("parameters")
    _table_or_none(["name", "value"], [(k, repr(v) if isinstance(v, float) else v) for k, v in r.params.items()])

    _heading("metrics")
    cols = ["name", "context", "rank", "count", "last", "min", "max", "mean", "last_step", "source"]
    series = sorted(r.series, key=lambda s: (s.name, s.context, s.rank))
    _table_or_none(cols, [[getattr(s, c) for c in cols] for s in series])
    if r.final_metrics:
        _heading("final metrics")
        print_table(["name", "value", "fold"], [(k, v, r.final_folds.get(k)) for k, v in r.final_metrics.items()])

    versions = [a for a in r.artifacts if a["kind"] == "model_version"]
    others = [a for a in r.artifacts if a["kind"] != "model_version"]
    _heading("model versions")
    _table_or_none(["model", "version", "step", "context", "rank", "location", "bytes"],
                   [[a["model_name"], a["version"], a["step"], a["context"], a["rank"], a["location"], a["size_bytes"]]
                    for a in sorted(versions, key=lambda a: (str(a["model_name"]), a["version"] or 0, a["rank"]))])
    _heading("artifacts")
    _table_or_none(["kind", "name", "location", "rank", "bytes", "sha256"],
                   [[a["kind"], a["name"], a["location"], a["rank"], a["size_bytes"], (a["sha256"] or "")[:12]]
                    for a in others])
    if r.datasets:
        _heading("datasets")
        print_table(["label", "rank", "samples", "bytes", "batch_size", "context", "location", "sha256"],
                    [[d.get("label"), d.get("rank"), d.get("size"), d.get("size_bytes"), d.get("batch_size"),
                      d.get("context"), d.get("location"), (d.get("sha256") or d.get("digest") or "")[:12]]
                     for d in r.datasets])
    _heading("environment")
    env: Dict[str, Any] = {**r.source, **r.environment}  # the source file and its git state, then the interpreter and host
    _table_or_none(["name", "value"], [(k, v) for k, v in env.items() if v not in (None, "")])
    if r.notes:
        _heading("notes")
        print_table(["name", "value"], list(r.notes.items()))


def _heading(text: str) -> None:
    print()
    print(text)


def _table_or_none(columns: List[str], rows: List[Any]) -> None:
    if rows:
        print_table(columns, rows)
    else:
        print("(none recorded)")
