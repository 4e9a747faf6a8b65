"""Random calls of every public recording function, and the oracle they must meet.

Each example is one public call with arguments of random types and values.
Oracle: the call records or raises a ``Prov4MLError`` (nothing else, never a
hang); the run keeps working; after ``end_run`` the PROV-JSON round-trips
through ``prov`` and every point that ``log_metric`` accepted is in its
metric file, in order, with its value. Used by ``tests/test_fuzz.py``
(2,000 examples) and ``benchmarks/fuzz.py`` (20,000+).
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import faulthandler
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import prov4ml

HANG_S = 60  # a call that takes longer is a hang: faulthandler dumps the stacks and exits


class Colour(enum.Enum):
    RED = "red"
    BLUE = 2


SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\udc80x"])
names = st.one_of(
    st.text(min_size=0, max_size=12),
    st.text(alphabet="abcxyz _-./%", min_size=1, max_size=8),
    st.text(alphabet="abcdefghij", min_size=230, max_size=320),  # longer than a file name may be
    SURROGATES,
    st.sampled_from(["loss", "val loss", "val_loss", "a/b", "../up", "/abs", "x\x00y", "C:\\win", "lr rate", "ümlaut∑"]),
    st.integers(), st.none(), st.binary(max_size=4),
)
contexts = st.one_of(
    st.none(), st.sampled_from([prov4ml.Context.TRAINING, prov4ml.Context.VALIDATION, Colour.RED, Colour.BLUE]),
    st.sampled_from(["Training", "training", "my_stage", "", "x" * 300, "\ud800", "a\x00"]),
    st.text(max_size=6), st.integers(), st.floats(), st.lists(st.integers(), max_size=2),
)
huge = st.sampled_from([10**400, -(10**30), 2**63, 2**63 - 1, -(2**63), 2**53 + 1])


def _tensor(kind: str, dtype, shape, grad: bool):
    if kind == "meta":
        return torch.empty(shape, device="meta")
    if kind == "sparse":
        return torch.ones(shape or (1,)).to_sparse()
    if kind == "nested":
        return torch.nested.nested_tensor([torch.ones(1), torch.ones(2)])
    t = torch.ones(shape, dtype=dtype) * 0.5 if dtype.is_floating_point or dtype.is_complex else torch.ones(shape, dtype=dtype)
    return t.requires_grad_() if grad and dtype.is_floating_point else t


tensors = st.builds(
    _tensor,
    st.sampled_from(["dense"] * 6 + ["meta", "sparse", "nested"]),
    st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8,
                     torch.bool, torch.complex64]),
    st.sampled_from([(), (1,), (1, 1), (2,), (0,), (3, 2)]),
    st.booleans(),
)
arrays = st.builds(lambda shape, dtype: np.ones(shape, dtype=dtype), st.sampled_from([(), (1,), (2,), (0,)]),
                   st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128, "U3", object]))
numpy_scalars = st.one_of(st.floats().map(np.float64), st.floats(width=32).map(np.float32),
                          st.integers(-(2**63), 2**63 - 1).map(np.int64), st.booleans().map(np.bool_))
plain_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), huge, st.booleans(), st.none(),
    st.text(max_size=5), st.binary(max_size=3), st.complex_numbers(max_magnitude=5), numpy_scalars, arrays, tensors,
    st.lists(st.floats(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()), st.just(dt.datetime(2026, 1, 1)),
)
good_values = st.one_of(st.floats(), st.integers(-(2**60), 2**60), numpy_scalars,
                        st.floats().map(lambda f: torch.tensor(f)), st.booleans())
values = st.one_of(good_values, good_values, plain_values, plain_values.map(lambda v: (lambda: v)))  # lazy values too
steps = st.one_of(st.none(), st.integers(-5, 10**6), huge, st.integers(-5, 5).map(np.int64), st.floats(),
                  st.booleans(), st.text(max_size=2), st.just(torch.tensor(3)), st.just(torch.tensor(1.5)))
timestamps = st.one_of(
    st.none(), st.integers(0, 2 * 10**12), st.floats(), huge, st.sampled_from([float("nan"), float("inf"), -1e300]),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.text(max_size=3),
)
sources = st.one_of(st.none(), st.sampled_from(list(prov4ml.LoggingItemKind)), st.text(max_size=3))


def _model(kind: int):
    if kind == 0:
        return torch.nn.Linear(2, 1)
    if kind == 1:
        return {"w": torch.ones(2)}
    if kind == 2:
        return lambda: 0  # cannot be pickled
    return object()


models = st.one_of(st.integers(0, 3).map(_model), names)


@dataclass
class Figures:
    calls: int = 0
    accepted: int = 0
    rejected: collections.Counter = field(default_factory=collections.Counter)
    crashes: list = field(default_factory=list)
    points_expected: int = 0
    points_found: int = 0
    points_lost: int = 0
    seconds: float = 0.0

    def lines(self):
        yield f"calls                {self.calls:,}"
        yield f"accepted             {self.accepted:,}"
        yield f"rejected (Prov4MLError subclasses) {sum(self.rejected.values()):,}:"
        for (call, kind), n in sorted(self.rejected.items(), key=lambda kv: -kv[1]):
            yield f"  {call:<28} {kind:<22} {n:,}"
        yield f"crashes (other exceptions) {len(self.crashes)}"
        for c in self.crashes[:10]:
            yield f"  {c}"
        yield "hangs                0 (a call over 60 s would have aborted the run)"
        yield f"points accepted      {self.points_expected:,}; in the metric files {self.points_found:,}; lost {self.points_lost:,}"
        yield f"time                 {self.seconds:.1f} s"


class Session:
    """One run that every example calls into, and what it must hold at the end."""

    def __init__(self, save_dir: Path):
        self.save_dir = save_dir
        self.files = save_dir.parent / "inputs"
        self.files.mkdir(parents=True, exist_ok=True)
        (self.files / "a.txt").write_text("artifact")
        (self.files / "dir").mkdir(exist_ok=True)
        (self.files / "dir" / "b.txt").write_text("b")
        self.run = prov4ml.start_run("www.example.org", "fuzz", str(save_dir), capture=False, save_after_n_logs=50)
        self.expected = collections.defaultdict(list)  # (key, context) -> values accepted, in order
        self.figures = Figures()
        self.model = torch.nn.Linear(2, 1)

    def call(self, name: str, fn, *args, **kwargs):
        self.figures.calls += 1
        try:
            fn(*args, **kwargs)
        except prov4ml.Prov4MLError as exc:
            self.figures.rejected[(name, type(exc).__name__)] += 1
            return False
        except Exception as exc:  # the oracle: nothing but Prov4MLError
            self.figures.crashes.append(f"{name}: {type(exc).__name__}: {exc!r}"[:300])
            return False
        self.figures.accepted += 1
        return True

    def log_metric(self, key, value, context, step, source, timestamp):
        if self.call("log_metric", prov4ml.log_metric, key, value, context, step, source, timestamp):
            self._expect(key, value, context)

    def log_metrics(self, metrics, context, step):
        plain = {k: v for k, v in metrics.items() if not callable(v) or isinstance(v, torch.Tensor)} if isinstance(metrics, dict) else metrics
        if self.call("log_metrics", prov4ml.log_metrics, plain, context, step):
            for k, v in plain.items():
                self._expect(k, v, context)

    def execution_time(self, label, context, step):
        if self.call("log_current_execution_time", prov4ml.log_current_execution_time, label, context, step):
            self._expect(label, ANY, context)  # a point of the series `label`, its value the clock's

    def _expect(self, key, value, context):
        ctx = prov4ml.context.resolve_context(context) if context is not None else self.run.default_context
        if value is not ANY:
            if callable(value) and not isinstance(value, torch.Tensor):
                value = value()
            value = float(value.item() if isinstance(value, (torch.Tensor, np.ndarray)) else value)
        self.expected[(key, str(ctx))].append(value)

    def finish(self) -> Figures:
        started = time.perf_counter()
        self.log_metric("still_working", 1.0, "training", None, None, None)
        path = prov4ml.end_run()
        from prov.model import ProvDocument

        ProvDocument.deserialize(str(path))  # the document round-trips through prov
        series = {(s.name, str(s.context)): s for s in self.run.metrics.series.values()}
        for key, values in self.expected.items():
            self.figures.points_expected += len(values)
            s = series[key]
            found = _read_values(self.run.run_dir / s.data_file)
            self.figures.points_found += len(found)
            if len(found) != len(values) or not all(_same(a, b) for a, b in zip(found, values)):
                self.figures.points_lost += max(len(values) - len(found), 1)
            if s.count != len(found):
                self.figures.crashes.append(f"document claims {s.count} points of {key!r}, the file has {len(found)}")
        self.figures.seconds += time.perf_counter() - started
        return self.figures


def _read_values(path: Path):
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[1:-1]
    return [float(line.split(",")[1]) for line in lines]


ANY = object()  # a point whose value the test cannot know (a clock reading)


def _same(found: float, expected) -> bool:
    return expected is ANY or found == expected or (math.isnan(found) and math.isnan(expected))


def calls(session: Session):
    """A strategy of thunks, each one public call against ``session``."""
    files = session.files
    paths = st.one_of(names, st.sampled_from([str(files / "a.txt"), files / "a.txt", str(files / "dir"),
                                               str(files / "missing.bin"), "", str(files)]), st.integers(), st.none())
    s = session
    return st.one_of(
        st.builds(lambda *a: lambda: s.log_metric(*a), names, values, contexts, steps, sources, timestamps),
        st.builds(lambda *a: lambda: s.log_metric(*a), st.sampled_from(["loss", "acc"]), values, contexts, steps,
                  st.none(), st.none()),
        st.builds(lambda *a: lambda: s.log_metric(*a), st.sampled_from(["loss", "acc", "x"]), good_values,
                  st.sampled_from([None, "training", prov4ml.Context.VALIDATION]), st.one_of(st.none(), st.integers(0, 10**9)),
                  st.none(), st.none()),
        st.builds(lambda m, c, k: lambda: s.log_metrics(m, c, k),
                  st.dictionaries(names, values, max_size=3), contexts, steps),
        st.builds(lambda k, v, c: lambda: s.call("log_param", prov4ml.log_param, k, v, c), names, plain_values, contexts),
        st.builds(lambda d: lambda: s.call("log_params", prov4ml.log_params, d), st.one_of(st.dictionaries(names, plain_values, max_size=3), plain_values)),
        st.builds(lambda *a: lambda: s.call("log_artifact", prov4ml.log_artifact, *a), paths, contexts, steps, timestamps),
        st.builds(lambda n, p: lambda: s.call("log_artifact", prov4ml.log_artifact, n, p), names, paths),
        st.builds(lambda m, n: lambda: s.call("log_model", prov4ml.log_model, m, n, True, True), models, names),
        st.builds(lambda *a: lambda: s.call("save_model_version", prov4ml.save_model_version, *a), models, names, contexts, steps, timestamps),
        st.builds(lambda d, n: lambda: s.call("log_dataset", prov4ml.log_dataset, d, n),
                  st.one_of(st.just(torch.utils.data.TensorDataset(torch.ones(4, 2))), st.just([1, 2]), plain_values), names),
        st.builds(lambda n, i, f: lambda: s.call("register_final_metric", prov4ml.register_final_metric, n, i, f),
                  st.sampled_from(["loss", "acc", "x"]), plain_values,
                  st.sampled_from([prov4ml.FoldOperation.MAX, prov4ml.FoldOperation.ADD, lambda a, b: a / (b - b), "max", None])),
        st.builds(lambda n, c, k: lambda: s.execution_time(n, c, k), names, contexts, steps),
        st.builds(lambda c, p: lambda: s.call("log_execution_command", prov4ml.log_execution_command, c, p), names, st.one_of(st.none(), names)),
        st.builds(lambda n, p: lambda: s.call("create_context", prov4ml.create_context, n, p), names, contexts),
        st.builds(lambda o: lambda: s.call("log_optimizer", prov4ml.log_optimizer, o),
                  st.one_of(st.just(torch.optim.SGD(s.model.parameters(), lr=0.1)), plain_values)),
        st.just(lambda: s.call("log_execution_start_time", prov4ml.log_execution_start_time)),
        st.just(lambda: s.call("flush", prov4ml.flush)),
        st.builds(lambda c, k: lambda: s.call("log_system_metrics", prov4ml.log_system_metrics, c, k), contexts, steps),
    )


def fuzz(save_dir: Path, examples: int, seed: int = 0) -> Figures:
    """Run ``examples`` random public calls in one run and check the oracle."""
    import warnings

    warnings.simplefilter("ignore")  # "parameter changed" and the like: expected, and not what is checked
    faulthandler.dump_traceback_later(HANG_S * 10, repeat=False, exit=True)
    session = Session(save_dir)
    cwd = os.getcwd()
    os.chdir(session.files.parent)  # relative names ("." say) resolve inside the scratch folder
    started = time.perf_counter()

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed == 0,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(thunk=calls(session))
    def one(thunk):
        faulthandler.dump_traceback_later(HANG_S, repeat=False, exit=True)
        thunk()

    try:
        one()
    finally:
        os.chdir(cwd)
    faulthandler.cancel_dump_traceback_later()
    session.figures.seconds = time.perf_counter() - started
    return session.finish()


if __name__ == "__main__":  # pragma: no cover
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for line in fuzz(Path(tmp) / "prov", int(sys.argv[1]) if len(sys.argv) > 1 else 500).lines():
            print(line)
