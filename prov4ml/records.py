"""Plain records of what a run recorded. Only prov4ml.provenance turns them into PROV."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from .context import Context

__all__ = [
    "ParamRecord",
    "ArtifactRecord",
    "ModelRecord",
    "ModelVersionRecord",
    "DatasetRecord",
    "SeriesSummary",
    "FinalValue",
    "EpochRecord",
    "RunSnapshot",
]

Scalar = Any  # int | float | bool | str | datetime


@dataclass(frozen=True)
class ParamRecord:
    key: str
    value: Scalar
    context: Optional[Context] = None


@dataclass(frozen=True)
class ArtifactRecord:
    name: str
    location: str  # relative to the run directory
    original: Optional[str]  # absolute path of the source, None when prov4ml wrote the file
    sha256: str
    size: int
    is_dir: bool
    context: Optional[Context]
    step: Optional[int]
    time: datetime
    role: str = "artifact"  # artifact | model | model_version | architecture | diff | source


@dataclass(frozen=True)
class ModelRecord:
    name: str
    info: Dict[str, Scalar]
    artifact: Optional[ArtifactRecord]
    architecture: Optional[ArtifactRecord]


@dataclass(frozen=True)
class ModelVersionRecord:
    model_name: str
    version: int  # 0-based position in the run
    artifact: ArtifactRecord
    previous: Optional[int]  # index of the version it derives from


@dataclass(frozen=True)
class DatasetRecord:
    label: str
    stats: Dict[str, Scalar]


@dataclass(frozen=True)
class SeriesSummary:
    name: str
    context: Context
    source: str
    unit: Optional[str]
    sampler: Optional[str]
    location: Optional[str]
    count: int
    nan_count: int
    min: Optional[float]
    max: Optional[float]
    last: Optional[float]
    mean: Optional[float]
    first_step: Optional[int]
    last_step: Optional[int]
    first_time: Optional[datetime]
    last_time: Optional[datetime]


@dataclass(frozen=True)
class FinalValue:
    """A registered fold's value at the snapshot."""

    name: str
    value: Any
    operation_name: str
    error: str = ""


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a context: from its mark to the next mark of that context (or the context's end)."""

    context: Context
    epoch: int
    start: datetime
    end: Optional[datetime]


@dataclass
class RunSnapshot:
    """Everything the provenance builder needs, copied at one moment."""

    user_namespace: str
    user: str
    experiment_name: str
    run_id: int
    rank: int
    run_dir: str
    start_time: datetime
    end_time: Optional[datetime]
    status: str
    error: Optional[Tuple[str, str]]
    library_version: str
    params: List[ParamRecord] = field(default_factory=list)
    series: List[SeriesSummary] = field(default_factory=list)
    artifacts: List[ArtifactRecord] = field(default_factory=list)
    models: List[ModelRecord] = field(default_factory=list)
    versions: List[ModelVersionRecord] = field(default_factory=list)
    datasets: List[DatasetRecord] = field(default_factory=list)
    final_metrics: List[FinalValue] = field(default_factory=list)
    contexts: Dict[Context, Tuple[Optional[datetime], Optional[datetime]]] = field(default_factory=dict)
    environment: Dict[str, Scalar] = field(default_factory=dict)
    source_code: Optional[str] = None
    command: Optional[str] = None
    notes: Dict[str, str] = field(default_factory=dict)
    epochs: List[EpochRecord] = field(default_factory=list)
