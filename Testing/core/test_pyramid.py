"""A mask put on a pyramid level's grid: the block copy used when the grid is the mask's own grid
(or a crop of it) must give exactly what ITK's nearest-neighbour resampling gives, voxel for voxel
and header for header; any other grid still goes through ITK."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.core import pyramid

DIRECTION = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def _mask(direction=None) -> sitk.Image:
    values = (np.random.default_rng(4).random((14, 17, 19)) > 0.6).astype(np.uint8) * 3  # z, y, x
    mask = sitk.GetImageFromArray(values)
    mask.SetSpacing((0.977, 1.3, 2.5))
    mask.SetOrigin((-120.3, 40.1, -7.25))
    if direction is not None:
        mask.SetDirection(direction)
    return mask


def _grid(mask: sitk.Image, start, size, spacing_scale=1.0) -> sitk.Image:
    grid = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    grid.SetSpacing([s * spacing_scale for s in mask.GetSpacing()])
    grid.SetDirection(mask.GetDirection())
    grid.SetOrigin(mask.TransformContinuousIndexToPhysicalPoint([float(v) for v in start]))
    return grid


def _same_as_itk(mask: sitk.Image, grid: sitk.Image) -> None:
    expected = sitk.Resample(mask, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    got = pyramid._nearest(mask, grid)
    assert got.GetPixelID() == expected.GetPixelID()
    assert got.GetSize() == expected.GetSize()
    assert np.allclose(got.GetOrigin(), expected.GetOrigin(), atol=0, rtol=0)
    assert got.GetSpacing() == expected.GetSpacing() and got.GetDirection() == expected.GetDirection()
    assert np.array_equal(sitk.GetArrayViewFromImage(got), sitk.GetArrayViewFromImage(expected))


@pytest.mark.parametrize("direction", [None, DIRECTION])
@pytest.mark.parametrize(
    ("start", "size"),
    [
        ((0, 0, 0), (19, 17, 14)),  # its own grid
        ((3, 2, 1), (10, 9, 8)),  # a crop
        ((-4, 5, -2), (30, 20, 10)),  # partly outside: 0 there
        ((40, 0, 0), (5, 5, 5)),  # wholly outside
    ],
)
def test_on_whole_voxel_offsets_the_block_copy_is_what_itk_gives(direction, start, size):
    mask = _mask(direction)
    grid = _grid(mask, start, size)
    assert pyramid._whole_voxel_offset(mask, grid) == tuple(start)
    _same_as_itk(mask, grid)


def test_an_origin_off_by_rounding_noise_still_is_a_whole_voxel_offset():
    mask = _mask()
    grid = _grid(mask, (2, 3, 1), (8, 8, 8))
    grid.SetOrigin([value + 1e-9 for value in grid.GetOrigin()])
    assert pyramid._whole_voxel_offset(mask, grid) == (2, 3, 1)
    _same_as_itk(mask, grid)


@pytest.mark.parametrize(
    ("start", "scale"),
    [((0.5, 0.5, 0.0), 2.0), ((9.75, 8.75, 0.0), 1.0), ((0.0, 0.0, 0.0), 1.001), ((0.4, 0.0, 0.0), 1.0)],
)
def test_any_other_grid_is_resampled_by_itk(start, scale):
    mask = _mask()
    grid = _grid(mask, start, (9, 8, 7), spacing_scale=scale)
    assert pyramid._whole_voxel_offset(mask, grid) is None
    _same_as_itk(mask, grid)


def test_another_direction_is_resampled_by_itk():
    mask = _mask()
    grid = _grid(mask, (0, 0, 0), (19, 17, 14))
    grid.SetDirection(DIRECTION)
    assert pyramid._whole_voxel_offset(mask, grid) is None
    _same_as_itk(mask, grid)
