"""The built-in demo: a generated pair with a known answer, registered exactly as the CLI does it.

Dataset-A style fixed scan (air background) and dataset-B style moving scan (-3024 padding outside
a circular field of view, another grid, a known affine). It prints how far the result is from the
truth, and how many ring voxels a plain resample of the same scan would have left.
"""

from __future__ import annotations

import json
import os

import numpy as np
import SimpleITK as sitk

from ..cohort.outputs import SUMMARY_NAMES
from ..cohort.run import run_cohort
from ..io.images import write_image, write_transform
from ..quality.accuracy import ring_voxels, target_registration_error
from ..synthetic import make_pair


def run_demo(out_dir: str, seed: int = 0, overwrite: bool = False) -> int:
    """Generate, register, compare with the truth; exit status 0 when the accuracy is sub-millimetre.

    Run again into the same folder with the same seed, the demo finds its own inputs unchanged,
    reuses them and replaces its own previous results (report.json naming these inputs): the
    quick-start line works twice. Anything else already there is only replaced with ``overwrite``.

    Args:
        out_dir: the output folder.
        seed: the phantom's seed.
        overwrite: replace existing outputs.

    Returns:
        The exit status.

    Raises:
        ValueError: ``seed`` is not a whole number, 0 or more.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number, 0 or more, not {seed!r}")
    pair = make_pair(seed=seed)
    inputs = os.path.join(out_dir, "inputs")
    fixed_path = os.path.join(inputs, "fixed_A.nii.gz")
    moving_path = os.path.join(inputs, "moving_B.nii.gz")
    truth_path = os.path.join(inputs, "true_transform.tfm")
    reused = not overwrite and _previous_inputs_match(pair, fixed_path, moving_path, truth_path)
    if reused:
        print(f"reusing the identical inputs of a previous demo run in {inputs}")
    else:
        write_image(pair.fixed, fixed_path, overwrite)
        write_image(pair.moving, moving_path, overwrite)
        write_transform(pair.true_transform, truth_path, overwrite)
        print(f"generated {fixed_path} {pair.fixed.GetSize()} and {moving_path} {pair.moving.GetSize()}")

    replace = overwrite or (reused and _previous_report_is_ours(out_dir, fixed_path, moving_path))
    report = run_cohort(fixed_path, [moving_path], out_dir, jobs=1, overwrite=replace, progress="auto")
    case = report["cases"][0]
    if case["status"] != "ok":
        print(f"demo registration failed: {case['error']}")
        return 1
    estimated = sitk.ReadTransform(os.path.join(out_dir, case["outputs"]["transform"]))
    registered = sitk.ReadImage(os.path.join(out_dir, case["outputs"]["registered"]))
    mean_tre, max_tre = target_registration_error(estimated, pair.true_transform, pair.body_points)
    rings = ring_voxels(registered, pair.fixed_valid_mask)
    plain = sitk.Resample(
        pair.moving, pair.fixed, estimated, sitk.sitkLinear, -1024.0, pair.moving.GetPixelID()
    )
    plain_rings = ring_voxels(plain, pair.fixed_valid_mask)

    print(f"fixed:  {report['fixed']['summary']}")
    print(f"moving: {case['moving']['summary']}")
    print(
        f"target registration error over {len(pair.body_points)} body points: "
        f"mean {mean_tre:.3f} mm, max {max_tre:.3f} mm"
    )
    print(
        f"ring voxels (< -1100 HU inside the fixed field of view): {rings} "
        f"(a plain resample with default value -1024 leaves {plain_rings})"
    )
    print(f"verdict: {case['quality']['verdict']} ({case['quality']['reason']})")
    print(f"{case['seconds']:.1f} s; outputs in {out_dir}")
    return 0 if mean_tre < 1.0 and rings == 0 else 1


def _previous_inputs_match(pair, fixed_path: str, moving_path: str, truth_path: str) -> bool:
    """All three demo inputs already there, and exactly what this seed generates."""
    if not all(os.path.isfile(path) for path in (fixed_path, moving_path, truth_path)):
        return False
    try:
        images_match = _same_image(sitk.ReadImage(fixed_path), pair.fixed) and _same_image(
            sitk.ReadImage(moving_path), pair.moving
        )
        truth = sitk.ReadTransform(truth_path)
    except RuntimeError:  # unreadable: not ours to reuse (and not ours to replace)
        return False
    expected = pair.true_transform
    return (
        images_match
        and np.array_equal(truth.GetParameters(), expected.GetParameters())
        and np.array_equal(truth.GetFixedParameters(), expected.GetFixedParameters())
    )


def _same_image(found: sitk.Image, expected: sitk.Image) -> bool:
    return (
        found.GetSize() == expected.GetSize()
        and found.GetPixelID() == expected.GetPixelID()
        and np.allclose(found.GetSpacing(), expected.GetSpacing(), rtol=0, atol=1e-6)
        and np.allclose(found.GetOrigin(), expected.GetOrigin(), rtol=0, atol=1e-4)
        and np.allclose(found.GetDirection(), expected.GetDirection(), rtol=0, atol=1e-6)
        and np.array_equal(sitk.GetArrayViewFromImage(found), sitk.GetArrayViewFromImage(expected))
    )


def _previous_report_is_ours(out_dir: str, fixed_path: str, moving_path: str) -> bool:
    """No report.json yet, or one written by a demo run on these very inputs."""
    report_path = os.path.join(out_dir, SUMMARY_NAMES["json"])
    if not os.path.exists(report_path):
        return True
    try:
        with open(report_path, encoding="utf-8") as handle:
            report = json.load(handle)
        cases = report["cases"]
        return report["fixed"]["path"] == fixed_path and [case["moving_path"] for case in cases] == [
            moving_path
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return False
