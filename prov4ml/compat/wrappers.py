"""The wrappers of yProv4ML, for code written for it: a tracked function and two tracked models.

* :class:`ProvenanceTrackedFunction` calls the function and logs its (scalar)
  result as a metric named after it, one point per call.
* :class:`ProvenanceTrackedModel` records the inputs and outputs of the
  model's layers (forward hooks), in chunks of ``chunk_size`` rows, as array
  files under ``artifacts/layers/<label>/``: one entity per layer, written
  when the run ends (or at :meth:`~ProvenanceTrackedModel.close`).
* :class:`WeightDistributionTrackedModel` writes each layer's parameters at
  every ``log_epoch(epoch)`` to ``artifacts/weights/<label>/<layer>_epoch<k>``:
  one entity per layer and epoch, with the epoch as its step.

A *layer* is a module with parameters of its own (Linear, Conv, a norm, an
embedding, an RNN ...). Array files are Zarr where the ``zarr`` extra is
installed, else NumPy (``.npy`` chunks, ``.npz`` snapshots); ``array_format=``
chooses. :func:`~prov4ml.compat.arrays.read_rows` and
:func:`~prov4ml.compat.arrays.read_arrays` read them back.

The wrapped model *is* the model: the wrapper is an instance of a subclass of
the model's own class that shares the model's attribute dictionary, so
forward results, parameters, ``state_dict`` keys, ``.to()``, ``train()`` and
``eval()`` are the original's, and ``isinstance(wrapped, type(model))`` holds.
The hooks sit on the model's layers, so calling the unwrapped model records
too (as in yProv4ML); a copy (``copy.deepcopy``) or a pickle (``torch.save(model)``)
of either is of the model's own class and records nothing. Activations are copied to the host at each call: a
tracked model trains slower; wrap it for the runs whose layer data you want.
"""

from __future__ import annotations

import copyreg
import functools
import inspect
import threading
import warnings
from typing import Any, Dict, List, Optional, Tuple

from .. import api
from .._fs import slug
from ..exceptions import InvalidValueError, RunStateError
from . import arrays

__all__ = ["ProvenanceTrackedFunction", "ProvenanceTrackedModel", "WeightDistributionTrackedModel"]


class ProvenanceTrackedFunction:
    """For code written for yProv4ML: ``f = ProvenanceTrackedFunction(func, context)``; ``f(...)`` calls ``func``.

    Each call logs the result as a point of the metric ``func.__name__`` (the
    class name for a callable object such as ``nn.MSELoss()``) in ``context``,
    at step 0, 1, 2 ... (the calls so far), and returns the result unchanged.
    The result must be one number (a Python or NumPy number, a one-element
    tensor); a tensor on an accelerator is not synchronised by the call.
    Attributes of ``func`` are reachable through the wrapper.
    """

    def __init__(self, func: Any, context: Any = None) -> None:
        if not callable(func):
            raise InvalidValueError(f"ProvenanceTrackedFunction needs a callable, got {type(func).__name__}")
        self.fn = func
        self.context = context
        self.name: str = getattr(func, "__name__", None) or type(func).__name__
        self.calls = 0
        self._lock = threading.Lock()
        functools.update_wrapper(self, func, assigned=("__module__", "__qualname__", "__doc__"), updated=())
        self.__name__ = self.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.fn(*args, **kwargs)
        with self._lock:
            step = self.calls
            self.calls += 1
        api.log_metric(self.name, result, self.context, step=step)
        return result

    def __getattr__(self, name: str) -> Any:
        fn = self.__dict__.get("fn")
        if fn is None:
            raise AttributeError(name)
        attr = getattr(fn, name)
        if inspect.ismethod(attr) and attr.__self__ is fn:
            # loss_fn.to(device) returns the wrapper, not the bare function, so calls stay tracked
            @functools.wraps(attr)
            def method(*args: Any, **kwargs: Any) -> Any:
                out = attr(*args, **kwargs)
                return self if out is fn else out

            return method
        return attr

    def __repr__(self) -> str:
        return f"ProvenanceTrackedFunction({self.fn!r}, context={self.context!r})"


