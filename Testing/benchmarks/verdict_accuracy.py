"""How far the verdict can be trusted: known right and wrong transforms, and what the verdict says.

Same patient (the answer is known exactly): real scans and phantoms moved by known affines
(``synthetic.make_pair_from_image``, ``synthetic.make_pair``). The true transform is perturbed in
fixed space about the fixed body centre: random moves within 1 mm (must be "ok"), shifts of 5-30 mm
along every axis, rotations of 5° and 10°, mirrors and 180° turns (must not be "ok"; 20 mm and more,
flips and mirrors must be "failed"). The registration's own results are judged too, also on moving
scans whose array was mirrored or turned 180° in-plane with the header kept.

Different patients (no true answer): LUNG1-003 onto LUNG1-001 and back, also with one scan cut
along the body axis; the registration's own result (label Dice given) and the same result moved
20-30 mm along any axis or turned 10°. Pairs showing different body regions (the TotalSegmentator
abdomen onto a chest) are listed apart: no affine result between them is right.

Cost: the verdict's share of a registration, and ``check`` on a 512×512×300 pair, both wall time.

    python Testing/benchmarks/verdict_accuracy.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.core.affine import affine_parts
from CTAffineRegisterLib.errors import RegistrationError
from CTAffineRegisterLib.io.images import read_image
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.pair.register import register_pair
from CTAffineRegisterLib.quality import verdict
from CTAffineRegisterLib.quality.accuracy import target_registration_error
from CTAffineRegisterLib.registration.preparation import build_pyramids

SHARED = Path(os.environ.get("CTAR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
FLIPS = {
    "mirror left-right": (-1, 1, 1),
    "mirror front-back": (1, -1, 1),
    "mirror head-foot": (1, 1, -1),
    "turn 180° in-plane": (-1, -1, 1),
    "turn 180° about front-back": (-1, 1, -1),
    "turn 180° about left-right": (1, -1, -1),
}


def _affine(matrix, offset) -> sitk.AffineTransform:
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(np.asarray(matrix, float).ravel().tolist())
    transform.SetTranslation(np.asarray(offset, float).tolist())
    return transform


def _rotation(axis: int, degrees: float) -> np.ndarray:
    return verdict._rotation(axis, degrees)


def _moved(transform, change, shift, center) -> sitk.AffineTransform:
    matrix, offset = affine_parts(transform, (0.0, 0.0, 0.0))
    return _affine(*verdict._perturbed(matrix, offset, np.asarray(change, float), shift, center))


def _shift(axis, mm):
    shift = np.zeros(3)
    shift[axis] = mm
    return shift


class Judge:
    """The verdict on transforms between one fixed and one moving scan, on the levels ``check`` uses."""

    def __init__(self, fixed, moving):
        self.fixed, self.moving = fixed, moving
        self.fixed_analysis, self.moving_analysis = analyze_background(fixed), analyze_background(moving)
        fixed_levels, moving_levels, self.center = build_pyramids(
            fixed, moving, self.fixed_analysis, self.moving_analysis, finest_spacing_mm=4.0, level_count=1
        )
        self.levels = (fixed_levels[-1], moving_levels[-1])

    def __call__(self, transform) -> dict:
        return verdict.judge(
            transform,
            self.fixed,
            self.moving,
            self.fixed_analysis,
            self.moving_analysis,
            *self.levels,
            self.center,
        )


def same_patient_cases(quick: bool):
    cases = [
        ("phantom", lambda: synthetic.make_pair(5)),
        ("phantom, -3024 in both", lambda: synthetic.make_pair(6, fixed_padding=-3024)),
        ("phantom, moving FOV cuts the body", lambda: synthetic.make_pair(7, moving_fov_radius_mm=110.0)),
    ]
    real = {
        "torso": "totalsegmentator/example_ct.nii.gz",
        "chest LUNG1-001": "nsclc_radiomics/LUNG1-001_ct.nii.gz",
        "chest LUNG1-003": "nsclc_radiomics/LUNG1-003_ct.nii.gz",
    }
    for index, (name, relative) in enumerate(real.items()):
        if (SHARED / relative).exists():
            image = read_image(str(SHARED / relative)).image
            padding = (-3024, -2048, -2000)[index]
            cases.append(
                (f"{name}, {padding} in moving", lambda i=image, p=padding, s=index: _real_pair(i, p, s))
            )
    return cases[:2] if quick else cases


def _real_pair(image, padding, seed):
    return synthetic.make_pair_from_image(image, seed=seed + 1, moving_padding=padding)


def same_patient(quick: bool, rows: list) -> None:
    rng = np.random.default_rng(0)
    for name, build in same_patient_cases(quick):
        pair = build()
        judge = Judge(pair.fixed, pair.moving)
        truth, points = pair.true_transform, pair.body_points

        def add(label, category, transform, judge=judge, truth=truth, points=points, name=name):
            started = time.perf_counter()
            result = judge(transform)
            seconds = time.perf_counter() - started
            error = target_registration_error(transform, truth, points)[0]
            rows.append(_row("same patient", name, label, category, error, result, seconds))

        for index in range(8 if quick else 20):
            direction = rng.normal(size=3)
            shift = direction / np.linalg.norm(direction) * rng.uniform(0.2, 0.8)
            change = _rotation(int(rng.integers(3)), rng.uniform(-0.25, 0.25))
            add(f"within 1 mm #{index}", "within 1 mm", _moved(truth, change, shift, judge.center))
        for axis, axis_name in enumerate(verdict.AXIS_NAMES):
            for mm in (5, 10, 20, 30):
                for sign in (-1, 1):
                    add(
                        f"shift {sign * mm:+d} mm {axis_name}",
                        "shift",
                        _moved(truth, np.eye(3), _shift(axis, sign * mm), judge.center),
                    )
            for degrees in (5, 10):
                for sign in (-1, 1):
                    change = _rotation(axis, sign * degrees)
                    add(
                        f"turn {sign * degrees:+d}° about {axis_name}",
                        "rotation",
                        _moved(truth, change, np.zeros(3), judge.center),
                    )
        for label, signs in FLIPS.items():
            add(label, "flip", _moved(truth, np.diag(signs), np.zeros(3), judge.center))
        result = register_pair(
            pair.fixed,
            pair.moving,
            fixed_analysis=judge.fixed_analysis,
            moving_analysis=judge.moving_analysis,
        )
        add("registered", "registered", result.transform)
        for label, axes in (
            ("moving turned 180° in-plane", [True, True, False]),
            ("moving mirrored left-right", [True, False, False]),
        ):
            _register_flipped(pair, axes, label, name, rows)
        print(
            f"  {name}: {sum(1 for r in rows if r['case'] == name)} transforms judged",
            file=sys.stderr,
            flush=True,
        )


def _register_flipped(pair, axes, label, name, rows) -> None:
    """The moving array reversed with its header kept: the scanner header is wrong."""
    flipped = sitk.Flip(pair.moving, axes)
    flipped.CopyInformation(pair.moving)
    size = np.array(pair.moving.GetSize())
    center = np.array(pair.moving.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2.0).tolist()))
    direction = np.array(pair.moving.GetDirection()).reshape(3, 3)
    flip = direction @ np.diag([-1.0 if a else 1.0 for a in axes]) @ direction.T
    truth_matrix, truth_offset = affine_parts(pair.true_transform, (0.0, 0.0, 0.0))
    truth = _affine(flip @ truth_matrix, flip @ truth_offset + center - flip @ center)
    judge = Judge(pair.fixed, flipped)
    try:
        result = register_pair(
            pair.fixed, flipped, fixed_analysis=judge.fixed_analysis, moving_analysis=judge.moving_analysis
        )
    except Exception as error:  # noqa: BLE001 - a refusal is an honest answer, recorded as such
        rows.append(
            {"group": "same patient", "case": name, "label": label, "category": "flip", "refused": str(error)}
        )
        return
    started = time.perf_counter()
    quality = judge(result.transform)
    error = target_registration_error(result.transform, truth, pair.body_points)[0]
    rows.append(_row("same patient", name, label, "flip", error, quality, time.perf_counter() - started))


def different_patients(quick: bool, rows: list) -> None:
    paths = {
        "LUNG1-001": "nsclc_radiomics/LUNG1-001",
        "LUNG1-003": "nsclc_radiomics/LUNG1-003",
    }
    if not all((SHARED / f"{p}_ct.nii.gz").exists() for p in paths.values()):
        print("  different patients: nsclc_radiomics not found, skipped", file=sys.stderr)
        return
    scans = {
        name: (
            read_image(str(SHARED / f"{p}_ct.nii.gz")).image,
            sitk.ReadImage(str(SHARED / f"{p}_labels.nii.gz")),
        )
        for name, p in paths.items()
    }
    top = lambda image, share: image[:, :, int(image.GetSize()[2] * share) :]  # noqa: E731
    pairs = [("LUNG1-003", "LUNG1-001"), ("LUNG1-001", "LUNG1-003")]
    for share in (0.3, 0.4, 0.5):  # scans of different coverage: the upper part of one chest
        for name in ("LUNG1-001", "LUNG1-003"):
            cut = f"{name} upper {100 - int(share * 100)}%"
            scans[cut] = tuple(top(image, share) for image in scans[name])
            other = "LUNG1-003" if name == "LUNG1-001" else "LUNG1-001"
            if not quick:
                pairs += [(cut, other), (other, cut)]
    for moving_name, fixed_name in pairs:
        (moving, moving_labels), (fixed, fixed_labels) = scans[moving_name], scans[fixed_name]
        judge = Judge(fixed, moving)
        name = f"{moving_name} onto {fixed_name}"
        result = register_pair(
            fixed, moving, fixed_analysis=judge.fixed_analysis, moving_analysis=judge.moving_analysis
        )
        dice = _label_dice(fixed_labels, moving_labels, result.transform)
        quality = judge(result.transform)
        rows.append(_row("different patients", name, "registered", "registered", None, quality, 0.0, dice))
        for axis, axis_name in enumerate(verdict.AXIS_NAMES):
            for mm in (20, 30):
                for sign in (-1, 1):
                    moved = _moved(result.transform, np.eye(3), _shift(axis, sign * mm), judge.center)
                    rows.append(
                        _row(
                            "different patients",
                            name,
                            f"shift {sign * mm:+d} mm {axis_name}",
                            "shift",
                            None,
                            judge(moved),
                            0.0,
                        )
                    )
            for sign in (-1, 1):
                moved = _moved(result.transform, _rotation(axis, sign * 10), np.zeros(3), judge.center)
                rows.append(
                    _row(
                        "different patients",
                        name,
                        f"turn {sign * 10:+d}° about {axis_name}",
                        "rotation",
                        None,
                        judge(moved),
                        0.0,
                    )
                )
        print(f"  {name}: label Dice {dice}", file=sys.stderr, flush=True)


def different_regions(rows: list) -> None:
    """Scans of different body regions: no result can be right, so none may be "ok"."""
    abdomen_path = SHARED / "totalsegmentator/example_ct.nii.gz"
    chest_path = SHARED / "nsclc_radiomics/LUNG1-001_ct.nii.gz"
    if not (abdomen_path.exists() and chest_path.exists()):
        return
    abdomen, chest = read_image(str(abdomen_path)).image, read_image(str(chest_path)).image
    for name, (fixed, moving) in {
        "abdomen onto chest": (chest, abdomen),
        "chest onto abdomen": (abdomen, chest),
    }.items():
        judge = Judge(fixed, moving)
        try:
            result = register_pair(
                fixed, moving, fixed_analysis=judge.fixed_analysis, moving_analysis=judge.moving_analysis
            )
        except RegistrationError as error:  # refusing is a right answer here
            rows.append(
                {"group": "different regions", "case": name, "label": "registered", "refused": str(error)}
            )
            continue
        quality = judge(result.transform)
        rows.append(_row("different regions", name, "registered", "different region", None, quality, 0.0))


def _label_dice(fixed_labels, moving_labels, transform) -> dict:
    """Dice of the expert contours, where the moving scan has data (a cut scan lacks the rest)."""
    mapped = sitk.Resample(moving_labels, fixed_labels, transform, sitk.sitkNearestNeighbor, 0)
    covered = sitk.Image(moving_labels.GetSize(), sitk.sitkUInt8) + 1
    covered.CopyInformation(moving_labels)
    covered = sitk.Resample(covered, fixed_labels, transform, sitk.sitkNearestNeighbor, 0)
    inside = sitk.GetArrayViewFromImage(covered) > 0
    fixed = np.where(inside, sitk.GetArrayViewFromImage(fixed_labels), 0)
    moving = sitk.GetArrayViewFromImage(mapped)
    names = {1: "lung L", 2: "lung R", 3: "cord"}
    dice = {}
    for label, name in names.items():
        a, b = fixed == label, moving == label
        if a.any() and b.any():
            dice[name] = round(2.0 * float((a & b).sum()) / float(a.sum() + b.sum()), 2)
    return dice


def _row(group, case, label, category, error, result, seconds, label_dice=None) -> dict:
    return {
        "group": group,
        "case": case,
        "label": label,
        "category": category,
        "tre_mm": None if error is None else round(float(error), 2),
        "verdict": result["verdict"],
        "reason": result["reason"],
        "figures": result["figures"],
        "seconds": round(seconds, 3),
        **({"label_dice": label_dice} if label_dice else {}),
    }


def expected(row) -> str:
    """What a right verdict is: "ok", "not ok" (suspect or failed) or "failed"."""
    if row["group"] == "different regions":
        return "not ok"
    if row["group"] == "different patients":
        return "ok" if row["category"] == "registered" else "not ok"
    error = row.get("tre_mm")
    if row["category"] == "flip" or (error is not None and error >= 20.0):
        return "failed"
    if row["category"] in ("within 1 mm", "registered") and error is not None and error <= 1.0:
        return "ok"
    return "not ok" if error is not None and error >= 4.5 else "either"


def meets(row) -> bool:
    want = expected(row)
    return (
        want == "either"
        or (want == "ok" and row["verdict"] == "ok")
        or (want == "not ok" and row["verdict"] != "ok")
        or (want == "failed" and row["verdict"] == "failed")
    )


def summary(rows: list) -> None:
    judged = [row for row in rows if "verdict" in row]
    print("\n| group | what | transforms | ok | suspect | failed | target met |")
    print("|---|---|---|---|---|---|---|")
    groups = [
        ("same patient", "within 1 mm of the truth", lambda r: expected(r) == "ok"),
        ("same patient", "5-20 mm off, or 5°+ turns (not ok)", lambda r: expected(r) == "not ok"),
        ("same patient", "20 mm+ off, flips, mirrors (failed)", lambda r: expected(r) == "failed"),
        ("different patients", "registration's own result", lambda r: r["category"] == "registered"),
        (
            "different patients",
            "result moved 20-30 mm or turned 10°",
            lambda r: r["category"] != "registered",
        ),
        ("different regions", "abdomen ↔ chest, registered", lambda r: True),
    ]
    for group, text, pick in groups:
        chosen = [row for row in judged if row["group"] == group and pick(row)]
        if not chosen:
            continue
        counts = Counter(row["verdict"] for row in chosen)
        met = sum(meets(row) for row in chosen)
        print(
            f"| {group} | {text} | {len(chosen)} | {counts['ok']} | {counts['suspect']} | {counts['failed']} "
            f"| {met}/{len(chosen)} ({100.0 * met / len(chosen):.0f}%) |"
        )
    misses = [row for row in judged if not meets(row)]
    if misses:
        print("\nMisses:")
        for row in misses:
            where = f"{row['group']}, {row['case']}, {row['label']} (TRE {row['tre_mm']} mm)"
            print(f"- {where}: {row['verdict']} - {row['reason']}")
    refused = [row for row in rows if "refused" in row]
    for row in refused:
        print(f"- refused: {row['case']}, {row['label']}: {row['refused']}")


def cost(quick: bool) -> None:
    """Verdict share of a registration (in process), and ``check`` on a 512×512×300 pair (whole CLI)."""
    print("\n| what | seconds |")
    print("|---|---|")
    pair = synthetic.make_pair(3)
    fixed_analysis, moving_analysis = analyze_background(pair.fixed), analyze_background(pair.moving)
    started = time.perf_counter()
    result = register_pair(
        pair.fixed, pair.moving, fixed_analysis=fixed_analysis, moving_analysis=moving_analysis
    )
    total = time.perf_counter() - started
    judge = Judge(pair.fixed, pair.moving)
    started = time.perf_counter()
    for _ in range(3):
        judge(result.transform)
    verdict_seconds = (time.perf_counter() - started) / 3
    print(f"| register_pair, 160×160×120 phantom | {total:.2f} |")
    share = 100 * verdict_seconds / total
    print(f"| of which the verdict (measured apart, mean of 3) | {verdict_seconds:.3f} ({share:.0f}%) |")
    if quick:
        return
    with tempfile.TemporaryDirectory() as folder:
        big = synthetic.make_pair(
            4, fixed_size=(512, 512, 300), fixed_spacing=(0.8, 0.8, 1.2), moving_spacing=(0.9, 0.9, 1.5)
        )
        fixed_path, moving_path = Path(folder, "fixed.nii.gz"), Path(folder, "moving.nii.gz")
        transform_path = Path(folder, "truth.tfm")
        sitk.WriteImage(big.fixed, str(fixed_path), True)
        sitk.WriteImage(big.moving, str(moving_path), True)
        sitk.WriteTransform(big.true_transform, str(transform_path))
        command = [
            sys.executable,
            "-m",
            "CTAffineRegisterLib.cli",
            "check",
            "--fixed",
            str(fixed_path),
            "--moving",
            str(moving_path),
            "--transform",
            str(transform_path),
            "--json",
        ]
        times = []
        for _ in range(3):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - started)
        outcome = json.loads(done.stdout)["verdict"] if done.returncode in (0, 1) else done.stderr.strip()
        what = "`check` on a 512×512×300 pair (whole CLI: read, analyse, judge; median of 3)"
        print(f"| {what} | {sorted(times)[1]:.2f} (verdict {outcome}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two phantoms, one patient pair, no 512³ check")
    parser.add_argument("--json", metavar="FILE", help="write every judged transform")
    parser.add_argument(
        "--cost-only", action="store_true", help="only the cost figures (a quiet machine's job)"
    )
    arguments = parser.parse_args()
    rows: list = []
    print(f"load average at start: {os.getloadavg()[0]:.1f}", file=sys.stderr)
    if not arguments.cost_only:
        same_patient(arguments.quick, rows)
        different_patients(arguments.quick, rows)
        if not arguments.quick:
            different_regions(rows)
        summary(rows)
    cost(arguments.quick)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
