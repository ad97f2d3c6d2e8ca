"""``register``'s registration options reach the result: the transform type asked for is the one
written, and the interpolator asked for is the one the registered scan was resampled with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.core.affine import affine_parts
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.resample.scans import resample_to_fixed
from CTAffineRegisterLib.synthetic import make_pair


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **TINY_PAIR)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, pair) -> dict:
    folder = tmp_path_factory.mktemp("inputs")
    paths = {"fixed": folder / "fixed.nii.gz", "moving": folder / "scan.nii.gz"}
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    return paths


def _register(inputs: dict, out: Path, *options: str) -> dict:
    arguments = ["register", "--fixed", str(inputs["fixed"]), "--moving", str(inputs["moving"])]
    assert main([*arguments, "--out", str(out), "--quiet", *options]) == 0
    return json.loads((out / "report.json").read_text())["cases"][0]


def _matrix(out: Path) -> np.ndarray:
    return affine_parts(sitk.ReadTransform(str(out / "scan_transform.tfm")), (0.0, 0.0, 0.0))[0]


@pytest.fixture(scope="module")
def affine_run(tmp_path_factory, inputs) -> Path:
    out = tmp_path_factory.mktemp("affine")
    _register(inputs, out)
    return out


def test_a_rigid_registration_writes_a_rigid_transform(tmp_path, inputs, affine_run):
    case = _register(inputs, tmp_path / "out", "--transform", "rigid")
    matrix = _matrix(tmp_path / "out")
    assert np.allclose(matrix.T @ matrix, np.eye(3), atol=1e-6) and np.linalg.det(matrix) > 0
    assert case["transform_type"] == case["options"]["transform"] == "rigid"
    # the default (affine) run on the same pair does scale and shear: the option is what made it rigid
    default = _matrix(affine_run)
    assert not np.allclose(default.T @ default, np.eye(3), atol=1e-3)


def test_a_similarity_registration_scales_alike_along_every_axis(tmp_path, inputs):
    case = _register(inputs, tmp_path / "out", "--transform", "similarity")
    matrix = _matrix(tmp_path / "out")
    gram = matrix.T @ matrix
    assert np.allclose(gram, gram[0, 0] * np.eye(3), atol=1e-6)
    assert case["transform_type"] == case["options"]["transform"] == "similarity"


def test_the_registered_scan_is_resampled_with_the_interpolator_asked_for(tmp_path, pair, inputs, affine_run):
    _register(inputs, tmp_path / "out", "--interpolator", "bspline")
    out = tmp_path / "out"
    transform = sitk.ReadTransform(str(out / "scan_transform.tfm"))
    registered = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "scan_registered.nii.gz")))
    analysis = analyze_background(pair.moving)
    expected = resample_to_fixed(pair.moving, pair.fixed, transform, analysis, interpolator="bspline")
    assert np.array_equal(registered, sitk.GetArrayViewFromImage(expected))
    linear = resample_to_fixed(pair.moving, pair.fixed, transform, analysis, interpolator="linear")
    assert not np.array_equal(registered, sitk.GetArrayViewFromImage(linear))
