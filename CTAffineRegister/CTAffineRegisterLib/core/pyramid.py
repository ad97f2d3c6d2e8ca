"""Multi-resolution copies of a prepared CT and its masks, built once, small first.

SimpleITK's own pyramid smooths and shrinks the FULL image at every level of every stage. Here
each level is a block average (BinShrink) of the previous one, the fixed scan is cropped to the
region the metric samples, and masks are resampled with nearest neighbour: a 512² scan costs one
pass over its voxels, the rest of the work is on small images.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk

from . import morphology


@dataclass
class Level:
    """One resolution of one scan: the image and the mask the metric may sample from."""

    image: sitk.Image
    mask: Optional[sitk.Image]  # UInt8; None means every voxel is usable
    factors: tuple[int, int, int]

    @property
    def spacing(self) -> tuple[float, ...]:
        """The level's voxel size (mm).

        Returns:
            The spacing along x, y, z.
        """
        return self.image.GetSpacing()


def shrink_factors(
    spacing: Sequence[float], target_mm: float, size: Optional[Sequence[int]] = None
) -> tuple[int, int, int]:
    """Whole-voxel block sizes that bring each axis close to ``target_mm`` (never below native).

    With ``size``, an axis keeps at least four voxels (or all it has), so a scan of a few slices
    is shrunk in-plane only instead of vanishing.

    Args:
        spacing: the image's voxel size (mm).
        target_mm: the voxel size wanted (mm).
        size: the image's size in voxels, or None.

    Returns:
        The block size along x, y, z.
    """
    factors = [max(1, int(round(target_mm / s))) for s in spacing]
    if size is not None:
        factors = [min(f, max(1, n // 4)) for f, n in zip(factors, size)]
    return tuple(factors)


def build_levels(
    image: sitk.Image,
    mask: Optional[sitk.Image],
    factor_list: Sequence[tuple[int, int, int]],
    erode_mask_voxels: int = 0,
    dilate_mask_voxels: int = 0,
    limit_mask: Optional[sitk.Image] = None,
) -> list[Level]:
    """Float32 levels (coarse first) from one image: each a block average of the next finer one.

    The mask at each level is the full-resolution mask on that level's grid, optionally dilated
    (to take in the skin-air edge) and then limited to ``limit_mask`` eroded by
    ``erode_mask_voxels`` (to keep away from a field-of-view edge the interpolator would blur).

    Args:
        image: the full-resolution image.
        mask: its metric mask, or None.
        factor_list: block sizes of the levels (any order: they are sorted).
        erode_mask_voxels: erosion of ``limit_mask`` on each level (voxels).
        dilate_mask_voxels: dilation of ``mask`` on each level (voxels).
        limit_mask: the region the mask must stay in (valid data), or None.

    Returns:
        The levels, coarse first.
    """
    levels: list[Level] = []
    current, current_factors = image, (1, 1, 1)
    for factors in sorted(factor_list, key=lambda f: f[0] * f[1] * f[2]):
        if any(f % c for f, c in zip(factors, current_factors)):
            current, current_factors = image, (1, 1, 1)  # not nested: start again from full resolution
        relative = [f // c for f, c in zip(factors, current_factors)]
        if any(r > 1 for r in relative):
            current = sitk.BinShrink(current, relative)
            current_factors = tuple(factors)
        level_mask = _mask_on(current, mask, dilate_mask_voxels, limit_mask, erode_mask_voxels)
        levels.append(Level(_as_float(current), level_mask, current_factors))
    return levels[::-1]


def _as_float(image: sitk.Image) -> sitk.Image:
    """The metric works on float32; integer input is converted only once it is small."""
    return image if image.GetPixelID() == sitk.sitkFloat32 else sitk.Cast(image, sitk.sitkFloat32)


def _mask_on(
    grid: sitk.Image,
    mask: Optional[sitk.Image],
    dilate: int,
    limit: Optional[sitk.Image],
    erode: int,
) -> Optional[sitk.Image]:
    if mask is None and limit is None:
        return None
    result = None
    if mask is not None:
        result = _nearest(mask, grid)
        if dilate > 0:
            result = sitk.BinaryDilate(result, [dilate] * 3)
    if limit is not None:
        limited = _nearest(limit, grid)
        for _ in range(erode):
            limited = erode_once(limited)
        result = limited if result is None else sitk.And(result, limited)
    return result


def erode_once(mask: sitk.Image) -> sitk.Image:
    """Remove mask voxels with a face neighbour outside the mask; the image border counts as inside.

    Six shifted comparisons in numpy: several times faster than a morphological filter for one voxel.

    Args:
        mask: a UInt8 mask.

    Returns:
        The eroded mask.
    """
    eroded = morphology.erode_faces(sitk.GetArrayViewFromImage(mask) > 0)
    result = sitk.GetImageFromArray(eroded.view(np.uint8))
    result.CopyInformation(mask)
    return result


def _nearest(mask: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """``mask`` on ``grid`` by nearest neighbour (0 outside it): a block copy when ``grid`` is the
    mask's own grid or a crop of it, else ``sitk.Resample``. The finest level is such a crop, and
    resampling it voxel by voxel was a tenth of a second per mask at 256²; the copy is the same."""
    if mask.GetPixelID() != sitk.sitkUInt8:
        mask = sitk.Cast(mask, sitk.sitkUInt8)
    offset = _whole_voxel_offset(mask, grid)
    if offset is None:
        return sitk.Resample(mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return _shifted_copy(mask, grid, offset)


# How close to a whole voxel a grid's position in a mask's grid must be to count as one: far from
# the half-voxel where nearest-neighbour rounding would flip, far above double rounding errors.
WHOLE_VOXEL_TOLERANCE = 1e-4


def _whole_voxel_offset(mask: sitk.Image, grid: sitk.Image) -> Optional[tuple[int, int, int]]:
    """The index in ``mask`` of ``grid``'s first voxel when ``grid`` has the mask's spacing and
    directions and its voxels sit on the mask's voxel centres (the mask's own grid, or a crop or
    extension of it); None otherwise."""
    if mask.GetDimension() != 3 or grid.GetDimension() != 3:
        return None
    if not np.allclose(mask.GetDirection(), grid.GetDirection(), rtol=0.0, atol=1e-12):
        return None
    extent = max(grid.GetSize())
    for own, other in zip(mask.GetSpacing(), grid.GetSpacing()):
        if abs(other / own - 1.0) * extent > WHOLE_VOXEL_TOLERANCE:  # drift over the grid
            return None
    start = np.asarray(mask.TransformPhysicalPointToContinuousIndex(grid.GetOrigin()))
    whole = np.floor(start + 0.5)
    if np.any(np.abs(start - whole) > WHOLE_VOXEL_TOLERANCE):
        return None
    return tuple(int(value) for value in whole)


def _shifted_copy(mask: sitk.Image, grid: sitk.Image, offset: tuple[int, int, int]) -> sitk.Image:
    """The block of ``mask`` under ``grid`` (0 where it lies outside the mask), on ``grid``."""
    source = sitk.GetArrayViewFromImage(mask)  # z, y, x
    size = grid.GetSize()
    result = np.zeros(size[::-1], dtype=np.uint8)
    target_slices, source_slices = [], []
    for axis in (2, 1, 0):
        begin = max(0, offset[axis])
        end = min(mask.GetSize()[axis], offset[axis] + size[axis])
        if end <= begin:
            target_slices = None
            break
        source_slices.append(slice(begin, end))
        target_slices.append(slice(begin - offset[axis], end - offset[axis]))
    if target_slices is not None:
        result[tuple(target_slices)] = source[tuple(source_slices)]
    image = sitk.GetImageFromArray(result)
    image.CopyInformation(grid)
    return image


# Mask helpers shared by the registration stages and the quality check


def as_mask(image: sitk.Image) -> sitk.Image:
    """UInt8 0/1 mask; analysis masks already are, so this usually costs nothing.

    Args:
        image: a binary image.

    Returns:
        The UInt8 0/1 mask.
    """
    if image.GetPixelID() == sitk.sitkUInt8 and float(sitk.GetArrayViewFromImage(image).max(initial=0)) <= 1:
        return image
    return sitk.Cast(image > 0, sitk.sitkUInt8)


def count(mask: sitk.Image) -> int:
    """How many voxels a mask holds: the size checks of the registration read it.

    Args:
        mask: a mask.

    Returns:
        Its number of non-zero voxels.
    """
    return int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))


def centroid(mask: sitk.Image) -> tuple[float, float, float]:
    """Physical centre of mass of a mask's voxels (the image centre for an empty mask).

    Args:
        mask: a mask.

    Returns:
        The centre, in physical coordinates.
    """
    return tuple(float(value) for value in mask_moments(mask)[1])


def mask_moments(mask: sitk.Image) -> tuple[int, np.ndarray, np.ndarray]:
    """How many voxels a mask holds, their physical centre and the covariance (mm²) of their positions.

    Computed from the mask's three 2D projections (each a single pass summing booleans), so a
    512×512×300 body costs a few hundred milliseconds and no list of voxel coordinates: listing
    every body voxel took over a second for a 256² scan and more than the registration at 512².

    Args:
        mask: a mask (voxels > 0 count).

    Returns:
        (voxel count, centre, 3×3 covariance in physical x, y, z); an empty mask's centre is the image
        centre, and with fewer than 2 voxels the covariance is zero.
    """
    array = sitk.GetArrayViewFromImage(mask) > 0  # (z, y, x)
    z_y = array.sum(axis=2, dtype=np.float64)
    z_x = array.sum(axis=1, dtype=np.float64)
    y_x = array.sum(axis=0, dtype=np.float64)
    total = float(y_x.sum())
    if total == 0:
        return 0, image_center(mask), np.zeros((3, 3))
    x, y, z = (np.arange(n, dtype=np.float64) for n in mask.GetSize())
    mean = np.array([(y_x.sum(axis=0) * x).sum(), (y_x.sum(axis=1) * y).sum(), (z_y.sum(axis=1) * z).sum()])
    mean /= total
    center = np.array(mask.TransformContinuousIndexToPhysicalPoint(mean.tolist()))
    if total < 2:
        return int(total), center, np.zeros((3, 3))
    second = np.empty((3, 3))
    second[0, 0] = (y_x.sum(axis=0) * x * x).sum()
    second[1, 1] = (y_x.sum(axis=1) * y * y).sum()
    second[2, 2] = (z_y.sum(axis=1) * z * z).sum()
    second[0, 1] = second[1, 0] = y @ y_x @ x
    second[0, 2] = second[2, 0] = z @ z_x @ x
    second[1, 2] = second[2, 1] = z @ z_y @ y
    index_covariance = second / total - np.outer(mean, mean)
    axes = np.array(mask.GetDirection()).reshape(3, 3) @ np.diag(mask.GetSpacing())
    return int(total), center, axes @ index_covariance @ axes.T


def image_center(image: sitk.Image) -> np.ndarray:
    """The physical centre of an image's grid: the geometric initial placement, an empty mask's centroid.

    Args:
        image: an image.

    Returns:
        The physical point at the centre of its grid.
    """
    return np.array(image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in image.GetSize()]))


def coarse_grid(image: sitk.Image, target_mm: float) -> sitk.Image:
    """An empty UInt8 image on the BinShrink grid of ``image`` with voxels of about ``target_mm``.

    Args:
        image: the image whose grid is shrunk.
        target_mm: the voxel size wanted (mm).

    Returns:
        The empty image on the coarse grid.
    """
    factors = shrink_factors(image.GetSpacing(), target_mm, image.GetSize())
    size = [max(1, n // f) for n, f in zip(image.GetSize(), factors)]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing([s * f for s, f in zip(image.GetSpacing(), factors)])
    grid.SetDirection(image.GetDirection())
    first_center = [(f - 1) / 2.0 for f in factors]
    grid.SetOrigin(image.TransformContinuousIndexToPhysicalPoint(first_center))
    return grid


def resample_mask(mask: sitk.Image, grid: sitk.Image, transform: sitk.Transform) -> sitk.Image:
    """A mask on another grid by nearest neighbour: masks stay 0/1, never blurred into fractions.

    Args:
        mask: a mask.
        grid: the image whose grid the result is on.
        transform: grid physical point → mask point.

    Returns:
        The mask on ``grid`` (nearest neighbour, 0 outside).
    """
    return sitk.Resample(as_mask(mask), grid, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def crop_to(region: sitk.Image, *images: sitk.Image) -> list[sitk.Image]:
    """Images on one grid, cut to the physical bounding box of ``region`` plus one region voxel.

    Args:
        region: a mask on the images' grid.
        *images: images on that grid.

    Returns:
        The cropped images, in order (uncut when the box covers them).
    """
    array = sitk.GetArrayViewFromImage(region)
    reference = images[0]
    present = [np.nonzero(array.any(axis=tuple(a for a in range(3) if a != axis)))[0] for axis in (2, 1, 0)]
    corners = []
    for ci in (present[0][0] - 1, present[0][-1] + 1):
        for cj in (present[1][0] - 1, present[1][-1] + 1):
            for ck in (present[2][0] - 1, present[2][-1] + 1):
                physical = region.TransformContinuousIndexToPhysicalPoint([float(ci), float(cj), float(ck)])
                corners.append(reference.TransformPhysicalPointToContinuousIndex(physical))
    corners = np.array(corners)
    size = np.array(reference.GetSize())
    lower = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, size - 1)
    upper = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, 1, size)
    if np.all(lower == 0) and np.all(upper == size):
        return list(images)
    return [sitk.RegionOfInterest(image, (upper - lower).tolist(), lower.tolist()) for image in images]
