"""``check``: which file an error names, what the result holds, and that DICOM padding tags reach the
analysis on either side. Fast: tiny images, no registration."""

from __future__ import annotations

import pytest
import SimpleITK as sitk
from support.dicom_writer import write_volume
from support.grid_images import dose_map
from support.padding_rings import RANGE_TAGS, ring_as_a_range
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.errors import InputError, RegistrationError
from CTAffineRegisterLib.io.images import DicomPadding
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.pair.check import check_files, check_transform
from CTAffineRegisterLib.synthetic import make_pair


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **TINY_PAIR)


@pytest.fixture
def files(tmp_path, pair) -> dict:
    paths = {
        "fixed": tmp_path / "fixed.nii.gz",
        "moving": tmp_path / "moving.nii.gz",
        "dose": tmp_path / "dose.nrrd",
    }
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    sitk.WriteImage(dose_map(pair.moving), str(paths["dose"]))
    sitk.WriteTransform(pair.true_transform, str(tmp_path / "t.tfm"))
    sitk.WriteTransform(pair.true_transform.GetInverse(), str(tmp_path / "inverse.tfm"))
    # a CT-like scan with fewer than 1000 real voxels (12 x 12 x 8)
    small = sitk.Resample(
        pair.moving,
        [12, 12, 8],
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        pair.moving.GetOrigin(),
        [27, 27, 30],
    )
    sitk.WriteImage(small, str(tmp_path / "small.nii.gz"))
    names = {name: str(path) for name, path in paths.items()}
    return {
        **names,
        "small": str(tmp_path / "small.nii.gz"),
        "transform": str(tmp_path / "t.tfm"),
        "inverse": str(tmp_path / "inverse.tfm"),
    }


def test_the_result_names_the_three_files_it_judged(files):
    result = check_files(files["fixed"], files["moving"], files["transform"])
    assert (result["fixed"], result["moving"], result["transform"]) == (
        files["fixed"],
        files["moving"],
        files["transform"],
    )
    assert result["verdict"] == "ok"


@pytest.mark.parametrize("role", ["fixed", "moving"])
def test_an_image_that_is_not_ct_is_refused_naming_its_file(files, role):
    paths = {"fixed": files["fixed"], "moving": files["moving"], role: files["dose"]}
    with pytest.raises(InputError) as refused:
        check_files(paths["fixed"], paths["moving"], files["transform"])
    summary = analyze_background(sitk.ReadImage(files["dose"])).summary
    assert str(refused.value) == f"{files['dose']}: {summary}"


@pytest.mark.parametrize("role", ["fixed", "moving"])
def test_a_scan_that_cannot_be_judged_is_refused_naming_its_own_file(files, role):
    """Too few real voxels to judge: the error names that scan, whichever side it is on."""
    if role == "fixed":
        arguments = (files["small"], files["fixed"], files["inverse"])
    else:
        arguments = (files["fixed"], files["small"], files["transform"])
    with pytest.raises(InputError) as refused:
        check_files(*arguments)
    assert str(refused.value).startswith(f"{files['small']}: has too few valid (non-padding) voxels")


@pytest.mark.parametrize("role", ["fixed", "moving"])
def test_check_transform_says_which_scan_is_not_ct(pair, role):
    scans = {"fixed": pair.fixed, "moving": pair.moving, role: dose_map(pair.moving)}
    with pytest.raises(RegistrationError, match=f"^{role} image is not CT-like"):
        check_transform(scans["fixed"], scans["moving"], pair.true_transform)


def test_a_fixed_scan_padded_with_a_range_is_judged_with_its_tags(pair):
    """The same scan as fixed, in the other direction: its DICOM padding range must reach the
    analysis, or the scan is not CT-like at all (values below -1024)."""
    fixed = ring_as_a_range(pair.moving, pair.moving_valid_mask)
    inverse = pair.true_transform.GetInverse()
    result = check_transform(fixed, pair.fixed, inverse, fixed_padding=DicomPadding(-3024.0, -3001.0))
    assert result["verdict"] == "ok"
    with pytest.raises(RegistrationError, match="^fixed image is not CT-like"):
        check_transform(fixed, pair.fixed, inverse)


def test_a_fixed_dicom_series_padded_with_a_range_is_judged_with_its_tags(tmp_path, pair, files):
    series = tmp_path / "series"
    scan = ring_as_a_range(pair.moving, pair.moving_valid_mask)
    write_volume(series, scan, RANGE_TAGS)
    result = check_files(str(series), files["fixed"], files["inverse"])
    assert result["verdict"] == "ok"


@pytest.mark.parametrize("role", ["fixed", "moving"])
def test_a_padding_that_is_not_a_dicom_padding_is_refused_by_name(pair, role):
    with pytest.raises(TypeError, match=f"^{role}_padding must be a DicomPadding or None, not an int"):
        check_transform(pair.fixed, pair.moving, pair.true_transform, **{f"{role}_padding": -3024})
