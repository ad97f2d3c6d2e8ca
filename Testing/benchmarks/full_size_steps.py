"""Where one full-size case spends its time, step by step, next to elastix in the same run.

Run from the project root::

    python Testing/benchmarks/full_size_steps.py                   # 512×512×300 pair, 3 repeats
    python Testing/benchmarks/full_size_steps.py --repeats 5 --workdir /tmp/fullsize   # keeps the pair
    python Testing/benchmarks/full_size_steps.py --no-elastix --repeats 1               # steps only

The pair: a phantom torso with couch and 15 HU noise on a 512×512×300 grid (0.8 × 0.8 × 1.0 mm) as the
fixed scan, padded the way Siemens scanners do it: exactly -1024 outside the inscribed 205 mm field of
view and every value clipped at -1024, so noisy air inside the field of view holds -1024 specks too
(the costly case for the padding search, which must tell specks from padding by connectivity). The
moving scan is the same anatomy under a known affine on a slightly different 512×512×300 grid,
padded the GE way, -3024 outside 200 mm. Both are written as .nii.gz (gzip) the way converters
write them, since that is what users have.

Part 1 times each step in this process, in pipeline order, ``--repeats`` times over (so the steps
interleave) and prints the median: read, analyse, register, resample, write. Part 2 writes the
registered scan and its validity mask in every output format (seconds and bytes). Part 3 runs the
whole case as a user would, ``ct-affine-register register`` in a child process, alternating with
the elastix CLI on the same files, and prints wall time and peak memory. Load averages are printed
before and after each part: other work on the machine makes wall times noisy.

The project code comes from whatever ``CTAffineRegisterLib`` Python imports, so an older
checkout can be measured with the same script: ``PYTHONPATH=/old/checkout/CTAffineRegister``.
A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as case_builder  # noqa: E402
import metrics  # noqa: E402
import peers  # noqa: E402

import CTAffineRegisterLib  # noqa: E402
from CTAffineRegisterLib.io import images as imageio  # noqa: E402
from CTAffineRegisterLib.padding.analysis import analyze_background  # noqa: E402
from CTAffineRegisterLib.registration.engine import register_images  # noqa: E402
from CTAffineRegisterLib.resample import scans as resampling  # noqa: E402

SIZE = (512, 512, 300)
FIXED_SPACING = (0.8, 0.8, 1.0)
MOVING_SPACING = (0.82, 0.82, 1.0)
FORMATS = ("nii.gz", "nii", "nrrd", "mha")


def build_pair(directory: Path, size: tuple[int, int, int]) -> tuple[Path, Path, sitk.Transform, np.ndarray]:
    """Write (or reuse) the fixed and moving .nii.gz, the true transform and the TRE points."""
    fixed_path, moving_path = directory / "fixed.nii.gz", directory / "moving.nii.gz"
    truth_path, points_path = directory / "truth.tfm", directory / "points.npy"
    if all(p.exists() for p in (fixed_path, moving_path, truth_path, points_path)):
        return fixed_path, moving_path, sitk.ReadTransform(str(truth_path)), np.load(points_path)
    print(f"building the {'×'.join(map(str, size))} pair in {directory} (once; about a minute)", flush=True)
    case = case_builder.phantom_case(
        "full-size",
        seed=12,
        fixed_grid=case_builder.Grid.centered(size, FIXED_SPACING),
        moving_grid=case_builder.Grid.centered(size, MOVING_SPACING),
        fixed_pad=case_builder.PaddingSpec(-1024, 205.0 * min(size[:2]) / 512),
        moving_pad=case_builder.PaddingSpec(-3024, 200.0 * min(size[:2]) / 512),
        couch=True,
        noise_hu=15.0,
    )
    directory.mkdir(parents=True, exist_ok=True)
    clipped = sitk.Maximum(case.fixed, -1024)  # Siemens stores nothing below -1024
    sitk.WriteImage(clipped, str(fixed_path), True)
    sitk.WriteImage(case.moving, str(moving_path), True)
    sitk.WriteTransform(case.true_transform, str(truth_path))
    np.save(points_path, case.body_points)
    return fixed_path, moving_path, case.true_transform, case.body_points


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def timed(action: Callable[..., object], *arguments) -> tuple[object, float]:
    started = time.perf_counter()
    result = action(*arguments)
    return result, time.perf_counter() - started


def timed_with_cpu(action: Callable[..., object], *arguments) -> tuple[object, float, float]:
    """Wall seconds and CPU seconds of this process (all its threads): CPU time moves far less than
    wall time when other work shares the machine, so it tells a real change from noise."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action(*arguments)
    return result, time.perf_counter() - started, time.process_time() - cpu


