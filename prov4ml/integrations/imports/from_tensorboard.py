"""TensorBoard event files, read with TensorBoard's own ``EventAccumulator``.

Each folder under LOGDIR that holds event files is one run (of the experiment
named after LOGDIR). Every scalar point of every tag is read: the
accumulator is told to keep all of them (by default it keeps a sample of
10,000 per tag) and not to drop the points a restarted writer logged again
(``purge_orphaned_data=False``). Scalars written as ``add_scalar`` values and
as TensorFlow 2 scalar tensors both count. TensorBoard stores scalars as
float32: each value is that float32, exactly (a float64 holds it). Times are
the events' wall times; the run starts at its first event (or point, when a
point was given an earlier time) and ends at its last point. Hyper-parameters written by ``add_hparams`` (the hparams plugin)
become parameters. The event files are recorded as inputs of the run, with
their sha256, where they are. TensorBoard has no status: an imported run is
``finished``. Its identity is its first event file's name (its time, host
and process): a copy of the folder elsewhere is the same run.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from ..._optional import require
from ...exceptions import InvalidValueError
from .source import Found, Point, SourceFile, SourceRun

__all__ = ["find", "run_folders"]

EVENT_FILE = re.compile(r"events\.out\.tfevents\.\d+(?:\.\d+)?\.(?P<host>.+?)(?:\.\d+\.\d+)?(?:\.v2)?$")
#: what the accumulator keeps: every scalar, every tensor (TF2 scalars, hparams), nothing else
SIZE_GUIDANCE = {"scalars": 0, "tensors": 0, "images": 1, "audio": 1, "histograms": 1, "distributions": 1}


def run_folders(logdir: Path) -> List[Path]:
    """The folders under ``logdir`` (itself included) that hold event files."""
    return sorted({p.parent for p in logdir.rglob("*") if EVENT_FILE.match(p.name) and p.is_file()})


def find(source: str) -> Iterator[Found]:
    require("tensorboard", "import", "prov4ml import tensorboard")
    logdir = Path(source).expanduser().resolve()
    if not logdir.is_dir():
        raise InvalidValueError(f"prov4ml import tensorboard: {source!r} is not a folder; give the logdir "
                                "TensorBoard was started with (tensorboard --logdir LOGDIR)")
    for folder in run_folders(logdir):
        first = _event_files(folder)[0]
        relative = folder.relative_to(logdir).as_posix()
        yield Found("tensorboard", first.name, f"TensorBoard run {relative!r} of {str(logdir)!r}",
                    functools.partial(_load, logdir, folder))


def _event_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if EVENT_FILE.match(p.name) and p.is_file())


def _load(logdir: Path, folder: Path, scratch: Path) -> SourceRun:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance=SIZE_GUIDANCE, purge_orphaned_data=False)
    acc.Reload()
    tags = acc.Tags()
    metrics: Dict[Any, List[Point]] = {}
    for tag in tags.get("scalars", []):
        metrics[(tag, None)] = [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]
    for tag in tags.get("tensors", []):  # scalars written as tensors (TensorFlow 2, add_scalar(new_style=True))
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            metrics[(tag, None)] = [(e.step, _scalar(e.tensor_proto), e.wall_time) for e in acc.Tensors(tag)]
    params: Dict[str, Any] = {}
    try:
        hparams = acc.PluginTagToContent("hparams")
    except KeyError:  # no hparams summary in this run
        hparams = {}
    for content in hparams.values():
        params.update(_hparams(content))
    files = _event_files(folder)
    relative = folder.relative_to(logdir).as_posix()
    times = [t for points in metrics.values() for _s, _v, t in points]
    return SourceRun(
        tool="tensorboard", identity=files[0].name, location=str(folder),
        experiment=logdir.name, start=min([acc.FirstEventTimestamp(), *times]), end=max(times) if times else None,
        params=params, metrics=metrics,
        files=[SourceFile(p, p.name, is_input=True, copy=False) for p in files],
        tags={"run": relative} if relative != "." else {},
        host=_host(files[0].name),
    )


def _scalar(proto: Any) -> float:
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(proto).item()


def _hparams(content: bytes) -> Dict[str, Any]:
    """The hyper-parameters of an hparams plugin summary (``add_hparams``), typed as TensorBoard keeps them."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if not data.HasField("session_start_info"):
        return {}
    return {key: getattr(value, value.WhichOneof("kind")) for key, value in data.session_start_info.hparams.items()
            if value.WhichOneof("kind") in ("number_value", "string_value", "bool_value")}


def _host(name: str) -> Optional[str]:
    m = EVENT_FILE.match(name)
    return m.group("host") if m else None
