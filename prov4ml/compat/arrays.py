"""Array data files for the model wrappers: Zarr where the ``zarr`` extra is installed, else NumPy.

Two shapes of data, each with a writer and a reader:

* **rows** (a layer's inputs or outputs, appended a chunk at a time):
  Zarr: ``<folder>.zarr/<name>`` arrays grown along the first axis, chunked by
  ``chunk_size`` rows; NumPy: ``<folder>/<name>_<k>.npy``, one file per chunk.
  When the shape of one row changes (a sequence of another length), Zarr starts
  the array ``<name>_1`` (then ``_2`` ...); NumPy files are independent anyway.
* **named arrays** (one layer's parameters at one epoch): a Zarr group
  ``<base>.zarr`` or a NumPy ``<base>.npz``, one array per parameter name.

``read_rows`` and ``read_arrays`` read either back, exactly as written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional

from .._optional import available, require
from ..exceptions import InvalidValueError

__all__ = ["FORMATS", "ROWS_SUFFIX", "ARRAYS_SUFFIX", "choose_format", "RowWriter", "write_arrays", "read_rows", "read_arrays", "to_numpy"]

FORMATS = ("zarr", "npy")
#: the suffix of a RowWriter folder and of a write_arrays file, by format
ROWS_SUFFIX = {"zarr": ".zarr", "npy": ""}
ARRAYS_SUFFIX = {"zarr": ".zarr", "npy": ".npz"}
_NPY_CHUNK = re.compile(r"^(?P<name>.+)_(?P<k>\d{6})\.npy$")
_ZARR_PART = re.compile(r"^.+_\d+$")


def choose_format(requested: Optional[str]) -> str:
    """``requested`` checked, or the default: ``"zarr"`` when zarr is installed, else ``"npy"``."""
    if requested is None:
        return "zarr" if available("zarr") else "npy"
    if requested not in FORMATS:
        raise InvalidValueError(f"array_format must be one of {', '.join(map(repr, FORMATS))}, got {requested!r}")
    if requested == "zarr":
        require("zarr", "zarr", "array_format='zarr'")
    return requested


def to_numpy(tensor):
    """A host copy of a tensor as a NumPy array (bfloat16, which NumPy lacks, widened exactly to float32)."""
    import torch

    t = tensor.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.to("cpu", copy=True).numpy()


class RowWriter:
    """Appends chunks of rows to the named arrays of one folder (a ``.zarr`` group, or a folder of ``.npy``)."""

    def __init__(self, path: Path, fmt: str, chunk_size: int) -> None:
        self.fmt = fmt
        self.chunk_size = chunk_size
        self.path = path
        self._group = None
        self._arrays: Dict[str, object] = {}  # name -> the zarr array rows of that name now go to
        self._parts: Dict[str, int] = {}
        self._chunks: Dict[str, int] = {}

    def append(self, name: str, rows) -> None:
        if self.fmt == "npy":
            import numpy as np

            k = self._chunks.get(name, 0)
            self._chunks[name] = k + 1
            self.path.mkdir(parents=True, exist_ok=True)
            np.save(self.path / f"{name}_{k:06d}.npy", rows, allow_pickle=False)
            return
        array = self._arrays.get(name)
        if array is not None and (tuple(array.shape[1:]) != tuple(rows.shape[1:]) or array.dtype != rows.dtype):
            array = None  # another row shape: a new array
        if array is None:
            part = self._parts.get(name, -1) + 1
            self._parts[name] = part
            array = self._arrays[name] = self._create(name if part == 0 else f"{name}_{part}", rows)
        array.append(rows, axis=0)

    def _create(self, name: str, rows):
        if self._group is None:
            zarr = require("zarr", "zarr", "array_format='zarr'")
            self._group = zarr.open_group(store=str(self.path), mode="w")
        create = getattr(self._group, "create_array", None) or self._group.create_dataset  # zarr 3, zarr 2
        return create(name, shape=(0, *rows.shape[1:]), chunks=(self.chunk_size, *rows.shape[1:]), dtype=rows.dtype)


def write_arrays(path: Path, arrays: Dict[str, object], fmt: str) -> Path:
    """Write named arrays as a Zarr group or an ``.npz`` file at ``path``."""
    if fmt == "zarr":
        zarr = require("zarr", "zarr", "array_format='zarr'")
        zarr.save_group(str(path), **arrays)
        return path
    import numpy as np

    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def read_arrays(path: os.PathLike) -> Dict[str, object]:
    """The named arrays of a ``.zarr`` group or an ``.npz`` file."""
    path = Path(path)
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    zarr = require("zarr", "zarr", f"reading {path.name}")
    group = zarr.open_group(store=str(path), mode="r")
    return {k: group[k][:] for k in sorted(group.array_keys())}


def read_rows(path: os.PathLike) -> Dict[str, List[object]]:
    """``{name: [array, ...]}`` of a ``RowWriter`` folder: the rows in order, one array per row shape."""
    import numpy as np

    path = Path(path)
    out: Dict[str, List[object]] = {}
    if path.suffix == ".zarr":
        arrays = read_arrays(path)
        for name in sorted(n for n in arrays if not _ZARR_PART.match(n)):
            out[name] = [arrays[name]]
            k = 1
            while f"{name}_{k}" in arrays:  # the arrays begun when the row shape changed
                out[name].append(arrays[f"{name}_{k}"])
                k += 1
        return out
    chunks: Dict[str, List[tuple]] = {}
    for file in path.iterdir():
        m = _NPY_CHUNK.match(file.name)
        if m:
            chunks.setdefault(m["name"], []).append((int(m["k"]), file))
    for name, files in chunks.items():
        parts: List[object] = []
        for _, file in sorted(files):
            rows = np.load(file, allow_pickle=False)
            if parts and parts[-1].shape[1:] == rows.shape[1:] and parts[-1].dtype == rows.dtype:
                parts[-1] = np.concatenate([parts[-1], rows])
            else:
                parts.append(rows)
        out[name] = parts
    return out

