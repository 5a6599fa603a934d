"""What the inventory refused and what an import did, in words (German or English): one text
for the dashboard, the API and ``cabinet-server inventory``."""

from __future__ import annotations

from ..i18n import DEFAULT_LANGUAGE, Language, text
from .model import InventoryError
from .store import ImportReport

__all__ = ["MAX_SHOWN", "error_text", "report_lines"]

MAX_SHOWN = 50  # a file with thousands of bad lines: the first ones say what is wrong


def error_text(error: InventoryError, lang: Language = DEFAULT_LANGUAGE) -> str:
    return text(f"inv.err.{error.code}", lang, value=error.value)


def report_lines(report: ImportReport, lang: Language = DEFAULT_LANGUAGE, *,
                 dry_run: bool = False) -> list[str]:
    """The summary, then (when refused) one line per error, at most ``MAX_SHOWN``."""
    if report.errors:
        lines = [text("inv.report.refused", lang, count=str(len(report.errors)))]
        lines += [text("inv.line", lang, line=str(line), error=error_text(error, lang))
                  for line, error in report.errors[:MAX_SHOWN]]
        if len(report.errors) > MAX_SHOWN:
            lines.append(f"… (+{len(report.errors) - MAX_SHOWN})")
        return lines
    summary = text("inv.report", lang, added=str(report.added), updated=str(report.updated),
                   unchanged=str(report.unchanged), skipped=str(report.skipped))
    return [summary, text("inv.report.dry", lang)] if dry_run else [summary]
