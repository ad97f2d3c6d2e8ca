"""The registration's multi-resolution copies and mask helpers (core/pyramid.py), on small images
whose answer can be counted: which block sizes a scan gets, each level a block average on the right
grid with its mask dilated, limited and eroded as asked, and the crop, centre and mask conversions
the stages rely on. Fast: images of a few thousand voxels, no registration."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.core import pyramid
from CTAffineRegisterLib.core.pyramid import (
    as_mask,
    build_levels,
    coarse_grid,
    count,
    crop_to,
    erode_once,
    image_center,
    resample_mask,
    shrink_factors,
)


def _image(array: np.ndarray, spacing=(1.0, 1.0, 2.0), origin=(10.0, -5.0, 3.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def test_block_sizes_bring_each_axis_near_the_target_and_keep_four_voxels():
    assert shrink_factors((0.7, 0.7, 2.5), 4.0) == (6, 6, 2)
    assert shrink_factors((5.0, 5.0, 5.0), 2.0) == (1, 1, 1)  # never below the native voxel
    assert shrink_factors((0.7, 0.7, 2.5), 4.0, (512, 512, 6)) == (6, 6, 1)  # 6 slices: keep 4 or more
    assert shrink_factors((0.5, 0.5, 0.5), 4.0, (20, 40, 3)) == (5, 8, 1)
    assert shrink_factors((1.0, 1.0, 1.0), 8.0, (64, 64, 64)) == (8, 8, 8)


def test_levels_are_block_averages_coarse_first_on_grids_of_whole_blocks():
    generator = np.random.default_rng(1)
    array = generator.integers(-1000, 1000, size=(8, 16, 24)).astype(np.float32)
    for pixels, tolerance in ((np.float32, 1e-3), (np.int16, 1.0)):  # integers: averaged in HU steps
        image = _image(array.astype(pixels))
        levels = build_levels(image, None, [(2, 2, 1), (4, 4, 2), (1, 1, 1)])
        assert [level.factors for level in levels] == [(4, 4, 2), (2, 2, 1), (1, 1, 1)]
        for level in levels:
            fx, fy, fz = level.factors
            assert level.image.GetPixelID() == sitk.sitkFloat32 and level.mask is None
            assert level.spacing == (1.0 * fx, 1.0 * fy, 2.0 * fz)
            expected = array.reshape(8 // fz, fz, 16 // fy, fy, 24 // fx, fx).mean(axis=(1, 3, 5))
            assert np.abs(_array(level.image) - expected).max() <= tolerance
            assert level.image.GetOrigin() == pytest.approx(
                image.TransformContinuousIndexToPhysicalPoint([(fx - 1) / 2, (fy - 1) / 2, (fz - 1) / 2])
            )


def test_each_level_is_the_block_average_of_the_next_finer_one():
    # one pass over the full-size scan: a coarse level is shrunk from the finer level, not the scan
    array = np.random.default_rng(1).uniform(-1000, 1000, (8, 16, 24)).astype(np.float32)
    levels = build_levels(_image(array), None, [(1, 1, 1), (2, 2, 1), (4, 4, 2)])
    for coarse, finer in zip(levels, levels[1:]):
        relative = [c // f for c, f in zip(coarse.factors, finer.factors)]
        assert np.array_equal(_array(coarse.image), _array(sitk.BinShrink(finer.image, relative)))


def test_levels_that_do_not_nest_start_again_from_full_resolution():
    array = np.arange(12 * 12 * 12, dtype=np.float32).reshape(12, 12, 12)
    levels = build_levels(_image(array, (1.0, 1.0, 1.0)), None, [(2, 2, 2), (3, 3, 3)])
    assert [level.factors for level in levels] == [(3, 3, 3), (2, 2, 2)]
    expected = array.reshape(4, 3, 4, 3, 4, 3).mean(axis=(1, 3, 5))
    assert np.allclose(_array(levels[0].image), expected)
    float_image = _image(array)
    assert build_levels(float_image, None, [(1, 1, 1)])[0].image is float_image  # float32: no copy


@pytest.mark.parametrize(
    "factor_list", [[(2, 1, 1), (1, 4, 4)], [(4, 1, 1), (1, 2, 1)], [(1, 4, 1), (2, 1, 1)]]
)
def test_the_level_with_the_fewest_voxels_comes_first_whatever_the_axes(factor_list):
    image = _image(np.zeros((8, 8, 8), np.float32), (1.0, 1.0, 1.0))
    levels = build_levels(image, None, factor_list)
    voxels = [level.image.GetNumberOfPixels() for level in levels]
    assert voxels == sorted(voxels) and voxels[0] < voxels[1]


def test_a_level_mask_is_the_mask_on_its_grid_dilated_then_limited_to_the_eroded_region():
    shape = (4, 12, 12)
    image = _image(np.zeros(shape, np.float32), (1.0, 1.0, 1.0))
    mask = np.zeros(shape, np.uint8)
    mask[:, 6, 6] = 1
    limit = np.zeros(shape, np.uint8)
    limit[:, 2:10, 2:10] = 1
    masked = build_levels(image, _image(mask, (1.0, 1.0, 1.0)), [(1, 1, 1)])[0].mask
    assert masked.GetPixelID() == sitk.sitkUInt8 and np.array_equal(_array(masked), mask)
    dilated = build_levels(image, _image(mask, (1.0, 1.0, 1.0)), [(1, 1, 1)], dilate_mask_voxels=2)[0].mask
    expected = _array(sitk.BinaryDilate(_image(mask, (1.0, 1.0, 1.0)), [2, 2, 2]))
    assert np.array_equal(_array(dilated), expected) and _array(dilated).sum() > mask.sum()
    limited = build_levels(
        image, None, [(1, 1, 1)], erode_mask_voxels=2, limit_mask=_image(limit, (1.0, 1.0, 1.0))
    )[0].mask
    eroded = np.zeros(shape, np.uint8)
    eroded[:, 4:8, 4:8] = 1  # two voxels in from each side; the image border in z counts as inside
    assert np.array_equal(_array(limited), eroded)
    not_eroded = build_levels(image, None, [(1, 1, 1)], limit_mask=_image(limit, (1.0, 1.0, 1.0)))[0].mask
    assert np.array_equal(_array(not_eroded), limit)  # no erosion unless asked
    both = build_levels(
        image,
        _image(np.ones(shape, np.uint8), (1.0, 1.0, 1.0)),
        [(1, 1, 1)],
        erode_mask_voxels=1,
        limit_mask=_image(limit, (1.0, 1.0, 1.0)),
    )[0].mask
    once = np.zeros(shape, np.uint8)
    once[:, 3:9, 3:9] = 1
    assert np.array_equal(_array(both), once)


def test_a_coarse_level_mask_is_the_full_mask_by_nearest_voxel():
    shape = (4, 8, 8)
    mask = np.zeros(shape, np.uint8)
    mask[:, :, :4] = 1  # left half
    levels = build_levels(_image(np.zeros(shape, np.float32)), _image(mask), [(2, 2, 2)])
    assert _array(levels[0].mask).tolist() == [[[1, 1, 0, 0]] * 4] * 2


def test_erode_once_removes_voxels_next_to_a_hole_but_not_at_the_border():
    array = np.ones((3, 5, 5), np.uint8)
    array[1, 2, 2] = 0
    image = _image(array)
    eroded = erode_once(image)
    expected = array.copy()
    for z, y, x in ((0, 2, 2), (2, 2, 2), (1, 1, 2), (1, 3, 2), (1, 2, 1), (1, 2, 3)):
        expected[z, y, x] = 0
    assert np.array_equal(_array(eroded), expected)
    assert eroded.GetSpacing() == image.GetSpacing() and eroded.GetOrigin() == image.GetOrigin()
    assert eroded.GetPixelID() == sitk.sitkUInt8


def test_masks_become_zero_or_one_bytes_and_are_counted():
    ready = _image(np.array([[[0, 1], [1, 1]]], np.uint8))
    assert as_mask(ready) is ready and count(ready) == 3
    empty = _image(np.zeros((1, 2, 2), np.uint8))
    assert as_mask(empty) is empty and count(empty) == 0
    for values in (np.array([[[0, 2], [5, 0]]], np.uint8), np.array([[[0, 0.5], [-3.0, 0]]], np.float32)):
        converted = as_mask(_image(values))
        assert converted.GetPixelID() == sitk.sitkUInt8
        assert _array(converted).tolist() == [[[0, 1], [int(values[0, 1, 0] > 0), 0]]]


def test_a_mask_resampled_to_another_grid_stays_zero_or_one():
    mask = _image(np.pad(np.full((2, 2, 2), 7.0, np.float32), 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    grid = sitk.Image([4, 4, 4], sitk.sitkFloat32)
    grid.SetOrigin((1.0, 1.0, 1.0))
    moved = resample_mask(mask, grid, sitk.TranslationTransform(3, (0.0, 0.0, 0.0)))
    assert moved.GetPixelID() == sitk.sitkUInt8
    expected = np.zeros((4, 4, 4), np.uint8)
    expected[:2, :2, :2] = 1
    assert np.array_equal(_array(moved), expected)  # beyond the mask: 0


def test_the_image_centre_and_the_coarse_grid():
    image = sitk.Image([10, 20, 7], sitk.sitkInt16)
    image.SetSpacing((0.5, 1.0, 3.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    assert image_center(image).tolist() == [1.0 + 4.5 * 0.5, 2.0 + 9.5, 3.0 + 9.0]
    grid = coarse_grid(image, 2.0)  # blocks of 2 × 2 × 1 voxels: 4 along x would leave under 4 voxels
    assert grid.GetSize() == (5, 10, 7) and grid.GetSpacing() == (1.0, 2.0, 3.0)
    assert grid.GetOrigin() == (1.0 + 0.5 * 0.5, 2.0 + 0.5, 3.0)
    assert grid.GetPixelID() == sitk.sitkUInt8 and grid.GetDirection() == image.GetDirection()
    assert coarse_grid(image, 100.0).GetSize() == (5, 4, 7)  # at least four voxels kept per axis
    odd = sitk.Image([9, 9, 9], sitk.sitkUInt8)
    assert coarse_grid(odd, 2.0).GetSize() == (4, 4, 4)  # whole blocks only


def test_crop_to_cuts_every_image_to_the_region_plus_one_voxel():
    region = np.zeros((6, 12, 16), np.uint8)
    region[2, 3:5, 5:9] = 1  # x 5..8, y 3..4, z 2
    first = _image(region)
    second = _image(np.arange(region.size, dtype=np.float32).reshape(region.shape))
    cropped = crop_to(first, first, second)
    assert [image.GetSize() for image in cropped] == [(6, 4, 3), (6, 4, 3)]
    assert cropped[1].GetOrigin() == second.TransformIndexToPhysicalPoint((4, 2, 1))
    assert np.array_equal(_array(cropped[1]), _array(second)[1:4, 2:6, 4:10])
    everywhere = _image(np.ones((6, 12, 16), np.uint8))
    uncut = crop_to(everywhere, first, second)
    assert uncut[0] is first and uncut[1] is second
    corner = np.zeros((6, 12, 16), np.uint8)
    corner[0, 0, 0] = 1
    assert crop_to(_image(corner), second)[0].GetSize() == (2, 2, 2)
    far = np.zeros((6, 12, 16), np.uint8)
    far[5, 11, 15] = 1
    assert crop_to(_image(far), second)[0].GetSize() == (2, 2, 2)


def test_a_levels_spacing_is_its_images():
    level = pyramid.Level(_image(np.zeros((2, 2, 2), np.float32), (0.5, 0.75, 2.0)), None, (1, 1, 1))
    assert level.spacing == (0.5, 0.75, 2.0)
