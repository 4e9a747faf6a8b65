"""Per-metric samplers: decide which logged points are stored, and how.

A sampler sees each value logged for its series and returns the value to
store, or ``None`` to store nothing for that call. ``next_eval`` receives a
zero-argument callable instead of a value and calls it only when the point
will be kept, so an expensive evaluation runs only as often as it is stored.
``end`` returns a last value when the run ends (e.g. a partial window).

Samplers are given per metric name at ``start_run(metric_samplers={...})``,
as instances or by name: ``"identity"``, ``"ignore"``, ``"subsample:10"``,
``"window:100"``, ``"moving_average:0.99"``.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional, Type, Union

from ..exceptions import InvalidValueError

__all__ = [
    "Sampler",
    "Identity",
    "Ignore",
    "Subsample",
    "Window",
    "MovingAverage",
    "Pipe",
    "make_sampler",
]


class Sampler:
    """Base class. Subclasses override ``next`` (and ``next_eval`` / ``end`` when useful)."""

    def next(self, value: Any) -> Optional[Any]:
        return value

    def next_eval(self, compute: Callable[[], Any]) -> Optional[Any]:
        return self.next(compute())

    def end(self) -> Optional[Any]:
        return None

    def clone(self) -> "Sampler":
        """A fresh copy with the same settings, for a new series."""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{v!r}" for v in vars(self).values() if not isinstance(v, (list,)))
        return f"{type(self).__name__}({args})"


class Identity(Sampler):
    """Store every value as logged."""

    def __repr__(self) -> str:
        return "Identity()"


class Ignore(Sampler):
    """Store nothing; a lazy callable is never called."""

    def next(self, value: Any) -> None:
        return None

    def next_eval(self, compute: Callable[[], Any]) -> None:
        return None

    def __repr__(self) -> str:
        return "Ignore()"


class Subsample(Sampler):
    """Store one value out of every ``freq`` (the 1st, the ``freq+1``-th, ...)."""

    def __init__(self, freq: int) -> None:
        if not isinstance(freq, int) or isinstance(freq, bool) or freq < 1:
            raise InvalidValueError(f"Subsample(freq) needs an integer freq >= 1, got {freq!r}")
        self.freq = freq
        self._seen = 0

    def _keep(self) -> bool:
        keep = self._seen % self.freq == 0
        self._seen += 1
        return keep

    def next(self, value: Any) -> Optional[Any]:
        return value if self._keep() else None

    def next_eval(self, compute: Callable[[], Any]) -> Optional[Any]:
        return compute() if self._keep() else None

    def __repr__(self) -> str:
        return f"Subsample({self.freq})"


class Window(Sampler):
    """Store the mean of each block of ``size`` values, at the block's last step."""

    def __init__(self, size: int) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise InvalidValueError(f"Window(size) needs an integer size >= 1, got {size!r}")
        self.size = size
        self._sum: Any = 0.0
        self._count = 0

    def next(self, value: Any) -> Optional[Any]:
        self._sum = self._sum + value
        self._count += 1
        if self._count < self.size:
            return None
        mean = self._sum / self._count
        self._sum, self._count = 0.0, 0
        return mean

    def end(self) -> Optional[Any]:
        if self._count == 0:
            return None
        mean = self._sum / self._count
        self._sum, self._count = 0.0, 0
        return mean

    def __repr__(self) -> str:
        return f"Window({self.size})"


class MovingAverage(Sampler):
    """Store an exponential moving average: ``avg = decay * avg + (1 - decay) * value``.

    The average starts at the first value, so early points are not biased to 0.
    """

    def __init__(self, decay: float) -> None:
        if not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise InvalidValueError(f"MovingAverage(decay) needs 0 <= decay < 1, got {decay!r}")
        self.decay = float(decay)
        self._avg: Any = None

    def next(self, value: Any) -> Any:
        if self._avg is None:
            self._avg = value
        else:
            self._avg = self.decay * self._avg + (1.0 - self.decay) * value
        return self._avg

    def __repr__(self) -> str:
        return f"MovingAverage({self.decay})"


class Pipe(Sampler):
    """Chain samplers left to right; a point is stored only if every stage keeps it."""

    def __init__(self, *stages: Sampler) -> None:
        if not stages or not all(isinstance(s, Sampler) for s in stages):
            raise InvalidValueError("Pipe(*samplers) needs one or more Sampler instances")
        self.stages = stages

    def _rest(self, value: Any) -> Optional[Any]:
        for stage in self.stages[1:]:
            if value is None:
                return None
            value = stage.next(value)
        return value

    def next(self, value: Any) -> Optional[Any]:
        return self._rest(self.stages[0].next(value))

    def next_eval(self, compute: Callable[[], Any]) -> Optional[Any]:
        return self._rest(self.stages[0].next_eval(compute))

    def end(self) -> Optional[Any]:
        # Only a value the first stage still holds can flow through the rest.
        return self._rest(self.stages[0].end())

    def __repr__(self) -> str:
        return "Pipe(" + ", ".join(map(repr, self.stages)) + ")"


_BY_NAME: Dict[str, Type[Sampler]] = {
    "identity": Identity,
    "ignore": Ignore,
    "subsample": Subsample,
    "window": Window,
    "moving_average": MovingAverage,
    "movingaverage": MovingAverage,
}
_PARSE_ARG: Dict[Type[Sampler], Callable[[str], Any]] = {Subsample: int, Window: int, MovingAverage: float}


def make_sampler(spec: Union[Sampler, str, None]) -> Optional[Sampler]:
    """A fresh sampler from an instance or a name such as ``"subsample:10"``.

    Returns ``None`` for Identity, so the hot path can skip the sampler call.
    """
    if spec is None:
        return None
    if isinstance(spec, Sampler):
        sampler = spec.clone()
    elif isinstance(spec, str):
        name, _, arg = spec.strip().lower().partition(":")
        cls = _BY_NAME.get(name.replace("-", "_"))
        if cls is None:
            raise InvalidValueError(
                f"unknown sampler {spec!r}; known: identity, ignore, subsample:N, window:N, "
                "moving_average:DECAY (or pass an instance such as prov4ml.Subsample(10))"
            )
        parse = _PARSE_ARG.get(cls)
        if parse is None:
            sampler = cls()
        else:
            try:
                sampler = cls(parse(arg))
            except ValueError:
                raise InvalidValueError(
                    f"sampler {spec!r} needs an argument, e.g. '{name}:{'0.99' if parse is float else '10'}'"
                ) from None
    else:
        raise InvalidValueError(
            f"a sampler must be a prov4ml Sampler or a name string, got {type(spec).__name__}"
        )
    return None if type(sampler) is Identity else sampler
