"""Contexts (the stage a record belongs to) and kinds of logged items.

A :class:`Context` is a ``str`` subclass, so contexts hash and compare as
fast as plain strings on the logging hot path, and a plain string such as
``"training"``, ``"Training"`` or ``"my_stage"`` is accepted wherever a
context is. Names are case-insensitive: ``"Training"`` is ``Context.TRAINING``.
"""

from __future__ import annotations

import enum
import re
import threading
import unicodedata
from typing import Dict, Iterator, List, Optional, Sequence, Union

from ._values import check_name
from .exceptions import InvalidValueError

__all__ = [
    "Context", "Contexts", "LoggingItemKind", "ItemSource", "create_context", "resolve_context", "as_source",
    "restore_context", "context_chain", "chained_context", "DEFAULT_CONTEXT",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\- ]+$")  # the common case, checked first
_NAME_PUNCTUATION = frozenset("_.- ")
#: What a context name may hold, said in the error and in docs/api.md
NAME_RULE = ("letters, marks and digits of any script (Unicode categories L, M and N), '_', '.', '-' and spaces, "
             "e.g. Context('fine_tuning') or Context('fine tune.π')")


def _valid_name(name: object) -> bool:
    if not isinstance(name, str) or not name:
        return False
    return bool(_NAME_RE.match(name)) or all(
        c in _NAME_PUNCTUATION or unicodedata.category(c)[0] in "LMN" for c in name)


def _check_no_cycle(ctx: "Context", parent: Optional["Context"]) -> None:
    node = parent
    while node is not None:
        if str.__eq__(node, ctx):
            raise InvalidValueError(f"context {str(ctx)!r} cannot be a sub-context of {str(parent)!r}: that would make a cycle")
        node = node.parent


class _ContextMeta(type):
    """Lets the class be iterated and indexed like an Enum of its members."""

    _members: Dict[str, "Context"]

    def __iter__(cls) -> Iterator["Context"]:
        return iter(list(cls._members.values()))

    def __len__(cls) -> int:
        return len(cls._members)

    def __getitem__(cls, name: str) -> "Context":
        try:
            return cls._members[name.lower()]
        except KeyError:
            raise KeyError(f"unknown context {name!r}; known: {sorted(cls._members)}") from None

    def __contains__(cls, item: object) -> bool:
        return isinstance(item, str) and item.lower() in cls._members


class Context(str, metaclass=_ContextMeta):
    """The stage a record belongs to: TRAINING, VALIDATION, TESTING, EVALUATION, MODELS, DATASETS, or one of yours.

    ``Context["TRAINING"]`` (any case) looks a context up by name.

    ``Context("my_stage")`` or ``create_context("my_stage", Context.TRAINING)``
    makes a new one; ``parent`` makes it a sub-context of another.
    """

    _members: Dict[str, "Context"] = {}
    _lock = threading.Lock()

    TRAINING: "Context"
    VALIDATION: "Context"
    TESTING: "Context"
    EVALUATION: "Context"
    MODELS: "Context"
    DATASETS: "Context"

    def __new__(cls, name: str, parent: Optional[Union["Context", str]] = None) -> "Context":
        if isinstance(name, Context) and parent is None:
            return name
        if not _valid_name(name):
            raise InvalidValueError(f"invalid context name {name!r}: use {NAME_RULE}")
        key = name.lower()
        parent_ctx = resolve_context(parent) if parent is not None else None  # outside the lock: it may make one
        with cls._lock:
            existing = cls._members.get(key)
            if existing is not None:
                if parent_ctx is not None and existing.parent is None:
                    _check_no_cycle(existing, parent_ctx)
                    existing.parent = parent_ctx
                return existing
            obj = str.__new__(cls, key)
            _check_no_cycle(obj, parent_ctx)
            obj.parent = parent_ctx
            cls._members[key] = obj
            return obj

    parent: Optional["Context"]
    source_of_data: Optional[str] = None  # where the stage's data comes from (log_context(..., source_of_data=))

    @property
    def name(self) -> str:
        """The upper-case name, as an Enum member would have it (``TRAINING``)."""
        return str.upper(self)

    @property
    def value(self) -> str:
        """The canonical lower-case string (``training``)."""
        return str(self)

    def __repr__(self) -> str:
        return f"Context.{self.name}"

    def __reduce__(self):  # pickles as a call that re-registers the member, its parent and source of data
        return (restore_context, (str(self), self.parent, self.source_of_data))


# MODELS and DATASETS are where code written for yProv4ML records its models and datasets.
for _builtin in ("training", "validation", "testing", "evaluation", "models", "datasets"):
    setattr(Context, _builtin.upper(), Context(_builtin))
