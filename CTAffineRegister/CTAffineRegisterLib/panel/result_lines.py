"""What the panel's status area says when a run ends: counts, then each result's verdict and reason.

A registered volume is not necessarily a good one: the report's ``quality`` holds the verdict
("ok", "suspect" or "failed") and a sentence saying why. The panel shows both for every volume, so
nobody has to open the report to know which results to look at.

Pure module: plain data in, lines of text out.
"""

from __future__ import annotations

from collections.abc import Sequence

VERDICTS = ("ok", "suspect", "failed")


def summary_lines(results: Sequence[tuple[str, dict]]) -> list[str]:
    """Lines for (volume name, report) pairs: a count line, one line per registered volume with its
    verdict and reason (and one naming its carried segmentations, when they were asked for), one per
    volume that could not be registered with its error.

    Args:
        results: (volume name, report) per volume.

    Returns:
        The lines.
    """
    registered = [(name, report) for name, report in results if report.get("status") == "ok"]
    errors = [(name, report) for name, report in results if report.get("status") == "failed"]
    cancelled = sum(1 for _, report in results if report.get("status") == "cancelled")

    verdicts = [_quality(report).get("verdict", "unknown") for _, report in registered]
    counts = [f"{verdicts.count(verdict)} {verdict}" for verdict in VERDICTS if verdict in verdicts]
    unknown = sum(1 for verdict in verdicts if verdict not in VERDICTS)
    parts = [f"{', '.join(counts)} verdict"] if counts else []
    if unknown:  # after "verdict", not before it ("3 without a verdict verdict")
        parts.append(f"{unknown} without a verdict")
    head = f"{len(registered)} registered" + (f": {', '.join(parts)}" if parts else "")
    tail = [f"{len(errors)} not registered"] if errors else []
    if cancelled:
        tail.append(f"{cancelled} cancelled")
    lines = ["; ".join([head, *tail]) + "."]

    for name, report in registered:
        quality = _quality(report)
        verdict = quality.get("verdict", "no verdict")
        line = f"{name}: {verdict}"
        if quality.get("reason"):
            line += f" – {quality['reason']}"
        if verdict == "failed":
            line += " (result kept, but do not trust it)"
        lines.append(line)
        if "segmentations" in report:  # asked to carry them along
            lines.append(_segmentations_line(name, report["segmentations"]))
    for name, report in errors:
        lines.append(f"{name}: not registered – {report.get('error') or 'unknown error'}")
    return lines


def _segmentations_line(name: str, carried: list) -> str:
    """Which segmentations came along, or why none did (so an empty result is not a mystery)."""
    if not carried:
        return f"{name}: no segmentation has it as reference geometry; none carried"
    copies = ", ".join(f"'{item.get('carried')}'" for item in carried)
    return f"{name}: segmentations carried: {copies}"


def _quality(report: dict) -> dict:
    quality = report.get("quality")
    return quality if isinstance(quality, dict) else {}
