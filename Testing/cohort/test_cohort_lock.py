"""Two runs into one output folder: the second is refused while the first lives (real processes).

A run holds ``OUT/.ct-affine-register.lock`` (host, pid) while it works. Without it, a second run
took the first's cases for its own unfinished work, and its clean-up after Ctrl-C removed results
the first had finished. Clean-up also leaves alone any case another run has taken.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.cohort_helpers import (
    cli_command,
    finished_pid,
    hidden_files,
    start_cli,
    wait_for_running,
    write_fixed,
    write_moving,
)

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort.case import (
    CASE_REPORT_FORMAT,
    CaseOptions,
    CaseTask,
    load_fixed,
    record_lost_case,
    run_case,
)
from CTAffineRegisterLib.cohort.lock import LOCK_FORMAT, LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lock")
    fixed = write_fixed(folder / "fixed.nii.gz")
    moving = [write_moving(folder / f"m{index}.nii.gz", index + 1) for index in range(3)]
    return fixed, moving


def _arguments(fixed: Path, moving: list, out: Path) -> list[str]:
    return ["register", "--fixed", str(fixed), "--moving", *map(str, moving), "--out", str(out)]


def _listing(out: Path) -> dict:
    return {name: (out / name).lstat().st_mtime_ns for name in os.listdir(out)}


def test_a_second_run_into_a_folder_in_use_is_refused_at_once(inputs, tmp_path):
    fixed, moving = inputs
    moving = moving[:1]  # one case is enough to be held while B runs
    out = tmp_path / "out"
    first = start_cli(*_arguments(fixed, moving, out), "--jobs", "1", "--quiet")
    try:
        wait_for_running(out, 1, process=first)
        os.kill(first.pid, signal.SIGSTOP)  # the first run stays alive, holding its case, while B runs
        before = _listing(out)
        second = subprocess.run(
            cli_command(*_arguments(fixed, moving, out), "--jobs", "1"),
            capture_output=True,
            text=True,
            cwd=str(ROOT),
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {out}: is in use by another run ")
        assert f"pid {first.pid} on host {socket.gethostname()}" in lines[0]
        assert _listing(out) == before  # the refused run touched nothing
    finally:
        os.kill(first.pid, signal.SIGCONT)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    summary = json.loads((out / "report.json").read_text())
    assert [case["status"] for case in summary["cases"]] == ["ok"]
    assert all((out / name).exists() for case in summary["cases"] for name in case["outputs"].values())
    assert hidden_files(out) == []  # the lock went with its run


def test_a_stale_lock_is_taken_over_with_a_note(inputs, tmp_path, capsys):
    fixed, moving = inputs
    out = tmp_path / "out"
    out.mkdir()
    gone = finished_pid()  # a process id that no longer runs
    stale = {"format": LOCK_FORMAT, "host": socket.gethostname(), "pid": gone, "token": "old"}
    (out / LOCK_NAME).write_text(json.dumps(stale))
    status = main([*_arguments(fixed, moving[:1], out), "--jobs", "1"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert f"note: {out}: took over the stale lock of run pid {gone} on host {socket.gethostname()}" in err
    assert not (out / LOCK_NAME).exists()
    summary = json.loads((out / "report.json").read_text())
    assert "took over the stale lock" in summary["run"]["lock_note"]


def test_a_lock_of_another_host_is_refused_naming_it(inputs, tmp_path, capsys):
    fixed, moving = inputs
    out = tmp_path / "out"
    out.mkdir()
    lock = {"format": LOCK_FORMAT, "host": "node-17.cluster", "pid": 4242, "token": "x", "started": "then"}
    (out / LOCK_NAME).write_text(json.dumps(lock))
    assert main([*_arguments(fixed, moving[:1], out), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pid 4242 on host node-17.cluster" in err
    assert str(out / LOCK_NAME) in err  # how to remove it by hand if that run is surely gone
    assert sorted(os.listdir(out)) == [LOCK_NAME]


def _other_runs_case(out: Path, case_id: str) -> dict:
    """A case another run finished: its outputs and its "ok" report."""
    outputs = {"registered": f"{case_id}_registered.nii.gz", "qc": f"{case_id}_qc.png"}
    for name in outputs.values():
        (out / name).write_bytes(b"finished by run A")
    report = {"format": CASE_REPORT_FORMAT, "run_id": "run-A", "status": "ok", "outputs": outputs}
    (out / f"{case_id}_report.json").write_text(json.dumps(report))
    return report


def test_a_lost_case_taken_by_another_run_is_left_alone(inputs, tmp_path):
    fixed, moving = inputs
    scan = load_fixed(str(fixed))
    task = CaseTask("m1", str(moving[1]), str(tmp_path), CaseOptions(), str(fixed), scan.fingerprint, "run-B")
    before = _other_runs_case(tmp_path, "m1")
    listing = _listing(tmp_path)
    report = record_lost_case(task, scan, "cancelled", "m1: cancelled", "2026-01-01", 1.0, {"pid": 1})
    assert report["status"] == "cancelled" and "another run took this case" in report["report_error"]
    assert _listing(tmp_path) == listing
    assert json.loads((tmp_path / "m1_report.json").read_text()) == before


def test_a_cancelled_case_removes_only_what_it_wrote(inputs, tmp_path):
    """Run B claims m1, run A then finishes it; B is cancelled: A's files and report stay."""
    fixed, moving = inputs
    scan = load_fixed(str(fixed))
    task = CaseTask("m1", str(moving[1]), str(tmp_path), CaseOptions(), str(fixed), scan.fingerprint, "run-B")
    finished = {}

    def cancel() -> bool:  # run A finishes the case while B holds it; then B is stopped
        if not finished:
            finished.update(_other_runs_case(tmp_path, "m1"))
        return True

    report = run_case(task, scan, cancel=cancel)
    assert report["status"] == "cancelled"
    assert json.loads((tmp_path / "m1_report.json").read_text()) == finished
    assert sorted(os.listdir(tmp_path)) == ["m1_qc.png", "m1_registered.nii.gz", "m1_report.json"]


def test_the_lock_of_a_killed_run_is_stale(inputs, tmp_path, capsys):
    """A run killed with SIGKILL cannot remove its lock: the next run takes it over, saying so."""
    fixed, moving = inputs
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from CTAffineRegisterLib.cohort.lock import acquire_lock\n"
            "acquire_lock(sys.argv[1])\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    assert os.path.islink(out / LOCK_NAME)  # the usual lock: a link whose target names the owner
    assert os.readlink(out / LOCK_NAME).startswith(f"ct-affine-register:{holder.pid}:")
    assert main([*_arguments(fixed, moving[:1], out), "--jobs", "1", "--quiet"]) == 2  # it lives: refused
    assert f"pid {holder.pid} on host" in capsys.readouterr().err
    holder.kill()
    holder.wait()
    holder.stdout.close()
    assert main([*_arguments(fixed, moving[:1], out), "--jobs", "1"]) == 0
    assert f"took over the stale lock of run pid {holder.pid} on host" in capsys.readouterr().err
    assert not os.path.lexists(out / LOCK_NAME)
