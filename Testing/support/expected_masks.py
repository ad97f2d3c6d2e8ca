"""Where a registered output should hold real moving data, worked out independently in numpy.

A fixed voxel holds real data when its centre, mapped through the transform, lands inside the moving
image (a continuous index in [-0.5, size - 0.5)) on a voxel that is real data, not field-of-view
padding: the ground truth a pair was built with, not the library's own mask.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def affine_parts(transform: sitk.Transform) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and offset of any affine transform, read from where it sends four points."""
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    columns = [np.array(transform.TransformPoint(tuple(unit))) - origin for unit in np.eye(3)]
    return np.stack(columns, axis=1), origin


def grid_matrix(image: sitk.Image) -> np.ndarray:
    return np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())


def expected_data_mask(fixed: sitk.Image, moving_valid: sitk.Image, transform: sitk.Transform) -> np.ndarray:
    """(z, y, x) bool: the voxel's centre maps inside the moving image onto a voxel holding real data."""
    nx, ny, nz = fixed.GetSize()
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    index = np.stack([i, j, k], axis=-1).reshape(-1, 3).astype(np.float64)
    points = index @ grid_matrix(fixed).T + np.array(fixed.GetOrigin())
    matrix, offset = affine_parts(transform)
    moved = points @ matrix.T + offset
    continuous = (moved - np.array(moving_valid.GetOrigin())) @ np.linalg.inv(grid_matrix(moving_valid)).T
    size = np.array(moving_valid.GetSize())
    inside = np.all((continuous >= -0.5) & (continuous < size - 0.5), axis=1)
    nearest = np.clip(np.floor(continuous + 0.5).astype(np.int64), 0, size - 1)
    valid = sitk.GetArrayViewFromImage(moving_valid)
    on_data = valid[nearest[:, 2], nearest[:, 1], nearest[:, 0]] > 0
    return (inside & on_data).reshape(nz, ny, nx)


def maps_inside(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> np.ndarray:
    """(z, y, x) bool: the voxel's centre maps inside the moving image (padding or not)."""
    everywhere = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    everywhere.CopyInformation(moving)
    return expected_data_mask(fixed, everywhere, transform)
