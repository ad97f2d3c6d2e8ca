"""A "suspect" verdict asks for a look, not a rejection: its outputs stay trustworthy and the run
exits 0; a summary that could not be written fails the run."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from support.small_pairs import SMALL_PATIENT

from CTAffineRegisterLib.cohort.run import exit_status, run_cohort
from CTAffineRegisterLib.synthetic import make_pair


def _enlarged(image: sitk.Image, factor: float) -> sitk.Image:
    """The same anatomy ``factor`` times larger about the scan centre, on a grid grown to hold it."""
    size, spacing = np.array(image.GetSize()), np.array(image.GetSpacing())
    center = image.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2.0).tolist())
    shrink = sitk.AffineTransform(3)
    shrink.SetCenter(center)
    shrink.SetMatrix((np.eye(3) / factor).ravel().tolist())
    new_size = np.round(size * factor).astype(int)
    grid = sitk.Image([int(n) for n in new_size], image.GetPixelID())
    grid.SetSpacing(spacing.tolist())
    grid.SetDirection(image.GetDirection())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    grid.SetOrigin((np.array(center) - direction @ (spacing * (new_size - 1) / 2.0)).tolist())
    return sitk.Resample(image, grid, shrink, sitk.sitkLinear, -1024.0, image.GetPixelID())


def test_a_suspect_case_keeps_trustworthy_outputs_and_the_run_exits_0(tmp_path):
    """A scan 1.8 times the size of the fixed one (beyond two adults): registered right, but the scale
    makes the verdict "suspect"."""
    fixed = make_pair(21, **SMALL_PATIENT).fixed
    sitk.WriteImage(fixed, str(tmp_path / "fixed.nii.gz"))
    sitk.WriteImage(_enlarged(fixed, 1.8), str(tmp_path / "large.nii.gz"))
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
