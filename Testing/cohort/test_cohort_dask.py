"""The same cohort in this process, in local worker processes and on a real Dask cluster.

A LocalCluster with worker processes (no mocks): outputs must be bit-identical whichever way a
case ran, each report must say where it ran, and a killed Dask worker fails only its own case.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from support.cohort_helpers import (
    case_report,
    dask_available,
    hidden_files,
    pid_alive,
    require_in_ci,
    start_cli,
    wait_for_running,
    write_fixed,
    write_moving,
)

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort.run import run_cohort

ROLES = ("registered", "transform", "validmask", "qc", "qc_thumb")


@pytest.fixture(scope="module")
def cluster():
    require_in_ci(dask_available(), 'Dask (the "dask" extra)')
    from CTAffineRegisterLib.cohort.dask_backend import start_local_cluster

    client, local = start_local_cluster(2)
    yield client
    client.close()
    local.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    fixed = write_fixed(folder / "fixed.nii.gz")
    moving = [write_moving(folder / f"p{index}.nrrd", 20 + index) for index in range(3)]
    return fixed, moving


def test_outputs_are_bit_identical_in_process_in_workers_and_on_dask(cluster, inputs, tmp_path, capsys):
    fixed, moving = inputs
    runs = {
        "in-process": ["--jobs", "1"],
        "process-pool": ["--jobs", "2"],
        "dask": ["--scheduler", cluster.scheduler.address],  # an existing cluster, as on Slurm
    }
    for name, where in runs.items():
        arguments = ["register", "--fixed", str(fixed), "--moving", *map(str, moving[:2])]
        assert main([*arguments, "--out", str(tmp_path / name), "--quiet", *where]) == 0, capsys.readouterr()
    for case_id in ("p0", "p1"):
        reports = {name: case_report(tmp_path / name, case_id) for name in runs}
        assert {name: report["where"]["backend"] for name, report in reports.items()} == {
            name: name if name != "dask" else "dask" for name in runs
        }
        assert reports["dask"]["where"]["worker"] in cluster.scheduler_info()["workers"]
        assert reports["dask"]["where"]["host"]
        for role in ROLES:
            files = {name: (tmp_path / name / reports[name]["outputs"][role]).read_bytes() for name in runs}
            assert files["process-pool"] == files["in-process"], (case_id, role)
            assert files["dask"] == files["in-process"], (case_id, role)


def test_our_local_workers_keep_glibcs_own_malloc_thresholds(cluster):
    """Dask sets MALLOC_TRIM_THRESHOLD_ for its workers, which pins glibc's mmap threshold and made
    every case about 6 % slower; our own local cluster's workers start without it (ITK threads are
    shared out as in the process pool)."""
    import SimpleITK as sitk

    settings = cluster.run(os.getenv, "MALLOC_TRIM_THRESHOLD_")
    assert len(settings) == 2 and set(settings.values()) == {None}
    threads = cluster.run(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads)
    assert set(threads.values()) == {max(1, (os.cpu_count() or 1) // 2)}


def test_a_killed_dask_worker_fails_only_its_case(cluster, inputs, tmp_path):
    fixed, moving = inputs
    out = tmp_path / "out"
    result = {}
    runner = threading.Thread(target=lambda: result.update(run_cohort(fixed, moving, out, client=cluster)))
    runner.start()
    victim = wait_for_running(out, 1)[0]
    assert victim["where"]["worker"].startswith("tcp://")
    os.kill(victim["where"]["pid"], signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive()
    cases = {case["id"]: case for case in result["cases"]}
    assert cases[victim["id"]]["status"] == "failed"
    assert "Dask worker died" in cases[victim["id"]]["error"]
    assert sorted(case["status"] for case in cases.values()) == ["failed", "ok", "ok"], cases
    assert [name for name in os.listdir(out) if name.startswith(victim["id"] + "_")] == [
        f"{victim['id']}_report.json"
    ]
    assert hidden_files(out) == []


def test_ctrl_c_on_a_local_dask_cluster(inputs, tmp_path):
    require_in_ci(dask_available(), 'Dask (the "dask" extra)')
    fixed, moving = inputs
    out = tmp_path / "out"
    arguments = ["register", "--fixed", str(fixed), "--moving", *map(str, moving), "--out", str(out)]
    process = start_cli(*arguments, "--scheduler", "local", "--jobs", "2")
    wait_for_running(out, 1, process=process)
    os.killpg(process.pid, signal.SIGINT)
    signalled = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - signalled < 20.0
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    summary = json.loads((out / "report.json").read_text())
    assert summary["counts"]["cancelled"] >= 1 and summary["run"]["stopped_by"] == "SIGINT"
    assert hidden_files(out) == []


def test_sigterm_to_the_main_process_stops_a_local_dask_cluster(inputs, tmp_path):
    """`kill PID` (or a batch system's time limit) reaches the main process only: the cohort stops as
    with Ctrl-C, and the local cluster's worker processes go with it."""
    require_in_ci(dask_available(), 'Dask (the "dask" extra)')
    fixed, moving = inputs
    out = tmp_path / "out"
    arguments = ["register", "--fixed", str(fixed), "--moving", *map(str, moving), "--out", str(out)]
    process = start_cli(*arguments, "--scheduler", "local", "--jobs", "2", "--quiet")
    running = wait_for_running(out, 1, process=process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    summary = json.loads((out / "report.json").read_text())
    assert summary["run"]["stopped_by"] == "SIGTERM" and summary["counts"]["cancelled"] >= 1
    assert hidden_files(out) == []
    deadline = time.monotonic() + 10.0
    while any(pid_alive(report["where"]["pid"]) for report in running) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(pid_alive(report["where"]["pid"]) for report in running)  # no worker left behind


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_dask(*arguments: str):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_a_scheduler_killed_mid_run_is_one_error_line_and_the_summary(inputs, tmp_path):
    """A real `dask scheduler` process killed while a case runs: one `error: lost the Dask scheduler
    at ...` line (no CommClosedError traceback, no raw Dask ERROR blocks), the summary written, and
    the unfinished cases run again when the command is rerun."""
    require_in_ci(dask_available(), 'Dask (the "dask" extra)')
    import distributed

    fixed, moving = inputs
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    scheduler = _start_dask(
        "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", port, "--dashboard-address", ":0"
    )
    worker = None
    try:
        worker = _start_dask("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny")
        with distributed.Client(address, timeout="60s") as probe:
            probe.wait_for_workers(1, timeout=60)
        out = tmp_path / "out"
        arguments = ["register", "--fixed", str(fixed), "--moving", *map(str, moving), "--out", str(out)]
        process = start_cli(*arguments, "--scheduler", address)
        wait_for_running(out, 1, process=process)
        os.killpg(scheduler.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        for started in (scheduler, worker):
            if started is not None and started.poll() is None:
                os.killpg(started.pid, signal.SIGKILL)
            if started is not None:
                started.wait(timeout=30)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and "distributed.client - ERROR" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: lost the Dask scheduler at {address} (")
    assert "rerun the same command to continue" in errors[0]
    summary = json.loads((out / "report.json").read_text())
    assert summary["run"]["error"].startswith(f"lost the Dask scheduler at {address}")
    unfinished = [case["id"] for case in summary["cases"] if case["status"] != "ok"]
    assert unfinished and all(
        "lost the Dask scheduler" in case["error"] for case in summary["cases"] if case["status"] != "ok"
    )

    assert main([*arguments, "--jobs", "1", "--quiet"]) == 0  # the rest runs; nothing is refused
    again = json.loads((out / "report.json").read_text())
    assert [case["status"] for case in again["cases"]] == ["ok"] * len(moving)
    assert not any(
        again["cases"][index].get("resumed")
        for index, case in enumerate(summary["cases"])
        if case["id"] in unfinished
    )
    assert hidden_files(out) == []


def test_cases_that_only_waited_on_a_killed_worker_run_elsewhere(inputs, tmp_path):
    """One worker with one thread: the first case runs there and the other two wait on it. Killing it
    fails the running case only; the two that merely waited are sent again (its nanny starts a new
    worker) and finish. With two workers this depends on where Dask queued them; with one it does not."""
    require_in_ci(dask_available(), 'Dask (the "dask" extra)')
    from CTAffineRegisterLib.cohort.dask_backend import start_local_cluster

    fixed, moving = inputs
    client, local = start_local_cluster(1)
    try:
        out = tmp_path / "out"
        result = {}
        runner = threading.Thread(target=lambda: result.update(run_cohort(fixed, moving, out, client=client)))
        runner.start()
        victim = wait_for_running(out, 1)[0]
        os.kill(victim["where"]["pid"], signal.SIGKILL)
        runner.join(timeout=180)
        assert not runner.is_alive()
    finally:
        client.close()
        local.close()
    cases = {case["id"]: case for case in result["cases"]}
    assert cases[victim["id"]]["status"] == "failed" and "Dask worker died" in cases[victim["id"]]["error"]
    others = [case for case_id, case in cases.items() if case_id != victim["id"]]
    assert [case["status"] for case in others] == ["ok", "ok"], cases
