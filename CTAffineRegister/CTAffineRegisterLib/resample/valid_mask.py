"""The moving scan's validity mask on the fixed grid: exact, without resampling every voxel.

Nearest-neighbour resampling of a mask costs ITK about as much per voxel as the linear resampling
of the scan (most of it is visiting the voxel, not interpolating): 1-2 s on 512×512×300, for a
mask that is 1 almost everywhere and 0 in large regions. Under an affine transform the part of
the moving image that one block of fixed voxels maps onto lies inside an exactly computable box,
so on a grid of blocks:

- a block whose box lies inside the moving image over whole blocks of valid moving voxels is 1;
- a block whose box holds no valid moving voxel, or lies outside the moving image, is 0;
- only the others (along the edges of the moving image and of its field of view, a few % of the
  blocks) are worked out voxel by voxel, the way ITK does it: the nearest voxel, index rounded
  half up, inside when the continuous index lies in [-0.5, size - 0.5).

The answer is ITK's nearest-neighbour resampling, voxel for voxel, except where a voxel centre maps
within about 1e-9 voxel of halfway between two moving voxels (rounding order may then differ).
Transforms that are not affine go to ``sitk.Resample`` unchanged.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..padding.region import block_factors, block_stats

# Fixed-grid blocks about this many voxels a side: the boxes stay tight, and a 512×512×300 grid
# has about 150 000 of them, cheap to classify at once.
OUTPUT_BLOCK = 8
# Boxes are widened by this (in voxel units) so that floating-point differences from ITK's own
# index arithmetic can never make a block look uniform when it is not.
INDEX_MARGIN = 1e-6
# Mixed blocks are worked out this many at a time: about 130 000 voxels, whose index arithmetic in
# float64 needs some 20 MB of temporary arrays, so the peak memory of a case does not grow.
BATCH_BLOCKS = 256
# A transform is treated as affine when it agrees with its affine fit to this many mm.
AFFINE_TOLERANCE_MM = 1e-6


def map_valid_mask(moving_valid: sitk.Image, reference: sitk.Image, transform: sitk.Transform) -> sitk.Image:
    """UInt8 on ``reference``'s grid: ``moving_valid`` (0/1) at the nearest moving voxel, 0 outside.

    Args:
        moving_valid: the moving valid mask (0/1).
        reference: the image whose grid the result is on.
        transform: reference physical point → moving point.

    Returns:
        The UInt8 mask.
    """
    index_map = affine_index_map(moving_valid, reference, transform)
    if index_map is None or reference.GetDimension() != 3 or moving_valid.GetDimension() != 3:
        valid = sitk.Cast(moving_valid, sitk.sitkUInt8)
        return sitk.Resample(valid, reference, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    matrix, offset = index_map
    valid = sitk.GetArrayViewFromImage(moving_valid)
    if valid.dtype != np.uint8 or valid.max() > 1:
        valid = (valid != 0).view(np.uint8)
    shape = tuple(reference.GetSize()[::-1])  # numpy (z, y, x)
    factors = _output_factors(shape)
    classes = _classify_blocks(valid, shape, factors, matrix, offset)
    mapped = np.empty(shape, dtype=np.uint8)
    counts = [length // factor for length, factor in zip(shape, factors)]
    rows = np.repeat((classes == 1).view(np.uint8), factors[2], axis=2)  # widened along x first
    mapped.reshape(counts[0], factors[0], counts[1], factors[1], shape[2])[...] = rows[:, None, :, None, :]
    view = mapped.reshape(counts[0], factors[0], counts[1], factors[1], counts[2], factors[2])
    mixed = np.argwhere(classes == 2)
    for start in range(0, len(mixed), BATCH_BLOCKS):
        batch = mixed[start : start + BATCH_BLOCKS]
        values = _nearest_values(valid, batch, factors, matrix, offset)
        view[batch[:, 0], :, batch[:, 1], :, batch[:, 2], :] = values
    result = sitk.GetImageFromArray(mapped)
    result.CopyInformation(reference)
    return result


def affine_index_map(
    moving: sitk.Image, reference: sitk.Image, transform: sitk.Transform
) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(matrix, offset) taking a reference index (x, y, z) to the moving continuous index, or None
    when the transform is not affine (checked on points spread over the reference image).

    Args:
        moving: the moving image.
        reference: the reference image.
        transform: reference physical point → moving point.

    Returns:
        (matrix, offset), or None.
    """
    if reference.GetDimension() != 3 or moving.GetDimension() != 3:
        return None
    reference_grid = _grid_matrix(reference)
    moving_grid = _grid_matrix(moving)
    size = np.array(reference.GetSize(), dtype=float)
    rng = np.random.default_rng(0)
    probes = [
        reference.TransformContinuousIndexToPhysicalPoint(list(index))
        for index in rng.uniform(0, 1, (12, 3)) * (size - 1)
    ]
    try:
        moved = np.array([transform.TransformPoint(point) for point in probes])
    except RuntimeError:
        return None
    points = np.array(probes)
    design = np.hstack([points, np.ones((len(points), 1))])
    solution, *_ = np.linalg.lstsq(design, moved, rcond=None)
    linear, shift = solution[:3].T, solution[3]
    if np.abs(design @ solution - moved).max() > AFFINE_TOLERANCE_MM:
        return None
    to_moving_index = np.linalg.inv(moving_grid)
    matrix = to_moving_index @ linear @ reference_grid
    offset = to_moving_index @ (
        linear @ np.array(reference.GetOrigin()) + shift - np.array(moving.GetOrigin())
    )
    return matrix, offset


