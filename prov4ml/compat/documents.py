"""The active run's files, for code written for yProv4ML (itwinai uploads them to MLflow)."""

from __future__ import annotations

from typing import List

from ..run import lifecycle as _lifecycle

__all__ = ["log_provenance_documents", "get_run_dir", "get_artifacts_dir"]


def log_provenance_documents(create_graph: bool = False, create_svg: bool = False,
                             crate_ro_crate: bool = False) -> List[str]:
    """For code written for yProv4ML: write the PROV-JSON now (and its DOT graph, SVG, RO-Crate); the run goes on.

    Returns the paths written, PROV-JSON first; ``[]`` on a rank that records
    nothing. ``create_svg`` implies the graph. A missing Graphviz ``dot`` raises
    (see :mod:`prov4ml.dot2svg`); the PROV-JSON is written before that.
    ``crate_ro_crate`` writes ``ro-crate-metadata.json`` as ``end_run`` does (rank 0).
    """
    run = _lifecycle.require_run("log_provenance_documents")
    run.flush()
    if not run.recording:
        return []
    files = [str(run.prov_path)]
    if create_graph or create_svg:
        from ..provenance import dot as prov2dot

        dot = run.prov_path.with_suffix(".dot")
        prov2dot.convert(run.prov_path, dot)
        files.append(str(dot))
        if create_svg:
            from ..provenance import svg as dot2svg

            svg = run.prov_path.with_suffix(".svg")
            dot2svg.convert(dot, svg)
            files.append(str(svg))
    if crate_ro_crate and run.rank == 0:
        from ..provenance.crate import write_crate

        files.append(str(write_crate(run.snapshot(), run.run_dir)))
    return files


def get_run_dir() -> str:
    """For code written for yProv4ML: the active run's directory."""
    return str(_lifecycle.require_run("get_run_dir").run_dir)


def get_artifacts_dir() -> str:
    """For code written for yProv4ML: the folder the active run copies its artifacts into."""
    return str(_lifecycle.require_run("get_artifacts_dir").artifacts.root)
