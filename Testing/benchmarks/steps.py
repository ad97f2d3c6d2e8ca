"""The whole ``register`` call step by step, beside the I/O floor and elastix, in one run.

Run from the project root, on a quiet machine (the load average is printed before and after each run)::

    python Testing/benchmarks/steps.py                # 256², 512² and the real 256² pair, 3 repeats
    python Testing/benchmarks/steps.py --repeats 5 --json steps.json
    python Testing/benchmarks/steps.py --quick        # smoke run: one 128² pair, 1 repeat (~15 s)
    python Testing/benchmarks/steps.py --sizes 256 --no-real --no-elastix

The pairs: ``synthetic.make_pair`` at 256×256×134 (1.95 × 1.95 × 3 mm, the real chest scans' grid) and
512×512×300 (0.98 × 0.98 × 1 mm), the moving scan on a slightly different grid with -3024 padding
outside its field of view; and, when ``../shared/data`` has it, the real pair of two patients
(nsclc_radiomics LUNG1-001 fixed, LUNG1-003 moving, 256²), also upsampled to 512² in-plane when 512
is among the sizes. All are .nii.gz files, as users have them.

For each pair and repeat, in alternating order: ``ct-affine-register register --verbose`` as a child
process (its step table is parsed from the output: start-up, reading and analysing the fixed scan,
each step of the case, the summary) and the elastix CLI (its default affine map, as
``compare.py`` drives it through ``peers.ElastixTool``, ``-threads 2``). The I/O floor is what
plain SimpleITK needs to read both scans and write the registered scan (.nii.gz): no tool that
reads and writes these files can be faster. Printed per pair: the median of each step, its share
of the median wall time, the floor, both tools' wall times and their ratio, and the load average.
The project code is whatever ``CTAffineRegisterLib`` Python imports (``PYTHONPATH=...`` for another
checkout); its bytecode is compiled first, as ``pip install .`` (the README's install) does, so the
start-up is a user's and not that of an editable checkout recompiling its modules on every call
(0.15–0.2 s here, where PYTHONDONTWRITEBYTECODE is set). A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402

import CTAffineRegisterLib  # noqa: E402
from CTAffineRegisterLib.synthetic import make_pair  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "nsclc_radiomics"
# In-plane size → (slices, in-plane spacing, slice spacing): the grids the figures are on.
GRIDS = {128: (60, 3.9, 4.0), 256: (134, 1.953, 3.0), 512: (300, 0.977, 1.0)}
ROW = re.compile(r"^(\s*)(\S.*?)\s+(\d+\.\d{3})\s+(\S+%|-)\s*$")


def load() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def build_pairs(sizes: list[int], real: bool, workdir: Path) -> list[tuple[str, Path, Path]]:
    """The pairs as .nii.gz files: (label, fixed, moving)."""
    pairs = []
    for size in sizes:
        slices, spacing, thickness = GRIDS[size]
        folder = workdir / f"synthetic-{size}"
        fixed, moving = folder / "fixed.nii.gz", folder / "moving.nii.gz"
        if not (fixed.exists() and moving.exists()):
            folder.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            pair = make_pair(
                seed=size,
                fixed_size=(size, size, slices),
                fixed_spacing=(spacing, spacing, thickness),
                moving_spacing=(spacing * 1.05, spacing * 1.05, thickness * 1.1),
                point_count=200,
            )
            sitk.WriteImage(pair.fixed, str(fixed), True)
            sitk.WriteImage(pair.moving, str(moving), True)
            print(f"built {size}² pair in {time.perf_counter() - started:.0f} s", flush=True)
        pairs.append((f"synthetic {size}×{size}×{slices}", fixed, moving))
    if real:
        fixed, moving = REAL / "LUNG1-001_ct.nii.gz", REAL / "LUNG1-003_ct.nii.gz"
        if fixed.exists() and moving.exists():
            pairs.append(("real 256² (LUNG1-003 → LUNG1-001)", fixed, moving))
            if 512 in sizes:  # the same two patients at a full-resolution chest CT's in-plane grid
                folder = workdir / "real-512"
                folder.mkdir(parents=True, exist_ok=True)
                upsampled = [folder / fixed.name, folder / moving.name]
                for source, target in zip((fixed, moving), upsampled):
                    if not target.exists():
                        sitk.WriteImage(in_plane_twice(sitk.ReadImage(str(source))), str(target), True)
                pairs.append(("real, upsampled to 512² (LUNG1-003 → LUNG1-001)", *upsampled))
        else:
            print(f"real pair skipped: {REAL} has no LUNG1-001/-003 scans")
    return pairs


def in_plane_twice(image: sitk.Image) -> sitk.Image:
    """The scan on a grid twice as fine in-plane (linear interpolation, same extent and type): a
    512² chest CT of the same two patients, for lack of openly licensed full-resolution ones here."""
    size = [image.GetSize()[0] * 2, image.GetSize()[1] * 2, image.GetSize()[2]]
    spacing = [image.GetSpacing()[0] / 2, image.GetSpacing()[1] / 2, image.GetSpacing()[2]]
    first = image.TransformContinuousIndexToPhysicalPoint((-0.25, -0.25, 0.0))
    return sitk.Resample(
        image, size, sitk.Transform(), sitk.sitkLinear, first, spacing, image.GetDirection(),
        -1024.0, image.GetPixelID(),
    )  # fmt: skip


def io_floor(fixed: Path, moving: Path, registered: Path, workdir: Path) -> dict:
    """Plain SimpleITK: read both scans, write the registered scan as .nii.gz (seconds per part)."""
    image = sitk.ReadImage(str(registered))  # what ours wrote: same grid, type and content
    parts = {}
    started = time.perf_counter()
    sitk.ReadImage(str(fixed))
    parts["read fixed"] = time.perf_counter() - started
    started = time.perf_counter()
    sitk.ReadImage(str(moving))
    parts["read moving"] = time.perf_counter() - started
    target = workdir / "floor.nii.gz"
    started = time.perf_counter()
    sitk.WriteImage(image, str(target), True)
    parts["write result"] = time.perf_counter() - started
    target.unlink()
    return parts


def parse_steps(text: str) -> dict:
    """The ``--verbose`` table as {step: seconds}; an indented row as "<the step above>/<row>" (the
    cases' own steps below "cases", a lone case's read-ahead below "analyse_fixed")."""
    steps, inside, parent = {}, False, ""
    for line in text.splitlines():
        if line.startswith("step "):
            inside, steps = True, {}
            continue
        match = ROW.match(line) if inside else None
        if match is None:
            continue
        indent, name, seconds = match.group(1), match.group(2), float(match.group(3))
        if not indent:
            parent = name
        steps[f"{parent}/{name}" if indent else name] = seconds
    return steps


def run_ours(fixed: Path, moving: Path, out: Path) -> tuple[float, dict]:
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "CTAffineRegisterLib.cli", "register", "--fixed", str(fixed)]
    command += ["--moving", str(moving), "--out", str(out / "result"), "--quiet", "--verbose"]
    child = peers.run_child(command, out / "log.txt")
    text = (out / "log.txt").read_text(errors="replace")
    if child.returncode not in (0, 1):  # 1: a verdict of "failed" still wrote its outputs
        raise SystemExit(f"ours failed ({child.returncode}): {text[-2000:]}")
    return child.wall_s, parse_steps(text)


def measure_pair(label: str, fixed: Path, moving: Path, repeats: int, elastix, workdir: Path) -> dict:
    runs: dict = {"ours": [], "elastix": [], "steps": [], "floor": [], "load": []}
    for repeat in range(repeats):
        order = ["ours", "elastix"] if repeat % 2 == 0 else ["elastix", "ours"]
        for tool in order:
            if tool == "elastix" and elastix is None:
                continue
            out = workdir / f"{tool}-{repeat}"
            before = load()
            if tool == "ours":
                wall, steps = run_ours(fixed, moving, out)
                runs["steps"].append(steps)
                registered = next((out / "result").glob("*_registered.nii.gz"))
                runs["floor"].append(io_floor(fixed, moving, registered, workdir))
            else:
                result = elastix.run(fixed, moving, out)
                if result.error is not None:
                    raise SystemExit(f"elastix failed: {result.error}")
                wall = result.wall_s
            runs[tool].append(wall)
            runs["load"].append((tool, before[0], load()[0]))
            shutil.rmtree(out, ignore_errors=True)
        print(f"   {label}: repeat {repeat + 1}/{repeats} done (load {load()[0]:.2f})", flush=True)
    return runs


def summarise(label: str, runs: dict) -> dict:
    wall = statistics.median(runs["ours"])
    names = list(dict.fromkeys(name for steps in runs["steps"] for name in steps))
    steps = {name: statistics.median(s.get(name, 0.0) for s in runs["steps"]) for name in names}
    floor_parts = {name: statistics.median(f[name] for f in runs["floor"]) for name in runs["floor"][0]}
    elastix = statistics.median(runs["elastix"]) if runs["elastix"] else None
    ratios = [ours / other for ours, other in zip(runs["ours"], runs["elastix"])]
    return {
        "pair": label,
        "ours_wall_s": wall,
        "ours_runs": runs["ours"],
        "elastix_wall_s": elastix,
        "elastix_runs": runs["elastix"],
        "ratio": wall / elastix if elastix else None,
        "ratios": ratios,
        "steps": steps,
        "floor_s": sum(floor_parts.values()),
        "floor_parts": floor_parts,
        "load": runs["load"],
    }


def print_pair(summary: dict) -> None:
    wall, steps = summary["ours_wall_s"], summary["steps"]
    print(f"\n## {summary['pair']}\n")
    print("| step | seconds (median) | share of wall |\n|---|---:|---:|")
    for name, seconds in steps.items():
        if name in ("total", "wall time"):
            continue
        shown = "&nbsp;&nbsp;" + name.split("/", 1)[1] if "/" in name else name
        print(f"| {shown} | {seconds:.3f} | {100 * seconds / wall:.1f}% |")
    print(f"| **wall time (ours)** | **{wall:.3f}** | 100% |")
    floor = summary["floor_s"]
    parts = ", ".join(f"{name} {seconds:.3f}" for name, seconds in summary["floor_parts"].items())
    print(f"| I/O floor (plain SimpleITK: {parts}) | {floor:.3f} | {100 * floor / wall:.1f}% |")
    print(f"\nours / I/O floor: {wall / floor:.1f}×")
    if summary["elastix_wall_s"]:
        every = " ".join(f"{ratio:.2f}" for ratio in summary["ratios"])
        print(
            f"elastix (-threads 2) {summary['elastix_wall_s']:.2f} s; ours / elastix {summary['ratio']:.2f}× "
            f"(per repeat: {every})"
        )
    loads = " ".join(f"{tool} {before:.2f}→{after:.2f}" for tool, before, after in summary["load"])
    print(f"load average (1 min) before→after each run: {loads}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], choices=sorted(GRIDS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-real", action="store_true", help="leave out the real 256² pair")
    parser.add_argument("--no-elastix", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one 128² pair, one repeat")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated pairs here")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.no_real = [128], 1, True

    elastix = None if args.no_elastix else peers.ElastixTool(threads=2)
    if elastix is not None and not elastix.available()[0]:
        print(f"elastix skipped: {elastix.available()[1]}")
        elastix = None
    package = Path(CTAffineRegisterLib.__file__).parent
    compileall.compile_dir(str(package), quiet=1)  # as ``pip install .`` does at install time
    scratch = Path(tempfile.mkdtemp(prefix="ctar-steps-"))
    try:
        workdir = args.workdir or scratch
        print(f"CTAffineRegisterLib from {Path(CTAffineRegisterLib.__file__).parent}; elastix "
              f"{elastix.version() if elastix else '-'}; {os.cpu_count()} cores; load {load()}")  # fmt: skip
        summaries = []
        for label, fixed, moving in build_pairs(args.sizes, not args.no_real, workdir):
            runs = measure_pair(label, fixed, moving, args.repeats, elastix, scratch / "runs")
            summaries.append(summarise(label, runs))
        for summary in summaries:
            print_pair(summary)
        if args.json:
            args.json.write_text(json.dumps(summaries, indent=2))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
