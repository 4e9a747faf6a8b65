"""The fields of a run that ``--where`` and ``--sort`` name, and how they compare.

A field is one of ``FIXED`` (``run_id``, ``status``, ``duration`` ...), a
parameter name, or a metric: ``name/context`` or just ``name`` (its last
value; a name logged in several contexts means the first of
``CONTEXT_PREFERENCE`` it has), optionally followed by ``.last``, ``.best``,
``.min``, ``.max``, ``.mean``, ``.count`` or ``.last_step``. A parameter wins
over a metric of the same name (reach the metric as ``name/context``).

``--where FIELD OP VALUE`` with OP one of ``< <= > >= == !=`` (``=`` is
``==``): numbers compare numerically (``lr<0.01``), times with an ISO date
(``start>=2026-12-01``), anything else as text with ``==`` / ``!=``. A run
without the field never matches. Several conditions joined by ``and`` must
all hold (``lr<0.01 and val_acc.best>0.9``; :func:`conditions`), as repeated
``--where`` options do; the UI's filter box reads the same text.
"""

from __future__ import annotations

import operator
import re
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..exceptions import InvalidValueError
from .record import RunRecord

__all__ = ["Fields", "Condition", "conditions", "Resolved", "sort_runs", "context_rank", "metric_order", "FIXED", "STATS", "CONTEXT_PREFERENCE",
           "MISSING"]

FIXED = ("run", "experiment", "run_id", "status", "start", "end", "duration", "ranks")
STATS = ("last", "best", "min", "max", "mean", "count", "last_step")
CONTEXT_PREFERENCE = ("validation", "evaluation", "testing", "training")

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

_OPS: Dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt, "=": operator.eq,
}
_WHERE = re.compile(r"^\s*(?P<field>[^<>=!]+?)\s*(?P<op><=|>=|==|!=|<|>|=)\s*(?P<value>.*?)\s*$")
# `and` between conditions, or a quoted value (which may hold " and " itself): only the former splits.
_AND = re.compile(r"'[^']*'|\"[^\"]*\"|(?<!\S)and(?!\S)", re.IGNORECASE)

Getter = Callable[[RunRecord, Dict[str, Dict[str, Any]]], Any]
#: What a field name means: ``("fixed", name, "")``, ``("param", name, "")`` or ``("metric", "name/context", stat)``.
Resolved = Tuple[str, str, str]


class Fields:
    """The fields the listed runs have; ``getter(name)`` reads one from a run and its metric figures."""

    def __init__(self, params: Sequence[str], metrics: Sequence[str]):
        """``params``: the parameter names in order of first appearance; ``metrics``: every ``name/context``."""
        self.params: List[str] = list(params)
        self.metrics: List[str] = sorted(set(metrics))
        self.contexts: Dict[str, List[str]] = {}
        for key in self.metrics:
            name, _, context = key.rpartition("/")
            self.contexts.setdefault(name, []).append(context)

    def metric_key(self, name: str) -> Optional[str]:
        """``name/context`` for a metric ``name`` or ``name/context`` (None when no run logged it)."""
        if name in self.metrics:
            return name
        contexts = self.contexts.get(name)
        if not contexts:
            return None
        ranked = sorted(contexts, key=lambda c: (context_rank(c), c))
        return f"{name}/{ranked[0]}"

    def label(self, key: str) -> str:
        """How a metric column is titled: its bare name when only one context has it."""
        name, _, _context = key.rpartition("/")
        return name if len(self.contexts.get(name, ())) == 1 else key

    @classmethod
    def of_runs(cls, runs: Sequence[RunRecord], figures: Sequence[Dict[str, Dict[str, Any]]]) -> "Fields":
        return cls(list(dict.fromkeys(k for r in runs for k in r.params)), [k for f in figures for k in f])

    def getter(self, field: str, option: str) -> Getter:
        kind, name, stat = self.resolve(field, option)
        if kind == "fixed":
            return lambda r, f: _fixed(r, name)
        if kind == "param":
            return lambda r, f: r.params.get(name, MISSING)
        return lambda r, f: _present(f.get(name, {}).get(stat))

    def resolve(self, field: str, option: str) -> Resolved:
        """What ``field`` names; :class:`InvalidValueError` listing the fields there are when it names none."""
        if field in FIXED:
            return ("fixed", field, "")
        if field in self.params:
            return ("param", field, "")
        key, stat = self.metric_key(field), "last"
        if key is None and "." in field:
            base, _, suffix = field.rpartition(".")
            if suffix in STATS:
                key, stat = self.metric_key(base), suffix
        if key is not None:
            return ("metric", key, stat)
        raise InvalidValueError(
            f"{option}: no listed run has a field {field!r}; fields: {', '.join(FIXED)}"
            + (f"; parameters: {', '.join(self.params)}" if self.params else "")
            + (f"; metrics: {', '.join(sorted(self.contexts))} (or name/context, .best, .min, .max ...)" if self.metrics else "")
        )


