"""Model inspection: parameter counts, memory footprint, architecture."""

from __future__ import annotations

from typing import Any, Dict

__all__ = ["model_info", "state_of"]


def model_info(model: Any) -> Dict[str, Any]:
    """Counts and sizes of a ``torch.nn.Module``; the class name for anything else."""
    info: Dict[str, Any] = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return info
    params = list(parameters())
    buffers = list(model.buffers()) if callable(getattr(model, "buffers", None)) else []
    info["parameters"] = sum(p.numel() for p in params)
    info["trainable_parameters"] = sum(p.numel() for p in params if p.requires_grad)
    info["parameter_bytes"] = sum(p.numel() * p.element_size() for p in params)
    info["buffer_bytes"] = sum(b.numel() * b.element_size() for b in buffers)
    info["memory_footprint_bytes"] = info["parameter_bytes"] + info["buffer_bytes"]
    if callable(getattr(model, "modules", None)):
        info["modules"] = sum(1 for _ in model.modules())
    devices = sorted({str(p.device) for p in params})
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in params})
    if devices:
        info["device"] = ",".join(devices)
        info["dtype"] = ",".join(dtypes)
    return info


def state_of(model: Any) -> Any:
    """What to save for a model version: its state dict when it has one."""
    state_dict = getattr(model, "state_dict", None)
    return state_dict() if callable(state_dict) else model
