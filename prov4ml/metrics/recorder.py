"""The metric recorder: the series registry and the hot path, ``log_metric``.

``log_metric`` finds the series, lets its sampler decide, and packs the point
into the run's journal (``journal.py``): when the call returns the point is
durable against a kill. Nothing else happens on the training thread, apart
from a countdown that pokes the refresher every ``save_after_n_logs`` calls.
Tensors on an accelerator are the exception: they are kept, un-synchronised,
until the next hand-over converts them in one batch per device.

Where the C hot path is built (``hotpath.py``), a recorder's ``log_metric``
is a ``HotPath``: it records a float or a CPU tensor of a known series
itself and hands every other call to the Python ``log_metric`` below.
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _values
from .._values import INT64, check_name, check_step, check_timestamp
from .._fs import slug
from ..context import Context, LoggingItemKind, as_source, context_chain, resolve_context
from ..exceptions import InvalidValueError, RunStateError
from .folds import FinalMetric
from .formats import MetricFormat
from .hotpath import Cursor, HotPath
from .journal import SEGMENT_SLOTS, SLOT, Journal, JournalReader, pack_record
from .samplers import Sampler, make_sampler
from .series import MetricSeries, materialize

__all__ = ["MetricRecorder", "check_name", "check_step", "check_timestamp", "INT64"]

_time = time.time
_TENSOR: list = [None]  # torch.Tensor, once torch is imported (prov4ml never imports it itself)




class MetricRecorder:
    """Every series of one run, and the journal their points go to."""

    def __init__(
        self,
        journal_dir: str,
        fmt: MetricFormat,
        rank: int,
        save_after_n_logs: int,
        samplers: Dict[str, Any],
        default_sampler: Any,
        default_context: Context,
        on_hand_over: Callable[[], None],
    ) -> None:
        self.journal_dir = journal_dir
        self.journal: Optional[Journal] = None  # made by open(): a rank that records nothing has none
        self._format = fmt
        self._rank = rank
        self.save_after_n_logs = save_after_n_logs
        self._samplers = samplers
        self._default_sampler = default_sampler
        self.default_context = default_context
        self._on_hand_over = on_hand_over
        self._lock = threading.RLock()
        self._by_context: Dict[Any, Dict[Any, MetricSeries]] = {}
        self.series: Dict[Tuple[Context, str], MetricSeries] = {}
        self._file_names: set = set()  # of the series so far: each series has a file of its own
        self.by_sid: List[MetricSeries] = []
        self._deferred: List[MetricSeries] = []  # series holding accelerator tensors
        self._countdown = save_after_n_logs
        self._hot: Any = None  # the C HotPath, once open() made it
        self.folds: Dict[str, FinalMetric] = {}
        self._fold_readers: List[Tuple[JournalReader, List[FinalMetric]]] = []
        self.fold_errors: List[str] = []
        self._recording = True
        self.closed = False
        self.ending = False  # end_run has begun: a call from another thread raises instead of vanishing
        self.forked_warning: Optional[str] = None  # set in a forked child: warned at its first call

    def open(self) -> None:
        if HotPath is None:
            self.journal = Journal(self.journal_dir)
            return
        python_path = MetricRecorder.log_metric.__get__(self)  # the method, which the instance attribute shadows
        hot = HotPath(self._by_context, python_path, self.hand_over, MetricSeries, self._countdown)
        hot.__signature__ = inspect.signature(python_path)
        hot.recording = self._recording
        if _TENSOR[0] is not None:
            hot.tensor_type = _TENSOR[0]
        self.journal = Journal(self.journal_dir, Cursor, hot.use)
        self._hot = self.log_metric = hot  # shadows the method: the Python path is the fallback

    @property
    def recording(self) -> bool:
        """False: log calls refuse (an ended run) or pass (another rank, a forked child)."""
        return self._recording

    @recording.setter
    def recording(self, flag: bool) -> None:
        self._recording = flag
        if self._hot is not None:
            self._hot.recording = flag

    # ------------------------------------------------------------------ hot path
    def log_metric(
        self,
        key: str,
        value: Any,
        context: Any = None,
        step: Optional[int] = None,
        source: Optional[LoggingItemKind] = None,
        timestamp: Any = None,
    ) -> None:
        """Record one point; durable when this returns (for numbers)."""
        if not self._recording:
            return self.refuse()
        try:
            s = self._by_context[context][key]
        except (KeyError, TypeError):
            s = self._new_series(key, context, source)
        if timestamp is not None:
            timestamp = check_timestamp(timestamp)  # Unix seconds from here on; checked before the call counts
        if step is None:
            step = s.n
        elif type(step) is not int or not -9223372036854775808 <= step <= 9223372036854775807:  # int64, as literals
            step = check_step(step)
        if type(value) is not float or s.sampler is not None:
            value = self._admit(s, value, step, timestamp)
            if value is None:
                return
        else:
            s.n += 1
        t = _time() if timestamp is None else timestamp
        journal = self.journal
        if journal is None:  # ended meanwhile (a key's __hash__ or a tensor's item() may run any code)
            return self.refuse()
        mm, slots = journal.current
        i = next(slots)
        if i < SEGMENT_SLOTS:
            pack_record(mm, i * SLOT, step, value, t, s.sid, i + 1)
        else:
            journal.append(s.sid, step, value, t)
        self.count_log()

    def refuse(self) -> None:
        """A call while not recording: an ending or ended run raises, a forked child warns once, other ranks pass."""
        if self.closed or self.ending:
            raise RunStateError("this run has ended (or is being ended by end_run); start a new one with prov4ml.start_run(...)")
        if self.forked_warning:
            message, self.forked_warning = self.forked_warning, None
            warnings.warn(message, stacklevel=3)

    def _new_series(self, key: Any, context: Any, source: Optional[LoggingItemKind], unit: Optional[str] = None) -> MetricSeries:
        # A str subclass is recorded as the plain string it equals: the series' name goes into the run's
        # pickled state, which a class pickle cannot import (a local class) would break at every refresh.
        name = str.__str__(check_name(key, "metric key"))
        source = as_source(source)  # a LoggingItemKind, or the string the caller named
        ctx = self.default_context if context is None else resolve_context(context)
        with self._lock:
            s = self.series.get((ctx, name))
            if s is None:
                spec = self._samplers.get(name, self._default_sampler)
                file_name = base = f"{slug(name)}_{slug(str(ctx))}"
                n = 1
                while file_name in self._file_names:  # ("a_b", "c") and ("a", "b_c") make the same name
                    n += 1
                    file_name = f"{base}-{n}"
                self._file_names.add(file_name)
                file_name += f"_rank{self._rank}"
                target = f"metrics/{file_name}{self._format.suffix}"
                s = MetricSeries(
                    name, ctx, source or LoggingItemKind.METRIC, make_sampler(spec), file_name, unit,
                    sid=len(self.by_sid), data_file=self._format.data_name(target),
                )
                meta = {"sid": s.sid, "name": name, "context": str(ctx), "kind": s.kind.value, "unit": unit,
                        "file": s.data_file}
                if s.sampler is not None:
                    meta["sampler"] = repr(s.sampler)
                if ctx.parent is not None or ctx.source_of_data is not None:  # a line says all of its series
                    meta["contexts"] = context_chain(ctx)
                self.journal.add_series(meta)
                self.by_sid.append(s)
                self.series[(ctx, name)] = s
            elif unit is not None and s.unit is None:
                s.unit = unit
            # Also index by what the caller passed ("Training", an Enum, ...) so the next call hits.
            try:
                self._by_context.setdefault(context, {})[key] = s
            except TypeError:
                pass
            return s

    def _admit(self, s: MetricSeries, value: Any, step: int, timestamp: Any) -> Any:
        """Coerce a non-float value and run the series' sampler; ``None`` means nothing to journal now."""
        sampler: Optional[Sampler] = s.sampler
        if type(value) is _TENSOR[0] and sampler is None and value.is_cpu and not value.is_sparse:
            try:  # the common CPU tensor: one item() call, which checks it holds exactly one number
                value = float(value.item())
            except (RuntimeError, TypeError, ValueError, OverflowError):
                pass  # the general path below says what is wrong with it
            else:
                s.n += 1
                return value
        elif _TENSOR[0] is None and "torch" in sys.modules:
            _TENSOR[0] = sys.modules["torch"].Tensor
            if self._hot is not None:
                self._hot.tensor_type = _TENSOR[0]
        if callable(value) and not _values.is_tensor(value):
            compute = value
            if sampler is None:
                value = _values.metric_value(_values.evaluate(compute, s.name), s.name)
            else:
                s.n += 1
                value = sampler.next_eval(lambda: _values.metric_value(_values.evaluate(compute, s.name), s.name))
                return self._defer_or_pass(s, value, step, timestamp)
        else:
            value = _values.metric_value(value, s.name)
            if sampler is not None:
                s.n += 1
                value = sampler.next(value)
                return self._defer_or_pass(s, value, step, timestamp)
        s.n += 1
        return self._defer_or_pass(s, value, step, timestamp)

    def _defer_or_pass(self, s: MetricSeries, value: Any, step: int, timestamp: Any) -> Any:
        if value is None or type(value) is float:
            return value
        if isinstance(value, (int, float)):
            return float(value)
        # an accelerator tensor: no host-device synchronisation now
        t = _time() if timestamp is None else timestamp
        with self._lock:
            if not s.deferred:
                self._deferred.append(s)
            s.deferred.append((step, value, t))
        self.count_log()
        return None

    def has_sampler(self, key: str) -> bool:
        return self._samplers.get(key, self._default_sampler) is not None

    def record_reading(self, key: str, value: float, unit: str, context: Any, step: Optional[int], kind: LoggingItemKind, timestamp: Any = None) -> None:
        """A collector's measurement: a metric point whose series carries a unit."""
        if not self.recording:
            return self.refuse()
        ctx = self.default_context if context is None else resolve_context(context)
        if (ctx, key) not in self.series:
            self._new_series(key, ctx, kind, unit)
        self.log_metric(key, value, ctx, step, kind, timestamp)

    def count_log(self) -> None:
        """A recording call (not made by the C path) counts towards the next hand-over."""
        if self._hot is not None:
            self._hot.tick()
            return
        self._countdown -= 1
        if self._countdown <= 0:
            self.hand_over()

    def hand_over(self) -> None:
        """Every save_after_n_logs calls: journal deferred tensors, poke the refresher."""
        if self._hot is not None:
            self._hot.countdown = self.save_after_n_logs
        else:
            self._countdown = self.save_after_n_logs
        if self._deferred:
            self.journal_deferred()
        self._on_hand_over()

    def journal_deferred(self) -> None:
        """Convert held tensors in one batch per device and journal them."""
        with self._lock:
            series, self._deferred = self._deferred, []
            held = [(s, s.deferred) for s in series]
            for s in series:
                s.deferred = []
        for s, points in held:
            try:
                values = materialize([v for _, v, _ in points])
            except Exception as exc:  # e.g. the device is gone: say so, keep the rest
                self.fold_errors.append(f"could not read tensors of metric {s.name!r}: {exc!r}")
                continue
            for (step, _, t), v in zip(points, values):
                self.journal.append(s.sid, step, v, t)

    def end_samplers(self) -> None:
        """Store what samplers still hold (a Window's last partial block)."""
        for s in list(self.series.values()):
            if s.sampler is not None:
                try:
                    tail = s.sampler.end()
                except Exception as exc:
                    self.fold_errors.append(f"the sampler of {s.name!r} failed at the end: {exc!r}")
                    continue
                if tail is not None:
                    try:
                        value = float(_values.metric_value(tail, s.name))
                    except InvalidValueError:
                        continue
                    self.journal.append(s.sid, max(s.n - 1, 0), value, _time())

    # ------------------------------------------------------------------ folds
    def register_fold(self, fm: FinalMetric) -> None:
        """The fold sees every point of ``fm.name`` journaled after this call."""
        start = self.journal.mark()
        with self._lock:
            self.folds[fm.name] = fm
            self._fold_readers.append((JournalReader(self.journal_dir, start), [fm]))

    def apply_folds(self, final: bool = False) -> None:
        """Fold the points journaled since the last call (the refresher's thread; rarely used)."""
        with self._lock:
            readers = list(self._fold_readers)
        for reader, fms in readers:
            for sid, _, value, _ in reader.read(final, now=time.monotonic()):
                name = self.by_sid[sid].name
                for fm in fms:
                    if fm.name == name and not fm.failed:
                        try:
                            fm.fold((value,))
                        except Exception as exc:  # the points are kept; the fold says why it stopped
                            fm.failed = f"{type(exc).__name__}: {exc}"
                            self.fold_errors.append(f"the final metric {fm.name!r} stopped folding: {fm.failed}")

    def close(self) -> None:
        for reader, _ in self._fold_readers:
            reader.close()
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        self.recording = False
        self.closed = True
