"""Where runs are: the run directories under a folder, a run named on the command line, an fsspec URL's local view.

A run directory holds one ``prov_rank<k>.json`` per rank; an experiment
directory holds run directories (``run_<id>``); a provenance save dir holds
experiments.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Tuple, Union

from .._fs import is_url, slug
from ..exceptions import ProvFileError
from ..storage import local_view

__all__ = ["DEFAULT_DIR", "PathLike", "rank_files", "is_run_dir", "find_run_dirs", "experiment_runs", "walk",
           "resolve_run", "experiment_candidates", "local", "run_id_of", "RANK_FILE"]

DEFAULT_DIR = "prov"
RANK_FILE = re.compile(r"^prov_rank(\d+)\.json$")
_RUN_DIR = re.compile(r"^run_(\d+)$")
_RUN_HINT = "give a run directory (<provenance_save_dir>/<experiment>/run_<id>)"

PathLike = Union[str, "os.PathLike[str]"]


def local(path: PathLike) -> Path:
    """``path`` as a local directory: an fsspec URL (``s3://...``) is its copy in the staging directory."""
    return Path(local_view(path))


def rank_files(run_dir: PathLike) -> Dict[int, Path]:
    """``{rank: prov_rank<k>.json}`` of ``run_dir`` in rank order (empty when it is not a run directory)."""
    found = {}
    try:
        with os.scandir(run_dir) as it:
            for entry in it:
                m = RANK_FILE.match(entry.name)
                if m and entry.is_file():
                    found[int(m.group(1))] = Path(entry.path)
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return {}
    return dict(sorted(found.items()))


def is_run_dir(path: PathLike) -> bool:
    return bool(rank_files(path))


def run_id_of(run_dir: Path) -> Union[int, str]:
    """The run id a directory's name gives (``run_3`` -> 3), else the name."""
    m = _RUN_DIR.match(run_dir.name)
    return int(m.group(1)) if m else run_dir.name


def _order(d: Path) -> Tuple[int, int, str]:
    m = _RUN_DIR.match(d.name)
    return (0, int(m.group(1)), "") if m else (1, 0, d.name)


def _subdirs(path: Path) -> List[Path]:
    """The folders in ``path`` (hidden ones left out), runs by their id, others by name."""
    try:
        with os.scandir(path) as it:
            dirs = [Path(e.path) for e in it if e.is_dir() and not e.name.startswith(".")]
    except (NotADirectoryError, FileNotFoundError, PermissionError):
        return []
    return sorted(dirs, key=_order)


def find_run_dirs(root: PathLike) -> List[Path]:
    """The run directories under ``root``: a run itself, an experiment's runs, or every experiment's.

    In experiment-name order, then run-id order. Raises :class:`ProvFileError`
    when ``root`` is missing or holds no run.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a directory" if root.exists() else "no such directory"
        raise ProvFileError(
            f"{root}: {what}; give the provenance_save_dir of your runs (default ./{DEFAULT_DIR}), "
            "an experiment directory or a run directory"
        )
    if is_run_dir(root):
        return [root]
    runs: List[Path] = []
    for child in _subdirs(root):
        if is_run_dir(child):
            runs.append(child)
        else:
            runs.extend(d for d in _subdirs(child) if is_run_dir(d))
    if not runs:
        raise ProvFileError(
            f"{root} holds no runs (no <experiment>/run_<id>/prov_rank<k>.json under it); "
            f"give the provenance_save_dir your runs were started with (default ./{DEFAULT_DIR})"
        )
    return runs


def experiment_runs(experiment_dir: PathLike) -> List[Path]:
    """The run directories of ``experiment_dir`` in run-id order (``[experiment_dir]`` for a run directory)."""
    experiment_dir = Path(experiment_dir)
    hint = "give an experiment directory (<provenance_save_dir>/<experiment>)"
    if not experiment_dir.exists():
        raise ProvFileError(f"{experiment_dir}: no such directory; {hint}")
    if not experiment_dir.is_dir():
        raise ProvFileError(f"{experiment_dir} is a file; {hint}")
    if is_run_dir(experiment_dir):
        return [experiment_dir]  # a run directory: an experiment of one run
    dirs = [d for d in experiment_dir.iterdir() if d.is_dir() and is_run_dir(d)]
    if not dirs:
        raise ProvFileError(f"{experiment_dir} holds no runs (run_<id>/prov_rank<k>.json); {hint}")
    return sorted(dirs, key=lambda d: (0, int(d.name[4:])) if _RUN_DIR.match(d.name) else (1, d.name))


def checked_rank_files(run_dir: Path) -> Dict[int, Path]:
    """:func:`rank_files`, or :class:`ProvFileError` saying what ``run_dir`` is instead of a run."""
    if not run_dir.exists():
        raise ProvFileError(f"{run_dir}: no such directory; {_RUN_HINT}")
    if not run_dir.is_dir():
        raise ProvFileError(f"{run_dir} is a file, not a run directory; give the directory that holds prov_rank<k>.json")
    found = rank_files(run_dir)
    if not found:
        raise ProvFileError(f"{run_dir} holds no prov_rank<k>.json; {_RUN_HINT}")
    return found


def walk(root: Path, depth: int = 3) -> List[Path]:
    """Directories holding a ``prov_rank<k>.json``: ``root``, its children and grandchildren (``depth`` levels)."""
    found, level = [], [Path(root)]
    for _depth in range(depth):
        deeper = []
        for d in level:
            try:
                children = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError:
                continue
            if any(RANK_FILE.match(e.name) for e in children):
                found.append(Path(d))
            else:
                deeper += [Path(e.path) for e in children if e.is_dir() and not e.name.startswith(".")]
        level = deeper
    return found


def experiment_candidates(spec: PathLike, base: PathLike = DEFAULT_DIR) -> List[Path]:
    """Where an experiment named ``spec`` may be: a directory, a folder under ``base``, or its name made safe (slug);
    for a URL, its copy in the staging directory, brought up to date (never ``spec`` read as a path)."""
    if is_url(str(spec)):
        return [local(str(spec))]
    return [Path(spec), Path(base) / spec, Path(base) / slug(str(spec))]


def resolve_run(spec: PathLike, base: PathLike = DEFAULT_DIR) -> Path:
    """The run directory ``spec`` names: a run directory, or ``EXPERIMENT/run_N`` (or ``EXPERIMENT/N``) under ``base``."""
    spec_text = str(spec)
    if is_url(spec_text):  # read through its staging copy, brought up to date
        found = local(spec_text)
        if is_run_dir(found):
            return found
        raise ProvFileError(f"{spec_text} holds no prov_rank<k>.json; give a run's URL "
                            "(<provenance_save_dir>/<experiment>/run_<id>; prov4ml ls URL lists them)")
    tried: List[Path] = []
    candidates = [Path(spec_text), Path(base) / spec_text]
    parts = Path(spec_text).parts
    if len(parts) == 2:  # "exp ü/run_1" as ls prints it: the experiment's folder is its name made safe (slug)
        folder = slug(parts[0])
        candidates.append(Path(base) / folder / parts[1])
        if parts[1].isdigit():  # "exp/3" means exp/run_3
            candidates += [Path(base) / parts[0] / f"run_{parts[1]}", Path(base) / folder / f"run_{parts[1]}"]
    for cand in candidates:
        if cand in tried:
            continue
        tried.append(cand)
        if is_run_dir(cand):
            return cand

    def why(c: Path) -> str:
        if not c.is_dir():
            return f"{c} is not a directory"
        if any(is_run_dir(d) for d in _subdirs(c)):
            return f"{c} is an experiment: name one of its runs, {c.name}/run_N"
        return f"{c} holds no prov_rank<k>.json"

    raise ProvFileError(
        f"no run {spec_text!r}: {', '.join(why(c) for c in tried)}; give a run directory or EXPERIMENT/run_N "
        f"under ./{base} (prov4ml ls lists them)"
    )
