"""The Run's collectors glue: system, carbon and FLOPs readings, and the environment capture thread.

:class:`prov4ml.run.Run` holds one :class:`Collectors` as ``run.collectors``. Readings go to the
metric recorder (``record_reading``), remarks and the captured environment to the records.
"""

from __future__ import annotations

import os
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from ..context import LoggingItemKind

if TYPE_CHECKING:
    from ..records.recorder import RecordsRecorder

__all__ = ["Collectors"]

_CAPTURE_DELAY = 1.0  # seconds between start_run and the environment capture


class Collectors:
    """The collector instances of one run (made on first use) and its reproducibility capture."""

    def __init__(self, records: "RecordsRecorder", record_reading: Callable[..., None], check_open: Callable[[str], bool],
                 poke: Callable[[], None], options: Dict[str, Any], run_dir: Path, rank: int) -> None:
        self.records = records
        self._record_reading = record_reading
        self._check_open = check_open
        self._poke = poke
        self.options = options
        self.run_dir = run_dir
        self.rank = rank
        self._instances: Dict[str, Any] = {}
        self._capture_thread: Optional[threading.Thread] = None
        self._capture_now = threading.Event()

    def collector(self, name: str, factory: Callable[[], Any]) -> Any:
        """The run's instance of a collector, made on first use."""
        with self.records.lock:
            obj = self._instances.get(name)
            if obj is None:
                obj = self._instances[name] = factory()
            return obj

    def _readings(self, readings, context: Any, step: Optional[int], kind: LoggingItemKind, timestamp: Any) -> None:
        for r in readings:
            self._record_reading(r.name, r.value, r.unit, context, step, kind, timestamp)

    # ------------------------------------------------------------------ system, carbon, FLOPs
    def log_system_metrics(self, context: Any = None, step: Optional[int] = None, synchronous: bool = True, timestamp: Any = None) -> None:
        if not self._check_open("log_system_metrics"):
            return
        from ..collectors.system import SystemSampler

        sampler = self.collector("system", SystemSampler)
        if timestamp is None:
            timestamp = datetime.now(timezone.utc)
        if synchronous:
            self._system_sample(sampler, context, step, timestamp)
        else:
            self.collector("background", _background_executor).submit(self._system_sample, sampler, context, step, timestamp)

    def _system_sample(self, sampler: Any, context: Any, step: Optional[int], timestamp: Any) -> None:
        readings = sampler.sample()
        self.records.notes.setdefault("gpu", sampler.gpu_status)
        self._readings(readings, context, step, LoggingItemKind.SYSTEM_METRIC, timestamp)

    def log_carbon_metrics(self, context: Any = None, step: Optional[int] = None) -> None:
        if not self._check_open("log_carbon_metrics"):
            return
        if self.options["disable_codecarbon"]:
            self.records.notes.setdefault("carbon", "not recorded: disable_codecarbon=True")
            return
        from ..collectors.carbon import CarbonMeter

        meter = self.collector(
            "carbon", lambda: CarbonMeter(country_iso_code=self.options["carbon_country"], output_dir=str(self.run_dir))
        )
        readings = meter.measure()
        self.records.notes["carbon"] = meter.mode
        self._readings(readings, context, step, LoggingItemKind.CARBON_METRIC, None)

    def log_flops_per_batch(self, label: str, model: Any, batch: Any, context: Any = None, step: Optional[int] = None) -> None:
        if not self._check_open("log_flops_per_batch"):
            return
        from ..collectors.flops import count_batch_flops

        self._flops(label, count_batch_flops(model, batch), context, step, LoggingItemKind.FLOPS_PER_BATCH)

    def log_flops_per_epoch(self, label: str, model: Any, dataset: Any, context: Any = None, step: Optional[int] = None) -> None:
        if not self._check_open("log_flops_per_epoch"):
            return
        from ..collectors.flops import count_epoch_flops

        self._flops(label, count_epoch_flops(model, dataset), context, step, LoggingItemKind.FLOPS_PER_EPOCH)

    def _flops(self, label: str, count: Any, context: Any, step: Optional[int], kind: LoggingItemKind) -> None:
        self._record_reading(label, float(count.flops), "FLOPs", context, step, kind)
        note = f"{count.counter}; {count.convention}" + (f"; {count.note}" if count.note else "")
        self.records.note(f"flops_counter_{label}", note)

    def stop_meters(self) -> None:
        """At the end of the run: the background sampler's last task completes, the carbon meter stops."""
        pool = self._instances.get("background")
        if pool is not None:
            pool.shutdown(wait=True)
        carbon = self._instances.get("carbon")
        if carbon is not None:
            try:
                carbon.stop()
            except Exception as exc:
                self.records.notes["carbon_error"] = repr(exc)

    # ------------------------------------------------------------------ capture
    def start_capture(self) -> None:
        setting = self.options["capture"]
        if setting is False:
            return
        parts = dict(setting) if isinstance(setting, dict) else {}
        self._capture_thread = threading.Thread(
            target=self._capture, args=(parts,), name="prov4ml-capture", daemon=True
        )
        self._capture_thread.start()

    def finish_capture(self) -> None:
        """At the end of the run: the capture starts at once if it still waits, and completes."""
        if self._capture_thread is not None:
            self._capture_now.set()
            self._capture_thread.join(timeout=30)

    def _capture(self, parts: Dict[str, bool]) -> None:
        # The capture waits a moment, so that the first steps of training have the CPU to themselves;
        # end_run (or a run shorter than that) starts it at once.
        self._capture_now.wait(_CAPTURE_DELAY)
        try:
            self._capture_into(parts)
        except Exception as exc:  # capture must never break the run (a full disk, a broken git)
            with self.records.lock:
                self.records.notes["capture_error"] = repr(exc)

    def _capture_into(self, parts: Dict[str, bool]) -> None:
        from ..collectors import environment
        from . import capture

        records = self.records
        main = environment.main_source()
        if main and records.source_code == str(Path(main).resolve()):
            main = None  # log_source_code() has copied it already
        request = {
            "run_dir": str(self.run_dir), "rank": self.rank, "parts": parts,
            "env_vars": bool(self.options["capture_env_vars"]), "argv": list(sys.argv), "main": main,
            # git describes the script's repository, not the one the script was started from
            "cwd": str(Path(main).parent) if main else os.getcwd(),
        }
        answer = capture.capture_into(**request)
        captured = answer["records"]
        with records.lock:
            copied = {a.original for a in records.artifacts if a.role == "source"}
            twins = [r for r in captured if r.role == "source" and r.original in copied]  # log_source_code() was faster
            records.keep_capture(answer["env"], answer["command"], answer["main_source"],
                                 [r for r in captured if r not in twins])
        for twin in twins:
            (self.run_dir / twin.location).unlink(missing_ok=True)
        self._poke()


def _background_executor():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="prov4ml-sampler")