def _grid_matrix(image: sitk.Image) -> np.ndarray:
    return np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())


def _output_factors(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Block size per numpy axis: a divisor of the axis near OUTPUT_BLOCK, so no block is partial."""
    factors = []
    for length in shape:
        choice = 1
        for factor in (OUTPUT_BLOCK, 6, 10, 4, 5, 12, 3, 7, 2):
            if length % factor == 0 and length >= factor:
                choice = factor
                break
        factors.append(choice)
    return factors[0], factors[1], factors[2]


def _classify_blocks(
    valid: np.ndarray,
    shape: tuple[int, ...],
    factors: tuple[int, int, int],
    matrix: np.ndarray,
    offset: np.ndarray,
) -> np.ndarray:
    """Per fixed block (z, y, x): 0 all invalid, 1 all valid, 2 mixed (worked out voxel by voxel)."""
    counts = [length // factor for length, factor in zip(shape, factors)]
    # first and last voxel index of every block along each ITK axis (x, y, z)
    starts = [np.arange(counts[2 - axis]) * factors[2 - axis] for axis in range(3)]
    ends = [start + factors[2 - axis] - 1 for axis, start in enumerate(starts)]
    moving_size = np.array(valid.shape[::-1])  # (x, y, z)
    low, high = [], []
    for component in range(3):  # the moving index's x, y, z
        lowest = np.full(counts, offset[component])
        highest = np.full(counts, offset[component])
        for axis in range(3):
            weight = matrix[component, axis]
            first, last = weight * starts[axis], weight * ends[axis]
            small, large = np.minimum(first, last), np.maximum(first, last)
            shape_of = [1, 1, 1]
            shape_of[2 - axis] = -1
            lowest = lowest + small.reshape(shape_of)
            highest = highest + large.reshape(shape_of)
        low.append(lowest - INDEX_MARGIN)
        high.append(highest + INDEX_MARGIN)
    inside = np.ones(counts, dtype=bool)
    outside = np.zeros(counts, dtype=bool)
    for component in range(3):
        inside &= (low[component] >= -0.5) & (high[component] < moving_size[component] - 0.5)
        outside |= (high[component] < -0.5) | (low[component] >= moving_size[component] - 0.5)
    # nearest moving voxels the box can reach, within the image
    first_voxel = [np.clip(np.floor(low[c] + 0.5), 0, moving_size[c] - 1).astype(np.int64) for c in range(3)]
    last_voxel = [np.clip(np.floor(high[c] + 0.5), 0, moving_size[c] - 1).astype(np.int64) for c in range(3)]
    all_valid, any_valid = _box_queries(valid, first_voxel, last_voxel)
    classes = np.full(counts, 2, dtype=np.uint8)
    classes[inside & all_valid] = 1
    classes[outside | ~any_valid] = 0
    return classes


def _box_queries(valid: np.ndarray, first_voxel: list, last_voxel: list) -> tuple[np.ndarray, np.ndarray]:
    """For each box of moving voxels: are they all valid (by whole blocks), is any of them valid."""
    factors = block_factors(valid.shape)
    every, some = block_stats(valid.view(bool), factors)
    every_sum, some_sum = _summed(every), _summed(some)
    # coarse block ranges, ITK (x, y, z) → numpy (z, y, x)
    lo = [first_voxel[2 - axis] // factors[axis] for axis in range(3)]
    hi = [last_voxel[2 - axis] // factors[axis] for axis in range(3)]
    blocks = (hi[0] - lo[0] + 1) * (hi[1] - lo[1] + 1) * (hi[2] - lo[2] + 1)
    return _box_sum(every_sum, lo, hi) == blocks, _box_sum(some_sum, lo, hi) > 0


def _summed(flags: np.ndarray) -> np.ndarray:
    """3D summed-area table with a leading row of zeros on each axis."""
    table = np.zeros(tuple(n + 1 for n in flags.shape), dtype=np.int32)
    np.cumsum(flags, axis=0, dtype=np.int32, out=table[1:, 1:, 1:])
    np.cumsum(table[1:, 1:, 1:], axis=1, out=table[1:, 1:, 1:])
    np.cumsum(table[1:, 1:, 1:], axis=2, out=table[1:, 1:, 1:])
    return table


def _box_sum(table: np.ndarray, lo: list, hi: list) -> np.ndarray:
    """Sum of the flags in each box [lo, hi] (inclusive block indices, numpy axis order)."""
    _, rows, columns = table.shape
    flat = table.ravel()
    z0, y0, x0 = (bound * step for bound, step in zip(lo, (rows * columns, columns, 1)))
    z1, y1, x1 = ((bound + 1) * step for bound, step in zip(hi, (rows * columns, columns, 1)))
    total = flat[z1 + y1 + x1] - flat[z0 + y1 + x1] - flat[z1 + y0 + x1] - flat[z1 + y1 + x0]
    return total + flat[z0 + y0 + x1] + flat[z0 + y1 + x0] + flat[z1 + y0 + x0] - flat[z0 + y0 + x0]


def _nearest_values(
    valid: np.ndarray,
    blocks: np.ndarray,
    factors: tuple[int, int, int],
    matrix: np.ndarray,
    offset: np.ndarray,
) -> np.ndarray:
    """(K, fz, fy, fx) mask values of the voxels of K fixed blocks (z, y, x block indices)."""
    fz, fy, fx = factors
    z = (blocks[:, 0, None] * fz + np.arange(fz))[:, :, None, None]
    y = (blocks[:, 1, None] * fy + np.arange(fy))[:, None, :, None]
    x = (blocks[:, 2, None] * fx + np.arange(fx))[:, None, None, :]
    moving_size = valid.shape[::-1]
    inside = np.ones((len(blocks), fz, fy, fx), dtype=bool)
    nearest = []
    for component in range(3):
        continuous = (
            offset[component] + matrix[component, 0] * x + matrix[component, 1] * y + matrix[component, 2] * z
        )
        inside &= (continuous >= -0.5) & (continuous < moving_size[component] - 0.5)
        nearest.append(np.clip(np.floor(continuous + 0.5).astype(np.int64), 0, moving_size[component] - 1))
    return (inside & (valid[nearest[2], nearest[1], nearest[0]] > 0)).astype(np.uint8)
