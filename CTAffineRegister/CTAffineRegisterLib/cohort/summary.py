"""The cohort summary: report.json, report.csv and report.html, rebuilt from the per-case reports.

Each case's own ``ID_report.json`` is the record; the summary is a view of all of them, built
again on every run, so a run killed at case 999 of 1000 loses nothing a rerun cannot rebuild.
Here each registered case is also judged against the rest of the cohort (``cohort.review``),
which may lower an "ok" outlier to "suspect" in the summary; the case's own file keeps its own
verdict. Pure module: the standard library only (the HTML page has its own module).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from typing import Optional

from .._version import __version__
from ..io.images import write_text
from .outputs import SUMMARY_NAMES, output_error_reason
from .report_page import render_cohort_page
from .review import review_cohort

SUMMARY_FORMAT = "ct-affine-register cohort report"
SUMMARY_SCHEMA = 1
VERDICTS = ("ok", "suspect", "failed")
CSV_COLUMNS = [
    "id",
    "input",
    "status",
    "verdict",
    "own_verdict",
    "reason",
    "trustworthy",
    "cohort_outlier",
    "padding_kind",
    "padding_value",
    "padding_fraction",
    "fov_radius_mm",
    "air_value",
    "fill",
    "seconds",
    "resumed",
    "host",
    "worker",
    "error",
]


def build_summary(cases: list[dict], header: dict) -> dict:
    """The summary object: ``header`` (fixed, settings, run) plus counts and the reviewed cases.

    ``cases`` are per-case reports in cohort order; they are copied, never changed.

    Args:
        cases: per-case reports, in cohort order.
        header: fixed scan, settings and run.

    Returns:
        The JSON-able summary.
    """
    reviewed = review_cohort(copy.deepcopy(cases))
    counts = count_cases(reviewed)
    summary = {
        "format": SUMMARY_FORMAT,
        "schema": SUMMARY_SCHEMA,
        "tool_version": __version__,
        **header,
        "counts": counts,
        "succeeded": counts["registered"],
        "failed": counts["failed"],
    }
    summary["summary_line"] = summary_line(summary)
    summary["cases"] = reviewed
    return summary


def count_cases(cases: list[dict]) -> dict:
    """Registered cases by verdict (as reviewed against the cohort), and the cases that did not register.

    Args:
        cases: reviewed per-case reports.

    Returns:
        Counts by verdict and status.
    """
    registered = [case for case in cases if case.get("status") == "ok"]
    verdicts = {verdict: 0 for verdict in VERDICTS}
    for case in registered:
        verdict = (case.get("quality") or {}).get("verdict")
        if verdict in verdicts:
            verdicts[verdict] += 1
    return {
        "cases": len(cases),
        "registered": len(registered),
        "verdicts": verdicts,
        "failed": sum(1 for case in cases if case.get("status") == "failed"),
        "cancelled": sum(1 for case in cases if case.get("status") == "cancelled"),
        "resumed": sum(1 for case in cases if case.get("resumed")),
    }


def summary_line(summary: dict) -> str:
    """E.g. "14 registered: 12 ok, 1 suspect, 1 failed verdict; 2 failed" (failed = did not register).

    Args:
        summary: what ``build_summary`` returned.

    Returns:
        The line.
    """
    counts = summary["counts"]
    verdicts = counts["verdicts"]
    line = (
        f"{counts['registered']} registered: {verdicts['ok']} ok, {verdicts['suspect']} suspect, "
        f"{verdicts['failed']} failed verdict; {counts['failed']} failed"
    )
    if counts["cancelled"]:
        line += f"; {counts['cancelled']} cancelled"
    if counts["resumed"]:
        line += f" ({counts['resumed']} finished by an earlier run)"
    return line


def csv_text(summary: dict) -> str:
    """One row per case; every quality figure gets its own ``figure_NAME`` column.

    Args:
        summary: what ``build_summary`` returned.

    Returns:
        The CSV text.
    """
    figure_names = sorted({name for case in summary["cases"] for name in _figures(case)})
    columns = CSV_COLUMNS + [f"figure_{name}" for name in figure_names]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for case in summary["cases"]:
        row = csv_row(case)
        row.update({f"figure_{name}": value for name, value in _figures(case).items()})
        writer.writerow({column: _cell(row.get(column)) for column in columns})
    return buffer.getvalue()


def csv_row(case: dict) -> dict:
    """One case's values for the fixed CSV columns (``csv_text`` adds the ``figure_NAME`` ones).

    Args:
        case: a reviewed per-case report.

    Returns:
        Column name → value.
    """
    quality = case.get("quality") or {}
    moving = case.get("moving") or {}
    where = case.get("where") or {}
    fov = moving.get("fov") or {}
    return {
        "id": case.get("id"),
        "input": case.get("moving_path"),
        "status": case.get("status"),
        "verdict": quality.get("verdict"),
        "own_verdict": quality.get("own_verdict", quality.get("verdict")),
        "reason": quality.get("reason"),
        "trustworthy": case.get("trustworthy"),
        "cohort_outlier": (quality.get("cohort") or {}).get("outlier"),
        "padding_kind": moving.get("kind"),
        "padding_value": moving.get("padding_value"),
        "padding_fraction": moving.get("padding_fraction"),
        "fov_radius_mm": fov.get("radius_mm"),
        "air_value": moving.get("air_value"),
        "fill": case.get("fill"),
        "seconds": case.get("seconds"),
        "resumed": bool(case.get("resumed")),
        "host": where.get("host"),
        "worker": where.get("worker"),
        "error": case.get("error"),
    }


def write_summary(out_dir: str, summary: dict) -> Optional[str]:
    """Write report.json, report.csv and report.html (each atomically, replacing the last run's).

    Returns None, or one line naming the file that could not be written and why (a full disk):
    the summary is then incomplete, but every per-case report still holds its case.

    Args:
        out_dir: the output folder.
        summary: what ``build_summary`` returned.

    Returns:
        None, or the line naming what could not be written.
    """
    documents = [
        (SUMMARY_NAMES["json"], lambda: json.dumps(summary, indent=2) + "\n"),
        (SUMMARY_NAMES["csv"], lambda: csv_text(summary)),
        (SUMMARY_NAMES["html"], lambda: render_cohort_page(summary)),
    ]
    for name, render in documents:
        path = os.path.join(out_dir, name)
        try:
            write_text(render(), path, True)
        except OSError as error:
            return (
                f"{path}: cannot write the cohort summary ({output_error_reason(error, path)}); "
                f"every case's own *_report.json is complete, rerun the same command to rebuild it"
            )
    return None


def _figures(case: dict) -> dict:
    figures = (case.get("quality") or {}).get("figures") or {}
    return {name: value for name, value in figures.items() if _is_number(value)}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
