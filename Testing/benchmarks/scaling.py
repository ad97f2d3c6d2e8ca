"""How this project's time and memory grow with scan size, and what ``--jobs 2`` buys for a batch.

Run from the project root::

    /tmp/venv/bin/python Testing/benchmarks/scaling.py             # sizes 128³ … 512×512×300, batch of 16
    /tmp/venv/bin/python Testing/benchmarks/scaling.py --quick     # two small sizes, batch of 4

Part 1 registers one phantom pair per size (fixed scan without padding, moving scan with -3024 FOV
padding, as when registering dataset B onto dataset A) in a child process and prints median wall
time, peak memory and TRE. Part 2 registers a batch of moving scans onto one fixed scan through the
CLI three ways: one call with ``--jobs 2``, one call with ``--jobs 1``, and one call per scan.
For a CLI call, "max proc MB" is the largest single process of its tree (``ru_maxrss``) and
"tree MB" the largest sampled sum over the tree, which is what parallel workers need together.
A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as case_builder  # noqa: E402
import metrics  # noqa: E402
import peers  # noqa: E402

FULL_SIZES = [(128, 128, 128), (256, 256, 160), (384, 384, 240), (512, 512, 300)]
QUICK_SIZES = [(96, 96, 64), (128, 128, 128)]
EXTENT_MM = (400.0, 400.0, 360.0)  # a typical torso FOV; spacing follows from the size
BATCH_SIZE = (160, 160, 120)


def grid_for(size: tuple[int, int, int], stretch: float = 1.0) -> case_builder.Grid:
    """A centred grid covering the torso extent; ``stretch`` makes the moving grid differ slightly."""
    spacing = tuple(stretch * e / n for e, n in zip(EXTENT_MM, size))
    return case_builder.Grid.centered(size, spacing)


def size_case(size: tuple[int, int, int], seed: int) -> case_builder.Case:
    moving_size = tuple(max(8, int(round(n / 1.1))) for n in size)
    return case_builder.phantom_case(
        f"scaling-{'x'.join(map(str, size))}",
        seed,
        grid_for(size),
        grid_for(moving_size, stretch=1.02),
        case_builder.PaddingSpec(),
        case_builder.PaddingSpec(-3024, 190.0),
        couch=True,
    )


def run_sizes(sizes: list[tuple[int, int, int]], repeats: int, workdir: Path, with_peers: bool) -> None:
    tools = [peers.OursTool()]
    if with_peers:
        tools += [t for t in (peers.ElastixTool(), peers.GreedyTool()) if t.available()[0]]
    print(f"\n== time and memory by size ({', '.join(t.name for t in tools)}; register + resample)")
    print(
        f"   {'fixed size':<14} {'voxels':>7} {'tool':<8} {'time s':>7} {'core s':>7} {'peak MB':>8} "
        f"{'TRE mean':>8} {'TRE max':>8}"
    )
    for index, size in enumerate(sizes):
        case = size_case(size, seed=100 + index)
        directory = workdir / case.name
        directory.mkdir(parents=True)
        fixed, moving = directory / "fixed.mha", directory / "moving.mha"
        sitk.WriteImage(case.fixed, str(fixed), useCompression=False)
        sitk.WriteImage(case.moving, str(moving), useCompression=False)
        del case.fixed, case.moving
        label = f"{'×'.join(map(str, size)):<14} {np.prod(size) / 1e6:6.1f}M"
        for tool in tools:
            runs = [tool.run(fixed, moving, directory / f"{tool.name}-{r}") for r in range(repeats)]
            print(f"   {label} {tool.name:<8} {_size_row(runs, case)}")
            sys.stdout.flush()
        shutil.rmtree(directory, ignore_errors=True)


def _size_row(runs: list[peers.ToolRun], case: case_builder.Case) -> str:
    good = [r for r in runs if r.error is None]
    if not good:
        return f"FAILED: {runs[0].error}"
    tre_mean, tre_max = metrics.target_registration_error(
        good[0].transform, case.true_transform, case.body_points
    )
    cores = [r.core_s for r in good if r.core_s is not None]
    core = f"{statistics.median(cores):7.2f}" if cores else f"{'-':>7}"
    return (
        f"{statistics.median(r.wall_s for r in good):7.2f} {core} {max(r.peak_mb for r in good):8.0f} "
        f"{tre_mean:8.2f} {tre_max:8.2f}"
    )


def write_batch(count: int, directory: Path) -> tuple[Path, list[Path]]:
    """One fixed scan and ``count`` moving scans of the same phantom under different affines."""
    directory.mkdir(parents=True)
    fixed_grid = grid_for(BATCH_SIZE)
    phantom = case_builder.Phantom(couch=True)
    fixed = directory / "fixed.mha"
    sitk.WriteImage(case_builder.sample_on_grid(phantom.sample, fixed_grid), str(fixed), useCompression=False)
    movings = []
    for index in range(count):
        rng = np.random.default_rng(200 + index)
        truth = case_builder.random_affine(rng, center=(0.0, 0.0, 0.0))
        image = case_builder.sample_on_grid(
            phantom.sample, grid_for(BATCH_SIZE, 1.03), truth.GetInverse(), 8.0, rng
        )
        image, _ = case_builder.insert_padding(image, -3024, 190.0)
        path = directory / f"moving{index:02d}.mha"
        sitk.WriteImage(image, str(path), useCompression=False)
        movings.append(path)
    return fixed, movings


def cli_command() -> list[str]:
    executable = Path(sys.executable).with_name("ct-affine-register")
    if executable.exists():
        return [str(executable)]
    found = shutil.which("ct-affine-register")
    return [found] if found else [sys.executable, "-m", "CTAffineRegisterLib.cli"]


def run_cli(movings: list[Path], fixed: Path, out: Path, jobs: Optional[int]) -> peers.ChildResult:
    out.mkdir(parents=True, exist_ok=True)
    command = cli_command() + [
        "register",
        "--fixed",
        str(fixed),
        "--moving",
        *map(str, movings),
        "--out",
        str(out),
    ]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    return peers.run_child(command, out / "log.txt", sample_tree=True)


def run_batch(count: int, workdir: Path) -> None:
    print(
        f"\n== batch: {count} moving scans {'×'.join(map(str, BATCH_SIZE))} onto one fixed scan, via the CLI"
    )
    fixed, movings = write_batch(count, workdir / "batch")
    print(f"   {'mode':<26} {'wall s':>8} {'scans/min':>9} {'max proc MB':>11} {'tree MB':>8}  status")
    modes: list[tuple[str, Optional[int]]] = [("one call, --jobs 2", 2), ("one call, --jobs 1", 1)]
    for label, jobs in modes:
        r = run_cli(movings, fixed, workdir / f"out-jobs{jobs}", jobs)
        _print_batch_row(label, r.wall_s, r.peak_mb, r.tree_peak_mb or 0.0, count, r.returncode, r.log)
    total, peak, tree, failed, log = 0.0, 0.0, 0.0, 0, None
    for index, moving in enumerate(movings):
        r = run_cli([moving], fixed, workdir / f"out-single{index:02d}", None)
        total, peak, tree = total + r.wall_s, max(peak, r.peak_mb), max(tree, r.tree_peak_mb or 0.0)
        if r.returncode != 0:
            failed, log = failed + 1, r.log
    _print_batch_row(f"{count} calls, one scan each", total, peak, tree, count, failed, log)


def _print_batch_row(
    label: str, wall: float, peak: float, tree: float, count: int, status: int, log: Optional[Path]
) -> None:
    note = "ok" if status == 0 else f"FAILED ({status}); see {log}: " + _tail(log)
    print(f"   {label:<26} {wall:8.1f} {60.0 * count / wall:9.1f} {peak:11.0f} {tree:8.0f}  {note}")
    sys.stdout.flush()


def _tail(log: Optional[Path]) -> str:
    if log is None or not log.exists():
        return ""
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-2:])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two small sizes, 1 repeat, batch of 4")
    parser.add_argument("--repeats", type=int, default=None, help="runs per size (default 3; 1 with --quick)")
    parser.add_argument("--batch", type=int, default=None, help="moving scans in the batch (default 16)")
    parser.add_argument("--skip-sizes", action="store_true", help="only the batch part")
    parser.add_argument("--skip-batch", action="store_true", help="only the size part")
    parser.add_argument("--with-peers", action="store_true", help="also time elastix and greedy by size")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    count = args.batch or (4 if args.quick else 16)
    ok, reason = peers.OursTool().available()
    if not ok:
        print("cannot run:", reason)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="ctar-scaling-"))
    try:
        if not args.skip_sizes:
            run_sizes(QUICK_SIZES if args.quick else FULL_SIZES, repeats, workdir, args.with_peers)
        if not args.skip_batch:
            run_batch(count, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