def resample_both(moving, fixed, transform, moving_analysis):
    """The scan and its validity mask on the fixed grid, through whatever this checkout offers."""
    combined = getattr(resampling, "resample_with_valid_mask", None)
    if combined is not None:
        return combined(moving, fixed, transform, moving_analysis)
    scan = resampling.resample_to_fixed(moving, fixed, transform, moving_analysis)
    return scan, resampling.resample_valid_mask(moving_analysis, fixed, transform)


def in_process_steps(fixed_path: Path, moving_path: Path, workdir: Path, repeats: int) -> dict:
    """Each step of the pipeline timed in order; returns per-step lists of seconds and the last results."""
    times: dict[str, list[float]] = {}
    cpu_times: dict[str, list[float]] = {}
    results: dict = {}

    def step(name: str, action: Callable[..., object], *arguments):
        result, seconds, cpu = timed_with_cpu(action, *arguments)
        times.setdefault(name, []).append(seconds)
        cpu_times.setdefault(name, []).append(cpu)
        return result

    for repeat in range(repeats):
        out = workdir / f"steps-{repeat}"
        out.mkdir(parents=True, exist_ok=True)
        fixed = step("read fixed", imageio.read_image, str(fixed_path))
        moving = step("read moving", imageio.read_image, str(moving_path))
        fixed_analysis = step("analyse fixed", analyze_background, fixed.image, fixed.dicom_padding)
        moving_analysis = step("analyse moving", analyze_background, moving.image, moving.dicom_padding)
        result = step("register", register_images, fixed.image, moving.image, fixed_analysis, moving_analysis)
        scan, mask = step(
            "resample scan + mask",
            resample_both,
            moving.image,
            fixed.image,
            result.transform,
            moving_analysis,
        )
        step("write scan (.nii.gz)", imageio.write_image, scan, str(out / "registered.nii.gz"), True)
        step("write mask (.nii.gz)", imageio.write_image, mask, str(out / "validmask.nii.gz"), True)
        results = {
            "transform": result.transform,
            "scan": scan,
            "mask": mask,
            "fixed_summary": fixed_analysis.summary,
            "moving_summary": moving_analysis.summary,
            "bytes": {
                "scan": (out / "registered.nii.gz").stat().st_size,
                "mask": (out / "validmask.nii.gz").stat().st_size,
            },
        }
        del fixed, moving, fixed_analysis, moving_analysis, scan, mask
        shutil.rmtree(out, ignore_errors=True)
        print(f"   repeat {repeat + 1}/{repeats} done (load {load_average()})", flush=True)
    return {"times": times, "cpu": cpu_times, **results}


def print_steps(steps: dict) -> None:
    times, cpu = steps["times"], steps["cpu"]
    print(f"\n   {'step':<24} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>7}")
    for name, values in times.items():
        middle, spent = statistics.median(values), statistics.median(cpu[name])
        print(f"   {name:<24} {middle:9.2f} {min(values):7.2f} {max(values):7.2f} {spent:7.2f}")
    total = sum(statistics.median(values) for values in times.values())
    total_cpu = sum(statistics.median(values) for values in cpu.values())
    print(f"   {'sum of medians':<24} {total:9.2f} {'':>7} {'':>7} {total_cpu:7.2f}")
    print(
        "   (CPU s: median CPU time of the process over all its threads; wall time is the figure that counts)"
    )
    print(f"   fixed:  {steps['fixed_summary']}\n   moving: {steps['moving_summary']}")
    print(f"   bytes: scan {steps['bytes']['scan']:,}, mask {steps['bytes']['mask']:,}")


def format_table(scan: sitk.Image, mask: sitk.Image, workdir: Path, repeats: int) -> None:
    """Seconds (median) and bytes per output format, for the scan and the validity mask."""
    print(f"\n   {'format':<8} {'scan s':>7} {'scan MB':>8} {'mask s':>7} {'mask MB':>8}")
    for suffix in FORMATS:
        row = []
        for label, image in (("scan", scan), ("mask", mask)):
            path = workdir / f"format-{label}.{suffix}"
            seconds = []
            for _ in range(repeats):
                _, elapsed = timed(imageio.write_image, image, str(path), True)
                seconds.append(elapsed)
            row += [statistics.median(seconds), path.stat().st_size / 1e6]
            readback = sitk.ReadImage(str(path))
            if not np.array_equal(sitk.GetArrayViewFromImage(readback), sitk.GetArrayViewFromImage(image)):
                raise SystemExit(f"{path}: read back differs from what was written")
            path.unlink()
        print(f"   .{suffix:<7} {row[0]:7.2f} {row[1]:8.1f} {row[2]:7.2f} {row[3]:8.2f}")


