"""Small phantoms and helpers shared by the cohort tests (not a test module).

The phantoms are tiny (40×40×24 voxels at 6-9 mm) so a case registers in well under a second and
the fault tests stay fast; the cohort engine does not care about size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.synthetic import make_pair

TINY = {
    "fixed_size": (40, 40, 24),
    "fixed_spacing": (6.0, 6.0, 9.0),
    "moving_spacing": (6.9, 6.9, 10.35),
    "point_count": 50,
}
ROOT = Path(__file__).resolve().parents[2]


def write_fixed(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(make_pair(seed=0, **TINY).fixed, str(path))
    return path


def write_moving(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(make_pair(seed=seed, **TINY).moving, str(path))
    return path


def hidden_files(folder: Path) -> list[str]:
    """Temporary files of atomic writes are hidden (".name.xxxx"): none may stay behind."""
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def case_report(out: Path, case_id: str) -> dict:
    return json.loads((out / f"{case_id}_report.json").read_text())


def cli_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "CTAffineRegisterLib.cli", *arguments]


def start_cli(*arguments: str, **options) -> subprocess.Popen:
    """The command line tool in its own process group, as a terminal would run it."""
    return subprocess.Popen(
        cli_command(*arguments),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=str(ROOT),
        **options,
    )


def wait_for_running(out: Path, count: int = 1, timeout: float = 120.0, process=None) -> list[dict]:
    """Wait until ``count`` cases report "running"; returns their reports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = []
        for path in out.glob("*_report.json") if out.is_dir() else []:
            try:
                report = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if report.get("status") == "running":
                running.append(report)
        if len(running) >= count:
            return running
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the run ended before {count} cases were running: {process.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError(f"no {count} running cases in {out} after {timeout} s")


def finished_pid() -> int:
    """The process id of a process that has already ended: what a stale lock names."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def require_in_ci(available: bool, what: str) -> None:
    """Skip a test whose tool is missing, except in CI, where every cohort test must run."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: .ci/run must install it")
    pytest.skip(f"{what} is not installed")


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def chromium_path() -> Optional[str]:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None
