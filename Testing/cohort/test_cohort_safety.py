"""Bad output folders and options are refused before any work, with one error line and exit 2.

Each of these used to start (or even finish) the registrations and then fail with a traceback,
write a value other than the one reported, or destroy an input.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import SimpleITK as sitk
from support.cohort_helpers import case_report, hidden_files, write_fixed, write_moving

from CTAffineRegisterLib.cli.commands import main


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety")
    return write_fixed(folder / "fixed.nii.gz"), write_moving(folder / "scan.nii.gz", 7)


def _refused(capsys, arguments: list[str]) -> str:
    """Run ``register``; it must stop at once with status 2 and exactly one error line."""
    started = time.perf_counter()
    status = main(["register", *arguments, "--quiet"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert time.perf_counter() - started < 5.0  # refused before any registration
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_out_that_is_a_file_or_lies_under_one(scans, tmp_path, capsys):
    fixed, moving = scans
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    line = _refused(capsys, ["--fixed", str(fixed), "--moving", str(moving), "--out", str(a_file)])
    assert line == f"error: {a_file}: is a file; --out must be a folder"
    below = a_file / "deeper" / "out"
    line = _refused(capsys, ["--fixed", str(fixed), "--moving", str(moving), "--out", str(below)])
    assert line == f"error: {below}: lies under {a_file}, which is a file; --out must be a folder"


def test_read_only_out_is_refused_before_any_work(scans, tmp_path, capsys):
    fixed, moving = scans
    out = tmp_path / "readonly"
    out.mkdir()
    mounted = False
    if os.geteuid() == 0:  # root writes through permissions: make the folder a read-only file system
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(out)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"root cannot be denied writing here: {done.stderr.decode().strip()}")
        mounted = True
    else:
        out.chmod(0o555)
    try:
        line = _refused(capsys, ["--fixed", str(fixed), "--moving", str(moving), "--out", str(out)])
        assert line.startswith(f"error: {out}: output folder cannot be written (")
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=False)
        out.chmod(0o755)


def test_report_json_that_is_a_folder_is_refused_before_any_work(scans, tmp_path, capsys):
    fixed, moving = scans
    out = tmp_path / "out"
    (out / "report.json").mkdir(parents=True)
    arguments = ["--fixed", str(fixed), "--moving", str(moving), "--out", str(out), "--overwrite"]
    line = _refused(capsys, arguments)
    assert line == f"error: {out / 'report.json'}: is a folder; the cohort summary is written there"
    assert sorted(os.listdir(out)) == ["report.json"]


def test_someone_elses_report_csv_is_refused_without_overwrite(scans, tmp_path, capsys):
    fixed, moving = scans
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.csv").write_text("patient,weight\n7,80\n")  # not ours: a rerun must not replace it
    line = _refused(capsys, ["--fixed", str(fixed), "--moving", str(moving), "--out", str(out)])
    reason = "already exists and was not written by ct-affine-register (use --overwrite)"
    assert line == f"error: {out / 'report.csv'}: {reason}"
    assert sorted(os.listdir(out)) == ["report.csv"] and "patient" in (out / "report.csv").read_text()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "lots"])
def test_fill_must_be_a_finite_number_at_parse_time(scans, tmp_path, capsys, value):
    fixed, moving = scans
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "register",
                "--fixed",
                str(fixed),
                "--moving",
                str(moving),
                "--out",
                str(tmp_path),
                "--fill",
                value,
            ]
        )
    assert stop.value.code == 2
    assert "--fill" in capsys.readouterr().err


@pytest.mark.parametrize(
    "value, reason",
    [
        ("1e40", "--fill 1e+40 is outside the range of its 16-bit signed integer output (-32768..32767)"),
        ("-40000", "--fill -40000 is outside the range of its 16-bit signed integer output (-32768..32767)"),
        ("0.5", "--fill 0.5 is not a whole number, and its output is 16-bit signed integer"),
    ],
)
def test_fill_the_output_cannot_hold_is_refused_before_any_registration(
    scans, tmp_path, capsys, value, reason
):
    fixed, moving = scans
    out = tmp_path / "out"
    line = _refused(
        capsys, ["--fixed", str(fixed), "--moving", str(moving), "--out", str(out), "--fill", value]
    )
    assert line == f"error: {moving}: {reason}"
    assert os.listdir(out) == []


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    fixed = write_fixed(out / "scan_registered.nii.gz")  # the fixed sits where an output would go
    moving = write_moving(out / "scan.nii.gz", 3)
    before = fixed.read_bytes()
    arguments = ["--fixed", str(fixed), "--moving", str(moving), "--out", str(out), "--overwrite"]
    line = _refused(capsys, arguments)
    assert line == f"error: {fixed}: is the input {fixed}; writing it would destroy an input"
    assert fixed.read_bytes() == before and sorted(os.listdir(out)) == [
        "scan.nii.gz",
        "scan_registered.nii.gz",
    ]
    link = tmp_path / "elsewhere" / "scan_2.nii.gz"  # a hard link is the same file under another name
    link.parent.mkdir()
    os.link(moving, link)
    other = ["--fixed", str(write_fixed(tmp_path / "f.nii.gz")), "--moving", str(link), "--out", str(out)]
    (out / "scan_registered.nii.gz").unlink()
    os.link(moving, out / "scan_2_registered.nii.gz")
    line = _refused(capsys, [*other, "--overwrite"])
    assert "writing it would destroy an input" in line


def test_out_inside_an_input_series_folder_is_refused(scans, tmp_path, capsys):
    fixed, _ = scans
    series = tmp_path / "series"
    series.mkdir()
    (series / "IM0001.dcm").write_bytes(b"\0" * 132)
    line = _refused(capsys, ["--fixed", str(fixed), "--moving", str(series), "--out", str(series / "out")])
    assert (
        line
        == f"error: {series / 'out'}: lies inside the input folder {series}; outputs would change an input"
    )


def test_a_one_slice_fixed_scan_stops_everything_with_status_2(scans, tmp_path, capsys):
    _, moving = scans
    thin = tmp_path / "slab.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(scans[0]))[:, :, 10:11], str(thin))
    line = _refused(capsys, ["--fixed", str(thin), "--moving", str(moving), "--out", str(tmp_path / "out")])
    assert line == f"error: {thin}: has a single slice (40×40×1 voxels); the fixed scan must be a 3D volume"


def test_jobs_with_a_remote_scheduler_is_a_usage_error(scans, tmp_path, capsys):
    fixed, moving = scans
    arguments = ["register", "--fixed", str(fixed), "--moving", str(moving), "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as stop:
        main([*arguments, "--scheduler", "tcp://127.0.0.1:8786", "--jobs", "2"])
    assert stop.value.code == 2 and "--jobs cannot be used with --scheduler" in capsys.readouterr().err


def test_output_format_names_the_files_and_counts_as_an_option_for_resume(scans, tmp_path, capsys):
    fixed, moving = scans
    out = tmp_path / "out"
    arguments = ["register", "--fixed", str(fixed), "--moving", str(moving), "--out", str(out), "--quiet"]
    assert main([*arguments, "--output-format", "nrrd", "--jobs", "1"]) == 0
    report = case_report(out, "scan")
    assert report["outputs"]["registered"] == "scan_registered.nrrd"
    assert report["outputs"]["validmask"] == "scan_validmask.nrrd"
    registered = sitk.ReadImage(str(out / "scan_registered.nrrd"))
    assert registered.GetSize() == sitk.ReadImage(str(fixed)).GetSize()
    assert not any(name.endswith(".nii.gz") for name in os.listdir(out))
    capsys.readouterr()
    assert main([*arguments, "--jobs", "1"]) == 2  # the default nii.gz now: finished from other options
    assert "output_format 'nrrd' now 'nii.gz'" in capsys.readouterr().err
    assert main([*arguments, "--output-format", "nrrd", "--jobs", "1"]) == 0  # same options: all done
    assert "(1 finished by an earlier run)" in capsys.readouterr().out
    assert hidden_files(Path(out)) == []
