"""Accuracy and gray-ring figures for one registration output.

The project's ``accuracy`` module defines these for the tests; the benchmark uses it when it is
importable and otherwise its own equivalent below, so the two can never silently disagree on
definitions once both exist (the fallback follows the same definitions as the issue).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

RING_THRESHOLD_HU = -1100.0


def _own_tre(estimated: sitk.Transform, truth: sitk.Transform, points: np.ndarray) -> tuple[float, float]:
    errors = [
        np.linalg.norm(np.subtract(estimated.TransformPoint(tuple(p)), truth.TransformPoint(tuple(p))))
        for p in points
    ]
    return float(np.mean(errors)), float(np.max(errors))


def _own_ring_voxels(
    output: sitk.Image, fixed_valid: sitk.Image, threshold: float = RING_THRESHOLD_HU
) -> int:
    values = sitk.GetArrayViewFromImage(output)
    valid = sitk.GetArrayViewFromImage(fixed_valid) > 0
    return int(np.count_nonzero((values < threshold) & valid))


def target_registration_error(
    estimated: sitk.Transform, truth: sitk.Transform, points: np.ndarray
) -> tuple[float, float]:
    """(mean, max) of ||T_est(p) − T_true(p)|| in mm over fixed-space body points."""
    try:
        from CTAffineRegisterLib.quality.accuracy import target_registration_error as project_tre
    except ImportError:
        return _own_tre(estimated, truth, points)
    mean, worst = project_tre(estimated, truth, points)
    return float(mean), float(worst)


def ring_voxels(output: sitk.Image, fixed_valid: sitk.Image) -> int:
    """Output voxels below -1100 HU where the fixed scan holds real data: the visible gray ring."""
    if output.GetSize() != fixed_valid.GetSize():
        raise ValueError(
            f"output grid {output.GetSize()} differs from the fixed grid {fixed_valid.GetSize()}"
        )
    try:
        from CTAffineRegisterLib.quality.accuracy import ring_voxels as project_ring_voxels
    except ImportError:
        return _own_ring_voxels(output, fixed_valid)
    return int(project_ring_voxels(output, fixed_valid, threshold=RING_THRESHOLD_HU))
