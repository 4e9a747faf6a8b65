"""Values and argument orders as users pass them, including older interfaces.

Code written for the reference library calls ``log_model("name", model)`` as
well as ``log_model(model, "name")``, ``log_artifact(name, path)`` as well as
``log_artifact(path, context)``; these functions decide by type and refuse
ambiguous calls.
"""

from __future__ import annotations

import json
import numbers
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from .context import Context
from .exceptions import ArgumentError, InvalidValueError

__all__ = ["check_name", "is_tensor", "metric_value", "param_value", "artifact_call", "model_call", "version_call", "dataset_call"]


def is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def metric_value(value: Any, name: str) -> Any:
    """A float; a tensor on an accelerator stays a detached tensor (converted later, in a batch).

    A CPU tensor is converted at once (``.item()`` costs less than deferring
    it); a tensor that is not one real number (several elements, meta,
    sparse, nested, complex) is refused here, at the call.
    """
    if is_tensor(value):
        return _tensor_value(value, name)
    if isinstance(value, (str, bytes)):
        raise InvalidValueError(
            f"metric {name!r} got the string {value!r}; metric values must be numbers "
            "(record text with log_param)"
        )
    try:
        if isinstance(value, numbers.Real):  # bool, int, float, NumPy scalars, Fraction, Decimal-like
            return float(value)
        item = getattr(value, "item", None)  # one-element NumPy arrays
        if callable(item) and getattr(value, "size", None) == 1 and getattr(getattr(value, "dtype", None), "kind", "f") in "biuf":
            return float(item())
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidValueError(f"metric {name!r} got {value!r}, which is not a float64 ({exc}); log a smaller number") from None
    raise InvalidValueError(
        f"metric {name!r} got {_short(value)} of type {type(value).__name__}; pass a number, "
        "a NumPy scalar or a one-element torch tensor"
    )


def evaluate(value: Any, name: str) -> Any:
    """A lazy metric value's result (anything else as it is); its failure is the caller's bad input."""
    if not callable(value) or is_tensor(value):
        return value
    try:
        return value()
    except Exception as exc:
        raise InvalidValueError(f"the callable given for metric {name!r} raised {type(exc).__name__}: {exc}") from exc


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _tensor_value(value: Any, name: str) -> Any:
    if value.is_cpu and not value.is_sparse:  # the common case, checked by item() itself; no host-device sync
        try:
            return float(value.item())
        except (RuntimeError, TypeError, ValueError, OverflowError):
            pass  # the detailed checks below say what is wrong
    torch = sys.modules["torch"]
    problem = None
    if value.is_nested:
        problem = "a nested tensor"
    elif value.layout is not torch.strided:
        problem = f"a {value.layout} tensor"
    elif value.is_meta:
        problem = "a meta tensor (it has no data)"
    elif value.numel() != 1:
        problem = f"a tensor of shape {tuple(value.shape)}"
    elif value.is_complex():
        problem = "a complex tensor"
    if problem is not None:
        raise InvalidValueError(
            f"metric {name!r} got {problem}; log one real number, e.g. loss.mean().detach() or tensor[0]"
        )
    if value.device.type == "cpu":
        try:
            return float(value.item())
        except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidValueError(f"metric {name!r}: the tensor could not become one float ({exc})") from None
    return value.detach()


def param_value(value: Any) -> Any:
    """Parameters stay typed when scalar; containers are recorded as JSON text."""
    if is_tensor(value):
        if not value.is_nested and value.layout is sys.modules["torch"].strided and not value.is_meta and value.numel() == 1:
            value = value.item()
        else:
            shape = "nested" if value.is_nested else tuple(value.shape)
            return f"tensor(shape={shape}, dtype={value.dtype}, device={value.device})"
    item = getattr(value, "item", None)
    if callable(item) and type(value) not in (int, float, bool, str) and getattr(value, "size", 1) == 1:  # NumPy scalars too
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, str) and value:
            check_name(value, "a parameter value", limit=1 << 20)
        return value  # None stays None: the document says so (provml:is_none), not with the text "None"
    if isinstance(value, Context):
        return str(value)
    try:
        return json.dumps(value, default=str, sort_keys=isinstance(value, dict))
    except (TypeError, ValueError):
        return str(value)


def _is_path(value: Any) -> bool:
    return isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.exists(value))


@dataclass
class ArtifactCall:
    path: Any
    name: Optional[str]
    context: Any
    step: Any
    timestamp: Any
    copy: bool
    is_model: bool


