"""Cohort throughput, resume after a kill, memory over a long cohort, and a projection to 10 000 scans.

Run from the project root, with the project installed with its dask extra::

    python Testing/benchmarks/cohort_throughput.py              # 64 scans of 160×160×120 (~15 min)
    python Testing/benchmarks/cohort_throughput.py --quick      # 8 scans of 96×96×64 (~2 min)

1. **Throughput.** The same 64-scan cohort through the command line, in one run: ``--jobs 1`` (in
   the main process), ``--jobs 2`` (two worker processes) and ``--scheduler local --jobs 2`` (a Dask
   LocalCluster of two single-threaded workers). Scans per minute, the largest process and the
   whole process tree's peak memory, and Dask's cost over the process pool.
2. **Resume after a kill.** ``--jobs 2`` is killed with SIGKILL once half the cases are finished,
   then the same command is run again: it must redo none of the finished cases.
3. **Memory over a long cohort.** ``--jobs 1`` on 1, 4, 8 and 32 scans: the peak must not grow.
4. **A projection** of the wall time for 10 000 scans on 10 machines of 8 cores, from the measured
   cost per case and memory per worker (the arithmetic is printed).

A script that prints figures, not a test. The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
import scaling  # noqa: E402

PROJECTED_SCANS, PROJECTED_MACHINES, PROJECTED_CORES, PROJECTED_RAM_GB = 10_000, 10, 8, 32


def cli(*arguments: str) -> list[str]:
    return scaling.cli_command() + list(arguments)


def register_arguments(fixed: Path, cohort: Path, out: Path, *extra: str) -> list[str]:
    return cli(
        "register", "--fixed", str(fixed), "--moving-root", str(cohort), "--out", str(out), "--quiet", *extra
    )


def case_seconds(out: Path) -> list[float]:
    summary = json.loads((out / "report.json").read_text())
    return [
        case["seconds"] for case in summary["cases"] if case["status"] == "ok" and not case.get("resumed")
    ]


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


# -- 1. throughput --------------------------------------------------------------------------------


def throughput(fixed: Path, cohort: Path, count: int, workdir: Path, repeats: int = 1) -> dict:
    """Each mode ``repeats`` times, the modes interleaved (A, B, C, A, B, C...) so a change of the
    machine's load hits them alike; the medians are kept."""
    print(f"\n== 1. throughput: {count} scans, one cohort, three ways x {repeats} (load before: {load()})")
    columns = f"{'wall s':>7} {'scans/min':>9} {'s/case':>7} {'max proc MB':>11} {'tree MB':>8}  status"
    print(f"   {'mode':<46} {columns}")
    modes = {
        "jobs1": ("--jobs 1 (in the main process)", ["--jobs", "1"]),
        "jobs2": ("--jobs 2 (two worker processes)", ["--jobs", "2"]),
        "dask": ("--scheduler local --jobs 2 (Dask, 2 x 1 thread)", ["--scheduler", "local", "--jobs", "2"]),
    }
    runs: dict = {key: [] for key in modes}
    for repeat in range(repeats):
        for key, (label, extra) in modes.items():
            out = workdir / f"out-{key}-{repeat}"
            run = peers.run_child(
                register_arguments(fixed, cohort, out, *extra), workdir / f"{out.name}.log", True
            )
            per_case = (
                statistics.median(case_seconds(out)) if (out / "report.json").exists() else float("nan")
            )
            status = "ok" if run.returncode == 0 else f"exit {run.returncode}, see {run.log}"
            runs[key].append({"wall": run.wall_s, "per_case": per_case, "peak": run.peak_mb,
                              "tree": run.tree_peak_mb or 0.0})  # fmt: skip
            print(
                f"   {label:<46} {run.wall_s:7.1f} {60.0 * count / run.wall_s:9.1f} {per_case:7.2f} "
                f"{run.peak_mb:11.0f} {run.tree_peak_mb or 0:8.0f}  {status}"
            )
            sys.stdout.flush()
            shutil.rmtree(out, ignore_errors=True)
    results = {}
    for key, values in runs.items():
        wall = statistics.median(value["wall"] for value in values)
        results[key] = {
            "wall": wall,
            "per_minute": 60.0 * count / wall,
            "per_case": statistics.median(value["per_case"] for value in values),
            "peak": max(value["peak"] for value in values),
            "tree": max(value["tree"] for value in values),
        }
    if repeats > 1:
        print(
            "   medians: "
            + "; ".join(f"{key} {value['per_minute']:.1f} scans/min" for key, value in results.items())
        )
    dask_cost = 100.0 * (results["dask"]["wall"] / results["jobs2"]["wall"] - 1.0)
    print(f"   Dask over the process pool: {dask_cost:+.1f} % wall time (medians)")
    print(f"   load average after: {load()}")
    return results


# -- 2. resume after a kill -----------------------------------------------------------------------


def finished_cases(out: Path) -> dict:
    """id -> run_id of every case whose report says ok."""
    done = {}
    for path in out.glob("*_report.json"):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if report.get("status") == "ok":
            done[report["id"]] = report["run_id"]
    return done


