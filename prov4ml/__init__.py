"""prov4ml: the provenance of machine-learning runs as W3C PROV."""

from ._version import __version__
from .api import (
    active_run,
    end_run,
    flush,
    get_run_id,
    log_artifact,
    log_carbon_metrics,
    log_context,
    log_current_execution_time,
    log_dataset,
    log_execution_command,
    log_execution_end_time,
    log_execution_start_time,
    log_flops_per_batch,
    log_flops_per_epoch,
    log_metric,
    log_metrics,
    log_model,
    log_optimizer,
    log_param,
    log_params,
    log_source_code,
    log_system_metrics,
    mark_epoch,
    register_final_metric,
    run,
    save_model_version,
    start_run,
)
from .compat import (
    PROV4ML_DATA,
    ProvenanceTrackedFunction,
    ProvenanceTrackedModel,
    WeightDistributionTrackedModel,
    install_yprov4ml_alias,
    log_model_memory_footprint,
    log_provenance_documents,
    start_run_ctx,
)
from .compat.getters import (
    get_metric,
    get_parameter,
    list_activities,
    list_entities,
    list_metric_paths,
    list_metrics,
    list_parameters,
)
from .compat.lazy import module_getattr as __getattr__  # ProvMLLogger, ProvMLItwinAILogger: Lightning / itwinai on first use
from .context import Context, Contexts, LoggingItemKind, create_context
from .exceptions import (
    ArtifactError,
    InvalidValueError,
    MissingDependencyError,
    Prov4MLError,
    ProvFileError,
    RecoveryError,
    RunStateError,
    StorageError,
    TrialTimeoutError,
)
from .metrics.folds import FoldOperation
from .metrics.formats import CompressorType, MetricsType
from .metrics.samplers import Identity, Ignore, MovingAverage, Pipe, Sampler, Subsample, Window
from .run.recovery import needs_recovery, recover
from .run.run import Run

__all__ = [
    "__version__",
    # run lifecycle
    "start_run", "end_run", "run", "active_run", "get_run_id", "flush", "Run", "recover", "needs_recovery",
    # recording
    "log_param", "log_params", "log_metric", "log_metrics", "log_artifact", "log_model",
    "save_model_version", "log_dataset", "register_final_metric",
    "log_current_execution_time", "log_execution_start_time", "log_execution_end_time",
    "log_system_metrics", "log_carbon_metrics", "log_flops_per_epoch", "log_flops_per_batch",
    "log_source_code", "log_execution_command", "log_optimizer",
    # contexts and kinds
    "Context", "Contexts", "LoggingItemKind", "create_context", "log_context", "mark_epoch",
    # samplers, folds, formats
    "Sampler", "Identity", "Ignore", "Subsample", "Window", "MovingAverage", "Pipe",
    "FoldOperation", "MetricsType", "CompressorType",
    # for code written for yProv4ML (prov4ml.compat; docs/porting.md)
    "ProvenanceTrackedFunction", "ProvenanceTrackedModel", "WeightDistributionTrackedModel",
    "ProvMLLogger", "ProvMLItwinAILogger", "log_provenance_documents", "install_yprov4ml_alias", "PROV4ML_DATA",
    "start_run_ctx", "log_model_memory_footprint",
    "list_activities", "list_entities", "get_parameter", "list_parameters", "list_metrics",
    "list_metric_paths", "get_metric",
    # errors
    "Prov4MLError", "RunStateError", "InvalidValueError", "ArtifactError",
    "MissingDependencyError", "ProvFileError", "StorageError", "RecoveryError", "TrialTimeoutError",
]
