"""Transforms that map nothing are refused by name in ``check`` and ``apply`` (issue 21, items 4, 7, 8):
a singular matrix, a NaN/Inf parameter, an elastix file whose counts do not add up."""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.io.images import InputError
from CTAffineRegisterLib.io.transform_files import read_any_transform, read_transform, transform_problem
from CTAffineRegisterLib.synthetic import make_pair

NAN = float("nan")


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **TINY_PAIR)


@pytest.fixture
def scans(tmp_path: Path, pair) -> dict:
    paths = {"fixed": tmp_path / "fixed.nii.gz", "moving": tmp_path / "moving.nrrd"}
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    return {name: str(path) for name, path in paths.items()}


def _affine(matrix=(1, 0, 0, 0, 1, 0, 0, 0, 1), translation=(0, 0, 0)) -> sitk.AffineTransform:
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(value) for value in matrix])
    transform.SetTranslation([float(value) for value in translation])
    return transform


def _elastix(path: Path, parameters: str, center: str = "0 0 0", count: str = "12") -> str:
    path.write_text(
        f'(Transform "AffineTransform")\n(NumberOfParameters {count})\n(TransformParameters {parameters})\n'
        f'(InitialTransformParametersFileName "NoInitialTransform")\n(CenterOfRotationPoint {center})\n'
    )
    return str(path)


IDENTITY_12 = "1 0 0 0 1 0 0 0 1 0 0 0"


def _bad_transforms(folder: Path) -> dict[str, tuple[str, str]]:
    """name -> (transform file, words the refusal must contain)."""
    files = {}
    zero = folder / "zero.tfm"
    sitk.WriteTransform(_affine(matrix=[0] * 9), str(zero))
    files["all-zero matrix"] = (str(zero), "singular (determinant 0)")
    flat = folder / "flat.tfm"
    sitk.WriteTransform(_affine(matrix=(1, 0, 0, 0, 1, 0, 0, 0, 0)), str(flat))
    files["flattening matrix"] = (str(flat), "singular (determinant 0)")
    nan_h5 = folder / "nan.h5"
    sitk.WriteTransform(_affine(translation=(NAN, 0, 0)), str(nan_h5))
    files["NaN in an .h5"] = (str(nan_h5), "1 of its parameters is NaN or Inf")
    inf_mat = folder / "inf.mat"
    sitk.WriteTransform(_affine(matrix=(1, 0, 0, 0, 1, 0, 0, 0, float("inf"))), str(inf_mat))
    files["Inf in a .mat"] = (str(inf_mat), "NaN or Inf")
    files["NaN in elastix"] = (
        _elastix(folder / "TransformParameters.nan.txt", "1 0 0 0 1 0 0 0 1 nan 0 0"),
        "NaN or Inf",
    )
    files["elastix 2-value centre"] = (
        _elastix(folder / "TransformParameters.c2.txt", IDENTITY_12, center="0 0"),
        "CenterOfRotationPoint has 2 values",
    )
    files["elastix 4-value centre"] = (
        _elastix(folder / "TransformParameters.c4.txt", IDENTITY_12, center="0 0 0 5"),
        "CenterOfRotationPoint has 4 values",
    )
    files["elastix 13 parameters"] = (
        _elastix(folder / "TransformParameters.p13.txt", IDENTITY_12 + " 7"),
        "has 12 TransformParameters, this file gives 13",
    )
    files["elastix NumberOfParameters disagrees"] = (
        _elastix(folder / "TransformParameters.n13.txt", IDENTITY_12, count="13"),
        "NumberOfParameters says 13",
    )
    files["elastix Euler with 2-value centre"] = (
        str(
            _write(
                folder / "TransformParameters.e2.txt",
                '(Transform "EulerTransform")\n(NumberOfParameters 6)\n(TransformParameters 0 0 0 0 0 0)\n'
                "(CenterOfRotationPoint 1 2)\n",
            )
        ),
        "CenterOfRotationPoint has 2 values",
    )
    return files


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", ["check", "apply"])
def test_unusable_transforms_are_refused_by_name(tmp_path, scans, capsys, command):
    for name, (path, words) in _bad_transforms(tmp_path).items():
        if command == "check":
            argv = ["check", "--fixed", scans["fixed"], "--moving", scans["moving"], "--transform", path]
        else:
            argv = ["apply", "--fixed", scans["fixed"], "--transform", path, "--input", scans["moving"]]
            argv += ["--out", str(tmp_path / "out")]
        status = main(argv)
        captured = capsys.readouterr()
        assert status == 2, name
        assert captured.err.startswith(f"error: {path}: "), (name, captured.err)
        assert words in captured.err, (name, captured.err)
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, name
        assert "mirrors" not in captured.err + captured.out, name
        assert not (tmp_path / "out").exists(), name


def test_transform_problem_accepts_usable_transforms(pair):
    assert transform_problem(pair.true_transform) is None
    assert transform_problem(_affine(matrix=(-1, 0, 0, 0, 1, 0, 0, 0, 1))) is None  # a mirror is judged
    assert transform_problem(_affine(matrix=(0.01, 0, 0, 0, 0.01, 0, 0, 0, 0.01))) is None
    assert "singular" in transform_problem(_affine(matrix=[0] * 9))
    assert "NaN" in transform_problem(sitk.CompositeTransform([_affine(), _affine(translation=(NAN, 0, 0))]))


def test_a_correct_elastix_file_still_reads(tmp_path):
    path = _elastix(tmp_path / "TransformParameters.0.txt", "1 0 0 0 1 0 0 0 1 5 0 0", center="1 2 3")
    assert read_transform(path).TransformPoint((0.0, 0.0, 0.0)) == pytest.approx((5.0, 0.0, 0.0))
    with pytest.raises(InputError, match="singular"):
        read_any_transform(_elastix(tmp_path / "TransformParameters.1.txt", "0 0 0 0 0 0 0 0 0 5 0 0"))
