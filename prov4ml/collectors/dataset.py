"""Dataset inspection: size, batching and sample shape of Dataset, Subset and DataLoader; the files behind one."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

__all__ = ["dataset_stats", "dataset_paths", "sampled_digest", "SAMPLED"]


def dataset_stats(dataset: Any) -> Dict[str, Any]:
    """What can be read cheaply about a dataset, without iterating it (a path given as the dataset: nothing here,
    its location and size are recorded with its digest)."""
    if isinstance(dataset, (str, os.PathLike)):
        return {}
    stats: Dict[str, Any] = {"class": type(dataset).__qualname__}
    data = torch_data()
    if data is not None and isinstance(dataset, data.DataLoader):
        loader = dataset
        stats["batch_size"] = loader.batch_size
        stats["num_workers"] = loader.num_workers
        stats["shuffle"] = isinstance(loader.sampler, data.RandomSampler)
        stats["drop_last"] = loader.drop_last
        stats["pin_memory"] = loader.pin_memory
        try:
            stats["num_batches"] = len(loader)
        except TypeError:  # iterable-style dataset
            pass
        stats["dataset_class"] = type(loader.dataset).__qualname__
        dataset = loader.dataset
    if data is not None and isinstance(dataset, data.Subset):
        stats["parent_class"] = type(dataset.dataset).__qualname__
        parent_size = _size(dataset.dataset)
        if parent_size is not None:
            stats["parent_size"] = parent_size
    size = _size(dataset)
    if size is not None:
        stats["size"] = size
    shape = _sample_shape(dataset)
    if shape:
        stats["sample_shape"] = shape
    return stats


def torch_data():
    """``torch.utils.data`` if torch is imported; a dataset of torch implies it is."""
    if "torch" not in sys.modules:
        return None
    import torch.utils.data as data

    return data


def _size(dataset: Any):
    try:
        return len(dataset)
    except Exception:
        return None


def _sample_shape(dataset: Any) -> str:
    """The shapes of one sample, only where they are known without loading data."""
    data = torch_data()
    base = dataset
    if data is not None and isinstance(base, data.Subset):
        base = base.dataset
    tensors = getattr(base, "tensors", None)  # TensorDataset
    if tensors is None:
        return ""
    try:
        return ";".join("x".join(map(str, t.shape[1:])) or "scalar" for t in tensors)
    except Exception:
        return ""


# ------------------------------------------------------------------ the files behind a dataset
#: How the digest at the call is made (``provml:digestMethod``): bounded time whatever the dataset's size.
SAMPLED = "sha256-sampled-v1: each file's relative name, size and three 64 KiB blocks (start, middle, end)"
_BLOCK = 64 << 10
_PATH_ATTRIBUTES = ("root", "path", "paths", "files", "filename", "filenames", "file", "data_dir", "data_path")


def dataset_paths(dataset: Any) -> List[Path]:
    """The files or folders a dataset reads: a path given as the dataset, or those its object names
    (``root``, ``files``, an ``ImageFolder``'s ``samples``...), through a DataLoader or a Subset. Empty: in memory."""
    data = torch_data()
    seen: List[Path] = []
    for _ in range(4):  # DataLoader -> Subset -> dataset
        if data is not None and isinstance(dataset, data.DataLoader):
            dataset = dataset.dataset
        elif data is not None and isinstance(dataset, data.Subset):
            dataset = dataset.dataset
    candidates: List[Any] = [dataset] if isinstance(dataset, (str, os.PathLike)) else []
    if not candidates:
        candidates = [getattr(dataset, a, None) for a in _PATH_ATTRIBUTES]
        samples = getattr(dataset, "samples", None) or getattr(dataset, "imgs", None)
        if not any(c for c in candidates) and isinstance(samples, (list, tuple)) and samples:
            candidates = [s[0] if isinstance(s, (list, tuple)) else s for s in samples]
    for c in candidates:
        for item in (c if isinstance(c, (list, tuple)) else [c]):
            if isinstance(item, (str, os.PathLike)):
                p = Path(item).expanduser()
                if p.exists() and p.resolve() not in seen:
                    seen.append(p.resolve())
    return seen


def _files(paths: Sequence[Path]) -> List[Tuple[str, Path]]:
    out = []
    for root in paths:
        if root.is_dir():
            out += sorted((p.relative_to(root.parent).as_posix(), p) for p in root.rglob("*") if p.is_file())
        else:
            out.append((root.name, root))
    return out


def sampled_digest(paths: Sequence[Path]) -> Tuple[str, int, int]:
    """``(digest, bytes, files)`` of the files under ``paths``, reading at most three blocks of each."""
    digest = hashlib.sha256()
    total = 0
    files = _files(paths)
    for name, path in files:
        size = path.stat().st_size
        total += size
        digest.update(f"{name}\0{size}\0".encode("utf-8", "surrogatepass"))
        with open(path, "rb") as fh:
            for offset in sorted({0, max(0, size // 2 - _BLOCK // 2), max(0, size - _BLOCK)}):
                fh.seek(offset)
                digest.update(fh.read(_BLOCK))
    return digest.hexdigest(), total, len(files)
