"""Label maps carried with a registration: Dice per structure against nearest neighbour, and the cost.

Usage: python Testing/benchmarks/labels_dice.py [--data DIR] [--repeats 3] [--skip-full-size]

On the real chest pair in ``nsclc_radiomics/`` (LUNG1-003 with 5 structures onto LUNG1-001, and
back), each direction is registered with ``pipeline.register_pair``; the moving labels are carried
with ``labels.resample_labels`` (linear shares, volume-keeping cut) and with nearest neighbour using
the same transform, and each is scored by Dice with the fixed scan's own labels (structures present
in both). Two patients never match exactly, so that Dice mostly measures the registration; the
second table takes the interpolation alone: LUNG1-003's structures made into smooth shapes
(Gaussian 2 mm, cubic B-spline on a 0.7 mm grid), sampled on LUNG1-003's grid (the moving labels)
and, through the registration's transform, on LUNG1-001's grid (the truth).

Times: the median over ``--repeats`` interleaved runs of a case (read the moving scan, ``register_pair``:
analysis, registration, CT resampling; write the result) and of carrying its labels (read, check,
``carry_labels``, write). ``--skip-full-size`` leaves out the same measurement on the pair upsampled
to 512×512 in-plane (the scans' original size).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib.pair.register import register_pair
from CTAffineRegisterLib.resample.labels import carry_labels, label_dice, read_label_map, resample_labels

NAMES = {1: "lung left", 2: "lung right", 3: "spinal cord", 4: "heart", 5: "esophagus"}
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TRUTH_SMOOTHING_MM = 2.0
TRUTH_SPACING_MM = 0.7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("CTAR_SHARED_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full-size", action="store_true")
    arguments = parser.parse_args()
    folder = Path(arguments.data) / "nsclc_radiomics"
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: this benchmark needs the shared NSCLC-Radiomics pair")
    scans = {name: _read(folder, name) for name in ("LUNG1-001", "LUNG1-003")}
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    print(f"load average at start: {_load()}; SimpleITK threads: {threads}")

    transforms = {}
    for fixed_name, moving_name in (("LUNG1-001", "LUNG1-003"), ("LUNG1-003", "LUNG1-001")):
        fixed, moving = scans[fixed_name], scans[moving_name]
        figures = _measure(fixed, moving, arguments.repeats)
        transforms[(fixed_name, moving_name)] = figures["transform"]
        print(f"\n### {moving_name} onto {fixed_name} (quality verdict: {figures['verdict']})\n")
        _dice_table(figures["ours"], figures["nearest"], fixed["labels"])
        _time_line(figures)

    print("\n### Interpolation alone: smooth LUNG1-003 anatomy, known truth on LUNG1-001's grid\n")
    transform = transforms[("LUNG1-001", "LUNG1-003")]
    moving_labels, truth = _smooth_anatomy(scans["LUNG1-003"]["labels"], scans["LUNG1-001"]["ct"], transform)
    ours = resample_labels(moving_labels, truth, transform)
    nearest = resample_labels(moving_labels, truth, transform, "nearest")
    _dice_table(ours, nearest, truth)

    if not arguments.skip_full_size:
        print("\n### Full size: the pair upsampled to 512×512 in-plane, LUNG1-003 onto LUNG1-001\n")
        with tempfile.TemporaryDirectory() as temporary:
            fixed, moving = (_upsampled(scans[name], temporary) for name in ("LUNG1-001", "LUNG1-003"))
            _time_line(_measure(fixed, moving, arguments.repeats))
    print(f"\nload average at end: {_load()}")


def _read(folder: Path, name: str) -> dict:
    paths = {
        "ct_path": str(folder / f"{name}_ct.nii.gz"),
        "labels_path": str(folder / f"{name}_labels.nii.gz"),
    }
    return {"ct": sitk.ReadImage(paths["ct_path"]), "labels": sitk.ReadImage(paths["labels_path"]), **paths}


def _measure(fixed: dict, moving: dict, repeats: int) -> dict:
    """A case (read the moving scan, register, write the result) and carrying its labels (read,
    check, resample, write) with each method, interleaved ``repeats`` times."""
    times = {"case": [], "ours": [], "nearest": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            started = time.perf_counter()
            scan = sitk.ReadImage(moving["ct_path"])
            result = register_pair(fixed["ct"], scan)
            sitk.WriteImage(result.registered, os.path.join(folder, "registered.nii.gz"), True)
            times["case"].append(time.perf_counter() - started)
            carried = {}
            for method, key in (("linear", "ours"), ("nearest", "nearest")):
                started = time.perf_counter()
                labels = read_label_map(moving["labels_path"])
                carried[key] = carry_labels(labels, scan, fixed["ct"], result.transform, method)
                sitk.WriteImage(carried[key], os.path.join(folder, f"labels_{key}.nii.gz"), True)
                times[key].append(time.perf_counter() - started)
    return {
        "transform": result.transform,
        "verdict": result.report["quality"]["verdict"],
        "ours": carried["ours"],
        "nearest": carried["nearest"],
        "seconds": {key: statistics.median(values) for key, values in times.items()},
        "size": "×".join(str(n) for n in fixed["ct"].GetSize()),
    }


def _dice_table(ours: sitk.Image, nearest: sitk.Image, reference: sitk.Image) -> None:
    ours_dice, nearest_dice = label_dice(ours, reference), label_dice(nearest, reference, None)
    values = sorted(set(ours_dice) & set(nearest_dice))
    print("| structure | nearest neighbour | ours | difference |")
    print("|---|---|---|---|")
    for value in values:
        a, b = nearest_dice[value], ours_dice[value]
        print(f"| {value} {NAMES.get(value, '')} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")


def _time_line(figures: dict) -> None:
    case, ours, nearest = (figures["seconds"][key] for key in ("case", "ours", "nearest"))
    print(f"\nfixed grid {figures['size']}, medians of interleaved runs (load average {_load()}):")
    print(f"- case (read the moving scan, register_pair, write the result): {case:.2f} s")
    print(f"- carrying its labels (read, check, carry, write): {ours:.3f} s = {ours / case:.1%} of the case")
    print(f"- the same with nearest neighbour: {nearest:.3f} s = {nearest / case:.1%} of the case")


def _smooth_anatomy(labels: sitk.Image, fixed: sitk.Image, transform: sitk.Transform):
    """Moving labels and the exact fixed-grid truth, both point-sampled from smooth shapes on a fine grid."""
    statistics_filter = sitk.LabelShapeStatisticsImageFilter()
    statistics_filter.Execute(labels)
    moving = np.zeros(labels.GetSize()[::-1], np.uint8)
    truth = np.zeros(fixed.GetSize()[::-1], np.uint8)
    identity = sitk.Transform(3, sitk.sitkIdentity)
    for value in statistics_filter.GetLabels():
        mask = sitk.Cast(labels == value, sitk.sitkFloat32)
        smooth = sitk.SmoothingRecursiveGaussian(mask, TRUTH_SMOOTHING_MM)
        fine = _fine_grid(labels, statistics_filter.GetBoundingBox(value))
        shape = sitk.Resample(smooth, fine, identity, sitk.sitkBSpline, 0.0, sitk.sitkFloat32) >= 0.5
        for target, grid, mapping in ((moving, labels, identity), (truth, fixed, transform)):
            sampled = sitk.Resample(shape, grid, mapping, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            target[sitk.GetArrayViewFromImage(sampled) > 0] = value
    return _like(moving, labels), _like(truth, fixed)


def _fine_grid(labels: sitk.Image, box) -> sitk.Image:
    """A 0.7 mm grid over a structure's bounding box (index box x, y, z, sizes) plus 6 mm."""
    low = np.array(labels.TransformContinuousIndexToPhysicalPoint([box[i] - 0.5 for i in range(3)]))
    high = np.array(
        labels.TransformContinuousIndexToPhysicalPoint([box[i] + box[i + 3] - 0.5 for i in range(3)])
    )
    start, stop = np.minimum(low, high) - 6.0, np.maximum(low, high) + 6.0
    grid = sitk.Image([int(n) for n in np.ceil((stop - start) / TRUTH_SPACING_MM)], sitk.sitkUInt8)
    grid.SetSpacing([TRUTH_SPACING_MM] * 3)
    grid.SetOrigin(start.tolist())
    return grid


def _upsampled(scan: dict, folder: str) -> dict:
    """The scan at 512×512 in-plane (CT linear, labels nearest neighbour), also written to ``folder``."""
    ct = scan["ct"]
    size = [ct.GetSize()[0] * 2, ct.GetSize()[1] * 2, ct.GetSize()[2]]
    spacing = [ct.GetSpacing()[0] / 2, ct.GetSpacing()[1] / 2, ct.GetSpacing()[2]]
    origin = ct.TransformContinuousIndexToPhysicalPoint([-0.25, -0.25, 0.0])
    identity = sitk.Transform(3, sitk.sitkIdentity)
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing(spacing)
    grid.SetOrigin(origin)
    grid.SetDirection(ct.GetDirection())
    result = {
        "ct": sitk.Resample(ct, grid, identity, sitk.sitkLinear, -1024.0, ct.GetPixelID()),
        "labels": sitk.Resample(scan["labels"], grid, identity, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8),
    }
    name = os.path.basename(scan["ct_path"]).split("_")[0]
    for key in ("ct", "labels"):
        result[f"{key}_path"] = os.path.join(folder, f"{name}_{key}.nii.gz")
        sitk.WriteImage(result[key], result[f"{key}_path"], True)
    return result


def _like(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image


def _load() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
