"""A run's page and its graph page: status and error, metrics, datasets, artifacts with previews,
model versions over time with their lineage, environment, and the provenance graph."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote

from .. import runs
from ..exceptions import Prov4MLError
from ..runs.lineage import downstream, upstream
from .graph import PER_KIND
from .pages import _cell, _kv, _status, _table, duration, href, live_box, page
from .previews import preview_html, preview_kind
from .store import SERIES_FIELDS, RunHead, Store, duration_s, environment, native

__all__ = ["run_page", "summary_table", "graph_page", "MAX_PREVIEWS", "DATASET_FIELDS"]

MAX_PREVIEWS = 12  # artifacts previewed on the page; the others are links
#: A dataset's facts shown, in this order (the others follow): what it is, where from, how big, its digests.
DATASET_FIELDS = ("label", "context", "source", "location", "size", "size_bytes", "batch_size", "num_batches",
                  "shuffle", "sample_shape", "class", "digest", "sha256")
_DATASET_SKIP = {"rank", "digestMethod", "type"}


def _plain(value: Any) -> Any:
    """A cell's value, with NaN and pandas' missing values as empty: a non-model artifact has no model."""
    value = native(value)
    return None if isinstance(value, float) and math.isnan(value) else value


def _where(store: Store, entry: RunHead) -> str:
    """The run's directory, or its URL for runs on object storage."""
    return f"{store.url}/{entry.key}" if store.url else str(entry.run_dir)


def _key_of(store: Store, run_dir: Any) -> Optional[str]:
    """The UI key of a run directory, None when it is not under the UI's root (no page to link to)."""
    try:
        return store.key(Path(run_dir).resolve())
    except ValueError:
        return None


def _file_url(entry: RunHead, location: str) -> str:
    return f"/files/{quote(entry.key)}?path={quote(location)}"


def _sha(value: Any) -> str:
    return f'<td><code title="{html.escape(value)}">{html.escape(value[:12])}</code></td>' if isinstance(value, str) and value else "<td></td>"


# ------------------------------------------------------------------ the page
def run_page(store: Store, entry: RunHead) -> str:
    """The page of run ``entry``: everything its documents say, with previews and lineage."""
    error, run = entry.error, None
    if entry.readable:
        try:
            run = store.full(entry)
        except Prov4MLError as exc:  # half-copied or corrupt: say so on the page
            error = str(exc)
    if run is None:
        return page(entry.key, f"<h1>{html.escape(entry.key)}</h1>{_status('unreadable')}"
                               f'<p class="error">{html.escape(error or "")}</p>', store)
    status = entry.label
    title = f"{run.experiment or entry.run_dir.parent.name} · run {run.run_id}"
    parts = ['<link rel="stylesheet" href="/static/run.css">',
             f'<h1>{html.escape(title)}</h1><p>{_status(status, "run-status")} '
             f'<a href="{href("experiment", entry.experiment)}">experiment</a> · '
             f'<a href="{href("graph", entry.key)}">provenance graph</a> · '
             f'<span class="muted">{html.escape(_where(store, entry))}</span></p>']
    if entry.needs_recovery and status.startswith("killed"):
        parts.append(f'<p class="warning">The process of rank(s) {", ".join(map(str, entry.needs_recovery))} was '
                     "killed before end_run; what is shown is its last refresh. Complete it with "
                     f"<code>prov4ml recover {html.escape(str(entry.run_dir))}</code>.</p>")
    parts.append(_errors(run))
    parts.append("<h2>Metrics</h2>" + live_box([(entry.key, title, entry.label)], run_page=True)
                 + f'<div id="summary">{summary_table(entry)}</div>')
    fields = [("status", status), ("start", run.start), ("end", run.end),
              ("duration", duration(duration_s(entry))), ("ranks", run.ranks), ("user", run.user),
              ("host", run.host), ("command", run.command)]
    fields += [(f"final {k}", v) for k, v in run.final_metrics.items()]
    parts.append("<h2>Run</h2>" + _kv((k, v) for k, v in fields if v not in (None, "", [])))
    parts.append("<h2>Parameters</h2>" + (_kv((k, repr(v) if isinstance(v, float) else v) for k, v in run.params.items())
                                         if run.params else '<p class="muted">none recorded</p>'))
    parts.append('<h2 id="datasets">Datasets</h2>' + _datasets(run))
    versions = [a for a in run.artifacts if a.get("kind") == "model_version"]
    others = [a for a in run.artifacts if a.get("kind") != "model_version"]
    parts.append('<h2 id="artifacts">Artifacts</h2>' + _artifacts(store, entry, others))
    lineage = _lineage(store, entry)
    parts.append('<h2 id="models">Model versions</h2>' + _versions(entry, run, versions, lineage))
    parts.append('<h2 id="lineage">Lineage</h2>' + _lineage_tables(store, lineage))
    parts.append('<h2 id="environment">Environment</h2>' + _environment(store, entry, run))
    parts.append("<h2>Provenance graph</h2>" + _graph_box(entry, min(run.ranks), PER_KIND, True))
    return page(title, "".join(parts), store, prefetch=[entry.key])


