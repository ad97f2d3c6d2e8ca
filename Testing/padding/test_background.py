"""Background analysis: Slicer's corner value, padding, masks and air level, on real and generated CT."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample

from CTAffineRegisterLib.io.images import DicomPadding, read_image
from CTAffineRegisterLib.padding.analysis import FieldOfView, analyze_background, corner_median
from CTAffineRegisterLib.synthetic import (
    body_inside,
    fov_mask,
    insert_fov_padding,
    make_phantom,
    physical_points,
)

SMALL = {"size": (96, 96, 40), "spacing": (3.6, 3.6, 5.0)}
FOV_RADIUS_MM = 160.0
# The circle is fitted through the first padding voxels outside it: within half a voxel of the truth.
HALF_VOXEL_MM = SMALL["spacing"][0] / 2


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)  # a copy: a view of a temporary image would dangle


def _dice(first: np.ndarray, second: np.ndarray) -> float:
    first, second = first.astype(bool), second.astype(bool)
    return 2.0 * np.count_nonzero(first & second) / (np.count_nonzero(first) + np.count_nonzero(second))


@pytest.fixture(scope="module")
def phantom() -> sitk.Image:
    return make_phantom(seed=3, **SMALL)


# --- Slicer's corner value ----------------------------------------------------------------------


def test_corner_median_is_the_lower_median_not_numpy_median():
    array = np.zeros((4, 5, 6), dtype=np.int16)
    corner_values = [-3024, -3024, -3024, -3024, -1024, -1024, -1000, -990]
    corners = [(k, j, i) for k in (0, -1) for j in (0, -1) for i in (0, -1)]
    for value, index in zip(corner_values, corners):
        array[index] = value
    image = sitk.GetImageFromArray(array)
    assert corner_median(image) == -3024  # sorted index 3; np.median would say -2024, the upper -1024
    for value, index in zip(corner_values, corners[::-1]):  # whichever corners hold which value
        array[index] = value
    assert corner_median(sitk.GetImageFromArray(array)) == -3024
    array[corners[-1]] = -990  # one padded corner fewer: the lower median is now air
    assert corner_median(sitk.GetImageFromArray(array)) == -1024


def test_corner_median_matches_slicer_mrml():
    slicer = pytest.importorskip("slicer", reason="slicer-core wheel not installed (Python 3.10-3.13 only)")
    slicer.mrmlScene = slicer.vtkMRMLScene()
    rng = np.random.default_rng(7)
    for trial in range(5):
        array = rng.integers(-3024, 2000, size=(5, 6, 7)).astype(np.int16)
        node = slicer.util.addVolumeFromArray(array, name=f"corners{trial}")
        expected = node.GetImageBackgroundScalarComponentAsDouble(0)
        assert corner_median(sitk.GetImageFromArray(array)) == expected


# --- generated scans with each padding value ----------------------------------------------------


@pytest.mark.parametrize("padding", [-3024, -2048, -2000, -1500, 0])
def test_finds_each_padding_value_outside_a_circular_fov(phantom, padding):
    padded = insert_fov_padding(phantom, padding, FOV_RADIUS_MM)
    truth_valid = _array(fov_mask(phantom, FOV_RADIUS_MM))
    analysis = analyze_background(padded)

    assert analysis.padding_value == padding
    assert analysis.kind == "fov-padding"
    assert analysis.padding_fraction == pytest.approx(1 - truth_valid.mean(), abs=0.002)
    assert analysis.fov is not None and analysis.fov.shape == "circle"
    assert analysis.fov.radius_mm == pytest.approx(FOV_RADIUS_MM, abs=HALF_VOXEL_MM)
    assert f"{padding}" in analysis.summary and "circular FOV" in analysis.summary
    valid = _array(analysis.valid_mask)
    # no body voxel is called padding: matters for 0 HU padding, where tissue also reads exactly 0;
    # only couch edge voxels that ramp through 0 right at the FOV boundary may be taken for padding
    wrongly_padding = (valid == 0) & (truth_valid == 1)
    assert np.count_nonzero(wrongly_padding & body_inside(physical_points(padded))) == 0
    assert np.count_nonzero(wrongly_padding) <= 1e-3 * truth_valid.sum()
    assert np.count_nonzero((valid == 1) & (truth_valid == 0)) == 0
    assert analysis.air_value == pytest.approx(-1000, abs=15)


def test_zero_padding_keeps_tissue_voxels_that_read_exactly_zero(phantom):
    padded = insert_fov_padding(phantom, 0, FOV_RADIUS_MM)
    inside_zero = (_array(padded) == 0) & body_inside(physical_points(padded))
    assert inside_zero.sum() > 20  # the test means something only if such voxels exist
    analysis = analyze_background(padded)
    assert np.all(_array(analysis.valid_mask)[inside_zero] == 1)


def test_padding_equal_to_air_is_reported_without_conflict(phantom):
    padded = insert_fov_padding(phantom, -1024, FOV_RADIUS_MM)
    analysis = analyze_background(padded)
    assert analysis.kind == "fov-padding-equals-air"
    assert analysis.padding_value == -1024 and analysis.padding_is_air
    assert analysis.fov.shape == "circle"
    assert "nothing to replace" in analysis.summary


def test_circle_along_another_index_axis(phantom):
    padded = insert_fov_padding(phantom, -3024, FOV_RADIUS_MM)
    stored_coronally = sitk.PermuteAxes(padded, [0, 2, 1])  # slices now run along index j
    analysis = analyze_background(stored_coronally)
    assert analysis.padding_value == -3024
    assert analysis.fov.axis == 1  # old index axis 2 (the slice axis) is index axis 1 now
    assert analysis.fov.radius_mm == pytest.approx(FOV_RADIUS_MM, abs=HALF_VOXEL_MM)
    # and the same voxels, just stored the other way round
    assert np.array_equal(
        _array(analysis.valid_mask), _array(sitk.PermuteAxes(fov_mask(phantom, FOV_RADIUS_MM), [0, 2, 1]))
    )


def test_cylinder_along_first_index_axis_is_found():
    image = make_phantom(seed=4, **SMALL)
    padded = insert_fov_padding(image, -2048, FOV_RADIUS_MM)
    sideways = sitk.PermuteAxes(padded, [2, 0, 1])  # the slice axis becomes index axis 0
    analysis = analyze_background(sideways)
    assert analysis.fov.axis == 0
    assert analysis.fov.radius_mm == pytest.approx(FOV_RADIUS_MM, abs=HALF_VOXEL_MM)


def test_oblique_direction_matrix():
    angle = math.radians(20)
    direction = (math.cos(angle), -math.sin(angle), 0, math.sin(angle), math.cos(angle), 0, 0, 0, 1)
    image = make_phantom(seed=5, direction=direction, **SMALL)
    center = image.TransformContinuousIndexToPhysicalPoint([40, 50, 20])
    padded = insert_fov_padding(image, -3024, 150.0, center)
    analysis = analyze_background(padded)
    assert analysis.kind == "fov-padding"
    assert analysis.fov.radius_mm == pytest.approx(150.0, abs=HALF_VOXEL_MM)
    assert np.allclose(analysis.fov.center_mm[:2], center[:2], atol=HALF_VOXEL_MM)


def _decimals(value: float) -> int:
    return len(repr(value).partition(".")[2])


@pytest.mark.parametrize("tag", [None, DicomPadding(value_hu=-3024.0)], ids=["found", "named-by-tag"])
def test_the_json_report_holds_plain_numbers_rounded_as_documented(tag):
    # what `inspect --json` prints per scan: integers stay integers, the share 4 decimals, mm 0.1 mm
    angle = math.radians(20)
    direction = (math.cos(angle), -math.sin(angle), 0, math.sin(angle), math.cos(angle), 0, 0, 0, 1)
    image = make_phantom(seed=5, direction=direction, **SMALL)
    center = image.TransformContinuousIndexToPhysicalPoint([40, 50, 20])
    analysis = analyze_background(insert_fov_padding(image, -3024, 150.0, center), tag)
    report = json.loads(json.dumps(analysis.to_dict()))

    assert set(report) == {
        "corner_median",
        "padding_value",
        "padding_fraction",
        "padding_source",
        "padding_is_air",
        "fov",
        "air_value",
        "kind",
        "summary",
    }
    assert '"padding_value": -3024,' in json.dumps(analysis.to_dict())  # not -3024.0
    assert report["corner_median"] == -3024 and report["air_value"] == round(analysis.air_value)
    assert report["padding_source"] == ("detected" if tag is None else "dicom-tag")
    assert report["padding_is_air"] is False
    assert (report["kind"], report["summary"]) == (analysis.kind, analysis.summary)
    assert report["padding_fraction"] == pytest.approx(analysis.padding_fraction, abs=5e-5)
    assert 0 < _decimals(report["padding_fraction"]) <= 4
    fov = report["fov"]
    assert set(fov) == {"shape", "radius_mm", "center_mm", "axis"}
    assert fov["shape"] == "circle" and fov["axis"] == 2
    assert fov["radius_mm"] == pytest.approx(analysis.fov.radius_mm, abs=0.05)
    assert _decimals(fov["radius_mm"]) == 1  # the fitted radius is never a whole number of mm here
    assert fov["center_mm"] == pytest.approx(list(analysis.fov.center_mm), abs=0.05)
    assert [_decimals(c) for c in fov["center_mm"][:2]] == [1, 1]


def test_the_json_report_of_a_scan_without_padding_has_nulls():
    phantom = make_phantom(seed=3, **SMALL)
    report = analyze_background(phantom).to_dict()
    assert report["padding_value"] is None and report["fov"] is None and report["padding_source"] is None
    assert report["padding_fraction"] == 0.0 and report["kind"] == "air-background"
    assert FieldOfView("irregular", None, None, 1).to_dict() == {
        "shape": "irregular",
        "radius_mm": None,
        "center_mm": None,
        "axis": 1,
    }


def test_cropped_fov_pads_only_the_corners(phantom):
    radius = 0.62 * SMALL["size"][0] * SMALL["spacing"][0]  # circle wider than the square: corner arcs
    padded = insert_fov_padding(phantom, -3024, radius)
    analysis = analyze_background(padded)
    assert analysis.padding_value == -3024
    assert analysis.padding_fraction < 0.1
    assert analysis.fov.shape == "circle"
    assert analysis.fov.radius_mm == pytest.approx(radius, abs=HALF_VOXEL_MM)


def test_cropped_scan_whose_corners_are_tissue_has_no_background(phantom):
    crop = phantom[30:66, 30:66, :]  # the middle of the torso: soft tissue, organs, lungs
    analysis = analyze_background(crop)
    assert analysis.padding_value is None
    assert analysis.kind == "no-background"
    assert analysis.air_value == -1024
    assert "corners are tissue" in analysis.summary


def test_noisy_air_without_padding_is_air_background(phantom):
    analysis = analyze_background(phantom)
    assert analysis.padding_value is None
    assert analysis.kind == "air-background"
    assert _array(analysis.valid_mask).all()
    assert analysis.air_value == pytest.approx(-1000, abs=10)


def test_body_mask_follows_the_body_and_leaves_the_couch_out(phantom):
    padded = insert_fov_padding(phantom, -3024, FOV_RADIUS_MM)
    analysis = analyze_background(padded)
    body_truth = body_inside(physical_points(padded))
    body = _array(analysis.body_mask)
    assert _dice(body, body_truth) > 0.93
    couch = (_array(padded) > 200) & ~body_truth  # carbon plate under the patient
    assert couch.sum() > 50
    assert np.count_nonzero(body[couch]) < 0.05 * couch.sum()


def test_dicom_tag_names_the_value_but_not_the_region(phantom):
    assert not (_array(phantom) == -3024).any()
    analysis = analyze_background(phantom, DicomPadding(value_hu=-3024.0))
    assert analysis.padding_value is None
    assert analysis.padding_fraction == 0.0
    assert analysis.kind == "air-background"


def test_dicom_padding_range_is_honoured(phantom):
    array = sitk.GetArrayFromImage(insert_fov_padding(phantom, -3000, FOV_RADIUS_MM))
    outside = array == -3000
    array[outside] = -3000 - (np.arange(outside.sum()) % 24)  # a range -3023..-3000 (Padding Range Limit)
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(phantom)
    analysis = analyze_background(image, DicomPadding(value_hu=-3000.0, range_limit_hu=-3024.0))
    assert analysis.padding_fraction == pytest.approx(outside.mean(), abs=1e-6)


def test_dicom_padding_range_into_air_leaves_air_inside_the_body_real(phantom):
    # A Pixel Padding Value of -3024 with a Padding Range Limit of -1000: the range reaches into
    # real air values, so only voxels connected to the border may be padding, never a lung's air
    # pocket (emphysema, a bulla) that happens to read -1010..-1000.
    padded = insert_fov_padding(phantom, -3024, FOV_RADIUS_MM)
    points = physical_points(padded)
    pocket = np.linalg.norm(points - np.array([62.0, -2.0, 60.0]), axis=-1) <= 25.0  # in the left lung
    assert pocket.sum() > 500 and body_inside(points)[pocket].all()
    array = sitk.GetArrayFromImage(padded)
    array[pocket] = -1010 + np.arange(pocket.sum()) % 11  # -1010..-1000, inside the padding range
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(padded)
    analysis = analyze_background(image, DicomPadding(value_hu=-3024.0, range_limit_hu=-1000.0))
    assert analysis.padding_value == -3024 and analysis.kind == "fov-padding"
    valid = _array(analysis.valid_mask)
    assert np.count_nonzero(valid[pocket] == 0) == 0
    assert np.count_nonzero(valid[body_inside(points)] == 0) == 0
    assert np.count_nonzero(valid[_array(fov_mask(phantom, FOV_RADIUS_MM)) == 0]) == 0  # the ring is padding


def test_nan_voxels_are_not_real_data(phantom):
    array = sitk.GetArrayFromImage(phantom).astype(np.float32)
    array[:, :10, :] = np.nan
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(phantom)
    analysis = analyze_background(image)
    assert np.all(_array(analysis.valid_mask)[:, :10, :] == 0)
    assert np.all(_array(analysis.valid_mask)[:, 10:, :] == 1)


@pytest.mark.parametrize(
    "array, reason",
    [
        (np.full((4, 32, 32), 7, dtype=np.int16), "constant"),
        (np.random.default_rng(1).integers(0, 900, (4, 32, 32)).astype(np.int16), "no negative values"),
    ],
)
def test_images_that_are_not_ct(array, reason):
    analysis = analyze_background(sitk.GetImageFromArray(array))
    assert analysis.kind == "not-ct"
    assert reason in analysis.summary


# --- real samples -------------------------------------------------------------------------------


def test_ge_scan_with_tag_and_minus_3024_ring():
    loaded = read_image(str(shared_sample("dcmqi/ct-3slice")))
    assert loaded.dicom_padding.value_hu == -3024  # stored -2000, intercept -1024
    analysis = analyze_background(loaded.image, loaded.dicom_padding)
    assert analysis.corner_median == -3024
    assert analysis.padding_value == -3024 and analysis.kind == "fov-padding"
    assert analysis.padding_fraction == pytest.approx(0.213, abs=0.003)
    # Reconstruction Diameter 415 mm
    assert analysis.fov.radius_mm == pytest.approx(loaded.reconstruction_diameter_mm / 2, abs=2.0)
    assert -1050 < analysis.air_value < -950


def test_siemens_padding_equals_air():
    loaded = read_image(str(shared_sample("totalsegmentator/example_ct_dicom")))
    assert loaded.dicom_padding is None
    analysis = analyze_background(loaded.image, loaded.dicom_padding)
    assert analysis.kind == "fov-padding-equals-air"
    assert analysis.padding_value == -1024 and analysis.padding_is_air
    assert analysis.padding_fraction == pytest.approx(0.214, abs=0.005)
    assert analysis.fov.radius_mm == pytest.approx(250, abs=3)  # Reconstruction Diameter 500


def test_philips_noisy_air_is_not_padding():
    loaded = read_image(str(shared_sample("dcm_qa_ct/philips_phantom_5mm")))
    analysis = analyze_background(loaded.image, loaded.dicom_padding)
    assert analysis.padding_value is None and analysis.kind == "air-background"
    assert -1010 <= analysis.corner_median <= -990
    assert -1010 <= analysis.air_value <= -990


def test_tag_without_padded_pixel_on_single_slice():
    loaded = read_image(str(shared_sample("pydicom/CT_small.dcm")))
    assert loaded.image.GetSize()[2] == 1
    assert loaded.dicom_padding is not None
    analysis = analyze_background(loaded.image, loaded.dicom_padding)
    assert analysis.padding_value is None
    assert analysis.kind == "no-background"


@pytest.mark.parametrize("name", ["example_ct_sm.nii.gz", "example_ct.nii.gz"])
def test_torso_nifti_has_air_and_no_padding(name):
    loaded = read_image(str(shared_sample(f"totalsegmentator/{name}")))
    analysis = analyze_background(loaded.image)
    assert analysis.padding_value is None and analysis.kind == "air-background"
    assert analysis.corner_median == -1023
    assert 0.3 < _array(analysis.body_mask).mean() < 0.9