# ---------------------------------------------------------------------------- models
def _layers(model: Any) -> List[Tuple[str, Any]]:
    """(name, module) of every module with parameters of its own; the root is named ``self``."""
    return [(name or "self", m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def _first_tensor(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _model_args(cls_name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[str, Any, Any, int, Optional[str]]:
    """(label, model, context, chunk_size, array_format) from ``(model_label, model, ...)`` or ``(model)``."""
    import torch

    kwargs = dict(kwargs)
    names = ("model_label", "model", "context", "chunk_size")
    bound = dict(zip(names, args))
    if len(args) > len(names):
        raise InvalidValueError(f"{cls_name}() takes at most {len(names)} positional arguments ({len(args)} given)")
    if args and isinstance(args[0], torch.nn.Module):  # the one-argument form, or (model, label, ...)
        bound = dict(zip(("model", "model_label", "context", "chunk_size"), args))
    for key in list(kwargs):
        if key in names:
            if key in bound:
                raise InvalidValueError(f"{cls_name}() got multiple values for {key!r}")
            bound[key] = kwargs.pop(key)
    array_format = kwargs.pop("array_format", None)
    if kwargs:
        raise InvalidValueError(f"{cls_name}() got unexpected keyword argument(s) {sorted(kwargs)}")
    model = bound.get("model")
    if not isinstance(model, torch.nn.Module):
        raise InvalidValueError(f"{cls_name}() needs a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, _TrackedModel):
        raise InvalidValueError(f"{cls_name}(): this model is already a {type(model).__mro__[1].__name__}; "
                                "wrap the original model (each wrapper may wrap it once)")
    label = bound.get("model_label") or type(model).__name__
    if not isinstance(label, str):
        raise InvalidValueError(f"{cls_name}(): model_label must be a string, got {label!r}")
    chunk_size = bound.get("chunk_size", 64)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidValueError(f"{cls_name}(): chunk_size must be an integer >= 1, got {chunk_size!r}")
    return label, model, bound.get("context"), chunk_size, arrays.choose_format(array_format)


class _TrackedModel:
    """The model's own class, plus tracking: see the module docstring.

    ``Wrapper(label, model)`` returns an instance of a class made for it,
    ``(Wrapper, type(model))``, whose ``__dict__`` is the model's. The
    tracking state lives on that class, so nothing is added to the model.
    """

    _prov4ml: Any  # the tracker of this wrapped model, on its own class
    _prov4ml_base: type  # the model's class

    def __new__(cls, *args: Any, **kwargs: Any):
        label, model, context, chunk_size, fmt = _model_args(cls.__name__, args, kwargs)
        base = type(model)
        made = type(base.__name__, (cls, base), {"__module__": base.__module__, "__qualname__": base.__qualname__,
                                                 "_prov4ml_base": base})
        wrapped = object.__new__(made)
        object.__setattr__(wrapped, "__dict__", model.__dict__)
        made._prov4ml = cls._tracker(label, model, context, chunk_size, fmt)
        return wrapped

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Everything is set up by ``__new__``; the model's own ``__init__`` must not run again."""

    def __reduce_ex__(self, protocol: int):
        """Copies and pickles are of the original class (with the same state)."""
        plain = object.__new__(self._prov4ml_base)
        object.__setattr__(plain, "__dict__", self.__dict__)
        reduced = plain.__reduce_ex__(protocol)
        if reduced[0] is copyreg.__newobj__:  # pickle insists that class be this object's: rebuild it another way
            reduced = (_new_instance, *reduced[1:])
        return reduced


def _new_instance(cls: type, *args: Any) -> Any:
    return cls.__new__(cls, *args)


def _active_run(what: str):
    run = api.active_run()
    if run is None:
        raise RunStateError(f"{what} needs an active run: call prov4ml.start_run(...) first")
    return run


class _InertHook:
    """What a layer hook becomes in a copy or a pickle of the model: it records nothing."""

    def __call__(self, module: Any, inputs: Any, output: Any) -> None:
        return None


class _Hook:
    """A layer's forward hook; ``torch.save(model)`` and ``copy.deepcopy`` get an inert one."""

    __slots__ = ("recorder", "layer")

    def __init__(self, recorder: "_LayerRecorder", layer: str) -> None:
        self.recorder, self.layer = recorder, layer

    def __call__(self, module: Any, inputs: Any, output: Any) -> None:
        self.recorder.record(self.layer, _first_tensor(inputs), _first_tensor(output))

    def __reduce__(self):
        return (_InertHook, ())


class _LayerRecorder:
    """Buffers each layer's rows and writes them a chunk at a time, into the active run."""

    def __init__(self, label: str, model: Any, context: Any, chunk_size: int, fmt: str) -> None:
        self.label, self.context, self.chunk_size, self.fmt = label, context, chunk_size, fmt
        self._lock = threading.RLock()
        self._run = None
        self._writers: Dict[str, arrays.RowWriter] = {}
        self._buffers: Dict[Tuple[str, str], List[Any]] = {}
        self._warned = False
        self.handles = [module.register_forward_hook(self._hook_for(name)) for name, module in _layers(model)]

    def _hook_for(self, layer: str) -> "_Hook":
        return _Hook(self, layer)

    def record(self, layer: str, x: Any, y: Any) -> None:
        with self._lock:
            run = self._bind()
            if run is None:
                return
            for direction, t in (("input", x), ("output", y)):
                if t is not None and t.dim() > 0:
                    self._add(layer, direction, arrays.to_numpy(t))

    def _bind(self):
        run = api.active_run()
        if run is not self._run:
            self.close()  # a run ended without end_run's callback (another process's run, say)
            if run is None:
                if not self._warned:
                    self._warned = True
                    warnings.warn(f"ProvenanceTrackedModel {self.label!r}: no active run, layer data is not recorded; "
                                  "call prov4ml.start_run(...) before the forward passes you want recorded", stacklevel=4)
                return None
            self._run = run
            run.at_end(self.close)
        return run if run.recording else None

    def _add(self, layer: str, direction: str, rows: Any) -> None:
        import numpy as np

        buf = self._buffers.setdefault((layer, direction), [])
        if buf and (buf[0].shape[1:] != rows.shape[1:] or buf[0].dtype != rows.dtype):
            self._write(layer, direction, np.concatenate(buf))  # a new row shape starts a new chunk
            buf.clear()
        buf.append(rows)
        held = sum(len(b) for b in buf)
        if held < self.chunk_size:
            return
        data = np.concatenate(buf)
        full = held - held % self.chunk_size
        for start in range(0, full, self.chunk_size):
            self._write(layer, direction, data[start:start + self.chunk_size])
        buf[:] = [data[full:]] if full < held else []

    def _write(self, layer: str, direction: str, rows: Any) -> None:
        writer = self._writers.get(layer)
        if writer is None:
            name = f"layers/{slug(self.label)}/{slug(layer)}{arrays.ROWS_SUFFIX[self.fmt]}"
            writer = self._writers[layer] = arrays.RowWriter(self._run.artifacts.new_path(name), self.fmt, self.chunk_size)
        writer.append(direction, rows)

    def close(self) -> None:
        """Write the rows still buffered and record one entity per layer; later calls start new files."""
        import numpy as np

        with self._lock:
            run = self._run
            if run is None:
                return
            try:
                for (layer, direction), buf in self._buffers.items():
                    if buf:
                        self._write(layer, direction, np.concatenate(buf))
                for writer in self._writers.values():
                    run.log_written_artifact(writer.path, self.context, role="layer_data")
            except RunStateError:  # the run ended without calling us (a forked child's copy of it)
                warnings.warn(f"ProvenanceTrackedModel {self.label!r}: the run ended first; its layer files "
                              f"are in {run.artifacts.root} but not in its document", stacklevel=3)
            finally:
                self._run = None
                self._buffers.clear()
                self._writers.clear()


class ProvenanceTrackedModel(_TrackedModel):
    """For code written for yProv4ML: the model, recording its layers' inputs and outputs.

    ``ProvenanceTrackedModel(model_label, model, context=None, chunk_size=64)``
    or ``ProvenanceTrackedModel(model)`` (the label is then the class name).
    Every forward pass appends each layer's first tensor input and its (first)
    tensor output, a chunk of ``chunk_size`` rows (samples) at a time, to
    ``artifacts/layers/<label>/<layer>`` in the run. When the run ends (or at
    :meth:`close`) each layer's data becomes one entity (location, sha256,
    size, ``provml:LayerData``) generated by ``context``. Forward passes with
    no active run are not recorded (a warning says so once).
    ``array_format="zarr"`` or ``"npy"`` chooses the files (default: Zarr when installed).
    """

    _tracker = _LayerRecorder

    def close(self) -> None:
        """Write the buffered rows now and record them (the run's end does it otherwise)."""
        type(self)._prov4ml.close()


class _WeightRecorder:
    def __init__(self, label: str, model: Any, context: Any, chunk_size: int, fmt: str) -> None:
        self.label, self.model, self.context, self.fmt = label, model, context, fmt

    def log_epoch(self, epoch: int) -> List[Any]:
        run = _active_run("WeightDistributionTrackedModel.log_epoch()")
        if not run.recording:
            return []
        records = []
        for layer, module in _layers(self.model):
            params = {name: arrays.to_numpy(p) for name, p in module.named_parameters(recurse=False)}
            name = f"weights/{slug(self.label)}/{slug(layer)}_epoch{epoch}{arrays.ARRAYS_SUFFIX[self.fmt]}"
            path = arrays.write_arrays(run.artifacts.new_path(name), params, self.fmt)
            records.append(run.log_written_artifact(path, self.context, step=epoch, role="weights"))
        return records


class WeightDistributionTrackedModel(_TrackedModel):
    """For code written for yProv4ML: the model, with ``log_epoch(epoch)`` recording its layers' weights.

    ``WeightDistributionTrackedModel(model_label, model, context=None, chunk_size=64)``
    or ``WeightDistributionTrackedModel(model)``. Each ``log_epoch(epoch)``
    writes every layer's parameters, exactly as they are, to
    ``artifacts/weights/<label>/<layer>_epoch<epoch>`` (a Zarr group or an
    ``.npz``, one array per parameter name) and records each file as an
    entity with ``epoch`` as its step. ``chunk_size`` is accepted for yProv4ML's
    signature (its files chunked summary rows; these hold whole arrays).
    """

    _tracker = _WeightRecorder

    def log_epoch(self, epoch: int) -> List[Any]:
        """Record every layer's weights now, at step ``epoch``; returns the artifact records."""
        return type(self)._prov4ml.log_epoch(epoch)
