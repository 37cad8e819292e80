"""Ingest: read a platform export, map it onto the contracts, validate it with pandera,
pseudonymise and redact personal data, and write the warehouse with a rejects table."""

from features.ingest.reasons import REJECT_REASONS
from features.ingest.report import IngestReport, TableReport
from features.ingest.run import run_ingest

__all__ = ["REJECT_REASONS", "IngestReport", "TableReport", "run_ingest"]
