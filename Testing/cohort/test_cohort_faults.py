"""Faults of a cohort run, for real: Ctrl-C, SIGTERM, a worker killed, a full disk.

The command line tool runs in its own process group with local worker processes, and the signals
are sent as a terminal, a batch system or the out-of-memory killer would send them. Whatever
happens, no temporary file may stay behind and no case may be left half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.cohort_helpers import (
    case_report,
    hidden_files,
    pid_alive,
    start_cli,
    wait_for_running,
    write_fixed,
    write_moving,
)

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort.backends import ProcessPoolBackend, StopRequest
from CTAffineRegisterLib.cohort.case import (
    CASE_REPORT_FORMAT,
    CaseOptions,
    CaseTask,
    input_fingerprint,
    load_fixed,
    record_lost_case,
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    fixed = write_fixed(folder / "fixed.nii.gz")
    moving = [write_moving(folder / f"m{index}.nii.gz", index + 1) for index in range(6)]
    return fixed, moving


def _register(fixed: Path, moving: list[Path], out: Path, *extra: str) -> list[str]:
    return ["register", "--fixed", str(fixed), "--moving", *map(str, moving), "--out", str(out), *extra]


def _finish(process: subprocess.Popen, timeout: float = 60.0) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def _case_files(out: Path, case_id: str) -> list[str]:
    return sorted(
        name
        for name in os.listdir(out)
        if name.startswith(case_id + "_") and name != f"{case_id}_report.json"
    )


def test_ctrl_c_stops_promptly_cancels_the_rest_and_writes_the_summary(inputs, tmp_path):
    fixed, moving = inputs
    out = tmp_path / "out"
    process = start_cli(*_register(fixed, moving, out, "--jobs", "2"))
    running = wait_for_running(out, 1, process=process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    signalled = time.monotonic()
    status, stdout, stderr = _finish(process)
    assert time.monotonic() - signalled < 15.0
    assert status == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "stopped by SIGINT" in stderr
    summary = json.loads((out / "report.json").read_text())
    assert summary["run"]["stopped_by"] == "SIGINT"
    assert summary["counts"]["cancelled"] >= 3  # six cases on two workers: most never started
    cancelled = [case for case in summary["cases"] if case["status"] == "cancelled"]
    assert all(_case_files(out, case["id"]) == [] for case in cancelled)  # nothing half-made
    never_started = [case for case in cancelled if "not started" in case["error"]]
    assert never_started and not any((out / f"{case['id']}_report.json").exists() for case in never_started)
    assert hidden_files(out) == []
    assert not any(pid_alive(report["where"]["pid"]) for report in running)


def test_sigterm_stops_the_workers_too(inputs, tmp_path):
    fixed, moving = inputs
    out = tmp_path / "out"
    process = start_cli(*_register(fixed, moving[:4], out, "--jobs", "2", "--quiet"))
    running = wait_for_running(out, 1, process=process)
    process.send_signal(signal.SIGTERM)  # the main process only, as `kill PID` or a batch system
    status, _, stderr = _finish(process)
    assert status == 143, stderr
    assert "Traceback" not in stderr
    time.sleep(0.5)
    assert not any(pid_alive(report["where"]["pid"]) for report in running)  # no orphans left working
    summary = json.loads((out / "report.json").read_text())
    assert summary["run"]["stopped_by"] == "SIGTERM" and summary["counts"]["cancelled"] >= 1
    assert hidden_files(out) == []
    listing = set(os.listdir(out))
    time.sleep(1.0)
    assert set(os.listdir(out)) == listing  # nobody is still writing cases


def test_sighup_from_a_closed_terminal_stops_like_sigterm(inputs, tmp_path):
    """Closing the terminal sends SIGHUP to the whole process group: the run stops cleanly (exit
    129, the summary written, its workers gone), not killed with a leaked-semaphore warning."""
    fixed, moving = inputs
    out = tmp_path / "out"
    process = start_cli(*_register(fixed, moving[:4], out, "--jobs", "2"))
    running = wait_for_running(out, 1, process=process)
    os.killpg(process.pid, signal.SIGHUP)
    status, _, stderr = _finish(process)
    assert status == 129, stderr
    assert "Traceback" not in stderr and "leaked" not in stderr and "resource_tracker" not in stderr
    assert "stopped by SIGHUP" in stderr
    summary = json.loads((out / "report.json").read_text())
    assert summary["run"]["stopped_by"] == "SIGHUP" and summary["counts"]["cancelled"] >= 1
    cancelled = [case for case in summary["cases"] if case["status"] == "cancelled"]
    assert all(_case_files(out, case["id"]) == [] for case in cancelled)
    assert hidden_files(out) == []
    time.sleep(0.5)
    assert not any(pid_alive(report["where"]["pid"]) for report in running)


def test_a_killed_worker_fails_only_its_case_and_leaves_nothing(inputs, tmp_path):
    fixed, moving = inputs
    out = tmp_path / "out"
    process = start_cli(*_register(fixed, moving[:3], out, "--jobs", "2", "--quiet"))
    victim = wait_for_running(out, 1, process=process)[0]
    os.kill(victim["where"]["pid"], signal.SIGKILL)  # as the out-of-memory killer would
    status, _, stderr = _finish(process)
    assert status == 1
    report = case_report(out, victim["id"])
    assert report["status"] == "failed" and "killed by SIGKILL" in report["error"]
    assert str(victim["moving_path"]) in report["error"]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and victim["moving_path"] in errors[0]
    others = [
        case for case in json.loads((out / "report.json").read_text())["cases"] if case["id"] != victim["id"]
    ]
    assert [case["status"] for case in others] == ["ok", "ok"]  # a new worker took the third case
    assert _case_files(out, victim["id"]) == [] and hidden_files(out) == []


def test_a_lost_case_removes_its_partial_outputs_and_temporaries(inputs, tmp_path):
    """What the collector does for a worker killed mid-write: every file of that case goes (the
    case's "running" report shows this run claimed it, so they are this run's own)."""
    fixed, moving = inputs
    scan = load_fixed(str(fixed))
    task = CaseTask("m0", str(moving[0]), str(tmp_path), CaseOptions(), str(fixed), scan.fingerprint, "run")
    claim = {"format": CASE_REPORT_FORMAT, "run_id": "run", "status": "running"}
    (tmp_path / "m0_report.json").write_text(json.dumps(claim))
    partial = [
        tmp_path / "m0_registered.nii.gz",
        tmp_path / "m0_transform.tfm",
        tmp_path / ".m0_validmask.nii.gz.x1y2.nii.gz",
    ]
    for path in partial:
        path.write_bytes(b"half")
    (tmp_path / "m0x_registered.nii.gz").write_bytes(b"another case")  # not this case's
    report = record_lost_case(task, scan, "failed", f"{moving[0]}: killed", "2026-01-01", 1.5, {"pid": 1})
    assert sorted(os.listdir(tmp_path)) == ["m0_report.json", "m0x_registered.nii.gz"]
    assert report["status"] == "failed" and report["inputs"]["moving"] == input_fingerprint(str(moving[0]))


def test_a_case_lost_before_its_claim_removes_nothing(inputs, tmp_path):
    """A worker that died before claiming the case wrote nothing: the files an earlier, unfinished
    attempt left are not this run's, so the collector leaves them (the next claim replaces them)."""
    fixed, moving = inputs
    scan = load_fixed(str(fixed))
    task = CaseTask("m0", str(moving[0]), str(tmp_path), CaseOptions(), str(fixed), scan.fingerprint, "run")
    earlier = {"format": CASE_REPORT_FORMAT, "run_id": "earlier", "status": "failed"}
    (tmp_path / "m0_report.json").write_text(json.dumps(earlier))
    (tmp_path / "m0_registered.nii.gz").write_bytes(b"an earlier attempt")
    report = record_lost_case(task, scan, "failed", f"{moving[0]}: killed", "2026-01-01", 1.5, {"pid": 1})
    assert (tmp_path / "m0_registered.nii.gz").read_bytes() == b"an earlier attempt"
    assert json.loads((tmp_path / "m0_report.json").read_text())["run_id"] == "run"
    assert report["status"] == "failed"


