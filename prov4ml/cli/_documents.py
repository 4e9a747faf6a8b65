"""The PROV-JSON document a command works on: a file, or one rank of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from ..exceptions import InvalidValueError
from ..runs import rank_files, resolve_run


def documents(spec: str, rank: Optional[int] = None) -> Dict[Optional[int], Path]:
    """``{rank: prov_rank<k>.json}`` of the run ``spec`` (``--rank`` picks one), or ``{None: spec}`` for a JSON file."""
    path = Path(spec)
    if path.is_file():
        if rank is not None:
            raise InvalidValueError(f"--rank picks a rank of a run directory; {spec} is a file, leave out --rank")
        return {None: path}
    files = rank_files(resolve_run(spec))
    if rank is None:
        return dict(files)
    if rank not in files:
        raise InvalidValueError(f"{spec} has no rank {rank}; its ranks: {', '.join(map(str, files))}")
    return {rank: files[rank]}


def one_document(spec: str, rank: Optional[int], purpose: str) -> Path:
    """The single document ``spec`` names; a run of several ranks needs ``--rank``."""
    found = documents(spec, rank)
    if len(found) > 1:
        raise InvalidValueError(
            f"{spec} has {len(found)} ranks ({', '.join(map(str, found))}); {purpose} one at a time: add --rank K, "
            "or make one document of all of them first with prov4ml collect"
        )
    return next(iter(found.values()))
