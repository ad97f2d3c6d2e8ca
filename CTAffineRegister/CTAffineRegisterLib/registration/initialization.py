"""Where to start: rigid placements a CT pair may need, and how much of the fixed body each one overlaps.

Scans of one patient from two sites differ in size, field of view and slice coverage, so no single
rule places them: body centroids align scans of different extent, the physical frame is right for
same-scanner follow-ups, image centres catch the rest, and a scan of shifts along the body axis
finds scans whose slice coverage differs (a body's outline is nearly the same at every level, so
centroids cannot tell where along z two scans meet). The caller compares the candidates with the
metric.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..core.affine import affine_parts
from ..core.pyramid import Level, as_mask, image_center, mask_moments

# Largest step (mm) between z-scan placements: the coarse metric's basin is a few centimetres wide.
Z_SCAN_STEP_MM = 20.0
# Two bodies whose in-plane spread differs by more than this share also get every placement scaled
# by that ratio. Between two patients of very different size (the development set's 0.75× onto
# 1.2× chest) no rigid start lies in the basin of the right scale: the registration ended in a
# wrong placement (structure overlap 0.21) from the best rigid start and at 0.555 from the scaled one.
# Below 20 % the rigid starts and the last stage reach the right scale themselves (0.8× and 1.3×
# patients: 0.585 and 0.582), and a scaled winner costs a second run to the end (see
# registration.engine), so only clearly different sizes get scaled starts.
SIZE_RATIO_MIN = 0.2


def candidate_placements(
    fixed_analysis, moving_analysis, center, allow_scale: bool = True
) -> dict[str, sitk.Transform]:
    """Placements worth trying first, by name: translations (rigid transforms about ``center``) and,
    when the two bodies differ clearly in size and ``allow_scale``, the same translations with the
    bodies' size ratio (similarity transforms, named ``... scaled``).

    Args:
        fixed_analysis: background analysis of the fixed scan (``body_mask``, ``valid_mask``).
        moving_analysis: the same for the moving scan.
        center: the rotation centre (the fixed body centre).
        allow_scale: False for a rigid registration, which cannot keep a scale.

    Returns:
        Transforms (fixed→moving) by name.
    """
    fixed_body = mask_moments(as_mask(fixed_analysis.body_mask))
    moving_body = mask_moments(as_mask(moving_analysis.body_mask))
    shifts = {"identity": np.zeros(3)}
    if moving_body[0] > 0 and fixed_body[0] > 0:
        shift = moving_body[1] - fixed_body[1]
        shifts["body-moments"] = shift
        shifts["body-moments-xy"] = np.array([shift[0], shift[1], 0.0])
    shifts["geometry"] = image_center(moving_analysis.valid_mask) - image_center(fixed_analysis.valid_mask)
    # Along the body axis, centroids of scans with different coverage disagree by up to half the
    # difference in coverage, and two datasets' z origins can be 400 mm apart: scan z around the
    # centroid shift, far enough to reach past the difference in coverage.
    base = shifts.get("body-moments", shifts["geometry"])
    fixed_extent = _extent_along_z(fixed_analysis.valid_mask)
    moving_extent = _extent_along_z(moving_analysis.valid_mask)
    reach = 0.5 * abs(fixed_extent - moving_extent) + 0.4 * min(fixed_extent, moving_extent)
    steps = max(4, int(np.ceil(reach / Z_SCAN_STEP_MM)))
    for dz in np.linspace(-reach, reach, 2 * steps + 1):
        if abs(dz) > 1e-6:
            shifts[f"z-scan{dz:+.0f}mm"] = base + np.array([0.0, 0.0, dz])
    placements: dict[str, sitk.Transform] = {}
    for name, shift in shifts.items():
        transform = sitk.Euler3DTransform()
        transform.SetCenter([float(c) for c in center])
        transform.SetTranslation([float(v) for v in shift])
        placements[name] = transform
    ratio = _size_ratio(fixed_body, moving_body) if allow_scale else None
    if ratio is not None and abs(ratio - 1.0) >= SIZE_RATIO_MIN:
        for name, shift in shifts.items():
            scaled = sitk.Similarity3DTransform()
            scaled.SetCenter([float(c) for c in center])
            scaled.SetScale(float(ratio))
            scaled.SetTranslation([float(v) for v in shift])
            placements[f"{name} scaled {ratio:.2f}"] = scaled
    return placements


def body_size_ratio(fixed_body: sitk.Image, moving_body: sitk.Image) -> float | None:
    """How much larger the moving body is than the fixed one across the body axis (None: no body).

    The spread (standard deviation) of body voxels along the two in-plane axes does not depend on
    how much of the body each scan covers along its axis, which differs between datasets; the
    geometric mean of the two ratios is the isotropic scale that matches the two outlines.

    Args:
        fixed_body: the fixed scan's body mask.
        moving_body: the moving scan's body mask.

    Returns:
        The ratio, or None when either mask holds fewer than 20 voxels or has no in-plane spread.
    """
    return _size_ratio(mask_moments(fixed_body), mask_moments(moving_body))


def _size_ratio(fixed_moments, moving_moments) -> float | None:
    """``body_size_ratio`` from the two masks' ``mask_moments``."""
    spreads = []
    for voxels, _, covariance in (fixed_moments, moving_moments):
        if voxels < 20:
            return None
        spreads.append(np.sqrt(np.clip(np.diag(covariance)[:2], 0.0, None)))
    fixed_spread, moving_spread = spreads
    if np.any(fixed_spread <= 0) or np.any(moving_spread <= 0):
        return None
    return float(np.sqrt(np.prod(moving_spread / fixed_spread)))


