"""backbone-bench report: comparison figures, a self-contained HTML page and the write-up."""

from .build import build_report

__all__ = ["build_report"]
