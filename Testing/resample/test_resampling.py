"""Ring-free resampling: padding never reaches the output, types and ranges are kept."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.padding.analysis import BackgroundAnalysis, analyze_background
from CTAffineRegisterLib.quality.accuracy import ring_voxels
from CTAffineRegisterLib.resample.scans import (
    prepare_for_registration,
    replace_padding,
    resample_to_fixed,
    resample_valid_mask,
)

HALF_VOXEL_SHIFT = sitk.TranslationTransform(3, (1.7, -1.3, 2.1))


@pytest.fixture(scope="module", params=[-3024, -2048, -1500, 0])
def padded(request):
    """A phantom with padding of one kind outside a circular FOV, and its analysis."""
    image = synthetic.make_phantom((80, 80, 24), (4.0, 4.0, 6.0), seed=1)
    image = synthetic.insert_fov_padding(image, request.param, 150.0)
    return image, analyze_background(image), request.param


def test_replace_padding_fills_padding_with_air_and_keeps_type(padded):
    image, analysis, value = padded
    replaced = replace_padding(image, analysis)
    array = sitk.GetArrayViewFromImage(replaced)
    valid = sitk.GetArrayViewFromImage(analysis.valid_mask) > 0
    assert replaced.GetPixelID() == sitk.sitkInt16
    assert not valid.all()
    assert np.all(array[~valid] == round(analysis.air_value))
    assert np.array_equal(array[valid], sitk.GetArrayViewFromImage(image)[valid])


@pytest.mark.parametrize("compact, dtype", [(False, np.float32), (True, np.int16)])
def test_prepare_for_registration_replaces_padding_by_air_and_clamps_to_the_ct_range(padded, compact, dtype):
    """What the metric sees: padding is the scan's own air (0 HU padding too, which no clamp
    removes), real voxels are kept, and metal beyond the CT range is cut at 3071."""
    image, analysis, _ = padded
    with_metal = sitk.Image(image)
    with_metal[40, 40, 12] = 4000  # in the body
    prepared = sitk.GetArrayFromImage(prepare_for_registration(with_metal, analysis, compact=compact))
    original = sitk.GetArrayViewFromImage(with_metal)
    valid = sitk.GetArrayViewFromImage(analysis.valid_mask) > 0
    assert prepared.dtype == dtype and not valid.all()
    assert np.all(prepared[~valid] == round(analysis.air_value))
    assert np.array_equal(prepared[valid], np.clip(original[valid], -1024, 3071))
    assert prepared[12, 40, 40] == 3071


def test_resampled_output_has_no_ring_where_naive_resampling_has_one(padded):
    image, analysis, value = padded
    fixed_valid = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    fixed_valid.CopyInformation(image)
    ours = resample_to_fixed(image, image, HALF_VOXEL_SHIFT, analysis)
    assert ring_voxels(ours, fixed_valid) == 0
    if value < -1100:  # the problem this avoids: padding ramped into the air by interpolation
        naive = sitk.Resample(image, image, HALF_VOXEL_SHIFT, sitk.sitkLinear, -1024, image.GetPixelID())
        assert ring_voxels(naive, fixed_valid) > 100
    # points mapping onto padding, away from real data, are plain air: no bright (0) or dark ring either
    near_data = sitk.BinaryDilate(resample_valid_mask(analysis, image, HALF_VOXEL_SHIFT), [2, 2, 2])
    on_padding = sitk.GetArrayFromImage(near_data) == 0
    assert np.count_nonzero(on_padding) > 1000
    assert np.all(sitk.GetArrayViewFromImage(ours)[on_padding] == round(analysis.air_value))


def test_output_keeps_pixel_type_and_rounds_to_nearest():
    array = np.zeros((4, 4, 8), np.int16)
    array[:, :, 4:] = 9
    image = sitk.GetImageFromArray(array)
    analysis = _all_valid_analysis(image, air_value=0.0)
    shift = sitk.TranslationTransform(3, (0.3, 0.0, 0.0))  # x=3 samples 3.3: 0.7*0 + 0.3*9 = 2.7
    output = resample_to_fixed(image, image, shift, analysis)
    assert output.GetPixelID() == sitk.sitkInt16
    assert sitk.GetArrayFromImage(output)[1, 1, 3] == 3  # truncation would give 2


def test_bspline_is_clamped_to_the_input_range():
    array = np.full((8, 16, 16), -1000, np.int16)
    array[:, 6:10, 6:10] = 2000
    image = sitk.GetImageFromArray(array)
    analysis = _all_valid_analysis(image, air_value=-1000.0)
    plain = sitk.Resample(image, image, HALF_VOXEL_SHIFT, sitk.sitkBSpline, -1000, sitk.sitkFloat32)
    assert sitk.GetArrayFromImage(plain).min() < -1000  # B-spline overshoots next to bone
    output = sitk.GetArrayFromImage(
        resample_to_fixed(image, image, HALF_VOXEL_SHIFT, analysis, None, "bspline")
    )
    assert output.min() >= -1000 and output.max() <= 2000


def test_fill_defaults_to_air_and_can_be_overridden(padded):
    image, analysis, _ = padded
    far = sitk.TranslationTransform(3, (400.0, 0.0, 0.0))  # every point maps outside the image
    default = sitk.GetArrayFromImage(resample_to_fixed(image, image, far, analysis))
    chosen = sitk.GetArrayFromImage(resample_to_fixed(image, image, far, analysis, fill=-1024))
    assert np.all(default == round(analysis.air_value))
    assert np.all(chosen == -1024)


def test_unknown_interpolator_is_refused(padded):
    image, analysis, _ = padded
    with pytest.raises(ValueError, match="interpolator"):
        resample_to_fixed(image, image, sitk.Transform(3, sitk.sitkIdentity), analysis, interpolator="cubic")


def test_valid_mask_follows_the_transform_and_excludes_padding(padded):
    image, analysis, _ = padded
    shift = sitk.TranslationTransform(3, (40.0, 0.0, 0.0))
    mask = resample_valid_mask(analysis, image, shift)
    array = sitk.GetArrayViewFromImage(mask)
    assert mask.GetPixelID() == sitk.sitkUInt8 and mask.GetSize() == image.GetSize()
    assert np.all(array[:, :, -10:] == 0)  # maps beyond the moving image
    center = image.TransformPhysicalPointToIndex((-40.0, 0.0, 0.0))
    assert array[12, center[1], center[0]] == 1  # maps onto the middle of the FOV
    corner_point = np.array(image.TransformIndexToPhysicalPoint((0, 0, 12))) - (40.0, 0.0, 0.0)
    assert array[12, 0, 0] == 0 and np.linalg.norm(corner_point[:2]) > 150  # maps onto padding


def _all_valid_analysis(image: sitk.Image, air_value: float) -> BackgroundAnalysis:
    """The analysis of a hand-made image without padding, stated rather than detected."""
    valid = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    valid.CopyInformation(image)
    return BackgroundAnalysis(
        corner_median=air_value,
        padding_value=None,
        padding_fraction=0.0,
        fov=None,
        air_value=air_value,
        kind="air-background",
        summary="hand-made test image",
        valid_mask=valid,
        body_mask=valid,
    )


@pytest.mark.parametrize("interpolator", ["linear", "nearest", "bspline"])
def test_tiles_give_the_voxels_of_one_call_over_the_whole_grid(monkeypatch, interpolator):
    """Resampling tile by tile (to keep the moving voxels in cache) changes no voxel."""
    from CTAffineRegisterLib.resample import scans as resampling

    pair = synthetic.make_pair(
        seed=2, fixed_size=(64, 56, 40), fixed_spacing=(4.0, 4.0, 5.0), anatomy_scale=0.8
    )
    analysis = analyze_background(pair.moving)
    monkeypatch.setattr(resampling, "TILE_VOXELS", (16, 8, 8))
    tiled, tiled_mask = resampling.resample_with_valid_mask(
        pair.moving, pair.fixed, pair.true_transform, analysis, -600, interpolator
    )
    monkeypatch.setattr(resampling, "TILE_VOXELS", (1000, 1000, 1000))
    whole, whole_mask = resampling.resample_with_valid_mask(
        pair.moving, pair.fixed, pair.true_transform, analysis, -600, interpolator
    )
    assert np.array_equal(sitk.GetArrayViewFromImage(tiled_mask), sitk.GetArrayViewFromImage(whole_mask))
    assert np.array_equal(sitk.GetArrayViewFromImage(tiled), sitk.GetArrayViewFromImage(whole))
    # and the same as SimpleITK's own resampling, rounded, wherever there is data
    source = replace_padding(pair.moving, analysis)
    plain = sitk.Resample(
        source,
        pair.fixed,
        pair.true_transform,
        resampling.INTERPOLATORS[interpolator],
        -600.0,
        sitk.sitkFloat32,
    )
    if interpolator == "bspline":
        low, high = resampling._value_range(source)
        plain = sitk.Clamp(plain, sitk.sitkFloat32, low, high)
    expected = np.floor(sitk.GetArrayFromImage(plain) + 0.5)
    with_data = sitk.GetArrayViewFromImage(whole_mask) > 0
    assert np.array_equal(sitk.GetArrayViewFromImage(whole)[with_data], expected[with_data])
