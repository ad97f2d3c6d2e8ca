"""A named pipe given as an input is refused before it is opened, in real processes (issue 21, item 11).

Opening a FIFO waits for a writer forever and Python cannot run its Ctrl-C/SIGTERM handlers meanwhile,
so each command runs in its own process with a deadline: before the fix, these never ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import SimpleITK as sitk
from support.cohort_helpers import cli_command
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.synthetic import make_pair

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")

DEADLINE_S = 90.0


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("special")
    pair = make_pair(seed=21, **TINY_PAIR)
    paths = {
        "fixed": folder / "fixed.nii.gz",
        "moving": folder / "moving.nrrd",
        "transform": folder / "t.tfm",
        "pipe": folder / "pipe.nii.gz",
    }
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    sitk.WriteTransform(pair.true_transform, str(paths["transform"]))
    os.mkfifo(paths["pipe"])
    return {name: str(path) for name, path in paths.items()}


def _run(*arguments: str) -> subprocess.CompletedProcess:
    process = subprocess.Popen(
        cli_command(*arguments),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{' '.join(arguments)} still waited on the named pipe after {DEADLINE_S:.0f} s")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize(
    "command, status",
    [
        (["inspect", "{pipe}"], 1),
        (["check", "--fixed", "{pipe}", "--moving", "{moving}", "--transform", "{transform}"], 2),
        (["check", "--fixed", "{fixed}", "--moving", "{moving}", "--transform", "{pipe}"], 2),
        (
            ["apply", "--fixed", "{fixed}", "--transform", "{pipe}", "--input", "{moving}", "--out", "{out}"],
            2,
        ),
        (
            [
                "apply",
                "--fixed",
                "{fixed}",
                "--transform",
                "{transform}",
                "--input",
                "{pipe}",
                "--out",
                "{out}",
            ],
            1,
        ),
        (
            ["apply", "--fixed", "{fixed}", "--transform", "{transform}", "--labels"]
            + ["--input", "{pipe}", "--out", "{out}"],
            1,
        ),
        (["register", "--fixed", "{pipe}", "--moving", "{moving}", "--out", "{out}", "--jobs", "1"], 2),
    ],
)
def test_a_named_pipe_is_refused_by_name_without_waiting(tmp_path, files, command, status):
    arguments = [part.format(out=str(tmp_path / "out"), **files) for part in command]
    result = _run(*arguments)
    assert result.returncode == status, result.stderr
    line = f"error: {files['pipe']}: is a named pipe (FIFO), not a regular file or folder"
    assert line in result.stderr
    assert "Traceback" not in result.stderr


def test_register_fails_a_named_pipe_moving_scan_and_runs_the_others(tmp_path, files):
    out = tmp_path / "out"
    moving = [files["pipe"], files["moving"]]
    result = _run(
        "register", "--fixed", files["fixed"], "--moving", *moving, "--out", str(out), "--jobs", "1"
    )
    assert result.returncode == 1, result.stderr
    assert f"{files['pipe']}: is a named pipe (FIFO)" in result.stderr
    assert (out / "moving_registered.nii.gz").is_file()
    assert Path(files["pipe"]).exists()  # inputs are never touched


def test_a_named_pipe_as_moving_list_is_refused_and_one_below_moving_root_is_not_opened(tmp_path, files):
    out = tmp_path / "out"
    result = _run("register", "--fixed", files["fixed"], "--moving-list", files["pipe"], "--out", str(out))
    assert result.returncode == 2
    assert f"error: {files['pipe']}: is a named pipe (FIFO)" in result.stderr
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    os.mkfifo(root / "sub" / "slice_without_suffix")  # a sub-folder's files are looked at for DICOM
    Path(root / "scan.nrrd").write_bytes(Path(files["moving"]).read_bytes())
    result = _run("register", "--fixed", files["fixed"], "--moving-root", str(root), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "scan_registered.nii.gz").is_file()
