"""Final metrics: a value folded over every stored point of a metric."""

from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from ..exceptions import InvalidValueError

__all__ = ["FoldOperation", "FinalMetric"]


class FoldOperation(enum.Enum):
    """Built-in folds; any ``(x, y) -> z`` callable works as well."""

    MAX = "max"
    MIN = "min"
    ADD = "add"
    SUBTRACT = "subtract"

    def __call__(self, acc: Any, value: Any) -> Any:
        return _OPERATIONS[self](acc, value)


_OPERATIONS = {
    FoldOperation.MAX: max,
    FoldOperation.MIN: min,
    FoldOperation.ADD: operator.add,
    FoldOperation.SUBTRACT: operator.sub,
}


@dataclass
class FinalMetric:
    """The running state of one registered fold."""

    name: str
    initial_value: Any
    operation: Callable[[Any, Any], Any]
    value: Any = field(init=False)
    count: int = 0
    failed: str = ""  # why the fold stopped, if it raised

    def __post_init__(self) -> None:
        if not callable(self.operation):
            raise InvalidValueError(
                f"fold_operation for {self.name!r} must be a FoldOperation or a (x, y) -> z callable"
            )
        # None: the first value folded in starts the fold
        self.value = None if self.initial_value is None else _number(self.initial_value, f"the initial_value of final metric {self.name!r}")

    @property
    def operation_name(self) -> str:
        op: Union[FoldOperation, Callable] = self.operation
        if isinstance(op, FoldOperation):
            return op.value
        return getattr(op, "__name__", type(op).__name__)

    def fold(self, values) -> None:
        """Fold ``values`` in; a fold that raises or returns a non-number stops at the last good value."""
        op, acc = self.operation, self.value
        for v in values:
            acc = v if acc is None else _number(op(acc, v), f"the fold of final metric {self.name!r}")
            self.value = acc
            self.count += 1


def _number(value: Any, what: str) -> Any:
    """A Python int or float (NumPy scalars and one-element tensors converted); else InvalidValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        item = getattr(value, "item", None)
        try:
            value = item() if callable(item) and getattr(value, "numel", lambda: getattr(value, "size", 1))() == 1 else None
        except Exception:
            value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidValueError(f"{what} must be a number, got {type(value).__name__ if value is not None else 'a non-number'}")
    return value
