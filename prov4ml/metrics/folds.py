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
        self.value = self.initial_value

    @property
    def operation_name(self) -> str:
        op: Union[FoldOperation, Callable] = self.operation
        if isinstance(op, FoldOperation):
            return op.value
        return getattr(op, "__name__", type(op).__name__)

    def fold(self, values) -> None:
        op, acc = self.operation, self.value
        for v in values:
            acc = op(acc, v)
        self.value = acc
        self.count += len(values)
