"""The command line: inspect, register (batch, bad inputs, no overwriting), demo."""

from __future__ import annotations

import itertools
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.dicom_writer import SERIES_UID, write_series
from support.expected_masks import expected_data_mask

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cli.demo import run_demo
from CTAffineRegisterLib.quality.accuracy import ring_voxels, target_registration_error
from CTAffineRegisterLib.synthetic import insert_fov_padding, make_pair, make_phantom

SMALL_PAIR = {
    "fixed_size": (80, 80, 48),
    "fixed_spacing": (4.0, 4.0, 5.0),
    "moving_spacing": (4.4, 4.4, 5.5),
    "point_count": 500,
}


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=11, **SMALL_PAIR)


@pytest.fixture
def pair_files(tmp_path: Path, pair) -> dict:
    inputs = tmp_path / "in"
    inputs.mkdir()
    paths = {"fixed": inputs / "fixed.nii.gz", "moving": inputs / "scan_b.nrrd"}
    # the fixed scan's air 25 HU above the moving scan's: a fill taken from the wrong scan shows
    sitk.WriteImage(pair.fixed + 25, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    return paths


def _bad_inputs(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    two_d = folder / "slice2d.nrrd"
    sitk.WriteImage(sitk.Image([32, 32], sitk.sitkInt16), str(two_d))
    empty = folder / "empty.nii.gz"
    empty.write_bytes(b"")
    text = folder / "notes.nii.gz"
    text.write_text("this is not an image")
    nan_only = folder / "nan.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 8, 8), np.nan, np.float32)), str(nan_only))
    return {"missing": folder / "missing.nii.gz", "2D": two_d, "empty": empty, "text": text, "nan": nan_only}


# --- inspect ------------------------------------------------------------------------------------


def test_inspect_json_reports_each_input(tmp_path, capsys):
    image = insert_fov_padding(make_phantom(size=(64, 64, 24), spacing=(5.0, 5.0, 6.0), seed=2), -2048, 140.0)
    for corner in itertools.product((0, 63), (0, 63), (0, 23)):
        image[corner] = -1000  # Slicer's corner background says air, the ring is -2048
    padded = tmp_path / "padded.mha"
    sitk.WriteImage(image, str(padded))
    status = main(["inspect", str(padded), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert status == 0
    assert rows[0]["path"] == str(padded)
    expected_keys = {
        "corner_median",
        "padding_value",
        "padding_fraction",
        "fov",
        "air_value",
        "kind",
        "summary",
    }
    assert expected_keys <= set(rows[0])
    assert rows[0]["padding_value"] == -2048 and rows[0]["kind"] == "fov-padding"
    assert rows[0]["corner_median"] == -1000
    assert rows[0]["fov"]["shape"] == "circle"
    # the table: the same figures under their headings
    assert main(["inspect", str(padded)]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[:4] == ["path", "corners", "padding", "air"]
    assert row.split()[:4] == [str(padded), "-1000", "-2048", str(rows[0]["air_value"])]


def test_inspect_table_names_padding_on_the_real_ge_scan(capsys):
    folder = shared_sample("dcmqi/ct-3slice")
    assert main(["inspect", str(folder)]) == 0
    out = capsys.readouterr().out
    assert str(folder) in out and "fov-padding (-3024" in out and "circular FOV" in out


def test_inspect_bad_files_named_others_still_reported(tmp_path, pair_files, capsys):
    bad = _bad_inputs(tmp_path / "bad")
    paths = [str(pair_files["fixed"])] + [str(p) for p in bad.values()]
    status = main(["inspect", "--json", *paths])
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert status == 1
    assert rows[0]["kind"] == "air-background"
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad)
    for path, line in zip(bad.values(), errors):
        assert str(path) in line
    assert "no such file" in errors[0]
    assert "2D" in errors[1]
    assert "empty" in errors[2]
    assert "not a readable image" in errors[3]
    assert "no finite values" in errors[4]
    assert "Traceback" not in captured.err


def test_inspect_table_shows_every_note_under_its_scan(tmp_path, capsys):
    """The "several series" note (and any other) used to reach only --json."""
    folder = tmp_path / "two_series"
    write_series(folder, [5.0 * i for i in range(6)], series_uid=SERIES_UID + ".1", prefix="a")
    write_series(folder, [5.0 * i for i in range(3)], series_uid=SERIES_UID + ".2", prefix="b")
    nested = tmp_path / "patient"
    write_series(nested / "study" / "series", [5.0 * i for i in range(6)])
    assert main(["inspect", str(folder), str(nested)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(index for index, line in enumerate(lines) if line.startswith(str(folder)))
    assert (
        lines[row + 1].startswith("  note: folder holds 2 DICOM series; used")
        and "most slices" in lines[row + 1]
    )
    assert any(line.startswith("  note: no DICOM files in the folder itself") for line in lines)


def test_inspect_reports_a_slice_gap_and_refuses_it_unless_allowed(tmp_path, capfd):
    folder = tmp_path / "gap"
    write_series(folder, [0.0, 5.0, 10.0, 25.0, 30.0, 35.0])
    status = main(["inspect", str(folder), "--json"])
    captured = capfd.readouterr()
    rows = json.loads(captured.out)
    assert status == 1
    assert "2 missing slice(s)" in rows[0]["notes"][0] and rows[0]["kind"]  # analysed all the same
    errors = captured.err.splitlines()
    assert len(errors) == 1  # one line: no raw ITK WARNING block around it
    assert errors[0].startswith(f"error: {folder}: DICOM series has 2 missing slice(s)")
    assert "--allow-slice-gaps" in errors[0]
    assert main(["inspect", str(folder), "--allow-slice-gaps"]) == 0
    captured = capfd.readouterr()
    assert captured.err == "" and "note: DICOM series has 2 missing slice(s)" in captured.out


def test_inspect_turns_reader_warnings_into_notes(tmp_path, capfd):
    """A header that makes ITK print a multi-line WARNING block: one note, nothing raw on stderr."""
    path = tmp_path / "scan.nii"
    sitk.WriteImage(make_phantom(size=(32, 32, 16), spacing=(8.0, 8.0, 9.0), seed=4), str(path))
    data = bytearray(path.read_bytes())
    struct.pack_into("<f", data, 80, -struct.unpack_from("<f", data, 80)[0])  # pixdim x negative
    path.write_bytes(bytes(data))
    assert main(["inspect", str(path)]) == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    assert "note: negative spacing in the header (pixdim x -8)" in captured.out
    assert "note: reader said: NiftiImageIO:" in captured.out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["inspect"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit) as stop:
        main(["register", "--fixed", "a.nii.gz"])
    assert stop.value.code == 2
    assert main([]) == 2


# --- register -----------------------------------------------------------------------------------


def test_register_writes_every_output_and_a_report(tmp_path, pair, pair_files):
    out = tmp_path / "out"
    status = main(
        [
            "register",
            "--fixed",
            str(pair_files["fixed"]),
            "--moving",
            str(pair_files["moving"]),
            "--out",
            str(out),
        ]
    )
    assert status == 0
    names = {"scan_b_registered.nii.gz", "scan_b_transform.tfm", "scan_b_validmask.nii.gz", "scan_b_qc.png"}
    names |= {"scan_b_qc_thumb.png", "scan_b_report.json", "report.json", "report.csv", "report.html"}
    assert names == set(os.listdir(out))
    report = json.loads((out / "report.json").read_text())
    case = report["cases"][0]
    assert case["status"] == "ok" and case["error"] is None
    assert case["moving"]["padding_value"] == -3024 and case["fixed"]["kind"] == "air-background"
    assert case["quality"]["verdict"] == "ok"
    for key in ("fill", "metric", "stop_reason", "seconds"):
        assert key in case

    transform = sitk.ReadTransform(str(out / "scan_b_transform.tfm"))
    mean_tre, _ = target_registration_error(transform, pair.true_transform, pair.body_points)
    assert mean_tre < 1.5  # coarse 4 mm test grid; the accuracy tests use finer ones
    registered = sitk.ReadImage(str(out / "scan_b_registered.nii.gz"))
    assert registered.GetPixelID() == pair.moving.GetPixelID()
    assert registered.GetSize() == pair.fixed.GetSize()
    assert np.allclose(registered.GetOrigin(), pair.fixed.GetOrigin())
    assert ring_voxels(registered, pair.fixed_valid_mask) == 0
    # the mask marks exactly the voxels with real moving data; the others hold the moving air level
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "scan_b_validmask.nii.gz")))
    expected = expected_data_mask(pair.fixed, pair.moving_valid_mask, transform)
    assert np.count_nonzero((mask > 0) != expected) <= 1e-5 * expected.size and not expected.all()
    air = case["moving"]["air_value"]
    assert case["fill"] == air != -1024 and case["fill_source"] == "moving air level"
    assert case["fixed"]["air_value"] == air + 25  # the moving scan's air, not the fixed one's
    assert np.all(sitk.GetArrayViewFromImage(registered)[mask == 0] == air)
    picture = sitk.ReadImage(str(out / "scan_b_qc.png"))
    assert picture.GetNumberOfComponentsPerPixel() == 3 and picture.GetSize()[0] > picture.GetSize()[1]


def test_one_bad_moving_case_does_not_stop_the_others(tmp_path, pair_files, capsys):
    bad = _bad_inputs(tmp_path / "bad")
    out = tmp_path / "out"
    constant = tmp_path / "bad" / "constant.nii.gz"
    sitk.WriteImage(sitk.Image([40, 40, 20], sitk.sitkInt16) - 1000, str(constant))
    moving = [str(bad["2D"]), str(pair_files["moving"]), str(bad["missing"]), str(constant)]
    status = main(
        ["register", "--quiet", "--fixed", str(pair_files["fixed"]), "--moving", *moving, "--out", str(out)]
    )
    assert status == 1
    report = json.loads((out / "report.json").read_text())
    statuses = [case["status"] for case in report["cases"]]
    assert statuses == ["failed", "ok", "failed", "failed"]
    assert str(bad["2D"]) in report["cases"][0]["error"] and "2D" in report["cases"][0]["error"]
    assert "no such file" in report["cases"][2]["error"]
    assert str(constant) in report["cases"][3]["error"] and "constant" in report["cases"][3]["error"]
    # nothing half-made for the failed cases: only their reports, saying why
    made = [name for name in os.listdir(out) if name.startswith(("slice2d", "missing", "constant"))]
    assert sorted(made) == ["constant_report.json", "missing_report.json", "slice2d_report.json"]
    assert "Traceback" not in capsys.readouterr().err


def test_existing_outputs_are_not_overwritten_without_consent(tmp_path, pair_files):
    out = tmp_path / "out"
    out.mkdir()
    sentinel = out / "scan_b_transform.tfm"
    sentinel.write_text("keep me")
    arguments = [
        "register",
        "--quiet",
        "--fixed",
        str(pair_files["fixed"]),
        "--moving",
        str(pair_files["moving"]),
    ]
    assert main([*arguments, "--out", str(out)]) == 1
    assert sentinel.read_text() == "keep me"
    report = json.loads((out / "report.json").read_text())
    assert "already exists" in report["cases"][0]["error"]
    assert not (out / "scan_b_registered.nii.gz").exists()
    # a second run still refuses (the file is not this tool's), then --overwrite replaces everything
    assert main([*arguments, "--out", str(out)]) == 1
    assert sentinel.read_text() == "keep me"
    assert main([*arguments, "--out", str(out), "--overwrite"]) == 0
    assert sentinel.read_text().startswith("#Insight Transform File")
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no temporary files left


def test_fixed_that_cannot_be_read_is_a_usage_error(tmp_path, pair_files, capsys):
    status = main(
        [
            "register",
            "--fixed",
            str(tmp_path / "nope.nii.gz"),
            "--moving",
            str(pair_files["moving"]),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert status == 2
    assert "nope.nii.gz: no such file" in capsys.readouterr().err


# --- demo ---------------------------------------------------------------------------------------


def test_demo_registers_the_generated_pair_sub_millimetre_and_reruns(tmp_path, capsys):
    status = main(["demo", "--out", str(tmp_path / "demo")])
    out = capsys.readouterr().out
    assert status == 0
    line = next(line for line in out.splitlines() if line.startswith("target registration error"))
    mean_tre = float(line.split("mean ")[1].split(" mm")[0])
    assert mean_tre < 1.0
    assert "ring voxels (< -1100 HU inside the fixed field of view): 0 " in out
    assert (tmp_path / "demo" / "moving_B_registered.nii.gz").exists()

    # The README's one-liner run a second time: same inputs reused, its own results replaced.
    inputs_before = (tmp_path / "demo" / "inputs" / "moving_B.nii.gz").stat().st_mtime_ns
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    second = capsys.readouterr().out
    assert "reusing the identical inputs" in second and line in second  # deterministic: same TRE
    assert (tmp_path / "demo" / "inputs" / "moving_B.nii.gz").stat().st_mtime_ns == inputs_before

    # Another seed would replace the inputs: refused, naming the file.
    assert main(["demo", "--out", str(tmp_path / "demo"), "--seed", "1"]) == 2
    assert "fixed_A.nii.gz: already exists (use --overwrite" in capsys.readouterr().err
    # So are inputs someone changed (the true transform still the demo's): not the demo's to reuse.
    moving_path = tmp_path / "demo" / "inputs" / "moving_B.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(moving_path)) + 1, str(moving_path))
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert "fixed_A.nii.gz: already exists (use --overwrite" in capsys.readouterr().err


def test_demo_refuses_a_negative_seed_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--out", str(tmp_path / "demo"), "--seed", "-5"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed: must be 0 or more, not -5" in err and "Traceback" not in err
    assert not (tmp_path / "demo").exists()
    with pytest.raises(ValueError, match="seed must be a whole number, 0 or more, not -5"):
        run_demo(str(tmp_path / "demo"), seed=-5)
