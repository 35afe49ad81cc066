"""Report documents over the canonical store, and their renderings (Markdown, JSON, CSV, HTML)."""

from contexta.reports._alert_report import build_alert_report
from contexta.reports._cells import Cell
from contexta.reports._comparison_reports import build_multi_run_report, build_run_report
from contexta.reports._document import ReportDocument
from contexta.reports._notebook import NOTEBOOK_ROWS, notebook_series_html, notebook_table_html
from contexta.reports._project_report import build_project_summary_report
from contexta.reports._sections import ChartSeries, ReportChart, ReportSection, ReportTable
from contexta.reports._snapshot_report import build_snapshot_report
from contexta.reports._trend_report import build_trend_report

__all__ = [
    "NOTEBOOK_ROWS",
    "Cell",
    "ChartSeries",
    "ReportChart",
    "ReportDocument",
    "ReportSection",
    "ReportTable",
    "build_alert_report",
    "build_multi_run_report",
    "build_project_summary_report",
    "build_run_report",
    "build_snapshot_report",
    "build_trend_report",
    "notebook_series_html",
    "notebook_table_html",
]
