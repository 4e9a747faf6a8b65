"""Forward-pass FLOPs of a model on a batch, or over one epoch of a dataset.

Convention: one multiply-add is 2 FLOPs, as torch's ``FlopCounterMode``
counts. fvcore (extra ``prov4ml[flops]``) is tried first; it counts one per
multiply-add, so its multiply-add operators (convolutions, linear layers,
matrix products, einsum) are doubled, and the few element-wise operators it
also counts (normalisations, adaptive average pooling, upsampling) are kept as
it counts them. When fvcore is missing, or cannot trace the model (keyword
inputs, data-dependent control flow), torch's own counter is used; the
:class:`FlopCount` says which counter answered and why.

The model runs in eval mode under ``torch.no_grad()``; every module's
training flag is restored afterwards.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from .._optional import available
from ..exceptions import InvalidValueError

__all__ = ["FlopCount", "count_batch_flops", "count_epoch_flops", "CONVENTION"]

CONVENTION = "multiply-add = 2 FLOPs"

# fvcore's operators that count multiply-adds (one each), doubled to our convention.
_FVCORE_MAC_OPS = frozenset({"addmm", "bmm", "conv", "einsum", "matmul", "mm", "linear"})


@dataclass(frozen=True)
class FlopCount:
    """A forward-pass FLOP count and how it was obtained."""

    flops: int
    counter: str  # "fvcore" or "torch"
    convention: str = CONVENTION
    note: str = ""


def count_batch_flops(model: Any, batch: Any) -> FlopCount:
    """FLOPs of one forward pass of ``model`` on ``batch``.

    ``batch`` is a tensor (``model(batch)``), an ``(inputs, targets, ...)``
    tuple or list (``model(inputs)``; ``inputs`` may itself be a tuple of
    positional inputs), or a dict (``model(**batch)``). Inputs are moved to the
    device of the model's parameters.
    """
    args, kwargs = _model_inputs(batch)
    return _count(model, args, kwargs)


def count_epoch_flops(model: Any, dataset: Any) -> FlopCount:
    """Forward FLOPs of one epoch over ``dataset`` (a Dataset, Subset or DataLoader).

    Method: the FLOPs of a forward pass on ONE sample (``dataset[0]``, collated
    into a batch of one with the loader's ``collate_fn``, else torch's
    ``default_collate``) times the number of samples an epoch processes
    (``len(dataset)``; for a DataLoader the samples its batch sampler yields,
    so ``drop_last`` counts). Exact for models whose cost is linear in the
    batch size (per-sample layers: convolutions, linear, attention within a
    sample); one forward pass instead of a whole epoch. Training costs about
    3x this (the backward pass about twice the forward).
    """
    import torch.utils.data as tud

    if isinstance(dataset, tud.DataLoader):
        loader = dataset
        source, collate = loader.dataset, loader.collate_fn
        samples = _loader_samples(loader)
        if loader.batch_size is None and loader.batch_sampler is None:
            # Automatic batching is off: each item already is a batch.
            collate = None
    else:
        source, collate, samples = dataset, tud.default_collate, _length(dataset)
    if isinstance(source, tud.IterableDataset):
        raise InvalidValueError(
            "count_epoch_flops needs a map-style dataset (with len and indexing); "
            "for an IterableDataset use count_batch_flops(model, batch) and multiply by the number of batches"
        )
    if samples == 0:
        raise InvalidValueError("count_epoch_flops got an empty dataset (0 samples per epoch); pass the dataset the epoch runs over")
    sample = source[0]
    batch = collate([sample]) if collate is not None else sample
    one = count_batch_flops(model, batch)
    note = f"forward FLOPs of 1 sample x {samples} samples per epoch"
    return FlopCount(one.flops * samples, one.counter, one.convention, _join(note, one.note))


def _count(model: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> FlopCount:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise InvalidValueError(f"FLOPs are counted for a torch.nn.Module, got {type(model).__name__}")
    args, kwargs = _to_device(model, args, kwargs)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            note = ""
            if kwargs:
                note = "fvcore not used: it cannot trace keyword inputs"
            elif not available("fvcore"):
                note = 'fvcore not installed (pip install "prov4ml[flops]")'
            else:
                try:
                    flops, extra = _fvcore(model, args)
                    return FlopCount(flops, "fvcore", CONVENTION, extra)
                except Exception as exc:  # tracing fails on some models: torch's counter still works
                    note = f"fvcore failed ({type(exc).__name__}: {_first_line(exc)})"
            return FlopCount(_torch(model, args, kwargs), "torch", CONVENTION, note)
    finally:
        # Per module: a model may hold submodules deliberately kept in eval mode.
        for module, training in modes:
            module.training = training


def _fvcore(model: Any, args: Tuple[Any, ...]) -> Tuple[int, str]:
    """(FLOPs at 2 per multiply-add, note on non-multiply-add operators) from fvcore."""
    with warnings.catch_warnings():
        # fvcore relies on torch.jit (script at import, trace when counting), which
        # recent torch versions deprecate loudly; the count itself is unaffected.
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, args)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        by_op = analysis.by_operator()
        skipped = sorted(analysis.unsupported_ops())
    flops = 0
    others: List[str] = []
    for op, count in sorted(by_op.items()):
        if op in _FVCORE_MAC_OPS:
            flops += 2 * int(count)
        else:
            flops += int(count)
            others.append(f"{op}={int(count)}")
    note = _join(
        f"counted once, not doubled: {', '.join(others)}" if others else "",
        f"fvcore has no rule for (not counted): {', '.join(skipped)}" if skipped else "",
    )
    return flops, note


def _torch(model: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(*args, **kwargs)
    return int(counter.get_total_flops())


def _model_inputs(batch: Any) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    """(positional, keyword) inputs of the model for a batch."""
    if isinstance(batch, dict):
        return (), dict(batch)
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise InvalidValueError("an empty batch has no model input; pass a tensor, (inputs, targets) or a dict")
        first = batch[0]
        return (tuple(first) if isinstance(first, (tuple, list)) else (first,)), {}
    return (batch,), {}


def _to_device(model: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
    import torch

    parameter = next(model.parameters(), None)
    if parameter is None:
        return args, kwargs
    device = parameter.device

    def move(value: Any) -> Any:
        return value.to(device) if isinstance(value, torch.Tensor) else value

    return tuple(move(a) for a in args), {k: move(v) for k, v in kwargs.items()}


def _loader_samples(loader: Any) -> int:
    """Samples one epoch of ``loader`` yields (drop_last included)."""
    import torch.utils.data as tud

    batch_sampler = loader.batch_sampler
    if batch_sampler is None:
        return _length(loader.sampler)
    if type(batch_sampler) is tud.BatchSampler:
        # Arithmetic, not iteration: a large dataset would make the index walk slow.
        total, size = _length(batch_sampler.sampler), batch_sampler.batch_size
        return (total // size) * size if batch_sampler.drop_last else total
    return sum(len(indices) for indices in batch_sampler)  # a custom batch sampler


def _length(obj: Any) -> int:
    try:
        return len(obj)
    except TypeError as exc:
        raise InvalidValueError(
            f"count_epoch_flops needs to know the number of samples, but {type(obj).__name__} has no len(); "
            "use count_batch_flops(model, batch) and multiply by the number of batches"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
