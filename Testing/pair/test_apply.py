"""``ct-affine-register apply``: an existing transform put to use on scans and label maps, safely."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.io.images import InputError
from CTAffineRegisterLib.io.transform_files import read_any_transform as read_transform
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.pair.apply import apply_to_scan
from CTAffineRegisterLib.quality.accuracy import ring_voxels
from CTAffineRegisterLib.resample.labels import resample_labels
from CTAffineRegisterLib.resample.scans import resample_to_fixed
from CTAffineRegisterLib.synthetic import make_pair, make_phantom


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **TINY_PAIR)


def _moving_labels(moving: sitk.Image) -> sitk.Image:
    """Structures drawn from the moving scan itself: lungs-like air inside the body, bone (value 300)."""
    values = sitk.GetArrayViewFromImage(moving)
    labels = np.zeros(values.shape, np.uint16)
    labels[(values > -900) & (values < -300)] = 2
    labels[values > 250] = 300
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(moving)
    return image


@pytest.fixture
def files(tmp_path: Path, pair) -> dict:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = {
        "fixed": folder / "fixed.nii.gz",
        "moving": folder / "scan_b.nrrd",
        "labels": folder / "scan_b_seg.nii.gz",
        "transform": folder / "b_to_fixed.tfm",
    }
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    sitk.WriteImage(_moving_labels(pair.moving), str(paths["labels"]))
    sitk.WriteTransform(pair.true_transform, str(paths["transform"]))
    return {name: str(path) for name, path in paths.items()}


def _apply(files: dict, out: Path, *extra: str, inputs=None) -> int:
    inputs = inputs or [files["moving"]]
    return main(
        ["apply", "--fixed", files["fixed"], "--transform", files["transform"], "--input", *inputs]
        + ["--out", str(out), *extra]
    )


def test_apply_puts_a_padded_ct_on_the_fixed_grid_without_a_ring(tmp_path, pair, files, capsys):
    out = tmp_path / "out"
    assert _apply(files, out) == 0
    assert os.listdir(out) == ["scan_b_applied.nii.gz"]
    written = out / "scan_b_applied.nii.gz"
    assert str(written) in capsys.readouterr().out
    applied = sitk.ReadImage(str(written))
    assert applied.GetSize() == pair.fixed.GetSize() and applied.GetPixelID() == pair.moving.GetPixelID()
    assert np.allclose(applied.GetOrigin(), pair.fixed.GetOrigin())
    # the moving scan's -3024 padding is nowhere in the output...
    assert ring_voxels(applied, pair.fixed_valid_mask) == 0
    assert sitk.GetArrayViewFromImage(applied).min() > -1100
    # ...where a plain resample with the same transform leaves a ring
    plain = sitk.Resample(pair.moving, pair.fixed, pair.true_transform, sitk.sitkLinear, -1000.0)
    assert ring_voxels(plain, pair.fixed_valid_mask) > 1000
    # it is exactly what register's resampling gives with this transform
    expected = resample_to_fixed(
        pair.moving, pair.fixed, pair.true_transform, analyze_background(pair.moving)
    )
    assert np.array_equal(sitk.GetArrayViewFromImage(applied), sitk.GetArrayViewFromImage(expected))


def test_apply_labels_keeps_values_and_type(tmp_path, pair, files, capsys):
    out = tmp_path / "out"
    assert _apply(files, out, "--labels", inputs=[files["labels"]]) == 0
    written = out / "scan_b_seg_labels.nii.gz"
    assert written.exists()
    carried = sitk.ReadImage(str(written))
    assert carried.GetPixelID() == sitk.sitkUInt16 and carried.GetSize() == pair.fixed.GetSize()
    assert set(np.unique(sitk.GetArrayViewFromImage(carried)).tolist()) == {0, 2, 300}
    expected = resample_labels(sitk.ReadImage(files["labels"]), pair.fixed, pair.true_transform)
    assert np.array_equal(sitk.GetArrayViewFromImage(carried), sitk.GetArrayViewFromImage(expected))
    assert "label map, 2 structures (2, 300)" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".tfm", ".txt", ".h5"])
def test_every_itk_transform_format_is_read(tmp_path, pair, suffix):
    path = tmp_path / f"transform{suffix}"
    sitk.WriteTransform(pair.true_transform, str(path))
    transform = read_transform(str(path))
    point = (10.0, -20.0, 30.0)
    assert np.allclose(transform.TransformPoint(point), pair.true_transform.TransformPoint(point))


def test_an_elastix_result_applies_as_its_itk_twin(tmp_path, pair, files):
    """elastix's TransformParameters file (what `check` reads) is applied directly, no conversion."""
    truth = sitk.AffineTransform(pair.true_transform)
    elastix = tmp_path / "TransformParameters.0.txt"
    elastix.write_text(
        '(Transform "AffineTransform")\n(NumberOfParameters 12)\n'
        f"(TransformParameters {' '.join(repr(v) for v in (*truth.GetMatrix(), *truth.GetTranslation()))})\n"
        '(InitialTransformParametersFileName "NoInitialTransform")\n'
        f"(CenterOfRotationPoint {' '.join(repr(v) for v in truth.GetCenter())})\n"
    )
    assert _apply(files, tmp_path / "itk") == 0
    assert _apply({**files, "transform": str(elastix)}, tmp_path / "elastix") == 0
    from_itk, from_elastix = (
        sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name / "scan_b_applied.nii.gz")))
        for name in ("itk", "elastix")
    )
    assert np.array_equal(from_itk, from_elastix)


