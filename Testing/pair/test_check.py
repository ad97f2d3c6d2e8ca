"""``check``: the verdict on a transform from any tool, read from ITK or elastix files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from support.dicom_writer import write_volume
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.io.images import DicomPadding, InputError
from CTAffineRegisterLib.io.transform_files import read_transform
from CTAffineRegisterLib.pair.check import check_transform

SMALL = dict(
    fixed_size=(80, 80, 56),
    fixed_spacing=(3.0, 3.0, 4.0),
    moving_spacing=(3.2, 3.2, 4.5),
    anatomy_scale=0.65,
    max_translation_mm=12.0,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("check")
    pair = synthetic.make_pair(17, **SMALL)
    sitk.WriteImage(pair.fixed, str(folder / "fixed.nii.gz"))
    sitk.WriteImage(pair.moving, str(folder / "moving.nrrd"))
    sitk.WriteTransform(pair.true_transform, str(folder / "truth.tfm"))
    off = sitk.AffineTransform(pair.true_transform)
    off.SetTranslation(np.add(off.GetTranslation(), (0.0, 0.0, 20.0)).tolist())  # 20 mm along the body axis
    sitk.WriteTransform(off, str(folder / "off.h5"))
    near = sitk.AffineTransform(pair.true_transform)
    near.SetTranslation(np.add(near.GetTranslation(), (0.0, 0.0, 8.0)).tolist())  # 8 mm: suspect
    sitk.WriteTransform(near, str(folder / "near.tfm"))
    return folder, pair


def _points(transform, points) -> np.ndarray:
    return np.array([transform.TransformPoint(tuple(point)) for point in points])


def test_check_says_ok_for_the_truth_suspect_and_failed_for_body_axis_shifts(files, capsys):
    folder, _ = files
    arguments = ["check", "--fixed", str(folder / "fixed.nii.gz"), "--moving", str(folder / "moving.nrrd")]
    assert main([*arguments, "--transform", str(folder / "truth.tfm"), "--json"]) == 0
    good = json.loads(capsys.readouterr().out)
    assert good["verdict"] == "ok" and good["transform"].endswith("truth.tfm")
    assert {"verdict", "reason", "figures", "checks"} <= set(good)
    assert main([*arguments, "--transform", str(folder / "off.h5")]) == 1
    text = capsys.readouterr().out
    assert text.startswith("verdict: failed") and "head-foot" in text
    assert "optimum" in text and "failed" in text.splitlines()[0]
    assert main([*arguments, "--transform", str(folder / "near.tfm")]) == 0  # exit 1 is for "failed" only
    assert capsys.readouterr().out.startswith("verdict: suspect\nreason: the match improves")


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "no such file"),
        ("not a transform\n", "not a readable transform file"),
    ],
)
def test_a_bad_transform_file_is_one_error_line_and_exit_2(files, capsys, tmp_path, content, reason):
    folder, _ = files
    path = tmp_path / "bad.tfm"
    if content is not None:
        path.write_text(content)
    code = main(
        ["check", "--fixed", str(folder / "fixed.nii.gz"), "--moving", str(folder / "moving.nrrd")]
        + ["--transform", str(path)]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1
    assert error[0].startswith(f"error: {path}: {reason}")


def test_a_missing_image_is_one_error_line_and_exit_2(files, capsys):
    folder, _ = files
    code = main(
        ["check", "--fixed", str(folder / "nothing.nii.gz"), "--moving", str(folder / "moving.nrrd")]
        + ["--transform", str(folder / "truth.tfm")]
    )
    assert code == 2 and capsys.readouterr().err.startswith(f"error: {folder / 'nothing.nii.gz'}")


def test_a_scan_that_cannot_be_judged_is_named_in_the_error_line(files, capsys, tmp_path):
    """A moving scan that is padding but for a 8×8×8 block: too little real data to judge anything."""
    folder, pair = files
    array = np.full((30, 40, 40), -3024, np.int16)
    array[10:18, 15:23, 15:23] = np.random.default_rng(0).integers(-1000, 400, (8, 8, 8))
    scan = sitk.GetImageFromArray(array)
    scan.SetSpacing((3.0, 3.0, 4.0))
    scan.SetOrigin(pair.moving.GetOrigin())
    path = tmp_path / "mostly_padding.nii.gz"
    sitk.WriteImage(scan, str(path))
    code = main(
        ["check", "--fixed", str(folder / "fixed.nii.gz"), "--moving", str(path)]
        + ["--transform", str(folder / "truth.tfm")]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error == [f"error: {path}: has too few valid (non-padding) voxels (512)"]


def test_check_reads_a_dicom_padding_range_as_register_does(tmp_path, capsys):
    """A DICOM series padded with a range of values (-3024..-3001: Pixel Padding Value and Padding
    Range Limit): only the tags say the ring is padding, and ``check`` must read them as ``register``
    does, or it judges another scan (here: none at all, values below -1024 are not CT-like)."""
    pair = synthetic.make_pair(seed=21, **TINY_PAIR)
    values = sitk.GetArrayFromImage(pair.moving)
    ring = sitk.GetArrayFromImage(pair.moving_valid_mask) == 0
    values[ring] = -3024 + np.arange(np.count_nonzero(ring)) % 24
    moving = sitk.GetImageFromArray(values)
    moving.CopyInformation(pair.moving)
    write_volume(tmp_path / "moving", moving, {"0028|0120": "-3024", "0028|0121": "-3001"})
    sitk.WriteImage(pair.fixed, str(tmp_path / "fixed.nii.gz"))
    sitk.WriteTransform(pair.true_transform, str(tmp_path / "truth.tfm"))
    arguments = ["check", "--fixed", str(tmp_path / "fixed.nii.gz"), "--moving", str(tmp_path / "moving")]
    assert main([*arguments, "--transform", str(tmp_path / "truth.tfm"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "ok"
    with_tags = check_transform(
        pair.fixed, moving, pair.true_transform, moving_padding=DicomPadding(-3024.0, -3001.0)
    )
    assert result["figures"] == with_tags["figures"]  # the judgement register's reading gives


def test_a_non_linear_transform_is_refused_with_its_name(tmp_path):
    image = sitk.Image(8, 8, 8, sitk.sitkFloat32)
    bspline = sitk.BSplineTransformInitializer(image, [2, 2, 2])
    path = tmp_path / "warp.tfm"
    sitk.WriteTransform(bspline, str(path))
    with pytest.raises(InputError, match="non-linear transform .*BSplineTransform"):
        read_transform(str(path))


def test_a_composite_of_linear_transforms_is_read_as_one_affine(tmp_path):
    rigid = sitk.Euler3DTransform((10.0, 0.0, -5.0), 0.1, -0.05, 0.2, (3.0, -2.0, 7.0))
    scale = sitk.ScaleTransform(3, (1.1, 0.95, 1.0))
    composite = sitk.CompositeTransform([rigid, scale])
    path = tmp_path / "composite.h5"
    sitk.WriteTransform(composite, str(path))
    points = np.random.default_rng(0).uniform(-100, 100, (20, 3))
    assert np.allclose(_points(read_transform(str(path)), points), _points(composite, points), atol=1e-6)


def test_elastix_parameters_are_read_directly_with_their_initial_transform(tmp_path):
    """An elastix affine result on top of an Euler initial transform: T(x) = affine(euler(x))."""
    euler = sitk.Euler3DTransform((5.0, 10.0, -20.0), 0.05, -0.1, 0.15, (4.0, -3.0, 8.0))
    affine = sitk.AffineTransform(3)
    affine.SetCenter((1.0, 2.0, 3.0))
    affine.SetMatrix((1.05, 0.02, 0.0, -0.01, 0.97, 0.03, 0.0, 0.01, 1.02))
    affine.SetTranslation((-6.0, 2.0, 1.5))
    (tmp_path / "TransformParameters.0.txt").write_text(
        '(Transform "EulerTransform")\n(NumberOfParameters 6)\n'
        f"(TransformParameters {' '.join(str(v) for v in euler.GetParameters())})\n"
        '(InitialTransformParametersFileName "NoInitialTransform")\n'
        '(CenterOfRotationPoint 5.0 10.0 -20.0)\n(ComputeZYX "false")\n'
    )
    matrix, translation = affine.GetMatrix(), affine.GetTranslation()
    (tmp_path / "TransformParameters.1.txt").write_text(
        '// elastix writes comments too\n(Transform "AffineTransform")\n(NumberOfParameters 12)\n'
        f"(TransformParameters {' '.join(str(v) for v in (*matrix, *translation))})\n"
        f'(InitialTransformParametersFileName "{tmp_path / "TransformParameters.0.txt"}")\n'
        '(HowToCombineTransforms "Compose")\n(CenterOfRotationPoint 1.0 2.0 3.0)\n'
    )
    read = read_transform(str(tmp_path / "TransformParameters.1.txt"))
    points = np.random.default_rng(1).uniform(-100, 100, (20, 3))
    expected = _points(affine, _points(euler, points))
    assert np.allclose(_points(read, points), expected, atol=1e-6)
    # Euler angles applied in Z-Y-X order, as elastix writes them with (ComputeZYX "true")
    euler.SetComputeZYX(True)
    (tmp_path / "TransformParameters.zyx.txt").write_text(
        '(Transform "EulerTransform")\n(NumberOfParameters 6)\n'
        f"(TransformParameters {' '.join(str(v) for v in euler.GetParameters())})\n"
        '(CenterOfRotationPoint 5.0 10.0 -20.0)\n(ComputeZYX "true")\n'
    )
    zyx = read_transform(str(tmp_path / "TransformParameters.zyx.txt"))
    assert np.allclose(_points(zyx, points), _points(euler, points), atol=1e-6)


def test_an_elastix_euler_file_without_compute_zyx_turns_in_itk_order(tmp_path):
    """elastix's ComputeZYX defaults to false: a file without the line (older elastix, one written by
    a script) turns Z-X-Y as ITK's Euler3DTransform does; points far from the centre show the order."""
    euler = sitk.Euler3DTransform((5.0, 10.0, -20.0), 0.15, -0.2, 0.25, (4.0, -3.0, 8.0))
    path = tmp_path / "TransformParameters.0.txt"
    path.write_text(
        '(Transform "EulerTransform")\n(NumberOfParameters 6)\n'
        f"(TransformParameters {' '.join(str(v) for v in euler.GetParameters())})\n"
        '(InitialTransformParametersFileName "NoInitialTransform")\n'
        "(CenterOfRotationPoint 5.0 10.0 -20.0)\n"
    )
    far = np.array([[105.0, 10.0, -20.0], [5.0, 110.0, -20.0], [5.0, 10.0, 80.0]])  # 100 mm out
    read = _points(read_transform(str(path)), far)
    assert np.allclose(read, _points(euler, far), atol=1e-6)
    zyx = sitk.Euler3DTransform(euler)
    zyx.SetComputeZYX(True)
    assert np.abs(_points(zyx, far) - _points(euler, far)).max() > 2.0  # the order matters here