def resume_after_kill(fixed: Path, cohort: Path, count: int, workdir: Path) -> None:
    print(f"\n== 2. resume: --jobs 2 killed (SIGKILL) at half the cohort, then rerun (load {load()})")
    out = workdir / "out-resume"
    arguments = register_arguments(fixed, cohort, out, "--jobs", "2")
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while len(finished_cases(out) if out.exists() else {}) < count // 2 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(2.0)  # the workers see their parent gone and stop their cases
    before = finished_cases(out)
    hidden = [name for name in os.listdir(out) if name.startswith(".")]
    started = time.perf_counter()
    rerun = subprocess.run(arguments, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = finished_cases(out)
    redone = sorted(case for case, run in before.items() if after.get(case) != run)
    print(
        f"   finished before the kill: {len(before)} of {count}; hidden files left by the kill: {len(hidden)}"
    )
    print(f"   rerun: exit {rerun.returncode}, {seconds:.1f} s, {len(after)} of {count} finished; "
          f"finished cases redone: {len(redone)} {redone[:5]}")  # fmt: skip
    print(f"   rerun said: {rerun.stdout.strip()}")


# -- 3. memory over a long cohort ------------------------------------------------------------------


def memory(fixed: Path, movings: list[Path], workdir: Path) -> list[tuple[int, float]]:
    print(f"\n== 3. memory over a long cohort: --jobs 1, peak resident memory of the process (load {load()})")
    rows = []
    for count in (1, 4, 8, 32):
        if count > len(movings):
            break
        out = workdir / f"out-memory-{count}"
        arguments = cli("register", "--fixed", str(fixed), "--moving", *map(str, movings[:count]))
        run = peers.run_child(
            [*arguments, "--out", str(out), "--quiet", "--jobs", "1"], workdir / f"mem{count}.log"
        )
        rows.append((count, run.peak_mb))
        print(f"   {count:3d} cases: peak {run.peak_mb:6.0f} MB, {run.wall_s:6.1f} s, exit {run.returncode}")
        sys.stdout.flush()
    return rows


# -- 4. projection --------------------------------------------------------------------------------


def projection(results: dict, size: tuple[int, int, int]) -> None:
    """Cases are independent and read their inputs from a shared file system, so a cohort scales with
    the number of workers; what a worker costs is measured here, per case and in memory."""
    jobs1, jobs2 = results["jobs1"], results["jobs2"]
    scans, machines, cores, ram = PROJECTED_SCANS, PROJECTED_MACHINES, PROJECTED_CORES, PROJECTED_RAM_GB
    rate = jobs2["per_minute"]
    core_s = 2 * 60.0 / rate  # --jobs 2 keeps both cores of this machine busy
    wall_s = 60.0 / jobs1["per_minute"]
    busy = core_s / wall_s  # cores one case keeps busy: the final polish runs two threads of its own
    worker_mb = max(jobs2["peak"], 1.0)
    workers = min(cores, math.floor(0.8 * ram * 1024 / worker_mb))
    minutes = scans * core_s / (machines * workers) / 60.0
    print(f"\n== 4. projection: {scans} scans on {machines} machines x {cores} cores, {ram} GB each")
    print(f"   measured ({'x'.join(map(str, size))}): --jobs 2 on 2 cores gives {rate:.1f} scans/min,")
    print(
        f"   so a case costs 2 x 60 / {rate:.1f} = {core_s:.2f} core-seconds; --jobs 1 takes {wall_s:.2f} s"
    )
    print(f"   per case, so a case keeps {busy:.2f} cores busy; a worker process peaks at {worker_mb:.0f} MB")
    print(f"   workers per machine = min({cores}, 80% of {ram} GB / {worker_mb:.0f} MB) = {workers}")
    print(f"   wall time = {scans} x {core_s:.2f} s / ({machines} x {workers}) = {minutes:.1f} min")
    print("   (plus start-up: each worker reads and analyses the fixed scan once)")
    full_s, full_gb = 7.3, 1.7  # README scaling table: 512x512x300, one case in one process
    full_workers = min(cores, math.floor(0.8 * ram / full_gb))
    full_core_s = full_s * busy
    full_minutes = scans * full_core_s / (machines * full_workers) / 60.0
    print(f"   full-size CT (512x512x300, README scaling table: {full_s} s and {full_gb} GB per case):")
    print(f"   {full_s} s x {busy:.2f} cores = {full_core_s:.1f} core-seconds per case;")
    print(f"   workers per machine = min({cores}, 80% of {ram} GB / {full_gb} GB) = {full_workers};")
    print(
        f"   wall time = {scans} x {full_core_s:.1f} s / ({machines} x {full_workers}) = {full_minutes:.0f} m"
    )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 scans of 96x96x64")
    parser.add_argument("--count", type=int, default=None, help="scans in the cohort (default 64)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each mode, interleaved (default 1)")
    parser.add_argument("--skip-resume", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    count = args.count or (8 if args.quick else 64)
    if args.quick:
        scaling.BATCH_SIZE = (96, 96, 64)
    size = scaling.BATCH_SIZE
    workdir = Path(tempfile.mkdtemp(prefix="ctar-cohort-"))
    try:
        shape = "x".join(map(str, size))
        print(f"cohort of {count} phantom scans {shape} (moving: -3024 FOV padding, couch) in {workdir}")
        print(f"{os.cpu_count()} cores; load average {load()}")
        fixed, movings = scaling.write_batch(count, workdir / "batch")
        cohort = workdir / "cohort"
        cohort.mkdir()
        for path in movings:  # the fixed scan stays out of the cohort folder
            shutil.move(str(path), cohort / path.name)
        movings = sorted(cohort.iterdir())
        results = throughput(fixed, cohort, count, workdir, args.repeats)
        if not args.skip_resume:
            resume_after_kill(fixed, cohort, count, workdir)
        if not args.skip_memory:
            memory(fixed, movings, workdir)
        projection(results, size)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