def _bad_transforms(folder: Path) -> dict[str, tuple[Path, str]]:
    folder.mkdir(exist_ok=True)
    text = folder / "notes.tfm"
    text.write_text("this is not a transform\n")
    empty = folder / "empty.tfm"
    empty.write_bytes(b"")
    flat = folder / "flat.tfm"
    sitk.WriteTransform(sitk.Euler2DTransform(), str(flat))
    image = folder / "image.h5"
    image.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    no_suffix = folder / "LICENSE"
    no_suffix.write_text("free to use\n")
    return {
        "missing": (folder / "missing.tfm", "no such file"),
        "no suffix": (no_suffix, "transforms are read from .tfm, .txt, .h5"),
        "text": (text, "not a readable transform file"),
        "empty": (empty, "file is empty"),
        "2D": (flat, "2D transform; a 3D transform is needed"),
        "broken h5": (image, "not a readable transform file"),
    }


def test_bad_transform_file_gives_one_error_line_and_exit_2(tmp_path, files, capsys):
    out = tmp_path / "out"
    for name, (path, reason) in _bad_transforms(tmp_path / "bad").items():
        arguments = ["apply", "--fixed", files["fixed"], "--transform", str(path), "--input", files["moving"]]
        assert main([*arguments, "--out", str(out)]) == 2, name
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith("error: "), name
        assert str(path) in errors[0] and reason in errors[0], name
        assert not out.exists() or not os.listdir(out)


def test_outputs_are_not_overwritten_without_consent(tmp_path, files, capsys):
    out = tmp_path / "out"
    out.mkdir()
    sentinel = out / "scan_b_applied.nii.gz"
    sentinel.write_text("keep me")
    assert _apply(files, out) == 1
    error = capsys.readouterr().err
    assert str(sentinel) in error and "already exists" in error
    assert sentinel.read_text() == "keep me"
    assert _apply(files, out, "--overwrite") == 0
    assert sitk.ReadImage(str(sentinel)).GetSize() == sitk.ReadImage(files["fixed"]).GetSize()
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no temporary files left


