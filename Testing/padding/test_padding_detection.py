"""What ``inspect`` tells a user about a scan's background, on tiny generated scans (fast: no file, no
registration): which value is padding (a spike in the faces' histogram, not noisy values around it),
padding that is air, air clipped to a constant, NaN voxels in float scans, and scans that are not CT."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from support.grid_images import on_grid_of

from CTAffineRegisterLib.io.images import DicomPadding
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.synthetic import fov_mask, insert_fov_padding, make_phantom

TINY = {"size": (48, 48, 16), "spacing": (7.2, 7.2, 12.5)}
FOV_RADIUS_MM = 160.0


@pytest.fixture(scope="module")
def tiny() -> sitk.Image:
    return make_phantom(seed=3, **TINY)


@pytest.fixture(scope="module")
def ring(tiny) -> np.ndarray:
    """True outside the field of view (where the scanner writes its padding)."""
    return sitk.GetArrayFromImage(fov_mask(tiny, FOV_RADIUS_MM)) == 0


def _valid(analysis) -> np.ndarray:
    return sitk.GetArrayFromImage(analysis.valid_mask).astype(bool)


# --- which value is padding: a spike, not the top of a noisy histogram ---------------------------


@pytest.mark.parametrize(
    ("offsets", "is_padding"),
    [
        ({+1: 0.2}, False),  # a fifth of the ring one HU above: noisy values, not a constant
        ({-1: 0.2}, False),  # ... or one HU below (the lowest value on the faces)
        ({-1: 0.1, +1: 0.1}, False),  # ... or both: the two neighbours count together
        ({+2: 0.2}, True),  # two HU away is not a neighbour: still a constant
        ({+1: 0.05}, True),  # a few neighbours (the ring value 16 times as frequent) leave a spike
    ],
)
def test_a_padding_value_is_a_spike_not_a_noisy_peak(tiny, ring, offsets, is_padding):
    values = sitk.GetArrayFromImage(tiny)
    values[ring] = -3024
    ring_index = np.random.default_rng(0).permutation(np.flatnonzero(ring))  # spread over the faces
    start = 0
    for offset, share in offsets.items():
        count = int(share * ring_index.size)
        values.flat[ring_index[start : start + count]] = -3024 + offset
        start += count
    analysis = analyze_background(on_grid_of(values, tiny))
    if is_padding:  # (the other values left in the ring make it not CT-like: not the point here)
        assert analysis.padding_value == -3024 and analysis.padding_source == "detected"
    else:
        assert analysis.padding_value is None and "padding" not in analysis.summary
        assert _valid(analysis).all()


# --- padding that is air ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("padding", "equals_air"),
    [(-1000, True), (-1040, True), (-1041, False), (-960, True), (-959, False)],
)
def test_padding_within_40_hu_of_the_air_is_air(tiny, padding, equals_air):
    analysis = analyze_background(insert_fov_padding(tiny, padding, FOV_RADIUS_MM))
    assert analysis.air_value == -1000  # the phantom's air, measured inside the field of view
    assert analysis.padding_value == padding and analysis.padding_is_air is equals_air
    assert analysis.kind == ("fov-padding-equals-air" if equals_air else "fov-padding")


def test_padding_at_minus_1024_is_air_even_where_the_air_reads_otherwise(tiny):
    values = sitk.GetArrayFromImage(tiny)
    values[values < -900] += 60  # air around -940 HU: -1024 is 84 HU away from it
    analysis = analyze_background(insert_fov_padding(on_grid_of(values, tiny), -1024, FOV_RADIUS_MM))
    assert analysis.air_value == pytest.approx(-940, abs=5)
    assert analysis.padding_value == -1024 and analysis.padding_is_air
    assert analysis.kind == "fov-padding-equals-air" and "nothing to replace" in analysis.summary


@pytest.mark.parametrize(
    ("pixel_type", "nan_voxels"), [(np.int16, False), (np.float32, False), (np.float32, True)]
)
def test_air_clipped_to_a_constant_is_air_not_padding(tiny, pixel_type, nan_voxels):
    # every air value below -1000 written as -1000: a constant connected to the border, but not in
    # the shape of a field of view: nothing is padding (NaN voxels of a float scan stay no data)
    values = np.maximum(sitk.GetArrayFromImage(tiny), -1000).astype(pixel_type)
    if nan_voxels:
        values[:, :3, :] = np.nan  # well under the 0.2 % a padded region needs: NaN is no data anyway
        values[0, 20, 20] = np.nan
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.kind == "air-background" and -1000 <= analysis.air_value < -980
    assert analysis.summary == f"air background ({analysis.air_value:.0f})"
    assert analysis.padding_value is None and analysis.padding_fraction == 0.0 and analysis.fov is None
    assert not analysis.padding_is_air and analysis.padding_source is None
    assert np.array_equal(_valid(analysis), np.isfinite(values))


# --- float scans: NaN voxels are no data, alongside the padding ---------------------------------


def test_nan_voxels_and_a_padding_ring_are_both_no_data(tiny, ring):
    values = sitk.GetArrayFromImage(insert_fov_padding(tiny, -3024, FOV_RADIUS_MM)).astype(np.float32)
    inside = np.argwhere(~ring)[:5]  # five voxels inside the field of view: far under 0.2 %
    values[tuple(inside.T)] = np.nan
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.padding_value == -3024 and analysis.kind == "fov-padding"
    no_data = ring.copy()
    no_data[tuple(inside.T)] = True
    assert np.array_equal(_valid(analysis), ~no_data)
    assert analysis.padding_fraction == pytest.approx(no_data.mean())


def test_a_few_nan_voxels_alone_are_no_data(tiny):
    values = sitk.GetArrayFromImage(tiny).astype(np.float32)
    values[8, 24, 20:23] = np.nan  # three voxels: far under the 0.2 % a padded region needs
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.padding_value is None and analysis.kind == "air-background"
    assert np.array_equal(_valid(analysis), np.isfinite(values))
    assert analysis.padding_fraction == pytest.approx(3 / values.size)


@pytest.mark.parametrize("pixel_type", [np.float32, np.int16])
def test_a_scan_of_one_value_is_not_ct(pixel_type):
    values = np.full((4, 32, 32), 7, dtype=pixel_type)
    if pixel_type is np.float32:
        values[1, 5, 5] = np.nan  # one NaN voxel: every real voxel still holds 7
    analysis = analyze_background(sitk.GetImageFromArray(values))
    assert analysis.kind == "not-ct" and "constant image (every real voxel is 7)" in analysis.summary


def test_a_scan_with_no_real_voxel_says_so():
    analysis = analyze_background(sitk.GetImageFromArray(np.full((4, 32, 32), np.nan, np.float32)))
    assert (
        analysis.kind == "not-ct"
        and analysis.summary == "not CT-like (no real data (every voxel is padding))"
    )
    assert not _valid(analysis).any()


# --- the HU range: inclusive limits ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "is_ct"),
    [(-1500, 3000, True), (-1501, 3000, False), (-1000, 6000, True), (-1000, 6001, False)],
)
def test_values_beyond_the_hu_range_are_not_ct(low, high, is_ct):
    rng = np.random.default_rng(2)
    values = rng.integers(-1000, 1000, (8, 40, 40)).astype(np.int16)
    tails = rng.permutation(values.size)[:200]  # 1.6 % at each extreme: the 0.1/99.9 % percentiles
    values.flat[tails[:100]] = low
    values.flat[tails[100:]] = high
    analysis = analyze_background(sitk.GetImageFromArray(values))
    assert (analysis.kind != "not-ct") is is_ct
    if not is_ct:
        assert f"values {low}..{high} are outside the HU range" in analysis.summary


def test_values_from_exactly_zero_up_are_not_hu():
    values = np.random.default_rng(1).integers(0, 900, (4, 32, 32)).astype(np.int16)
    values.flat[::50] = 0  # 2 %: the 0.1 % percentile is exactly 0
    analysis = analyze_background(sitk.GetImageFromArray(values))
    assert analysis.kind == "not-ct" and "no negative values (range 0..899)" in analysis.summary


@pytest.mark.parametrize("air", [-1150, -900])
def test_the_air_window_includes_its_limits(tiny, air):
    values = sitk.GetArrayFromImage(tiny)
    values[values < -900] = air  # all air at one value (a constant: taken for padding that is air)
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.air_value == air and f"({air}, " in analysis.summary


def test_padding_above_every_other_value_is_found(tiny, ring):
    values = np.minimum(sitk.GetArrayFromImage(tiny), -10)  # nothing at -9 or above...
    values[ring] = 0  # ...but the padding
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.padding_value == 0 and analysis.kind == "fov-padding"
    assert np.array_equal(_valid(analysis), ~ring)


def test_a_wrong_argument_is_named_in_the_error(tiny):
    with pytest.raises(TypeError, match="^image must be a SimpleITK.Image"):
        analyze_background(sitk.GetArrayFromImage(tiny))
    with pytest.raises(TypeError, match="^dicom_padding must be a DicomPadding or None"):
        analyze_background(tiny, -3024)


def test_a_nan_frame_around_a_float_scan_is_no_data(tiny):
    values = sitk.GetArrayFromImage(tiny).astype(np.float32)
    frame = np.ones(values.shape, bool)
    frame[1:-1, 1:-1, 1:-1] = False
    values[frame] = np.nan  # no finite value on any face: no padding value to look for
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.padding_value is None and analysis.kind == "air-background"
    assert analysis.fov is None  # NaN voxels are no data, not a field of view's padding
    assert np.array_equal(_valid(analysis), ~frame)


def test_a_few_padded_voxels_in_a_corner_of_a_tiny_scan_are_padding():
    values = np.random.default_rng(3).integers(-1000, 1000, (3, 6, 6)).astype(np.int16)
    values[0, 0, 0] = -3024  # on three faces: 3 of their 144 values, with no value next to it
    analysis = analyze_background(sitk.GetImageFromArray(values))
    assert analysis.padding_value == -3024 and analysis.padding_fraction == pytest.approx(1 / values.size)


def test_a_padded_region_under_0_2_percent_of_the_scan_is_noise():
    image = make_phantom(seed=3, size=(96, 96, 40), spacing=(3.6, 3.6, 5.0))
    values = sitk.GetArrayFromImage(image)
    for first in (0, -1):  # the value on the image's edges along x and z: 536 voxels (0.15 %), each
        for second in (0, -1):  # on two faces, so it stands out there (1 000 face values, air < 900)
            values[first, second, :] = -3024
            values[:, first, second] = -3024
    assert np.count_nonzero(values == -3024) == 536
    analysis = analyze_background(on_grid_of(values, image))
    assert analysis.padding_value is None and analysis.padding_fraction == 0.0
    assert "padding" not in analysis.summary and _valid(analysis).all()
    values[:, :, 0] = values[:, :, -1] = -3024  # and two whole faces: far more than 0.2 %
    assert analyze_background(on_grid_of(values, image)).padding_value == -3024


def test_a_tag_naming_a_value_no_voxel_holds_leaves_the_padding_to_be_found(tiny, ring):
    padded = insert_fov_padding(tiny, -2000, FOV_RADIUS_MM)
    analysis = analyze_background(padded, DicomPadding(value_hu=-3024.0))
    assert analysis.padding_value == -2000 and analysis.padding_source == "detected"
    assert np.array_equal(_valid(analysis), ~ring)


def test_values_that_are_not_whole_numbers_are_reported_to_one_decimal(tiny):
    values = sitk.GetArrayFromImage(tiny).astype(np.float32)
    for k in (0, -1):
        for j in (0, -1):
            for i in (0, -1):
                values[k, j, i] = -1000.37
    report = analyze_background(on_grid_of(values, tiny)).to_dict()
    assert report["corner_median"] == -1000.4


def test_nan_end_slices_do_not_hide_a_padding_ring(tiny, ring):
    values = sitk.GetArrayFromImage(insert_fov_padding(tiny, -3024, FOV_RADIUS_MM)).astype(np.float32)
    values[[0, -1]] = np.nan  # NaN is the most frequent value on the faces, but no padding value
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.padding_value == -3024 and analysis.kind == "fov-padding"
    no_data = ring.copy()
    no_data[[0, -1]] = True
    assert np.array_equal(_valid(analysis), ~no_data)


def test_inside_the_ct_range_only_voxels_connected_to_the_border_are_padding(tiny, ring):
    values = sitk.GetArrayFromImage(insert_fov_padding(tiny, -1200, FOV_RADIUS_MM))
    values[6:9, 22:26, 22:26] = -1200  # a pocket at the padding value inside the body: real data
    analysis = analyze_background(on_grid_of(values, tiny))
    assert analysis.padding_value == -1200
    assert np.array_equal(_valid(analysis), ~ring)


def test_a_tag_value_found_only_inside_the_scan_is_not_padding(tiny):
    values = sitk.GetArrayFromImage(tiny)
    values[4:12, 18:30, 18:30] = -3024  # 1 152 voxels inside, none on a face
    analysis = analyze_background(on_grid_of(values, tiny), DicomPadding(value_hu=-3024.0))
    assert analysis.padding_value is None and _valid(analysis).all()
