"""Where a float NIfTI's NaN and Inf voxels are (io/nonfinite.py): SimpleITK reads them as 0, so they
are found in the stored bytes and put back as NaN (no data), each at its own voxel, however the file is
read in chunks; a float scan with zeros and no NaN comes back unchanged. Tiny files, plain and gzip."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.io import nonfinite
from CTAffineRegisterLib.io.images import read_image


def _scan(bad: dict) -> np.ndarray:
    values = (np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) - 50.0) * 3.0  # zeros, no 1
    values.flat[[10, 20]] = 0.0
    for index, value in bad.items():
        values.flat[index] = value
    return values


def _read_back(tmp_path, values: np.ndarray, name: str) -> np.ndarray:
    path = tmp_path / name
    sitk.WriteImage(sitk.GetImageFromArray(values), str(path))
    return sitk.GetArrayFromImage(read_image(str(path)).image)


@pytest.mark.parametrize("name", ["scan.nii", "scan.nii.gz"])
@pytest.mark.parametrize("chunk_bytes", [16, 1 << 24])
def test_nan_and_inf_are_put_back_at_their_voxels_whatever_the_chunks(
    tmp_path, monkeypatch, name, chunk_bytes
):
    monkeypatch.setattr(nonfinite, "_CHUNK_BYTES", chunk_bytes)
    values = _scan({3: np.nan, 57: np.inf, 58: -np.inf, 119: np.nan})
    back = _read_back(tmp_path, values, name)
    expected = np.where(np.isfinite(values), values, np.nan)  # Inf is no data either: NaN
    assert np.array_equal(back, expected, equal_nan=True)


@pytest.mark.parametrize("name", ["scan.nii", "scan.nii.gz"])
def test_a_single_nan_is_put_back(tmp_path, name):
    values = _scan({77: np.nan})
    back = _read_back(tmp_path, values, name)
    assert np.isnan(back.flat[77]) and np.count_nonzero(np.isnan(back)) == 1


@pytest.mark.parametrize("name", ["scan.nii", "scan.nii.gz"])
def test_a_float_scan_with_zeros_and_no_nan_comes_back_unchanged(tmp_path, name):
    values = _scan({})
    assert np.array_equal(_read_back(tmp_path, values, name), values)


def test_bytes_after_the_voxels_are_not_taken_for_voxels(tmp_path):
    """A .nii may go on after its voxels (a tool's padding): NaN there is no voxel of the scan."""
    values = _scan({5: np.nan})
    path = tmp_path / "padded.nii"
    sitk.WriteImage(sitk.GetImageFromArray(values), str(path))
    with open(path, "ab") as handle:
        handle.write(np.full(4, np.nan, dtype="<f4").tobytes())
    back = sitk.GetArrayFromImage(read_image(str(path)).image)
    assert np.array_equal(back, values, equal_nan=True)


def test_a_file_whose_voxels_cannot_be_read_again_leaves_the_image_as_read(tmp_path):
    """The stored bytes are gone or shorter than the header said (the file changed since): nothing is
    known about NaN there, so the image stays as SimpleITK read it, not all NaN."""
    values = _scan({})
    path = tmp_path / "scan.nii"
    sitk.WriteImage(sitk.GetImageFromArray(values), str(path))
    image = sitk.GetImageFromArray(values)
    facts = (np.dtype(np.float32), 10_000_000, values.size * 4, False)  # past the end of the file
    assert nonfinite.restore_nifti_nonfinite(image, str(path), facts) is image


def test_the_note_counts_one_nan_voxel_and_says_nothing_without_any():
    values = np.zeros((2, 3, 4), dtype=np.float32)
    assert nonfinite.nonfinite_note(sitk.GetImageFromArray(values)) is None
    values[1, 2, 3] = np.nan
    assert nonfinite.nonfinite_note(sitk.GetImageFromArray(values)).startswith("1 voxels (4.2%) are NaN/Inf")
    values[0, 0, :2] = np.inf
    assert nonfinite.nonfinite_note(sitk.GetImageFromArray(values)) == (
        "3 voxels (12.5%) are NaN/Inf: read as no data (fill value in the output, validity mask 0), "
        "not as 0 HU"
    )