def context_rank(context: str) -> int:
    """The place of ``context`` in ``CONTEXT_PREFERENCE`` (any other context after them)."""
    return CONTEXT_PREFERENCE.index(context) if context in CONTEXT_PREFERENCE else len(CONTEXT_PREFERENCE)


def metric_order(key: str) -> Tuple[int, str]:
    """A sort key for ``name/context`` metric keys: by context as ``CONTEXT_PREFERENCE`` says, then by key."""
    return context_rank(key.rpartition("/")[2]), key


def _fixed(run: RunRecord, field: str) -> Any:
    value = {"run": run.label, "experiment": run.experiment, "run_id": run.run_id, "status": run.status,
             "start": run.start, "end": run.end, "duration": run.duration_s, "ranks": len(run.ranks)}[field]
    return _present(value)


def _present(value: Any) -> Any:
    return MISSING if value is None else value


def conditions(texts: Sequence[str], option: str = "--where") -> List["Condition"]:
    """The conditions of every text in ``texts``, each one condition or several joined by ``and``."""
    out = []
    for text in texts:
        parts, start = [], 0
        for m in _AND.finditer(text):
            if m.group(0)[0] not in "'\"":
                parts.append(text[start:m.start()])
                start = m.end()
        parts.append(text[start:])
        if len(parts) > 1 and not all(p.strip() for p in parts):
            raise InvalidValueError(f"{option} {text!r}: and joins two conditions, and one is missing; "
                                    "write e.g. 'lr<0.01 and val_acc.best>0.9'")
        out += [Condition(p, option) for p in parts]
    return out


class Condition:
    """One ``FIELD OP VALUE`` (``option`` names where it was given, in error messages: ``--where``, the UI's filter)."""

    def __init__(self, text: str, option: str = "--where"):
        m = _WHERE.match(text)
        if m is None or not m.group("value"):
            raise InvalidValueError(
                f"{option} {text!r} is not FIELD OP VALUE; write e.g. 'lr<0.01' (OP: < <= > >= == !=), "
                "several joined by and: 'lr<0.01 and val_acc.best>0.9'"
            )
        self.text, self.option, self.field, op = text, option, m.group("field"), m.group("op")
        self.op_text = "==" if op == "=" else op
        self.op = _OPS[op]
        raw = m.group("value")
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
        self.raw = raw
        self.number = _number(raw)
        self.time = _iso(raw) if self.number is None else None
        if op in ("<", "<=", ">", ">=") and self.number is None and self.time is None:
            raise InvalidValueError(
                f"{option} {text!r}: {op} compares numbers (or times, as ISO dates); use == or != to compare text"
            )
        self.get: Optional[Getter] = None
        self.resolved: Optional[Resolved] = None

    def bind(self, fields: Fields) -> "Condition":
        self.resolved = fields.resolve(self.field, f"{self.option} {self.text!r}")
        self.get = fields.getter(self.field, f"{self.option} {self.text!r}")
        return self

    def __call__(self, run: RunRecord, figures: Dict[str, Dict[str, Any]]) -> bool:
        value = self.get(run, figures)  # type: ignore[misc]
        if value is MISSING:
            return False
        if isinstance(value, bool):
            return self.op(str(value).lower(), self.raw.lower()) if self.op in (operator.eq, operator.ne) else False
        if isinstance(value, (int, float)) and self.number is not None:
            return self.op(value, self.number)
        if isinstance(value, datetime) and self.time is not None:
            return self.op(value, self.time)
        if self.op in (operator.eq, operator.ne):
            return self.op(str(value), self.raw)
        return False


def sort_runs(runs: List[Tuple[RunRecord, Dict[str, Dict[str, Any]]]], get: Getter, descending: bool):
    """``runs`` ordered by a field; runs with NaN there (a value with no rank: a diverged run), then runs
    without it, come last, in either direction."""
    present = [(get(r, f), (r, f)) for r, f in runs]
    have = [p for p in present if p[0] is not MISSING and not _nan(p[0])]
    have.sort(key=lambda p: _order(p[0]), reverse=descending)
    return ([rf for _v, rf in have] + [rf for v, rf in present if v is not MISSING and _nan(v)]
            + [rf for v, rf in present if v is MISSING])


def _nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _order(value: Any) -> Tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, datetime):
        return (2, value.timestamp())
    return (3, str(value))


def _number(text: str) -> Optional[float]:
    if re.fullmatch(r"[+-]?\d+", text.strip()):
        return int(text)  # exactly: 2**53 + 1 is not 2**53
    try:
        return float(text)
    except ValueError:
        return None


def _iso(text: str) -> Optional[datetime]:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.astimezone(timezone.utc)  # a date without zone: local time
