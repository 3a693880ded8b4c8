"""Evidence of a build: its machine-readable record (``result.json``) and its one-page report.

The pipeline writes both as it runs; notebooks display them (:mod:`vdsmlib.notebook`).
"""

from vdsmlib.evidence.record import BuildRecord, StageRecord, load_record
from vdsmlib.evidence.report import write_report

__all__ = ["BuildRecord", "StageRecord", "load_record", "write_report"]
