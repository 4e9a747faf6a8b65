"""Everything that exists only for code written for yProv4ML, the library prov4ml succeeds.

==============================  ==============================================================
name                            for
==============================  ==============================================================
``ProvenanceTrackedFunction``   a function whose results become a metric (``wrappers``)
``ProvenanceTrackedModel``      a model whose layers' inputs and outputs are recorded
``WeightDistributionTrackedModel``  a model whose layers' weights are recorded per epoch
``ProvMLLogger``                yProv4ML's Lightning logger (``compat.lightning``; imports Lightning)
``log_provenance_documents``    write the PROV-JSON (DOT, SVG) now; the paths (``documents``)
``start_run_ctx``, ``log_model_memory_footprint``  the calls of 0.1.x (``seed``)
``get_run_dir``, ``get_artifacts_dir``  the active run's folders (``prov4ml.functs``)
``PROV4ML_DATA``, ``MetricInfo``, ``get_file_type``  a read-only view of the active (else last) run (``datamodel``)
getters                         ``list_activities`` ... ``get_metric`` (``prov4ml.utils.getters``), on
                                prov4ml's and yProv4ML's documents (``dialects``)
``install_yprov4ml_alias``      ``import yprov4ml`` imports prov4ml, here and in child processes, by
                                explicit opt-in (``alias``)
==============================  ==============================================================

The import paths of yProv4ML (``prov4ml.constants``, ``prov4ml.functs``,
``prov4ml.datamodel.metric_type``, ``prov4ml.datamodel.metric_data``,
``prov4ml.utils.getters``) are small modules that re-export from here.
docs/porting.md says what to change in such code (usually nothing but the import).
"""

from .alias import install_yprov4ml_alias, uninstall_yprov4ml_alias
from .datamodel import PROV4ML_DATA, MetricInfo, get_file_type
from .documents import get_artifacts_dir, get_run_dir, log_provenance_documents
from .seed import log_model_memory_footprint, start_run_ctx
from .wrappers import ProvenanceTrackedFunction, ProvenanceTrackedModel, WeightDistributionTrackedModel

__all__ = [
    "ProvenanceTrackedFunction", "ProvenanceTrackedModel", "WeightDistributionTrackedModel",
    "log_provenance_documents", "get_run_dir", "get_artifacts_dir", "start_run_ctx", "log_model_memory_footprint",
    "PROV4ML_DATA", "MetricInfo", "get_file_type",
    "install_yprov4ml_alias", "uninstall_yprov4ml_alias",
]