def summary_table(entry: RunHead) -> str:
    """Each series' summary as its document says; rows keyed ``name/context/rank`` for ui.js."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in SERIES_FIELDS)
    body = "".join(
        f'<tr data-key="{html.escape(_series_key(row))}">' + "".join(_cell(row[f]) for f in SERIES_FIELDS) + "</tr>"
        for row in entry.series
    )
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _series_key(row: Dict[str, Any]) -> str:
    return f"{row['name']}/{row['context']}/{row['rank']}"  # the key /api/points gives the series


# ------------------------------------------------------------------ sections
def _errors(run: runs.RunRecord) -> str:
    """The exception a failed run raised, rank by rank (what each document says)."""
    rows = [(rank, doc.info.get("error_type"), doc.info.get("error_message"))
            for rank, doc in sorted(run.documents.items()) if doc.info.get("error_type")]
    if not rows and run.error_type:
        rows = [(min(run.ranks), run.error_type, run.error_message)]
    if not rows:
        return ""
    items = "".join(f'<p class="error"><b>{html.escape(str(kind))}</b>: {html.escape(str(message or ""))}'
                    f'{f" <span class=muted>(rank {rank})</span>" if len(run.ranks) > 1 else ""}</p>'
                    for rank, kind, message in rows)
    return f'<h2 id="errors">Error</h2>{items}'


def _datasets(run: runs.RunRecord) -> str:
    if not run.datasets:
        return '<p class="muted">none recorded (log one with <code>prov4ml.log_dataset(dataset, "train")</code>)</p>'
    ranks = len({d.get("rank") for d in run.datasets}) > 1
    present = [f for f in DATASET_FIELDS if any(_plain(d.get(f)) not in (None, "") for d in run.datasets)]
    extra = list(dict.fromkeys(k for d in run.datasets for k in d
                               if k not in DATASET_FIELDS and k not in _DATASET_SKIP and _plain(d.get(k)) not in (None, "")))
    columns = (["rank"] if ranks else []) + present + extra
    rows = []
    for d in run.datasets:
        cells = []
        for c in columns:
            value = _plain(d.get(c))
            if c == "sha256" or c == "digest":
                title = d.get("digestMethod") if c == "digest" else "SHA-256 of every byte"
                cells.append(_sha(value).replace("<code ", f'<code data-method="{html.escape(str(title or ""))}" ', 1))
            else:
                cells.append(_cell(value))
        rows.append(cells)
    names = {"size": "samples", "size_bytes": "bytes", "digest": "sampled digest", "sha256": "sha256 (full)",
             "num_batches": "batches"}
    return f'<div class="scroll">{_table([names.get(c, c) for c in columns], rows, "sortable", "datasets-table")}</div>'


def _artifacts(store: Store, entry: RunHead, artifacts: Sequence[Dict[str, Any]]) -> str:
    """The artifacts as a table (each a link to its file), then previews of the first ``MAX_PREVIEWS`` previewable ones."""
    if not artifacts:
        return '<p class="muted">none recorded</p>'
    rows, previews = [], []
    for a in artifacts:
        loc = _plain(a.get("location"))
        link = (f'<td><a href="{html.escape(_file_url(entry, loc))}">{html.escape(loc)}</a></td>'
                if isinstance(loc, str) and loc else "<td></td>")
        rows.append([_cell(_plain(a.get("kind"))), _cell(_plain(a.get("name"))), link, _cell(_plain(a.get("context"))),
                     _cell(_plain(a.get("step"))), _cell(_plain(a.get("rank"))), _cell(_plain(a.get("size_bytes"))),
                     _sha(a.get("sha256"))])
        if isinstance(loc, str) and loc and preview_kind(loc) and len(previews) < MAX_PREVIEWS:
            # the few bytes a preview needs, never the whole file (ranged reads for runs in a bucket);
            # an image is the file itself, which the browser asks for
            image = preview_kind(loc) == "image"
            body = ("" if image and store.file(entry, loc) is None
                    else preview_html(loc, _file_url(entry, loc), lambda n, loc=loc: store.read_head(entry, loc, n)))
            if body:
                previews.append(f'<figure class="preview" data-kind="{preview_kind(loc)}" data-name="{html.escape(loc)}">'
                                f"<figcaption>{html.escape(str(a.get('name') or loc))}</figcaption>{body}</figure>")
    table = _table(["kind", "name", "location", "context", "step", "rank", "bytes", "sha256"], rows, "sortable", "artifacts-table")
    return table + (f'<div class="previews">{"".join(previews)}</div>' if previews else "")


def _versions(entry: RunHead, run: runs.RunRecord, versions: List[Dict[str, Any]], lineage: Dict[str, Any]) -> str:
    """Each model's versions in the order they were saved: version, step, time, size, digest, the runs that used it."""
    if not versions:
        return '<p class="muted">none saved (save one with <code>prov4ml.save_model_version(model, "net", context, step=epoch)</code>)</p>'
    created = {(a["rank"], a["location"]): a.get("created") for doc in run.documents.values() for a in doc.artifacts}
    used_by = lineage.get("used_by", {})
    rows = []
    for a in sorted(versions, key=lambda a: (str(a.get("model_name")), a.get("rank") or 0, a.get("version") or 0)):
        loc = _plain(a.get("location"))
        link = f'<a href="{html.escape(_file_url(entry, loc))}">file</a>' if isinstance(loc, str) and loc else ""
        consumers = used_by.get(a.get("sha256"), [])
        rows.append([_cell(_plain(a.get("model_name"))), _cell(_plain(a.get("version"))), _cell(_plain(a.get("step"))),
                     _cell(_plain(a.get("context"))), _cell(created.get((a.get("rank"), a.get("location")))),
                     _cell(_plain(a.get("rank"))), _cell(_plain(a.get("size_bytes"))), _sha(a.get("sha256")),
                     f"<td>{link}</td>", f'<td class="used-by">{_run_links(consumers)}</td>'])
    return _table(["model", "version", "step", "context", "saved", "rank", "bytes", "sha256", "", "used by"],
                  rows, "sortable", "versions-table")


