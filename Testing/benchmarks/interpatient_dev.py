"""The development set of different patients: structure overlap per tool, and what the verdict says.

Every real human chest CT with expert contours here (shared/data/nsclc_radiomics: LUNG1-001, arms
up; LUNG1-003, arms down) is paired with the other, both ways, with realistic variations of real
anatomy:

- body size: one scan's anatomy made larger or smaller about its centre, isotropically and per axis
  (0.75-1.35), its contours with it: a smaller or larger patient;
- partial coverage: the upper 60 % or 50 % of one chest;
- another padding value: a -3024 ring outside a 230 mm field of view (the FOV cuts the arms);
- arms up against arms down (the two patients as they are).

Each pair is registered by this project (with and without its last stage, ``optimum_refinement``),
the seed recipe, elastix and greedy (when installed; ``Testing/benchmarks/peers.py``), and scored by
independent structure overlap: Dice of the body (HU > -400), bone (HU > 250) and each lung (expert
contours) where the moving scan has data; their mean is the score (the spinal cord is shown, not
scored: a few voxels decide its Dice between patients).

The verdict is then asked about this project's result and about wrong versions of it: moved
10/20/30 mm along each axis, turned 10° about each axis, turned 180° in-plane, mirrored left-right.
Right results must be "ok"; wrong ones flagged (not "ok"); gross ones (20 mm and more, flips)
"failed".

    python Testing/benchmarks/interpatient_dev.py [--quick] [--tools ours mi-only seed elastix greedy]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import ElastixTool, GreedyTool, PythonTool  # noqa: E402
from verdict_accuracy import FLIPS, Judge, _moved, _rotation, _shift  # noqa: E402

from CTAffineRegisterLib import synthetic  # noqa: E402
from CTAffineRegisterLib.io.images import read_image  # noqa: E402
from CTAffineRegisterLib.pair.register import register_pair  # noqa: E402
from CTAffineRegisterLib.quality import verdict  # noqa: E402
from CTAffineRegisterLib.registration import RegistrationOptions  # noqa: E402

SHARED = Path(os.environ.get("CTAR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def resized(image: sitk.Image, factors, interpolator=sitk.sitkLinear, outside=-1024.0) -> sitk.Image:
    """The same anatomy ``factors`` times larger along each axis about the scan centre, on a grid
    grown with it: a larger (or smaller) patient."""
    size, spacing = np.array(image.GetSize()), np.array(image.GetSpacing())
    center = image.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2.0).tolist())
    shrink = sitk.AffineTransform(3)
    shrink.SetCenter(center)
    shrink.SetMatrix(np.diag([1.0 / f for f in factors]).ravel().tolist())
    new_size = np.maximum(np.round(size * np.asarray(factors)).astype(int), 2)
    grid = sitk.Image([int(n) for n in new_size], image.GetPixelID())
    grid.SetSpacing(spacing.tolist())
    grid.SetDirection(image.GetDirection())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    grid.SetOrigin((np.array(center) - direction @ (spacing * (new_size - 1) / 2.0)).tolist())
    return sitk.Resample(image, grid, shrink, interpolator, outside, image.GetPixelID())


def development_pairs(quick: bool = False) -> dict:
    """name -> ((fixed CT, fixed labels), (moving CT, moving labels)); empty without the data."""
    paths = {name: SHARED / "nsclc_radiomics" / name for name in ("LUNG1-001", "LUNG1-003")}
    if not all(Path(f"{p}_ct.nii.gz").exists() for p in paths.values()):
        return {}
    scans = {
        name: (read_image(f"{p}_ct.nii.gz").image, sitk.ReadImage(f"{p}_labels.nii.gz"))
        for name, p in paths.items()
    }

    def size(name, factors):
        ct, labels = scans[name]
        return resized(ct, factors), resized(labels, factors, sitk.sitkNearestNeighbor, 0.0)

    def top(name, share):
        ct, labels = scans[name]
        start = int(ct.GetSize()[2] * (1.0 - share))
        return ct[:, :, start:], labels[:, :, start:]

    def ring(name, value=-3024, radius=230.0):
        ct, labels = scans[name]
        return synthetic.insert_fov_padding(ct, value, radius), labels

    a, b = scans["LUNG1-001"], scans["LUNG1-003"]
    pairs = {
        "003 onto 001": (a, b),
        "001 onto 003": (b, a),
        "003 ×0.8 onto 001": (a, size("LUNG1-003", (0.8, 0.8, 0.9))),
        "003 ×1.3 onto 001": (a, size("LUNG1-003", (1.3, 1.25, 1.1))),
        "001 ×(1.3, 1.1, 1) onto 003": (b, size("LUNG1-001", (1.3, 1.1, 1.0))),
        "001 onto 003 ×(1.25, 1.35, 1)": (size("LUNG1-003", (1.25, 1.35, 1.0)), a),
        "003 ×0.75 onto 001 ×1.2": (
            size("LUNG1-001", (1.2, 1.2, 1.2)),
            size("LUNG1-003", (0.75, 0.75, 0.75)),
        ),
        "003 upper 60% onto 001": (a, top("LUNG1-003", 0.6)),
        "001 upper 60% onto 003": (b, top("LUNG1-001", 0.6)),
        "001 onto 003 upper 50%": (top("LUNG1-003", 0.5), a),
        "003 with -3024 ring onto 001": (a, ring("LUNG1-003")),
        "001 onto 003 with -3024 ring": (ring("LUNG1-003"), a),
    }
    if quick:
        pairs = {name: pairs[name] for name in list(pairs)[:4]}
    return pairs


def structure_overlap(fixed, fixed_labels, moving, moving_labels, transform) -> dict:
    """Dice of body, bone and each lung (and the cord) where the moving scan has data."""
    moved = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, transform, sitk.sitkLinear, -1024.0))
    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    covered = sitk.GetArrayFromImage(sitk.Resample(ones, fixed, transform, sitk.sitkNearestNeighbor, 0)) > 0
    values = sitk.GetArrayFromImage(fixed)
    moved_labels = sitk.GetArrayFromImage(
        sitk.Resample(moving_labels, fixed_labels, transform, sitk.sitkNearestNeighbor, 0)
    )
    labels = sitk.GetArrayFromImage(fixed_labels)

    def dice(first, second):
        first, second = first & covered, second & covered
        total = int(first.sum() + second.sum())
        return 2.0 * float((first & second).sum()) / total if total else float("nan")

    result = {
        "body": dice(values > -400, moved > -400),
        "bone": dice(values > 250, moved > 250),
        "lung L": dice(labels == 1, moved_labels == 1),
        "lung R": dice(labels == 2, moved_labels == 2),
        "cord": dice(labels == 3, moved_labels == 3),
    }
    result["score"] = float(np.nanmean([result[key] for key in ("body", "bone", "lung L", "lung R")]))
    return result


def wrong_versions(transform, center) -> list[tuple[str, bool, sitk.Transform]]:
    """(label, gross, transform): the result moved, turned, flipped in fixed space about the body centre."""
    versions = []
    for axis, axis_name in enumerate(verdict.AXIS_NAMES):
        for mm in (10, 20, 30):
            for sign in (-1, 1):
                moved = _moved(transform, np.eye(3), _shift(axis, sign * mm), center)
                versions.append((f"shift {sign * mm:+d} mm {axis_name}", mm >= 20, moved))
        for sign in (-1, 1):
            moved = _moved(transform, _rotation(axis, sign * 10), np.zeros(3), center)
            versions.append((f"turn {sign * 10:+d}° about {axis_name}", False, moved))
    for label in ("turn 180° in-plane", "mirror left-right"):
        versions.append((label, True, _moved(transform, np.diag(FLIPS[label]), np.zeros(3), center)))
    return versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first four pairs only")
    parser.add_argument("--tools", nargs="+", default=["ours", "mi-only", "seed", "elastix", "greedy"])
    parser.add_argument("--no-verdict", action="store_true", help="skip the wrong versions")
    args = parser.parse_args()
    pairs = development_pairs(args.quick)
    if not pairs:
        sys.exit(f"nsclc_radiomics not found under {SHARED}")
    peers = {"seed": PythonTool("seed", "seed"), "elastix": ElastixTool(), "greedy": GreedyTool()}
    tools = []
    for name in args.tools:
        if name in peers:
            available, why = peers[name].available()
            if not available:
                print(f"{name}: {why}; left out", file=sys.stderr)
                continue
        tools.append(name)
    scores: dict[str, dict[str, float]] = {}
    verdicts: list[dict] = []
    print("| pair | " + " | ".join(tools) + " | our verdict | last stage |")
    print("|---|" + "---|" * (len(tools) + 2))
    with tempfile.TemporaryDirectory() as folder:
        for name, ((fixed, fixed_labels), (moving, moving_labels)) in pairs.items():
            work = Path(folder, str(len(scores)))
            work.mkdir()
            fixed_path, moving_path = work / "fixed.nii.gz", work / "moving.nii.gz"
            sitk.WriteImage(fixed, str(fixed_path))
            sitk.WriteImage(moving, str(moving_path))
            row, ours = {}, None
            for tool in tools:
                if tool in ("ours", "mi-only"):
                    options = RegistrationOptions(refine_to_optimum=tool == "ours")
                    started = time.perf_counter()
                    result = register_pair(fixed, moving, options=options)
                    seconds = time.perf_counter() - started
                    transform = result.transform
                    if tool == "ours":
                        ours = (result, seconds)
                else:
                    run = peers[tool].run(fixed_path, moving_path, work / tool)
                    transform = run.transform
                if transform is None:
                    row[tool] = float("nan")
                    continue
                row[tool] = structure_overlap(fixed, fixed_labels, moving, moving_labels, transform)["score"]
            scores[name] = row
            quality = ours[0].report["quality"] if ours else {}
            refinement = quality.get("refinement", {}).get("sentence", "not needed") if ours else ""
            cells = " | ".join(f"{row[tool]:.3f}" for tool in tools)
            print(f"| {name} | {cells} | {quality.get('verdict', '')} | {refinement} |", flush=True)
            if ours and not args.no_verdict:
                judge = Judge(fixed, moving)
                verdicts.append({"pair": name, "kind": "own", "verdict": judge(ours[0].transform)["verdict"]})
                for label, gross, wrong in wrong_versions(ours[0].transform, judge.center):
                    kind = "gross" if gross else "wrong"
                    verdicts.append(
                        {"pair": name, "kind": kind, "label": label, "verdict": judge(wrong)["verdict"]}
                    )
    print("\n| tool | mean score | pairs where best or within 0.005 of the best peer |")
    print("|---|---|---|")
    peer_names = [tool for tool in tools if tool in peers]
    for tool in tools:
        values = [row[tool] for row in scores.values()]
        level = sum(
            1
            for row in scores.values()
            if not peer_names or row[tool] >= max(row[peer] for peer in peer_names) - 0.005
        )
        print(f"| {tool} | {np.nanmean(values):.4f} | {level}/{len(scores)} |")
    if verdicts:
        print("\n| what | judged | ok | suspect | failed | target met |")
        print("|---|---|---|---|---|---|")
        for kind, text, target in (
            ("own", "this project's result", lambda v: v == "ok"),
            ("wrong", "moved 10 mm or turned 10° (flagged)", lambda v: v != "ok"),
            ("gross", "moved 20-30 mm, turned 180°, mirrored (failed)", lambda v: v == "failed"),
        ):
            chosen = [
                row for row in verdicts if row["kind"] in ((kind,) if kind != "wrong" else ("wrong", "gross"))
            ]
            if kind == "wrong":
                text = "every wrong version, flagged (not ok)"
            counts = Counter(row["verdict"] for row in chosen)
            met = sum(target(row["verdict"]) for row in chosen)
            print(
                f"| {text} | {len(chosen)} | {counts['ok']} | {counts['suspect']} | {counts['failed']} "
                f"| {met}/{len(chosen)} ({100.0 * met / max(1, len(chosen)):.0f}%) |"
            )
        misses = [row for row in verdicts if row["kind"] != "own" and row["verdict"] == "ok"]
        misses += [row for row in verdicts if row["kind"] == "gross" and row["verdict"] == "suspect"]
        misses += [row for row in verdicts if row["kind"] == "own" and row["verdict"] != "ok"]
        for row in misses:
            print(f"- {row['pair']}, {row.get('label', 'own result')}: {row['verdict']}")


if __name__ == "__main__":
    main()