def whole_case(
    fixed_path: Path, moving_path: Path, workdir: Path, repeats: int, with_elastix: bool, truth, points
) -> None:
    """Ours (the CLI) and elastix alternating on the same files: wall time, peak memory, TRE."""
    elastix = peers.ElastixTool() if with_elastix else None
    if elastix is not None and not elastix.available()[0]:
        print(f"   elastix skipped: {elastix.available()[1]}")
        elastix = None
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "elastix": []}
    tre: dict[str, Optional[float]] = {"ours": None, "elastix": None}
    for repeat in range(repeats):
        order = ["ours", "elastix"] if repeat % 2 == 0 else ["elastix", "ours"]
        for tool in order:
            out = workdir / f"{tool}-{repeat}"
            if tool == "ours":
                command = [sys.executable, "-m", "CTAffineRegisterLib.cli", "register", "--fixed"]
                command += [str(fixed_path), "--moving", str(moving_path), "--out", str(out), "--quiet"]
                out.mkdir(parents=True, exist_ok=True)
                child = peers.run_child(command, out / "log.txt")
                if child.returncode != 0:
                    raise SystemExit(f"ours failed: {(out / 'log.txt').read_text()[-2000:]}")
                runs["ours"].append((child.wall_s, child.peak_mb))
                transform = sitk.ReadTransform(str(out / "moving_transform.tfm"))
                tre["ours"] = metrics.target_registration_error(transform, truth, points)[0]
            elif elastix is not None:
                run = elastix.run(fixed_path, moving_path, out)
                if run.error is not None:
                    raise SystemExit(f"elastix failed: {run.error}")
                runs["elastix"].append((run.wall_s, run.peak_mb))
                tre["elastix"] = metrics.target_registration_error(run.transform, truth, points)[0]
            shutil.rmtree(out, ignore_errors=True)
        print(f"   repeat {repeat + 1}/{repeats} done (load {load_average()})", flush=True)
    print(f"\n   {'tool':<8} {'wall s (median)':>16} {'all runs':<28} {'peak MB':>8} {'TRE mm':>7}")
    for tool, values in runs.items():
        if not values:
            continue
        walls = [wall for wall, _ in values]
        every = " ".join(f"{wall:.1f}" for wall in walls)
        peak = max(mb for _, mb in values)
        print(f"   {tool:<8} {statistics.median(walls):16.2f} {every:<28} {peak:8.0f} {tre[tool]:7.2f}")
    if runs["ours"] and runs["elastix"]:
        ratio = statistics.median(w for w, _ in runs["ours"]) / statistics.median(
            w for w, _ in runs["elastix"]
        )
        print(f"   ours / elastix wall time: {ratio:.2f}×")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated pair here")
    parser.add_argument("--size", type=int, nargs=3, default=SIZE, help="grid of both scans (x y z)")
    parser.add_argument("--no-elastix", action="store_true", help="skip part 3's elastix runs")
    parser.add_argument("--parts", default="123", help="which parts to run, e.g. 13")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="ctar-fullsize-"))
    try:
        pair_dir = args.workdir or scratch / "pair"
        fixed_path, moving_path, truth, points = build_pair(pair_dir, tuple(args.size))
        print(f"CTAffineRegisterLib from {Path(CTAffineRegisterLib.__file__).parent}")
        threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        print(f"SimpleITK {sitk.Version.VersionString()}, numpy {np.__version__}, {os.cpu_count()} cores")
        print(f"SimpleITK threads {threads}")
        sizes = [path.stat().st_size / 1e6 for path in (fixed_path, moving_path)]
        print(f"inputs: {sizes[0]:.0f} MB + {sizes[1]:.0f} MB .nii.gz")
        steps = None
        if "1" in args.parts or "2" in args.parts:
            print(f"\n== 1. steps in one process, median of {args.repeats} (load {load_average()})")
            steps = in_process_steps(fixed_path, moving_path, scratch, args.repeats)
            print_steps(steps)
            transform_tre = metrics.target_registration_error(steps["transform"], truth, points)
            print(f"   TRE mean {transform_tre[0]:.3f} mm, max {transform_tre[1]:.3f} mm")
        if "2" in args.parts and steps is not None:
            print(f"\n== 2. output formats, median of {args.repeats} (load {load_average()})")
            format_table(steps["scan"], steps["mask"], scratch, args.repeats)
        if "3" in args.parts:
            print(f"\n== 3. whole case as a child process, {args.repeats} alternating runs")
            print(f"   load {load_average()}")
            whole_case(fixed_path, moving_path, scratch, args.repeats, not args.no_elastix, truth, points)
        print(f"\nload average at the end: {load_average()}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
