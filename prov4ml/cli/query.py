"""SPARQL over an experiment's provenance: its documents, as RDF with the direct triples, in an embedded store.

EXPERIMENT is an experiment directory, a run directory, or an experiment's
name under ./prov (`prov4ml query mlp ...` reads ./prov/mlp), as `ls`,
`compare` and `report` find it. Needs the query extra (pyoxigraph; rdflib is
the fallback). Prefixes prov, mls, provml, xsd, rdf, rdfs and dcterms are
declared for you.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..provenance.query import add_arguments, answer
from ..exceptions import ProvFileError
from ..runs import DEFAULT_DIR, experiment_candidates

__all__ = ["add_arguments", "run", "experiment_dir"]


def experiment_dir(spec: str) -> Path:
    """The directory ``spec`` names: itself, or an experiment under ./prov (by its name or its folder's)."""
    candidates = experiment_candidates(spec)
    found = next((cand for cand in candidates if cand.is_dir()), None)
    if found is None:
        tried = ", ".join(dict.fromkeys(str(c) for c in candidates))
        raise ProvFileError(f"{spec}: no such experiment (looked for {tried}); give an experiment directory "
                            f"(<provenance_save_dir>/<experiment_name>) or the name of an experiment under ./{DEFAULT_DIR}")
    return found


def run(args: argparse.Namespace) -> int:
    args.experiment_dir = experiment_dir(args.experiment_dir)
    answer(args)
    return 0
