"""The cohort summary from per-case reports: cohort review, verdict counts, CSV and page order.

Built from plain case reports (the summary is a view of them), so no registration runs here.
"""

from __future__ import annotations

import copy
import csv
import io
import re

from CTAffineRegisterLib.cohort.report_page import render_cohort_page
from CTAffineRegisterLib.cohort.run import exit_status
from CTAffineRegisterLib.cohort.summary import build_summary, csv_text


def _case(case_id: str, dice: float, verdict: str = "ok", status: str = "ok", extra: float = 1.0) -> dict:
    return {
        "id": case_id,
        "moving_path": f"/data/{case_id}.nii.gz",
        "status": status,
        "error": None if status == "ok" else f"/data/{case_id}.nii.gz: cannot be read",
        "trustworthy": verdict != "failed" and status == "ok",
        "seconds": 3.0 + dice,
        "moving": {
            "kind": "fov-padding",
            "padding_value": -3024,
            "padding_fraction": 0.2,
            "fov": {"radius_mm": 250},
        },
        "outputs": {"qc": f"{case_id}_qc.png", "qc_thumb": f"{case_id}_qc_thumb.png"}
        if status == "ok"
        else {},
        "quality": {
            "verdict": verdict,
            "reason": "body masks agree" if verdict == "ok" else "something is off",
            "figures": {"body_dice": dice, "profile_shift_mm": extra, "label": "not a number"},
        }
        if status == "ok"
        else None,
    }


def _cohort() -> list[dict]:
    cases = [_case(f"ok{index}", 0.95 + 0.002 * index) for index in range(9)]
    cases.append(_case("outlier", 0.70))  # own checks passed, far below the cohort
    cases.append(_case("bad", 0.94, verdict="failed"))
    cases.append(_case("broken", 0.0, status="failed"))
    stopped = _case("stopped", 0.0, status="cancelled")  # an error text that is no markup of the page
    stopped["error"] = "/data/<script>alert(1)</script> & co.nii.gz: not started (the run was stopped)"
    cases.append(stopped)
    return cases


def test_summary_reviews_the_cohort_without_changing_the_case_reports():
    cases = _cohort()
    before = copy.deepcopy(cases)
    summary = build_summary(cases, {"fixed": {"path": "/data/fixed.nii.gz"}, "run": {}})
    assert cases == before  # the per-case reports keep their own verdicts
    reviewed = {case["id"]: case for case in summary["cases"]}
    outlier = reviewed["outlier"]["quality"]
    assert outlier["verdict"] == "suspect" and outlier["own_verdict"] == "ok" and outlier["cohort"]["outlier"]
    assert reviewed["ok0"]["quality"]["verdict"] == "ok" and reviewed["ok0"]["quality"]["cohort"]["judged"]
    assert summary["counts"]["verdicts"] == {"ok": 9, "suspect": 1, "failed": 1}
    assert (summary["counts"]["failed"], summary["counts"]["cancelled"]) == (1, 1)
    line = "11 registered: 9 ok, 1 suspect, 1 failed verdict; 1 failed; 1 cancelled"
    assert summary["summary_line"] == line
    assert exit_status(summary) == 1


def test_csv_has_a_column_for_every_numeric_figure():
    summary = build_summary(_cohort(), {"run": {}})
    rows = list(csv.DictReader(io.StringIO(csv_text(summary))))
    assert {"figure_body_dice", "figure_profile_shift_mm"} <= set(rows[0]) and "figure_label" not in rows[0]
    by_id = {row["id"]: row for row in rows}
    assert by_id["outlier"]["verdict"] == "suspect" and by_id["outlier"]["own_verdict"] == "ok"
    assert by_id["outlier"]["cohort_outlier"] == "true" and by_id["bad"]["trustworthy"] == "false"
    assert by_id["broken"]["status"] == "failed" and by_id["broken"]["figure_body_dice"] == ""


def test_page_puts_what_needs_a_look_first_and_plots_every_figure():
    page = render_cohort_page(build_summary(_cohort(), {"fixed": {"path": "/data/fixed.nii.gz"}, "run": {}}))
    order = re.findall(r'<tr id="case-([^"]+)"', page)
    assert order[:4] == ["broken", "bad", "outlier", "stopped"] and len(order) == 13
    assert "/data/&lt;script&gt;alert(1)&lt;/script&gt; &amp; co.nii.gz: not started" in page
    assert "<script>alert(1)" not in page
    assert page.count('<circle cx="') == 11 * 3  # body_dice, profile_shift_mm and seconds per case
    assert ">profile_shift_mm<" in page and ">label<" not in page
    assert 'src="ok0_qc_thumb.png"' in page and 'href="ok0_qc.png"' in page
    assert "cohort outlier: body Dice 0.7" in page  # the reason says why the cohort flagged it
    assert "http://" not in page and "https://" not in page  # nothing to fetch from a network


def test_page_shows_markup_in_a_moving_path_as_text():
    """File and folder names may hold any character but "/": a folder named like markup is shown as
    text on the QC page, never run as part of it."""
    cases = _cohort()
    cases[0]["moving_path"] = '/data/<img src=x onerror=alert(2)> "P&Q"/scan.nii.gz'
    page = render_cohort_page(build_summary(cases, {"fixed": {"path": "/data/fixed.nii.gz"}, "run": {}}))
    assert "/data/&lt;img src=x onerror=alert(2)&gt; &quot;P&amp;Q&quot;/scan.nii.gz" in page
    assert "<img src=x" not in page and "onerror=alert(2)>" not in page
