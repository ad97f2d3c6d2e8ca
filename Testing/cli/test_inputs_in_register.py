"""What reading finds out reaches ``register``: refusals as failed cases, notes in report.json."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import SimpleITK as sitk
from support.dicom_writer import write_series
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.synthetic import make_pair


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=13, **TINY_PAIR)


@pytest.fixture
def fixed_path(tmp_path: Path, pair) -> Path:
    path = tmp_path / "fixed.nii.gz"
    sitk.WriteImage(pair.fixed, str(path))
    return path


def _with_negative_pixdim(image: sitk.Image, path: Path, keep_sform: bool = False) -> Path:
    """pixdim[1] written negative: SimpleITK mirrors x. With the sform kept, ITK also warns on stderr."""
    sitk.WriteImage(image, str(path))
    data = bytearray(path.read_bytes())
    struct.pack_into("<f", data, 80, -struct.unpack_from("<f", data, 80)[0])
    if not keep_sform:
        struct.pack_into("<hh", data, 252, 1, 0)
    path.write_bytes(bytes(data))
    return path


def _register(fixed: Path, moving: list[Path], out: Path, *extra: str) -> tuple[int, dict]:
    arguments = [
        "register",
        "--quiet",
        "--fixed",
        str(fixed),
        "--moving",
        *map(str, moving),
        "--out",
        str(out),
    ]
    status = main([*arguments, *extra])
    return status, json.loads((out / "report.json").read_text())


def test_a_moving_series_with_a_gap_fails_its_case_naming_the_gap(tmp_path, fixed_path):
    gap = tmp_path / "gap_series"
    write_series(gap, [0.0, 5.0, 10.0, 25.0, 30.0, 35.0])
    status, report = _register(fixed_path, [gap], tmp_path / "out")
    assert status == 1
    error = report["cases"][0]["error"]
    assert error.startswith(f"{gap}: DICOM series has 2 missing slice(s)") and "--allow-slice-gaps" in error


def test_a_truncated_moving_scan_fails_its_case_as_truncated(tmp_path, fixed_path, pair):
    moving = tmp_path / "moving.nii.gz"
    sitk.WriteImage(pair.moving, str(moving))
    data = moving.read_bytes()
    moving.write_bytes(data[: int(len(data) * 0.95)])
    status, report = _register(fixed_path, [moving], tmp_path / "out")
    assert status == 1
    assert report["cases"][0]["error"].startswith(f"{moving}: truncated file")


def test_a_negative_spacing_in_the_moving_header_is_noted_in_the_report(tmp_path, fixed_path, pair):
    moving = _with_negative_pixdim(pair.moving, tmp_path / "mirrored.nii")
    status, report = _register(fixed_path, [moving], tmp_path / "out")
    case = report["cases"][0]
    assert case["status"] == "ok", case["error"]
    assert "negative spacing in the header (pixdim x" in case["note"]
    assert any(note.startswith("negative spacing in the header (pixdim x") for note in case["notes"])
    assert case["note"] == "; ".join(case["notes"])  # the list, and the same in one line


def test_the_fixed_scans_notes_are_in_its_part_of_the_report(tmp_path, pair):
    fixed = _with_negative_pixdim(pair.fixed, tmp_path / "fixed_mirrored.nii")
    status, report = _register(fixed, [tmp_path / "missing.nii.gz"], tmp_path / "out")
    assert status == 1
    assert any("negative spacing" in note for note in report["fixed"]["notes"])


def test_register_accepts_allow_slice_gaps(tmp_path, fixed_path):
    gap = tmp_path / "gap_series"
    write_series(gap, [0.0, 5.0, 10.0, 25.0, 30.0, 35.0])
    _, report = _register(fixed_path, [gap], tmp_path / "out", "--allow-slice-gaps")
    error = report["cases"][0]["error"] or ""
    assert "missing slice" not in error  # read; the tiny series itself may still fail to register


def test_reader_warnings_become_report_notes_not_stderr(tmp_path, fixed_path, pair, capfd):
    moving = _with_negative_pixdim(pair.moving, tmp_path / "warns.nii", keep_sform=True)
    status, report = _register(fixed_path, [moving], tmp_path / "out")
    assert "WARNING: In" not in capfd.readouterr().err
    assert "reader said: NiftiImageIO:" in report["cases"][0]["note"]
