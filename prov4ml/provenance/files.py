"""PROV files in and out: a document read with errors that name the fix, outputs written atomically.

A document is read from PROV-JSON, or from the Turtle or TriG that ``prov4ml convert`` writes
(``.ttl``, ``.rdf`` (RDF/XML), ``.trig``: see :func:`prov4ml.provenance.rdf.read`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Union

from .._fs import atomic_write_text
from ..exceptions import ProvFileError

__all__ = ["read_prov", "write_output", "READABLE", "RDF_SUFFIXES"]

READABLE = 0o644  # outputs are for sharing; mkstemp makes its files 0600

PathLike = Union[str, "os.PathLike[str]"]
#: suffixes of PROV-O files read back (through prov4ml.provenance.rdf.read), with their rdflib format
RDF_SUFFIXES = {".ttl": "turtle", ".rdf": "xml", ".trig": "trig"}


def read_prov(path: PathLike):
    """The ``prov.model.ProvDocument`` in the PROV-JSON (or ``.ttl``, ``.rdf``, ``.trig``) file ``path``.

    Raises :class:`ProvFileError` naming the file and the problem: missing,
    empty, not JSON (or cut short), or JSON that is not PROV-JSON.
    """
    from prov.model import ProvDocument

    path = Path(path)
    if not path.exists():
        raise ProvFileError(f"{path}: no such file; give the path of a PROV-JSON file (prov_rank<k>.json)")
    if path.is_dir():
        raise ProvFileError(f"{path} is a directory; give the path of a PROV-JSON file inside it (prov_rank<k>.json)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvFileError(f"{path}: cannot be read ({exc}); check the file and its permissions") from None
    if not text.strip():
        raise ProvFileError(f"{path} is empty; a run that was killed before its first save leaves no document, rerun it")
    if path.suffix.lower() in RDF_SUFFIXES:
        return _read_rdf(path, RDF_SUFFIXES[path.suffix.lower()])
    try:
        data = json.loads(text)
    except RecursionError:
        raise ProvFileError(f"{path} nests JSON too deeply to be PROV-JSON; give a PROV-JSON file") from None
    except json.JSONDecodeError as exc:
        if not text.rstrip().endswith("}"):
            raise ProvFileError(
                f"{path} is cut short (it ends at line {exc.lineno} without its closing brace); "
                "the run may still be writing or was killed mid-copy: use the complete file"
            ) from None
        raise ProvFileError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); give a PROV-JSON file"
        ) from None
    if not isinstance(data, dict):
        raise ProvFileError(f"{path} is JSON but not PROV-JSON (a {type(data).__name__}, not an object)")
    try:
        return ProvDocument.deserialize(content=text, format="json")
    except RecursionError:
        raise ProvFileError(f"{path} nests records too deeply to be PROV-JSON; give a PROV-JSON file") from None
    except Exception as exc:  # prov raises ProvJSONException, ValueError, KeyError, ... on foreign JSON
        raise ProvFileError(f"{path} is JSON but not PROV-JSON: {exc}") from None


def _read_rdf(path: Path, rdf_format: str):
    from .._optional import require
    from .rdf import read

    require("rdflib", "rdf", f"reading {path.suffix} files")
    try:
        return read(path, rdf_format)
    except Exception as exc:  # rdflib's parser errors, prov's decoding errors
        name = {"xml": "RDF/XML"}.get(rdf_format, rdf_format.capitalize())
        raise ProvFileError(f"{path} is not PROV-O {name} that prov can read: {exc}") from None


def write_output(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, then rename); parents are created."""
    path = Path(path)
    if path.is_dir():
        raise ProvFileError(f"the output {path} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        os.chmod(path, READABLE)  # the temporary file was private (0600)
        return path
    except OSError as exc:
        raise ProvFileError(f"cannot write {path}: {exc.strerror or exc}; choose a writable output path") from None
