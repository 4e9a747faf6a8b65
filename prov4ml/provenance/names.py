"""Names: namespaces, record identifiers and file locations.

Identifiers are qualified names whose local part is an XML NCName (letters,
digits, ``_``, ``-``, ``.``; not starting with a digit), so PROV-XML's
``xs:QName`` accepts them: ``ex:<experiment>.run_<id>.rank<k>.<kind>.<name>``.
Each part keeps only ``[A-Za-z0-9_-]``; a part that had to change gets a hash
of the original, so "val loss" and "val_loss" stay two records (as their
files do), and ``.`` only ever separates parts.

Locations are IRIs: a file of the run is ``rundir:<path>`` (``rundir`` is
bound to the run directory's ``file:`` IRI, so moving a run means rebinding
one prefix), any other file ``file:`` + its absolute path.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Any, Optional
from urllib.parse import quote, unquote

from .vocabulary import PROVML

__all__ = [
    "NAMESPACES", "PROVML", "RUNDIR", "FILES", "CONTENT_IRI", "user_namespace_iri", "local_name", "part", "json_location",
    "dir_iri", "file_local", "location_path", "is_ncname",
]

NAMESPACES = {
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "mls": "http://www.w3.org/ns/mls#",
    "dcterms": "http://purl.org/dc/terms/",
    "provml": PROVML,
}
RUNDIR = "rundir"  # prefix of the files of the run
#: The namespace of content entities, ``content:sha256-<hex>``: one IRI for the same bytes in every document.
CONTENT_IRI = "urn:prov4ml:content:"
FILES = "fs"  # prefix of files elsewhere, bound to file:///

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def user_namespace_iri(namespace: str) -> str:
    """An absolute IRI ending in '/' or '#' for the user's namespace."""
    iri = namespace.strip()
    if "://" not in iri and not iri.startswith("urn:"):
        iri = "http://" + iri
    if not iri.endswith(("/", "#")):
        iri += "/"
    return iri


def part(text: Any) -> str:
    """One part of a local name: ``[A-Za-z0-9_-]`` only, hashed when anything had to change."""
    text = str(text)
    safe = _UNSAFE.sub("_", text) or "_"
    if safe != text or len(safe) > 80:
        safe = f"{safe[:80]}-{hashlib.sha1(text.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"
    return safe


def local_name(*parts: Any) -> str:
    """Parts joined by '.', made an NCName: a first part that starts with a digit or '-' gets a '_'."""
    name = ".".join(part(p) for p in parts)
    return name if _NCNAME.match(name) else "_" + name


def is_ncname(text: str) -> bool:
    return bool(_NCNAME.match(text))


def dir_iri(path: str) -> str:
    """The IRI of a directory, ending in '/': ``file:`` for a local path, the URL itself for a remote one."""
    if "://" in path:  # a run on object storage (s3://bucket/prefix/...): where it lives for everyone
        return path.rstrip("/") + "/"
    return Path(path).resolve().as_uri().rstrip("/") + "/"


def file_local(path: str) -> str:
    """The local part of a location: the path, percent-encoded where an IRI needs it."""
    return quote(PurePosixPath(path).as_posix().lstrip("/"), safe="/-._~")


def json_location(value: Any) -> Optional[str]:
    """A ``prov:location`` as PROV-JSON holds it (``{"$": "rundir:metrics/x.csv", "type": "xsd:QName"}``,
    or the plain text older documents held) as a path: relative for files of the run, absolute otherwise."""
    text = value.get("$") if isinstance(value, dict) else value
    if text is None:
        return None
    prefix, sep, local = str(text).partition(":")
    if sep and prefix == RUNDIR:
        return unquote(local)
    if sep and prefix == FILES:
        return "/" + unquote(local)
    return str(text)


def location_path(value: Any) -> Optional[str]:
    """A ``prov:location`` read back, as a path: relative for files of the run, absolute otherwise.

    Accepts a QualifiedName (``rundir:metrics/x.csv``), an IRI, or the plain
    text older documents held.
    """
    if value is None:
        return None
    namespace = getattr(value, "namespace", None)
    if namespace is not None and namespace.prefix == RUNDIR:
        return unquote(value.localpart)
    uri = str(getattr(value, "uri", value))
    if uri.startswith("file:"):
        from urllib.request import url2pathname

        return url2pathname(uri[len("file://"):] if uri.startswith("file://") else uri[len("file:"):])
    return str(value)