del _builtin

#: Alias used by older code written for the reference library.
Contexts = Context

#: The context of a record logged without one.
DEFAULT_CONTEXT = Context.TRAINING


def restore_context(name: str, parent: Optional[Context], source_of_data: Optional[str] = None) -> Context:
    """The context ``name`` under ``parent``, with its ``source_of_data`` where it has none yet (an unpickled one,
    a series' line of ``series.jsonl``)."""
    ctx = Context(name, parent)
    if source_of_data is not None and ctx.source_of_data is None:
        ctx.source_of_data = source_of_data
    return ctx


def context_chain(ctx: Context) -> List[List[Optional[str]]]:
    """``[name, source_of_data]`` of ``ctx``, then of its parent, up to a context without one (a series' line of
    ``series.jsonl``: :func:`chained_context` makes it again in another process)."""
    chain = []
    while ctx is not None:
        chain.append([str(ctx), ctx.source_of_data])
        ctx = ctx.parent
    return chain


def chained_context(chain: Sequence[Sequence[Optional[str]]]) -> Context:
    """The context :func:`context_chain` described, with its parents and sources of data."""
    ctx = None
    for name, source in reversed(chain):
        ctx = restore_context(name, ctx, source)
    return ctx


def create_context(
    name: str,
    is_subcontext_of: Optional[Union[Context, str]] = None,
    source_of_data: Optional[str] = None,
    *,
    parent: Optional[Union[Context, str]] = None,
) -> Context:
    """Create (or return) the context ``name``, a sub-context of ``is_subcontext_of`` (or ``parent``) if given.

    ``source_of_data`` (e.g. ``"s3://bucket/train"``) is recorded on the context's activity.
    The new context is also reachable as ``Context.<NAME>``.
    """
    if parent is not None and is_subcontext_of is not None and parent != is_subcontext_of:
        raise InvalidValueError(f"create_context({name!r}): give the parent once, as is_subcontext_of= or parent=")
    ctx = Context(name, is_subcontext_of if is_subcontext_of is not None else parent)
    if source_of_data is not None:
        ctx.source_of_data = check_name(getattr(source_of_data, "value", source_of_data), "source_of_data", limit=4096)
    attr = re.sub(r"\W", "_", ctx.name)
    if not hasattr(Context, attr):
        setattr(Context, attr, ctx)
    return ctx


def resolve_context(context: object) -> Context:
    """Turn what a user passed as a context into a :class:`Context`."""
    if context is None:
        return DEFAULT_CONTEXT
    if isinstance(context, Context):
        return context
    if isinstance(context, str):
        return Context(check_name(context, "context name", limit=500))
    if isinstance(context, enum.Enum):
        value = context.value if isinstance(context.value, str) else context.name
        return Context(value)
    if isinstance(context, int):  # log_metric("loss", 1.0, 5): the step went where the context goes
        raise InvalidValueError(
            f"invalid context {context!r}: a number was passed where the context goes; pass the step by name, "
            f"e.g. log_metric('loss', value, step={context!r}), and the context as a Context or a string"
        )
    raise InvalidValueError(
        f"invalid context {context!r} of type {type(context).__name__}: "
        "pass a prov4ml.Context (e.g. Context.TRAINING) or a string"
    )


class ItemSource(str):
    """A source the caller named (``log_metric(..., source="torchmetrics")``), recorded as given."""

    @property
    def value(self) -> str:
        return str(self)

    def __reduce__(self):
        return (ItemSource, (str(self),))


class LoggingItemKind(enum.Enum):
    """Where a logged value comes from; recorded as the series' ``provml:source``."""

    METRIC = "metric"
    PARAMETER = "parameter"
    SYSTEM_METRIC = "system_metric"
    CARBON_METRIC = "carbon_metric"
    FLOPS_PER_BATCH = "flops_per_batch"
    FLOPS_PER_EPOCH = "flops_per_epoch"
    EXECUTION_TIME = "execution_time"
    MODEL_VERSION = "model_version"
    FINAL_MODEL_VERSION = "final_model_version"


def as_source(source: object) -> "Optional[Union[LoggingItemKind, ItemSource]]":
    """A metric's source: a :class:`LoggingItemKind`, or any string (``"std.time"``, ``"torchmetrics"``)."""
    if source is None or isinstance(source, (LoggingItemKind, ItemSource)):
        return source
    if isinstance(source, str) and source:
        try:
            return LoggingItemKind(source.lower())
        except ValueError:
                return ItemSource(check_name(source, "source", limit=500))
    raise InvalidValueError(f"source must be a prov4ml.LoggingItemKind or a string such as 'torchmetrics', got {source!r}")
