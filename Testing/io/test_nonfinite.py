"""NaN voxels of a float CT are no data (fill, validity mask 0, a note), never 0 HU (issue 21, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.io.images import read_image
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.synthetic import make_pair

NAN_SLICES = 10


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **{**TINY_PAIR, "moving_padding": None})


def _with_nan_slices(moving: sitk.Image) -> sitk.Image:
    values = sitk.GetArrayFromImage(sitk.Cast(moving, sitk.sitkFloat32))
    values[:NAN_SLICES] = np.nan
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(moving)
    return image


@pytest.fixture
def files(tmp_path: Path, pair) -> dict:
    paths = {"fixed": tmp_path / "fixed.nii.gz", "moving": tmp_path / "nan_scan.nii.gz"}
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(_with_nan_slices(pair.moving), str(paths["moving"]))
    transform = tmp_path / "truth.tfm"
    sitk.WriteTransform(pair.true_transform, str(transform))
    return {**{name: str(path) for name, path in paths.items()}, "transform": str(transform)}


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_nan_voxels_are_read_as_nan_with_a_note_in_every_format(tmp_path, pair, suffix):
    path = tmp_path / f"scan{suffix}"
    sitk.WriteImage(_with_nan_slices(pair.moving), str(path))
    loaded = read_image(str(path))
    values = sitk.GetArrayViewFromImage(loaded.image)
    assert np.isnan(values[:NAN_SLICES]).all()
    assert np.isfinite(values[NAN_SLICES:]).all()
    count = values[:NAN_SLICES].size
    assert loaded.note is not None and f"{count:,} voxels" in loaded.note and "NaN" in loaded.note


def _nan_region_on_fixed(pair, transform: sitk.Transform) -> np.ndarray:
    """Fixed voxels whose nearest moving voxel lies in the NaN slices."""
    indicator = np.zeros(sitk.GetArrayViewFromImage(pair.moving).shape, np.uint8)
    indicator[:NAN_SLICES] = 1
    image = sitk.GetImageFromArray(indicator)
    image.CopyInformation(pair.moving)
    mapped = sitk.Resample(image, pair.fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(mapped).astype(bool)


def test_apply_fills_nan_voxels_and_says_so(tmp_path, pair, files, capsys):
    out = tmp_path / "out"
    command = ["apply", "--fixed", files["fixed"], "--transform", files["transform"]]
    assert main(command + ["--input", files["moving"], "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NaN" in printed
    applied = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "nan_scan_applied.nii.gz")))
    region = _nan_region_on_fixed(pair, pair.true_transform)
    assert region.sum() > 1000
    assert np.count_nonzero(applied == 0) == 0  # before: every NaN voxel came out as exactly 0 HU
    air = float(np.median(applied[region]))
    assert air < -900


def test_register_masks_nan_voxels_out_and_notes_their_count(tmp_path, pair, files):
    out = tmp_path / "out"
    assert (
        main(
            ["register", "--fixed", files["fixed"], "--moving", files["moving"], "--out", str(out)]
            + ["--jobs", "1", "--quiet"]
        )
        == 0
    )
    registered = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "nan_scan_registered.nii.gz")))
    valid = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "nan_scan_validmask.nii.gz")))
    region = _nan_region_on_fixed(pair, pair.true_transform)
    assert region.sum() > 1000
    assert np.count_nonzero(registered == 0) == 0
    # the registration lands within a voxel or so of the truth: the NaN region's core is masked out
    assert np.mean(valid[region] == 0) > 0.9
    report = json.loads((out / "nan_scan_report.json").read_text())
    assert any("NaN" in note for note in report["notes"])


def test_nan_voxels_stay_no_data_when_clipped_air_is_taken_for_air_not_padding():
    """Air clipped at a constant spikes like padding; called air, its mask must still leave NaN out."""
    rng = np.random.default_rng(0)
    values = rng.normal(-1000, 8, (30, 40, 40)).astype(np.float32)
    values[:, 8:32, 8:32] = rng.normal(40, 10, (30, 24, 24))
    values[:, 12:20, 12:20] = -700
    values[values < -1000] = -1000
    values[:3] = np.nan
    analysis = analyze_background(sitk.GetImageFromArray(values))
    assert analysis.kind == "air-background"
    valid = sitk.GetArrayViewFromImage(analysis.valid_mask)
    assert not valid[:3].any() and valid[3:].all()