def _bind(call: str, names: Tuple[str, ...], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    if len(args) > len(names):
        raise ArgumentError(f"{call}() takes at most {len(names)} positional arguments ({len(args)} given)")
    bound = dict(zip(names, args))
    for key, value in kwargs.items():
        if key in bound:
            raise ArgumentError(f"{call}() got multiple values for argument {key!r}")
        bound[key] = value
    return bound


def artifact_call(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> ArtifactCall:
    """``(artifact_path, context, step, timestamp)`` or ``(artifact_name, artifact_path, context, step, timestamp)``."""
    kwargs = dict(kwargs)
    flags = {k: kwargs.pop(k) for k in ("log_copy_in_prov_directory", "is_model", "is_input") if k in kwargs}
    named_form = "artifact_name" in kwargs or (
        len(args) >= 2 and not isinstance(args[1], Context) and _is_path(args[1])
    )
    if named_form:
        if "artifact_name" not in kwargs and _is_path(args[0]) and args[0] != args[1]:
            raise InvalidValueError(
                f"log_artifact({args[0]!r}, {args[1]!r}) is ambiguous: both are existing paths; "
                "call log_artifact(artifact_path=..., artifact_name=...) instead"
            )
        b = _bind("log_artifact", ("artifact_name", "artifact_path", "context", "step", "timestamp"), args, kwargs)
    else:
        b = _bind("log_artifact", ("artifact_path", "context", "step", "timestamp"), args, kwargs)
    unknown = set(b) - {"artifact_name", "artifact_path", "context", "step", "timestamp"}
    if unknown:
        raise ArgumentError(f"log_artifact() got unexpected keyword argument(s) {sorted(unknown)}")
    if "artifact_path" not in b:
        raise ArgumentError("log_artifact() needs artifact_path")
    path = b["artifact_path"]
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path):
        raise InvalidValueError(f"log_artifact() needs a file or directory path (str or os.PathLike), got {_short(path)}")
    check_name(os.fspath(path), "artifact_path", limit=4096)
    if b.get("artifact_name") is not None:
        check_name(b["artifact_name"], "artifact_name")
    return ArtifactCall(
        path=b["artifact_path"], name=b.get("artifact_name"), context=b.get("context"),
        step=b.get("step"), timestamp=b.get("timestamp"),
        copy=bool(flags.get("log_copy_in_prov_directory", True)), is_model=bool(flags.get("is_model", False)),
    )


def _swap_if_name_first(first: Any, second: Any) -> Tuple[Any, Any]:
    """(obj, name) from either order: a string is the name."""
    if isinstance(first, str) and not isinstance(second, str):
        return second, first
    return first, second


def model_call(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Any, str, bool, bool]:
    b = _bind("log_model", ("model", "model_name", "log_model_info", "log_as_artifact"), args, kwargs)
    if "model" not in b:
        raise ArgumentError("log_model() needs a model")
    model, name = _swap_if_name_first(b["model"], b.get("model_name", "default"))
    _check_name("log_model", name)
    return model, name, bool(b.get("log_model_info", True)), bool(b.get("log_as_artifact", True))


def version_call(args: Tuple[Any, ...], kwargs: Dict[str, Any]):
    b = _bind("save_model_version", ("model", "model_name", "context", "step", "timestamp", "incremental"), args, kwargs)
    if "model" not in b or "model_name" not in b:
        raise ArgumentError("save_model_version() needs a model and a model_name")
    model, name = _swap_if_name_first(b["model"], b["model_name"])
    _check_name("save_model_version", name)
    return model, name, b.get("context"), b.get("step"), b.get("timestamp"), bool(b.get("incremental", True))


def dataset_call(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Any, str]:
    kwargs = dict(kwargs)
    kwargs.pop("log_dataset_info", None)
    if "dataset_label" in kwargs:
        kwargs["label"] = kwargs.pop("dataset_label")
    b = _bind("log_dataset", ("dataset", "label"), args, kwargs)
    if "dataset" not in b or "label" not in b:
        raise ArgumentError("log_dataset() needs a dataset and a label")
    dataset, label = _swap_if_name_first(b["dataset"], b["label"])
    _check_name("log_dataset", label)
    return dataset, label


def _check_name(call: str, name: Any) -> None:
    check_name(name, f"the name given to {call}()")


def check_name(name: Any, what: str, limit: int = 1000) -> str:
    """A name must be a non-empty string that files and JSON can hold."""
    if not isinstance(name, str) or not name:
        raise InvalidValueError(f"{what} must be a non-empty string, got {_short(name)}")
    if "\x00" in name:
        raise InvalidValueError(f"{what} {name[:40]!r} contains a NUL character; remove it")
    if len(name) > limit:
        raise InvalidValueError(f"{what} is {len(name)} characters long; use at most {limit}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValueError(f"{what} {name[:40]!r} is not valid Unicode (a lone surrogate); fix the string") from None
    return name