# ------------------------------------------------------------------ lineage
def _lineage(store: Store, entry: RunHead) -> Dict[str, Any]:
    """The run's producers and consumers one run deep, from the index (:mod:`prov4ml.runs.lineage`).

    ``upstream``/``downstream``: the :class:`~prov4ml.runs.lineage.RunNode` trees;
    ``used_by``: sha256 -> [(label, key)] of the runs that used a file this run made;
    ``keys``: run label -> its key under the UI's root (for links).
    """
    with store.index() as index:
        label = index.label_of(entry.run_dir)
        if label is None:
            return {}
        up, down = upstream(index, label, depth=1), downstream(index, label, depth=1)
        keys: Dict[str, Optional[str]] = {}
        for link in up.links + down.links:
            for row in index.files(link.sha256):
                keys.setdefault(row["run"], _key_of(store, row["run_dir"]))
    used_by = {link.sha256: [(n.run, keys.get(n.run)) for n in link.runs] for link in down.links}
    return {"upstream": up, "downstream": down, "used_by": used_by, "keys": keys}


def _run_links(runs_: Sequence[Any]) -> str:
    return ", ".join(f'<a href="{html.escape(href("run", key))}">{html.escape(label)}</a>' if key else html.escape(label)
                     for label, key in runs_)


def _lineage_tables(store: Store, lineage: Dict[str, Any]) -> str:
    if not lineage:
        return '<p class="muted">this run is not in the index yet</p>'
    keys = lineage["keys"]
    out = []
    for node, tid, caption, whose in ((lineage["upstream"], "upstream", "Where it came from: files this run used",
                                       "generated by"),
                                      (lineage["downstream"], "downstream", "What came of it: files this run made",
                                       "used by")):
        rows = [[_cell(link.name or link.location), _sha(link.sha256),
                 f'<td class="runs">{_run_links([(n.run, keys.get(n.run)) for n in link.runs]) or "<span class=muted>no indexed run</span>"}</td>']
                for link in node.links if link.runs or tid == "upstream"]
        body = (_table(["file", "sha256", whose], rows, "", f"lineage-{tid}") if rows
                else '<p class="muted">none</p>')
        out.append(f"<h3>{html.escape(caption)}</h3>{body}")
    return "".join(out)


