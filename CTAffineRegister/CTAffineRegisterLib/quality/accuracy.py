"""How good a registration is when the answer is known: TRE and gray-ring voxels.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

# Real air rarely reads below -1100 HU; padding ramped into air by interpolation does.
RING_THRESHOLD_HU = -1100.0


def target_registration_error(
    estimated: sitk.Transform, truth: sitk.Transform, points: np.ndarray
) -> tuple[float, float]:
    """Mean and max distance (mm) between where the estimate and the truth send each fixed point.

    Args:
        estimated: the fixed→moving transform found.
        truth: the true one.
        points: fixed physical points, N×3.

    Returns:
        (mean, max) distance in mm.

    Raises:
        ValueError: no points.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if points.shape[0] == 0:
        raise ValueError("no points to measure the target registration error at")
    distances = np.empty(points.shape[0])
    for index, point in enumerate(points):
        a = estimated.TransformPoint(point.tolist())
        b = truth.TransformPoint(point.tolist())
        distances[index] = np.linalg.norm(np.subtract(a, b))
    return float(distances.mean()), float(distances.max())


def ring_voxels(
    output_image: sitk.Image, fixed_valid_mask: sitk.Image, threshold: float = RING_THRESHOLD_HU
) -> int:
    """Number of output voxels darker than ``threshold`` inside the fixed scan's valid region.

    Args:
        output_image: a registered scan on the fixed grid.
        fixed_valid_mask: the fixed scan's valid mask (same grid).
        threshold: HU below which a voxel counts as a ring voxel.

    Returns:
        The number of such voxels.

    Raises:
        ValueError: the two images differ in size.
    """
    values = sitk.GetArrayViewFromImage(output_image)
    valid = sitk.GetArrayViewFromImage(fixed_valid_mask)
    if values.shape != valid.shape:
        raise ValueError(f"output {values.shape[::-1]} and valid mask {valid.shape[::-1]} differ in size")
    return int(np.count_nonzero((values < threshold) & (valid > 0)))
