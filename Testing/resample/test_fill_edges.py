"""``--fill`` at the edges of the output's pixel type (issue 21, item 15): whole numbers stay exact to
the last of 64 bits, and a float64 fill near its limit draws the QC picture without numpy warnings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import _fill_value, main
from CTAffineRegisterLib.quality.picture import qc_picture
from CTAffineRegisterLib.resample.scans import fill_problem
from CTAffineRegisterLib.synthetic import make_pair

INT64_MAX = 2**63 - 1
BEYOND_FLOAT = 2**53 + 1  # 9007199254740993: a float64 holds ...992


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **TINY_PAIR)


def _write(tmp_path: Path, pair, pixel_id: int) -> dict:
    paths = {
        "fixed": tmp_path / "fixed.nii.gz",
        "moving": tmp_path / "scan.nrrd",
        "transform": tmp_path / "t.tfm",
    }
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(sitk.Cast(pair.moving, pixel_id), str(paths["moving"]))
    sitk.WriteTransform(pair.true_transform, str(paths["transform"]))
    return {name: str(path) for name, path in paths.items()}


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("fill", [INT64_MAX, BEYOND_FLOAT, -(2**63)])
def test_apply_writes_an_int64_fill_exactly(tmp_path, pair, fill, capsys):
    files = _write(tmp_path, pair, sitk.sitkInt64)
    out = tmp_path / "out"
    argv = ["apply", "--fixed", files["fixed"], "--transform", files["transform"], "--input", files["moving"]]
    assert main(argv + ["--out", str(out), "--fill", str(fill)]) == 0, capsys.readouterr().err
    applied = sitk.ReadImage(str(out / "scan_applied.nii.gz"))
    assert applied.GetPixelID() == sitk.sitkInt64
    values = sitk.GetArrayViewFromImage(applied)
    assert np.count_nonzero(values == fill) > 1000  # the grid's part outside the moving scan


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_register_takes_the_largest_int64_fill(tmp_path, pair, capsys):
    files = _write(tmp_path, pair, sitk.sitkInt64)
    out = tmp_path / "out"
    argv = ["register", "--fixed", files["fixed"], "--moving", files["moving"], "--out", str(out)]
    assert main(argv + ["--fill", str(INT64_MAX), "--jobs", "1", "--quiet"]) == 0, capsys.readouterr().err
    registered = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "scan_registered.nii.gz")))
    valid = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "scan_validmask.nii.gz")))
    assert (valid == 0).any()
    assert np.all(registered[valid == 0] == INT64_MAX)


def test_a_whole_number_fill_a_float_output_would_change_is_refused():
    assert "cannot be stored exactly" in fill_problem(BEYOND_FLOAT, sitk.sitkFloat64)
    assert "it would be 9007199254740992" in fill_problem(BEYOND_FLOAT, sitk.sitkFloat64)
    assert "cannot be stored exactly" in fill_problem(2**24 + 1, sitk.sitkFloat32)
    assert fill_problem(2**24, sitk.sitkFloat32) is None
    assert fill_problem(-1000.1, sitk.sitkFloat32) is None  # a decimal fill is stored as near as it gets
    assert fill_problem(INT64_MAX, sitk.sitkInt64) is None
    assert "(-9223372036854775808..9223372036854775807)" in fill_problem(INT64_MAX + 1, sitk.sitkInt64)
    assert fill_problem(INT64_MAX + 1, sitk.sitkInt64).startswith("9223372036854775808 is outside")


def test_the_qc_picture_of_a_float64_scan_with_a_huge_fill_warns_nothing(pair):
    registered = sitk.Cast(pair.moving, sitk.sitkFloat64)
    values = sitk.GetArrayFromImage(registered)
    values[:, :, :5] = 1e300
    huge = sitk.GetImageFromArray(values)
    huge.CopyInformation(registered)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picture = qc_picture(pair.fixed, huge)
    assert sitk.GetArrayViewFromImage(picture).max() == 255


def test_apply_refuses_a_fill_its_output_cannot_hold_instead_of_clamping_it(tmp_path, pair, capsys):
    files = _write(tmp_path, pair, sitk.sitkInt16)
    argv = ["apply", "--fixed", files["fixed"], "--transform", files["transform"], "--input", files["moving"]]
    assert main(argv + ["--out", str(tmp_path / "out"), "--fill", "40000"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {files['moving']}: fill 40000 is outside the range of its 16-bit signed")
    assert not (tmp_path / "out" / "scan_applied.nii.gz").exists()


def test_fill_text_becomes_an_exact_whole_number_only_where_an_integer_output_needs_it():
    assert _fill_value("9007199254740993") == BEYOND_FLOAT and isinstance(
        _fill_value("9007199254740993"), int
    )
    assert _fill_value("9007199254740993.0") == BEYOND_FLOAT
    assert _fill_value("9223372036854775807") == INT64_MAX
    assert _fill_value("-1000") == -1000.0 and isinstance(_fill_value("-1000"), float)  # as before
    assert _fill_value("-1000.5") == -1000.5
    huge = _fill_value("1e300")  # a float64 fill, not a 301-digit integer a float cannot hold exactly
    assert isinstance(huge, float) and fill_problem(huge, sitk.sitkFloat64) is None