def test_an_elastix_bspline_is_refused(tmp_path):
    path = tmp_path / "TransformParameters.0.txt"
    path.write_text('(Transform "BSplineTransform")\n(TransformParameters 0 0 0)\n')
    with pytest.raises(InputError, match="elastix BSplineTransform; only linear"):
        read_transform(str(path))


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"fixed": "fixed.nii.gz"},
            TypeError,
            "fixed must be a SimpleITK.Image, not the path 'fixed.nii.gz'",
        ),
        ({"moving": np.zeros((4, 4, 4))}, TypeError, "moving must be a SimpleITK.Image, not a numpy array"),
        (
            {"transform": np.eye(4)},
            TypeError,
            r"transform must be a SimpleITK\.Transform \(fixed → moving\), not a numpy array",
        ),
        ({"transform": sitk.AffineTransform(2)}, ValueError, "transform must be a 3D transform, not 2D"),
        ({"fixed_analysis": "air"}, TypeError, "fixed_analysis must be a BackgroundAnalysis or None"),
    ],
)
def test_check_transform_names_a_bad_argument_before_any_work(files, change, error, message):
    """``check_transform`` is an entry point like ``register_pair``: its own argument check, first."""
    _, pair = files
    arguments = {"fixed": pair.fixed, "moving": pair.moving, "transform": pair.true_transform, **change}
    transform = arguments.pop("transform")
    with pytest.raises(error, match=message):
        check_transform(arguments.pop("fixed"), arguments.pop("moving"), transform, **arguments)