# ------------------------------------------------------------------ environment
def _environment(store: Store, entry: RunHead, run: runs.RunRecord) -> str:
    """Python, key packages, git, host, accelerators ("not available" when none), as the lowest rank recorded them."""
    env = dict(environment(run))
    listing = next((a["location"] for a in run.artifacts if a.get("name") == "environment/packages.txt" and a.get("location")), None)
    if listing:
        path = store.file(entry, listing)
        if path is not None:
            try:
                versions = dict(line.partition("==")[::2] for line in path.read_text(encoding="utf-8").splitlines() if "==" in line)
            except (OSError, UnicodeDecodeError):
                versions = {}
            env.update((name, versions[name]) for name in runs.KEY_PACKAGES if name in versions)
    if not any(k.startswith("gpu") for k in env):
        env["gpu"] = "not available"
    return _kv(sorted(env.items(), key=lambda kv: _ENV_ORDER.get(kv[0].split("_")[0], len(_ENV_ORDER)))) if env else \
        '<p class="muted">not recorded</p>'


_ENV_ORDER = {k: i for i, k in enumerate(("python", "executable", "torch", "lightning", "numpy", "gpu", "host", "git"))}


# ------------------------------------------------------------------ the graph
def _graph_box(entry: RunHead, rank: int, per_kind: int, attributes: bool, tall: bool = False, fold: bool = True) -> str:
    src = (f"/api/graph/{quote(entry.key)}?rank={rank}&per_kind={per_kind}&attributes={int(attributes)}"
           f"&fold={int(fold)}")
    return ('<div class="zoom"><button data-zoom="in" title="zoom in">+</button>'
            '<button data-zoom="out" title="zoom out">−</button><button data-zoom="reset">fit</button>'
            '<span class="muted">mouse wheel zooms, drag pans</span></div>'
            f'<div class="graph{" tall" if tall else ""}" id="graph" data-src="{html.escape(src)}">loading the graph…</div>')


def graph_page(store: Store, entry: RunHead, rank: int, per_kind: int, attributes: bool, fold: bool = True) -> str:
    """The provenance graph, full page, with links to fewer or more nodes, the full detail and each rank."""
    title = f"{entry.experiment_name or entry.experiment} · run {entry.run_id} · provenance"

    def link(text: str, **kw: Any) -> str:
        opts = {"rank": rank, "per_kind": per_kind, "attributes": int(attributes), "fold": int(fold), **kw}
        query = "&amp;".join(f"{k}={v}" for k, v in opts.items())
        return f'<a href="{href("graph", entry.key)}?{query}">{text}</a>'

    ranks = " ".join(link(f"rank {r}", rank=r) for r in entry.ranks) if len(entry.ranks) > 1 else ""
    links = " · ".join((link("fewer nodes", per_kind=max(2, per_kind // 2)), link("more nodes", per_kind=per_kind * 2),
                        link("titles only" if attributes else "with attributes", attributes=int(not attributes)),
                        link("full detail" if fold else "model versions folded", fold=int(not fold))))
    body = (f'<h1>{html.escape(title)}</h1><p><a href="{href("run", entry.key)}">back to the run</a> · {links} '
            f'<span class="muted">(elements of one kind beyond {per_kind} are drawn as one summary node'
            f'{"; each model&#39;s versions as one node" if fold else ""})</span> {ranks}</p>'
            + _graph_box(entry, rank, per_kind, attributes, tall=True, fold=fold))
    return page(title, body, store)
