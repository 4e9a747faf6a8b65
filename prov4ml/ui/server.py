"""``prov4ml ui [DIR]``: a local web server over the runs under DIR, as ``mlflow ui`` is over its store.

    python -m prov4ml.ui prov --port 8765

==============================  ==============================================
URL                             what
==============================  ==============================================
``/``                           the experiments and their runs; ``?where=``
                                filters them (``prov4ml ls --where``'s grammar)
``/compare?runs=<run>,<run>``   the runs ticked in a runs list, compared (also
                                runs of different experiments)
``/run/<run>``                  a run: live metric plots, summaries, parameters,
                                datasets, artifacts with previews, model
                                versions and lineage, environment, errors, graph
``/experiment/<experiment>``    the runs compared: overlaid plots, parameters,
                                mean ± std over repetitions of a configuration
``/graph/<run>``                the provenance graph, full page
``/api/runs``                   the runs list as JSON
``/api/points/<run>``           new metric points since ``?offsets=`` (JSON
                                ``{series key: [location, byte offset]}``); a
                                long series' first answer is decimated
``/api/series/<run>?key=``      one series' every point as CSV (``name/context/rank``)
``/api/graph/<run>``            the graph as SVG (``rank``, ``per_kind``,
                                ``attributes``, ``fold``)
``/files/<run>?path=``          a file of the run (an artifact; from the bucket
                                when first asked, for runs on a URL)
==============================  ==============================================

``<run>`` and ``<experiment>`` are paths relative to DIR. Nothing outside DIR
is served, and the server listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import mimetypes
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .. import _commands
from .._fs import is_url
from ..exceptions import InvalidValueError, MissingDependencyError, Prov4MLError, StorageError
from . import compare, pages, run_page as run_pages
from .graph import PER_KIND, render_svg
from .decimate import BUCKETS, DECIMATE_BYTES, cut, decimated_all, thin
from .store import RunHead, Store, duration_s, metric_files
from ..runs import read_new, read_points

__all__ = ["UIServer", "serve", "points", "series_csv", "runs_json", "main", "DEFAULT_PORT"]

DEFAULT_PORT = 8765
MAX_BYTES = 4 << 20  # of one metric file per answer: a long run's history arrives in a few answers, not one huge one


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None: JSON has neither (the plots skip them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def points(store: Store, key: str, offsets: Dict[str, Any], limit: Optional[int] = None,
           buckets: int = BUCKETS) -> Dict[str, Any]:
    """The points of run ``key`` that the caller has not seen, and where to read on next time.

    ``offsets``: series key (``name/context/rank``) -> ``[location, byte offset]``
    from the previous answer (empty at first). A CSV metric file is read from
    its offset only, at most ``limit`` bytes of it (default ``MAX_BYTES``; ``more`` says there is more
    to read: ask again at once); a finished columnar file (Parquet) is sent
    whole, once (offset -1). ``reset``: forget this series' earlier points.

    A long series (a CSV file over ``decimate.DECIMATE_BYTES``, a columnar one
    over ``4 * buckets`` points) comes at first decimated to ``buckets`` runs of
    points, each one's first, last, min and max (``decimate.minmax_indices``):
    ``total`` then counts the points it stands for, and ``full`` (every series
    has it) is the URL of all of them as CSV. Later answers follow the file
    from where the decimated one ended, point by point.
    """
    entry = store.head(key)
    limit = MAX_BYTES if limit is None else limit
    out: List[Dict[str, Any]] = []
    todo = []  # (series, moved, offset)
    for series in metric_files(entry.record) if entry.record is not None else ():
        seen_location, seen = _seen(offsets.get(series["key"]))
        moved = seen_location is not None and seen_location != series["location"]
        todo.append((series, moved, 0 if moved else seen))
    fresh = [s["location"] for s, _, offset in todo if offset == 0 and s["location"].endswith(".csv")]
    cuts = dict(zip(fresh, decimated_all([entry.run_dir / loc for loc in fresh], buckets)))
    for series, moved, offset in todo:
        location = series["location"]
        full = f"/api/series/{quote(entry.key)}?key={quote(series['key'])}"
        if location.endswith(".csv"):
            cut = cuts.get(location) if offset == 0 else None
            if cut is not None:
                out.append({**series, "offset": cut["offset"], "reset": moved, "more": False, "step": cut["step"],
                            "value": cut["value"], "time": cut["time"], "total": cut["total"], "full": full})
                continue
            chunk = read_new(entry.run_dir / location, offset, limit)
            steps, values, times = chunk.step, chunk.value, chunk.time
            new_offset, reset, more = chunk.offset, chunk.reset or moved, chunk.more
        elif moved or seen_location is None:
            steps, values, times = _whole_series(entry, series)
            new_offset, reset, more = -1, moved, False
        else:
            continue  # a columnar file already sent
        row = {**series, "offset": new_offset, "reset": reset, "more": more, "full": full}
        if len(values) > 4 * buckets:
            steps, values, times, row["total"] = thin(steps, values, times, buckets)
        out.append({**row, "step": steps, "value": values, "time": times})
    return {"run": entry.key, "status": entry.label, "series": out}


def series_csv(store: Store, key: str, series_key: str) -> bytes:
    """Every point of one series of run ``key`` as CSV (``step,value,time``): a CSV metric file as it is."""
    entry = store.head(key)
    found = [s for s in (metric_files(entry.record) if entry.record is not None else ()) if s["key"] == series_key]
    if not found:
        known = ", ".join(s["key"] for s in metric_files(entry.record)) if entry.record is not None else ""
        raise InvalidValueError(f"run {key!r} has no series {series_key!r}; its series: {known or 'none'}")
    location = found[0]["location"]
    if location.endswith(".csv"):
        return (entry.run_dir / location).read_bytes()
    steps, values, times = _whole_series(entry, found[0])
    rows = ["step,value,time"] + [f"{s},{'' if v is None else repr(v)},{'' if t is None else repr(t)}"
                                  for s, v, t in zip(steps, values, times)]
    return ("\n".join(rows) + "\n").encode()


def _seen(value: Any) -> Tuple[Optional[str], int]:
    """(location, offset) of what the caller has of a series; nothing for anything else."""
    if (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool)):
        return value[0], max(value[1], 0)
    return None, 0


def _whole_series(entry: RunHead, series: Dict[str, Any]) -> Tuple[List[Any], List[Any], List[Any]]:
    cols = read_points(entry.run_dir, series["location"])
    if cols is None:
        return [], [], []
    return [int(s) for s in cols["step"]], [float(v) for v in cols["value"]], [float(t) for t in cols["time"]]


def runs_json(store: Store) -> List[Dict[str, Any]]:
    """One dict per run: key, experiment, run id, status, start, duration, ranks, params, last values."""
    out = []
    for run in store.runs():
        row: Dict[str, Any] = {"key": run.key, "experiment": run.experiment, "status": run.label}
        if not run.readable:
            row["error"] = run.error
        else:
            row.update(run_id=run.run_id, start=run.start.isoformat() if run.start else None,
                       duration_s=duration_s(run), ranks=run.ranks, params=run.params,
                       last=run.last, needs_recovery=run.needs_recovery)
        out.append(row)
    return out


class _Handler(BaseHTTPRequestHandler):
    server: "UIServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path)
        store = self.server.store
        try:
            for prefix, route in _ROUTES:
                if path == prefix or (prefix != "/" and prefix.endswith("/") and path.startswith(prefix)):
                    return route(self, store, path[len(prefix):], query)
            self._send(HTTPStatus.NOT_FOUND, pages.error_page(store, f"no page {path}"), "text/html")
        except InvalidValueError as exc:
            self._fail(HTTPStatus.NOT_FOUND, str(exc), path)
        except Prov4MLError as exc:  # a missing dependency (Graphviz), a document Graphviz cannot draw
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc), path)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a page left while its poll was under way)
        except Exception as exc:  # a bug: say so in the page and in the server's log, and keep serving
            traceback.print_exc()
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(exc).__name__}: {exc}); "
                       "please report it with the traceback printed by the server", path)

    def _fail(self, status: HTTPStatus, message: str, path: str) -> None:
        if path.startswith("/api/"):
            self._send(status, json.dumps({"error": message}), "application/json")
        else:
            self._send(status, pages.error_page(self.server.store, message), "text/html")

    def _send(self, status: HTTPStatus, body: Any, ctype: str, cache: bool = False) -> None:
        data = body if isinstance(body, bytes) else body.encode("utf-8")
        self.send_response(status)
        text = ctype.startswith(("text/", "application/json", "image/svg"))
        self.send_header("Content-Type", ctype + ("; charset=utf-8" if text else ""))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=300" if cache else "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _json(self, obj: Any) -> None:
        self._send(HTTPStatus.OK, json.dumps(_finite(obj), default=str, allow_nan=False), "application/json")

    # -- routes
    def index(self, store: Store, _rest: str, query: Dict[str, str]) -> None:
        where = query.get("where", "")
        text = pages.experiments_fragment(store, where) if query.get("fragment") else pages.runs_list(store, where)
        self._send(HTTPStatus.OK, text, "text/html")

    def compare_page(self, store: Store, _rest: str, query: Dict[str, str]) -> None:
        keys = [k for k in query.get("runs", "").split(",") if k]
        if not keys:
            raise InvalidValueError("no runs to compare: tick runs in the runs list, or give /compare?runs=EXP/run_0,EXP/run_1")
        runs = [store.head(k) for k in dict.fromkeys(keys)]
        self._send(HTTPStatus.OK, compare.compare_page(store, runs), "text/html")

    def run_page(self, store: Store, key: str, _query: Dict[str, str]) -> None:
        self._send(HTTPStatus.OK, run_pages.run_page(store, store.head(key)), "text/html")

    def experiment_page(self, store: Store, key: str, _query: Dict[str, str]) -> None:
        self._send(HTTPStatus.OK, compare.experiment_page(store, key, store.experiment(key)), "text/html")

    def graph_page(self, store: Store, key: str, query: Dict[str, str]) -> None:
        rank, per_kind, attributes, fold = _graph_options(query)
        self._send(HTTPStatus.OK, run_pages.graph_page(store, store.head(key), rank, per_kind, attributes, fold), "text/html")

    def api_runs(self, store: Store, _rest: str, _query: Dict[str, str]) -> None:
        self._json(runs_json(store))

    def api_points(self, store: Store, key: str, query: Dict[str, str]) -> None:
        try:
            offsets = json.loads(query.get("offsets") or "{}")
        except ValueError:
            raise InvalidValueError("offsets must be JSON: {series key: [location, byte offset]}") from None
        if not isinstance(offsets, dict):
            raise InvalidValueError("offsets must be a JSON object: {series key: [location, byte offset]}")
        self._json(points(store, key, offsets))

    def api_series(self, store: Store, key: str, query: Dict[str, str]) -> None:
        if not query.get("key"):
            raise InvalidValueError("say which series: ?key=name/context/rank")
        self._send(HTTPStatus.OK, series_csv(store, key, query["key"]), "text/csv")

    def api_graph(self, store: Store, key: str, query: Dict[str, str]) -> None:
        entry = store.head(key)
        rank, per_kind, attributes, fold = _graph_options(query)
        if rank not in entry.ranks:
            raise InvalidValueError(f"run {key!r} has no rank {rank}; ranks: {', '.join(map(str, entry.ranks)) or 'none'}")
        svg = render_svg(entry.run_dir / f"prov_rank{rank}.json", per_kind, attributes, fold)
        self._send(HTTPStatus.OK, svg, "image/svg+xml")

    def files(self, store: Store, key: str, query: Dict[str, str]) -> None:
        target = store.file(store.head(key), query.get("path", ""))  # from the bucket first, for a URL's runs
        if target is None:
            raise InvalidValueError(f"no file {query.get('path')!r} in run {key!r}")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, target.read_bytes(), ctype)

    def static(self, _store: Store, name: str, _query: Dict[str, str]) -> None:
        parts = name.split("/")
        asset = resources.files(__package__).joinpath("static", *parts)
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != "vendor") or not asset.is_file():
            raise InvalidValueError(f"no static file {name!r}")
        self._send(HTTPStatus.OK, asset.read_bytes(), mimetypes.guess_type(name)[0] or "application/octet-stream", cache=True)


_Route = Callable[[_Handler, Store, str, Dict[str, str]], None]
_ROUTES: Tuple[Tuple[str, _Route], ...] = (
    ("/", _Handler.index),
    ("/compare", _Handler.compare_page),
    ("/run/", _Handler.run_page),
    ("/experiment/", _Handler.experiment_page),
    ("/graph/", _Handler.graph_page),
    ("/api/runs", _Handler.api_runs),
    ("/api/points/", _Handler.api_points),
    ("/api/series/", _Handler.api_series),
    ("/api/graph/", _Handler.api_graph),
    ("/files/", _Handler.files),
    ("/static/", _Handler.static),
)


def _graph_options(query: Dict[str, str]) -> Tuple[int, int, bool, bool]:
    try:
        rank, per_kind = int(query.get("rank", 0)), int(query.get("per_kind", PER_KIND))
    except ValueError:
        raise InvalidValueError("rank and per_kind must be integers, e.g. ?rank=0&per_kind=10") from None
    if per_kind < 2:
        raise InvalidValueError(f"per_kind must be at least 2, got {per_kind}")
    off = ("0", "false", "no")
    return rank, per_kind, query.get("attributes", "1") not in off, query.get("fold", "1") not in off


def _import_parsers() -> None:
    """Import the CSV reader of ``parse_columns`` and have it parse once (pyarrow starts its threads then)."""
    from ..metrics.formats import parse_columns

    try:
        parse_columns(memoryview(b"0,1.5,2\n"), ",")
    except Exception:  # neither pyarrow nor pandas: NumPy reads the files; nothing to prepare
        pass


#: at start, the long series of this many of the newest runs are cut (see ``_warm``), this many files at most
WARM_RUNS, WARM_FILES = 4, 16


def _warm(store: Store) -> None:
    """Cut the long series of the ``WARM_RUNS`` newest runs, newest first, into the decimation cache: the page
    people open first (the run that just ended) then draws at once. The CSV readers are imported first only
    where a page needs them: no C cut, or a columnar file among those runs' (a page of CSV files needs neither
    NumPy nor pyarrow). A run on object storage is left alone (its files are fetched when asked for)."""
    paths = []
    try:
        if store.url is None:
            heads = [head for section in store.overview(newest=WARM_RUNS) for head in section.runs]
            heads.sort(key=lambda h: h.start.timestamp() if h.start else 0.0, reverse=True)
            for head in heads[:WARM_RUNS]:
                entry = store.head(head.key)
                paths += [entry.run_dir / series["location"] for series in metric_files(entry.record)]
        if cut is None or any(path.suffix != ".csv" for path in paths):
            _import_parsers()
        # the files cut at a first page (the small ones are sent as they are)
        long = [p for p in paths if p.suffix == ".csv" and p.is_file() and p.stat().st_size > DECIMATE_BYTES]
        decimated_all(long[:WARM_FILES])
    except Exception:  # a warm-up only: the page computes what it needs itself
        pass


class UIServer(ThreadingHTTPServer):
    """The UI's HTTP server over a :class:`~prov4ml.ui.store.Store`; ``url`` is where it listens."""

    daemon_threads = True

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, verbose: bool = False,
                 warm: bool = True) -> None:
        self.store = Store(root)
        self.verbose = verbose
        super().__init__((host, port), _Handler)
        # The first page with a long series would otherwise wait ~0.6 s for NumPy and the CSV readers to import,
        # and for its series to be cut (a series of a million points: 0.15-0.7 s).
        threading.Thread(target=_warm if warm else _import_parsers, args=(self.store,) if warm else (),
                         name="prov4ml-ui-warm", daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (for tests and notebooks); stop with ``shutdown()``."""
        thread = threading.Thread(target=self.serve_forever, name="prov4ml-ui", daemon=True)
        thread.start()
        return thread


def serve(root: Any = ".", host: str = "127.0.0.1", port: int = DEFAULT_PORT, verbose: bool = False,
          warm: bool = True) -> UIServer:
    """A :class:`UIServer` on ``host:port`` (0: a free port) serving in the background; ``warm``: cut the newest
    runs' long series at start (``WARM_RUNS``)."""
    server = UIServer(Path(root), host, port, verbose, warm)
    server.start()
    return server


def add_arguments(p: "argparse.ArgumentParser") -> None:
    """The options of ``prov4ml ui`` (also ``python -m prov4ml.ui``)."""
    p.add_argument("dir", nargs="?", default="prov",
                   help="the provenance_save_dir of the runs, a directory or a URL such as s3://bucket/prefix (default: prov)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--verbose", action="store_true", help="log every request")


def run(args: "argparse.Namespace") -> int:
    """Serve until Ctrl-C; returns the exit status."""
    try:
        server = UIServer(args.dir if is_url(args.dir) else Path(args.dir), args.host, args.port, args.verbose)
    except InvalidValueError as exc:
        print(f"prov4ml ui: {exc}", file=sys.stderr)
        return _commands.EXIT_INPUT
    except MissingDependencyError as exc:
        print(f"prov4ml ui: {exc}", file=sys.stderr)
        return _commands.EXIT_DEPENDENCY
    except StorageError as exc:  # the URL's store, not the port
        print(f"prov4ml ui: {exc}", file=sys.stderr)
        return _commands.EXIT_INPUT
    except OSError as exc:
        print(f"prov4ml ui: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
              "choose another port with --port", file=sys.stderr)
        return _commands.EXIT_INPUT
    print(f"prov4ml ui: serving {server.store.url or server.store.root} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return _commands.EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m prov4ml.ui [DIR] [--port N] [--host H]``: serve until Ctrl-C; returns the exit status."""
    p = _commands.parser("prov4ml ui", "A local web UI over recorded runs, with live plots of running ones.")
    add_arguments(p)
    return run(p.parse_args(argv))
