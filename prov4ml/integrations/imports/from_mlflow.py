"""MLflow runs, read through MLflow's own client: an ``mlruns/`` folder, an ``mlflow.db`` or a tracking server.

Every active run of every active experiment: its parameters, each metric's
whole history (step, value, time in milliseconds), its artifacts (downloaded,
then copied into the run with their sha256), its tags, its status
(FINISHED, FAILED, KILLED, RUNNING/SCHEDULED become finished, failed,
killed, running), start and end times, user, source and git commit. Its
identity is MLflow's run id.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from ..._optional import require
from ...exceptions import InvalidValueError
from .source import STATUSES, Found, SourceFile, SourceRun, typed

__all__ = ["find", "tracking_uri"]

#: MLflow's system tags that prov4ml has a place for
GIT = {"mlflow.source.git.commit": "git_commit", "mlflow.source.git.branch": "git_branch",
       "mlflow.source.git.repoURL": "git_remote"}


def tracking_uri(source: str) -> str:
    """The tracking URI of ``source``: a URI as given, an SQLite file (``mlflow.db``), or an ``mlruns/`` folder."""
    if "://" in source or source.startswith("sqlite:"):
        return source
    path = Path(source).expanduser()
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    if path.is_dir():
        return path.resolve().as_uri()
    raise InvalidValueError(f"prov4ml import mlflow: {source!r} is neither a folder nor a file; give an mlruns/ "
                            "folder, an mlflow.db file or a tracking URI (http://host:5000, sqlite:///path/mlflow.db)")


def find(source: str) -> Iterator[Found]:
    """The runs of ``source`` (see :func:`tracking_uri`), listed cheaply: one page of runs at a time."""
    require("mlflow", "import", "prov4ml import mlflow")
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    from mlflow.exceptions import MlflowException

    uri = tracking_uri(source)
    try:
        with _environment(MLFLOW_ALLOW_FILE_STORE="true"):  # reading old runs is what this import is for
            client = MlflowClient(tracking_uri=uri)
        experiments = list(_pages(client.search_experiments, view_type=ViewType.ACTIVE_ONLY))
    except MlflowException as exc:
        raise InvalidValueError(f"prov4ml import mlflow: cannot read the runs at {uri}: {exc}") from None
    for experiment in experiments:
        runs = _pages(client.search_runs, [experiment.experiment_id], run_view_type=ViewType.ACTIVE_ONLY)
        for run in runs:
            yield Found("mlflow", run.info.run_id, f"MLflow run {run.info.run_id} of {experiment.name!r}",
                        functools.partial(_load, client, uri, experiment.name, run))


@contextlib.contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """MLflow's settings for one call: it opens an ``mlruns/`` folder only when asked to (MLflow 3), and draws
    a progress bar for each download."""
    before = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def _pages(search: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = search(*args, page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def _load(client: Any, uri: str, experiment: str, run: Any, scratch: Path) -> SourceRun:
    info, data = run.info, run.data
    tags = dict(data.tags)
    return SourceRun(
        tool="mlflow", identity=info.run_id, location=uri, experiment=experiment,
        status=STATUSES[info.status],
        start=info.start_time / 1000 if info.start_time is not None else None,
        end=info.end_time / 1000 if info.end_time is not None else None,
        params={key: typed(value) for key, value in data.params.items()},
        metrics={(key, None): [(m.step, m.value, m.timestamp / 1000) for m in client.get_metric_history(info.run_id, key)]
                 for key in sorted(data.metrics)},
        files=list(_artifacts(client, info.run_id, scratch)),
        tags=tags,
        user=info.user_id or tags.get("mlflow.user"),
        command=tags.get("mlflow.source.name"),
        environment={ours: tags[theirs] for theirs, ours in GIT.items() if tags.get(theirs)},
    )


def _artifacts(client: Any, run_id: str, scratch: Path) -> Iterator[SourceFile]:
    """Each artifact file, downloaded under ``scratch`` (a folder's files one by one: each has its own hash)."""
    if not client.list_artifacts(run_id):
        return
    with _environment(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false"):
        root = Path(client.download_artifacts(run_id, "", str(scratch)))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield SourceFile(path, path.relative_to(root).as_posix())