def test_an_output_that_would_replace_an_input_is_refused_even_with_overwrite(tmp_path, pair, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    fixed = folder / "scan_applied.nii.gz"  # what the output of scan.nrrd would be called
    moving = folder / "scan.nrrd"
    transform = folder / "t.tfm"
    sitk.WriteImage(pair.fixed, str(fixed))
    sitk.WriteImage(pair.moving, str(moving))
    sitk.WriteTransform(pair.true_transform, str(transform))
    before = fixed.read_bytes()
    arguments = ["apply", "--fixed", str(fixed), "--transform", str(transform), "--input", str(moving)]
    assert main([*arguments, "--out", str(folder), "--overwrite"]) == 1
    assert "would replace an input" in capsys.readouterr().err
    assert fixed.read_bytes() == before


def test_one_bad_input_does_not_stop_the_others(tmp_path, files, capsys):
    out = tmp_path / "out"
    missing = str(tmp_path / "missing.nii.gz")
    inputs = [missing, files["labels"], files["moving"]]
    assert _apply(files, out, inputs=inputs) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert missing in errors[0] and "no such file" in errors[0]
    # a label map without --labels would be blended into values that mean something else
    assert files["labels"] in errors[1] and "--labels" in errors[1]
    assert os.listdir(out) == ["scan_b_applied.nii.gz"]


def test_a_scan_given_as_labels_is_refused(tmp_path, files, capsys):
    out = tmp_path / "out"
    assert _apply(files, out, "--labels") == 1
    error = capsys.readouterr().err
    assert files["moving"] in error and "as a CT in HU does: a scan, not a label map" in error
    assert not out.exists() or not os.listdir(out)


def test_labels_with_scan_options_is_a_usage_error(tmp_path, files, capsys):
    assert _apply(files, tmp_path / "out", "--labels", "--fill", "0", inputs=[files["labels"]]) == 2
    assert "--fill" in capsys.readouterr().err


def test_a_transform_that_maps_nowhere_is_refused(tmp_path, files, capsys):
    far = sitk.TranslationTransform(3, (5000.0, 0.0, 0.0))
    sitk.WriteTransform(far, files["transform"])
    out = tmp_path / "out"
    assert _apply(files, out, inputs=[files["moving"]]) == 1
    assert "no point of the fixed grid maps onto its data" in capsys.readouterr().err
    assert _apply(files, out, "--labels", inputs=[files["labels"]]) == 1
    assert "none of its structures lands on the fixed grid" in capsys.readouterr().err
    assert not out.exists() or not os.listdir(out)


def test_a_quarter_turn_about_a_far_centre_is_applied_with_full_coverage():
    """A scan stored far from the origin (a scanner's table position) turned 90° about its own centre:
    every fixed point lands on its data, so the turn is applied, not refused as mapping nowhere."""
    scan = make_phantom(size=(40, 40, 8), spacing=(5.0, 5.0, 5.0), seed=2)
    scan.SetOrigin((400.0, 600.0, -300.0))
    centre = scan.TransformContinuousIndexToPhysicalPoint([19.5, 19.5, 3.5])
    turn = sitk.Euler3DTransform(centre, 0.0, 0.0, np.pi / 2)
    applied = apply_to_scan(scan, scan, turn)
    assert applied.coverage == pytest.approx(1.0)
    expected = sitk.Resample(scan, scan, turn, sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
    assert np.allclose(
        sitk.GetArrayViewFromImage(applied.image), sitk.GetArrayViewFromImage(expected), atol=1.0
    )
    assert not np.allclose(sitk.GetArrayViewFromImage(expected), sitk.GetArrayViewFromImage(scan), atol=50.0)


def test_inputs_with_the_same_name_get_distinct_outputs(tmp_path, pair, files):
    other = tmp_path / "other"
    other.mkdir()
    twin = other / "scan_b.nrrd"
    sitk.WriteImage(pair.moving, str(twin))
    out = tmp_path / "out"
    assert _apply(files, out, inputs=[files["moving"], str(twin)]) == 0
    assert sorted(os.listdir(out)) == ["scan_b_2_applied.nii.gz", "scan_b_applied.nii.gz"]


def test_an_image_that_is_not_ct_is_resampled_plainly(pair):
    """A dose-like map (non-negative floats, zero outside): no padding replacement, fill its corner value."""
    values = sitk.GetArrayFromImage(pair.moving).astype(np.float32)
    dose = sitk.GetImageFromArray(np.clip(values + 1000.0, 0.0, None) / 100.0)
    dose.CopyInformation(pair.moving)
    applied = apply_to_scan(dose, pair.fixed, pair.true_transform)
    assert applied.kind == "image" and "without padding handling" in applied.summary
    assert applied.image.GetPixelID() == sitk.sitkFloat32
    expected = sitk.Resample(dose, pair.fixed, pair.true_transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    assert np.allclose(
        sitk.GetArrayViewFromImage(applied.image), sitk.GetArrayViewFromImage(expected), atol=1e-4
    )


def test_read_transform_names_the_file(tmp_path):
    path = tmp_path / "folder.tfm"
    path.mkdir()
    with pytest.raises(InputError, match="is a folder") as refusal:
        read_transform(str(path))
    assert refusal.value.path == str(path)
