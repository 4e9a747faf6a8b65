"""Dataset inspection: size, batching and sample shape of Dataset, Subset and DataLoader."""

from __future__ import annotations

import sys
from typing import Any, Dict

__all__ = ["dataset_stats"]


def dataset_stats(dataset: Any) -> Dict[str, Any]:
    """What can be read cheaply about a dataset, without iterating it."""
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
