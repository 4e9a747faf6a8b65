"""Analysis on the laptop side: recorded runs, read from disk, as pandas DataFrames, plots and reports.

    python -m prov4ml.analysis report --run_dir prov/mnist/run_0 [--output report.html] [--metrics 'loss*']
    python -m prov4ml.analysis report --experiment_path prov/mnist
    python -m prov4ml.analysis compare --experiment_path prov/mnist [--output runs.csv]

Everything here reads what a run left on disk, the ``prov_rank<k>.json`` of
each rank and the metric files their ``provml:Metric`` entities point to with
``prov:location``; no active run is needed, and nothing recorded is changed.

==================  ========================================================
function            returns
==================  ========================================================
load_run            :class:`RunData`: ``params``, ``metrics`` (long format),
                    ``summary`` (one row per series), ``artifacts``,
                    ``info``, ``environment``
load_experiment     :class:`ExperimentData`: every run, and the same frames
                    with a ``run_id`` column
compare_runs        one row per run: id, status, parameters, and
                    ``<metric>/<context>/<last|min|max>`` of each series
sweep_summary       one row per configuration: mean and std over its runs
line_data           the numbers a plotted line is drawn from (points that
                    share a step: mean, min, max per step)
spread_data         the mean ± std of several runs' lines at each step
plot_metric         a matplotlib ``Axes``, a line per run, context and rank
html_report         a self-contained HTML report of a run
experiment_report   a self-contained HTML report of an experiment's runs
==================  ========================================================

The modules: ``load`` (reading), ``compare`` (tables), ``plots`` (line data,
matplotlib, the browser's chart specs), ``report`` (the HTML pages), ``cli``.

pandas and matplotlib are the ``analysis`` extra (``pip install
"prov4ml[analysis]"``): they are imported inside the functions, and a missing
one raises :class:`~prov4ml.exceptions.MissingDependencyError`. The HTML
reports (:func:`html_report`, :func:`experiment_report`), :func:`line_data`
and :func:`spread_data` need neither: runs are read with :mod:`prov4ml.runs`,
the one reader of recorded runs, and the charts are drawn in the browser by
the web UI's plotting module, inlined. A missing directory, a directory without
``prov_rank<k>.json``, a corrupt document or a missing metric file raises
:class:`~prov4ml.exceptions.ProvFileError` naming it. Plots draw on a
``matplotlib.figure.Figure`` with the Agg canvas: pyplot and the global
backend are left alone.
"""

from ._html import STATUS_COLOURS, format_duration
from ._progress import ProgressCallback
from .cli import main
from .compare import COMPARE_STATS, compare_runs, configuration, select_series, sweep_summary
from .load import (
    ARTIFACT_COLUMNS,
    ARTIFACT_KINDS,
    KEY_PACKAGES,
    METRIC_COLUMNS,
    METRIC_READERS,
    STATUS_SEVERITY,
    SUMMARY_COLUMNS,
    ExperimentData,
    RunData,
    load_experiment,
    load_run,
)
from .plots import LineData, line_data, plot_metric, spread_data
from .report import experiment_report, graph_svg, html_report

__all__ = [
    "RunData",
    "ExperimentData",
    "load_run",
    "load_experiment",
    "compare_runs",
    "plot_metric",
    "html_report",
    "main",
    "METRIC_READERS",
    "experiment_report",
    "sweep_summary",
    "configuration",
    "select_series",
    "line_data",
    "spread_data",
    "LineData",
    "graph_svg",
    "format_duration",
    "ProgressCallback",
    "METRIC_COLUMNS",
    "SUMMARY_COLUMNS",
    "ARTIFACT_COLUMNS",
    "ARTIFACT_KINDS",
    "STATUS_SEVERITY",
    "STATUS_COLOURS",
    "COMPARE_STATS",
    "KEY_PACKAGES",
]
