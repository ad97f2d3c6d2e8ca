"""A "suspect" verdict asks for a look, not a rejection: its outputs stay trustworthy and the run
exits 0; a summary that could not be written fails the run."""

from __future__ import annotations

import pytest
import SimpleITK as sitk
from support.resized_scans import resized
from support.small_pairs import SMALL_PATIENT

from CTAffineRegisterLib.cohort.run import exit_status, run_cohort
from CTAffineRegisterLib.synthetic import make_pair


def test_a_suspect_case_keeps_trustworthy_outputs_and_the_run_exits_0(tmp_path):
    """A scan 1.8 times the size of the fixed one (beyond two adults): registered right, but the scale
    makes the verdict "suspect"."""
    fixed = make_pair(21, **SMALL_PATIENT).fixed
    sitk.WriteImage(fixed, str(tmp_path / "fixed.nii.gz"))
    sitk.WriteImage(resized(fixed, (1.8, 1.8, 1.8)), str(tmp_path / "large.nii.gz"))
    summary = run_cohort(
        str(tmp_path / "fixed.nii.gz"), [str(tmp_path / "large.nii.gz")], str(tmp_path / "out"), jobs=1
    )
    (case,) = summary["cases"]
    assert case["status"] == "ok" and case["quality"]["verdict"] == "suspect"
    assert case["quality"]["reason"].startswith("scale beyond two adults")
    assert case["trustworthy"] is True and case["trust_reason"] is None
    assert exit_status(summary) == 0


def _summary(**changes) -> dict:
    summary = {
        "counts": {"failed": 0, "cancelled": 0, "verdicts": {"ok": 2, "suspect": 1, "failed": 0}},
        "summary_error": None,
        "run": {"stopped_by": None},
    }
    summary.update(changes)
    return summary


@pytest.mark.parametrize(
    ("summary", "status"),
    [
        (_summary(), 0),
        (_summary(summary_error="report.json: No space left on device"), 1),
        (_summary(counts={"failed": 1, "cancelled": 0, "verdicts": {"ok": 2, "suspect": 0, "failed": 0}}), 1),
        (_summary(counts={"failed": 0, "cancelled": 0, "verdicts": {"ok": 2, "suspect": 0, "failed": 1}}), 1),
    ],
)
def test_the_exit_status_fails_on_a_failed_case_verdict_or_summary(summary, status):
    assert exit_status(summary) == status
