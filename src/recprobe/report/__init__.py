"""The static HTML report of a run (``recprobe report``)."""

from recprobe.report.build import build_report

__all__ = ["build_report"]