def test_a_worker_retires_after_its_share_of_cases(inputs, tmp_path):
    """A worker process runs at most ``cases_per_worker`` cases, then a fresh one takes over, so memory
    a library keeps cannot grow over a long cohort. (Missing inputs: cases that end at once.)"""
    fixed, _ = inputs
    scan = load_fixed(str(fixed))
    tasks = [
        CaseTask(f"gone{index}", str(tmp_path / f"gone{index}.nii.gz"), str(tmp_path / "out"), CaseOptions(),
                 str(fixed), scan.fingerprint, "run")
        for index in range(3)
    ]  # fmt: skip
    reports = []
    backend = ProcessPoolBackend(1, cases_per_worker=2)
    backend.run(tasks, scan, lambda task, report: reports.append(report), StopRequest())
    assert [report["status"] for report in reports] == ["failed"] * 3
    pids = [report["where"]["pid"] for report in reports]
    assert pids[0] == pids[1] != pids[2] and os.getpid() not in pids


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a full disk is made with a small tmpfs, which needs root (CI runs as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


def _fill(folder: Path, leave_bytes: int) -> None:
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "2m")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def test_full_disk_while_writing_the_summary_is_one_error_line(inputs, small_disk, capsys):
    fixed, moving = inputs
    out = small_disk / "out"
    arguments = _register(fixed, moving[:1], out, "--jobs", "1", "--quiet")
    assert main(arguments) == 0
    capsys.readouterr()
    reports = {path.name: path.read_bytes() for path in out.glob("*.json")}
    _fill(small_disk, 0)
    status = main(arguments)  # all done: only the summary is rewritten, and the disk is full
    captured = capsys.readouterr()
    assert status == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {out / 'report.json'}: cannot write the cohort summary"
    )
    assert "no space left on the device" in errors[0] and "Traceback" not in captured.err
    assert {path.name: path.read_bytes() for path in out.glob("*.json")} == reports  # intact
    assert hidden_files(out) == []


def test_full_disk_while_writing_a_case_names_the_output(inputs, small_disk, capsys):
    fixed, moving = inputs
    out = small_disk / "out"
    out.mkdir()
    _fill(small_disk, 12_000)  # room for the reports, not for the registered scan
    status = main(_register(fixed, moving[:1], out, "--jobs", "1", "--quiet"))
    captured = capsys.readouterr()
    assert status == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors[0] == f"error: {out / 'm0_registered.nii.gz'}: cannot write (no space left on the device)"
    assert _case_files(out, "m0") == [] and hidden_files(out) == []
    assert case_report(out, "m0")["status"] == "failed"
