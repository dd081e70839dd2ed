"""backbone-bench report: comparison figures, a self-contained HTML page and the write-up."""

from .build import Commands, build_report, report_dir

__all__ = ["Commands", "build_report", "report_dir"]
