"""Model inspection: parameter counts, memory footprint, architecture."""

from __future__ import annotations

from typing import Any, Dict

__all__ = ["model_info", "state_of", "layer_table", "LAYER_COLUMNS"]

#: the columns of the layer table (log_model(..., log_model_layers=True)), after name and type
LAYER_COLUMNS = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride", "padding")


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


def layer_table(model: Any) -> str:
    """CSV of the model's leaf layers, in module order: name, type, parameters, then ``LAYER_COLUMNS``."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("name", "type", "parameters") + LAYER_COLUMNS)
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue  # a container: its leaves have rows
        cells = [_cell(getattr(module, column, None)) for column in LAYER_COLUMNS]
        count = sum(p.numel() for p in module.parameters(recurse=False))
        writer.writerow([name or type(module).__name__, type(module).__name__, count, *cells])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)