def _extent_along_z(image: sitk.Image) -> float:
    """Physical length (mm) an image covers along the patient axis (z)."""
    size = image.GetSize()
    corners = [
        image.TransformIndexToPhysicalPoint((0, 0, 0)),
        image.TransformIndexToPhysicalPoint(tuple(n - 1 for n in size)),
    ]
    return abs(corners[1][2] - corners[0][2])


def overlap_fraction(transform: sitk.Transform, fixed_level: Level, moving_level: Level) -> float:
    """Share of (up to 2000) fixed mask voxels whose mapped point falls on valid moving data.

    Args:
        transform: fixed physical point → moving point.
        fixed_level: a fixed pyramid level.
        moving_level: the moving one.

    Returns:
        The share, between 0 and 1.
    """
    points = mask_points(fixed_level, 2000)
    matrix, translation = affine_parts(transform, (0.0, 0.0, 0.0))
    mapped = points @ matrix.T + translation
    moving = moving_level.image
    to_index = np.linalg.inv(np.array(moving.GetDirection()).reshape(3, 3) @ np.diag(moving.GetSpacing()))
    index = np.rint((mapped - np.array(moving.GetOrigin())) @ to_index.T).astype(np.int64)
    size = np.array(moving.GetSize())
    inside = np.all((index >= 0) & (index < size), axis=1)
    if moving_level.mask is not None and inside.any():
        mask = sitk.GetArrayViewFromImage(moving_level.mask)
        kept = index[inside]
        inside[np.nonzero(inside)[0]] = mask[kept[:, 2], kept[:, 1], kept[:, 0]] > 0
    return float(np.count_nonzero(inside)) / max(1, len(points))


def mask_points(level: Level, count: int) -> np.ndarray:
    """About ``count`` physical points spread evenly over the level's mask (all voxels if no mask).

    Args:
        level: a pyramid level.
        count: about how many points.

    Returns:
        The points, N×3.
    """
    array = (
        np.ones(level.image.GetSize()[::-1], bool)
        if level.mask is None
        else (sitk.GetArrayViewFromImage(level.mask) > 0)
    )
    indices = np.argwhere(array)
    step = max(1, len(indices) // count)
    chosen = indices[::step][:, ::-1].astype(float)
    matrix = np.array(level.image.GetDirection()).reshape(3, 3) @ np.diag(level.image.GetSpacing())
    return chosen @ matrix.T + np.array(level.image.GetOrigin())
