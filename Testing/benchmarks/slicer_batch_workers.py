"""Does ``--jobs`` > 1 help inside Slicer's Python? The batch script run the way Slicer runs it.

Usage: python Testing/benchmarks/slicer_batch_workers.py [--cases 4] [--repeats 2]

No Slicer runs here: ``Testing/slicer_script_host.py`` reproduces what the script sees of Slicer
(``sys.executable`` replaced by a ``PythonSlicer`` launcher after start-up, ``slicer.util.exit``), and
a shell stand-in for the launcher runs the interpreter as a child process, as CTK's launcher does.
Prints, per run (``--jobs 1`` and the default, interleaved): wall time, scans per minute, how many
processes the launcher started, and the exit status.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

from CTAffineRegisterLib import synthetic

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "Testing" / "slicer_script_host.py"
SCRIPT = ROOT / "CTAffineRegister" / "CTAffineRegisterLib" / "cli" / "slicer_batch.py"


def _inputs(folder: Path, cases: int) -> tuple[str, list[str]]:
    moving = []
    for seed in range(cases):
        pair = synthetic.make_pair(seed=seed, fixed_size=(128, 128, 96))
        if seed == 0:
            sitk.WriteImage(pair.fixed, str(folder / "fixed.nrrd"))
        moving.append(str(folder / f"moving{seed}.nrrd"))
        sitk.WriteImage(pair.moving, moving[-1])
    return str(folder / "fixed.nrrd"), moving


def _launcher(folder: Path) -> Path:
    launcher = folder / "PythonSlicer"
    launcher.write_text(f'#!/bin/sh\necho "$*" >> "{folder}/launches.log"\n"{sys.executable}" "$@"\n')
    launcher.chmod(0o755)
    return launcher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        fixed, moving = _inputs(folder, arguments.cases)
        launcher = _launcher(folder)
        for repeat in range(arguments.repeats):
            for jobs in (["--jobs", "1"], []):
                (folder / "launches.log").unlink(missing_ok=True)
                out = folder / f"out{repeat}{len(jobs)}"
                started = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, str(HOST), "--launcher", str(launcher), str(SCRIPT)]
                    + ["--fixed", fixed, "--moving", *moving, "--out", str(out), "--quiet", *jobs],
                    capture_output=True,
                    text=True,
                )
                seconds = time.perf_counter() - started
                log = folder / "launches.log"
                starts = len(log.read_text().splitlines()) if log.exists() else 0
                report = json.loads((out / "report.json").read_text()) if done.returncode == 0 else {}
                used = report.get("settings", {}).get("jobs")
                print(
                    f"jobs={used} ({' '.join(jobs) or 'default'}): {seconds:.1f} s, "
                    f"{60 * arguments.cases / seconds:.1f} scans/min, {starts} launcher starts, "
                    f"exit {done.returncode}"
                )


if __name__ == "__main__":
    main()
