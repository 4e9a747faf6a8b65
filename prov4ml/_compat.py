"""Values as users pass them: metric values, parameter values, names.

(The argument orders of the reference library's generations are read in ``_signatures``.)
"""

from __future__ import annotations

import json
import numbers
import sys
from typing import Any

from .context import Context
from .exceptions import InvalidValueError

__all__ = ["check_name", "is_tensor", "metric_value", "param_value"]


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
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=repr)
    if not isinstance(value, (dict, list, tuple)):  # a Path, a device, a class: its text, not a quoted JSON string
        return str(value)
    try:
        return json.dumps(value, default=str, sort_keys=isinstance(value, dict))
    except (TypeError, ValueError):
        return str(value)


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
