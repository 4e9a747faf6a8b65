"""One PROV document linking every run and rank of an experiment: a bundle per rank's document.

Writes <output_dir>/<directory name>_collection.json (default output_dir: the
directory itself) and prints its path.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._output import progress
from .._fs import is_url
from ..runs import DEFAULT_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help=f"an experiment (directory, name under ./{DEFAULT_DIR}, or URL such "
                        "as s3://bucket/prefix/experiment), or a run directory")
    parser.add_argument("-o", "--output-dir", metavar="OUT", help="where to write the collection (default: DIR; may be a URL)")


def run(args: argparse.Namespace) -> int:
    from ..provenance.collection import create_collection

    root = args.dir if is_url(args.dir) else Path(args.dir)  # a URL is read from the bucket, never as a path
    if not is_url(args.dir) and not root.exists() and (Path(DEFAULT_DIR) / args.dir).is_dir():
        root = Path(DEFAULT_DIR) / args.dir
    out = create_collection(root, args.output_dir or root, progress=lambda docs: progress(docs, "reading documents"))
    print(out)
    return 0
