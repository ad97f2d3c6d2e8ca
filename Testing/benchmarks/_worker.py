"""Child-process entry point: run one Python-based registration tool on two files.

Each tool runs in its own process so that the parent can read that process's peak memory
(``os.wait4``) and wall time without one tool's caches or allocator state leaking into the next.
Usage: ``python _worker.py TOOL FIXED MOVING OUTDIR``; writes ``OUTDIR/transform.tfm`` (fixed→moving),
``OUTDIR/registered.mha`` (moving resampled onto the fixed grid) and ``OUTDIR/timing.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

SEED_DEFAULT_VALUE = -1024.0  # the recipe's last attempt: the corner median

GREEDY_ITERATIONS = "100x50x10"


def seed_recipe(fixed: sitk.Image, moving: sitk.Image) -> tuple[sitk.Image, sitk.Transform]:
    """The baseline users start from (shared/reference/seed-recipe.md), parameter for parameter."""
    fixed_f = sitk.Cast(fixed, sitk.sitkFloat32)
    moving_f = sitk.Cast(moving, sitk.sitkFloat32)
    initial = sitk.CenteredTransformInitializer(
        fixed_f, moving_f, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.01)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsGradientDescent(
        learningRate=1.0, numberOfIterations=500, convergenceMinimumValue=1e-6, convergenceWindowSize=10
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    final = method.Execute(fixed_f, moving_f)
    output = sitk.Resample(moving, fixed, final, sitk.sitkLinear, SEED_DEFAULT_VALUE, moving.GetPixelID())
    return output, final


def ours(fixed_path: str, moving_path: str) -> tuple[sitk.Image, sitk.Transform, float]:
    """This project as its CLI calls it: read (keeping DICOM padding facts), register, resample."""
    from CTAffineRegisterLib.io.images import read_image

    fixed = read_image(fixed_path)
    moving = read_image(moving_path)
    start = time.perf_counter()
    try:
        from CTAffineRegisterLib.pair.register import register_pair
    except ImportError:
        registered, transform = _ours_from_modules(fixed, moving)
    else:
        result = register_pair(
            fixed.image, moving.image, fixed_padding=fixed.dicom_padding, moving_padding=moving.dicom_padding
        )
        registered, transform = result.registered, result.transform
    return registered, transform, time.perf_counter() - start


def _ours_from_modules(fixed, moving) -> tuple[sitk.Image, sitk.Transform]:
    """Until ``pipeline.register_pair`` exists: the same steps from the modules it will call."""
    from CTAffineRegisterLib.padding.analysis import analyze_background
    from CTAffineRegisterLib.registration.engine import register_images
    from CTAffineRegisterLib.resample.scans import resample_to_fixed

    fixed_analysis = analyze_background(fixed.image, fixed.dicom_padding)
    moving_analysis = analyze_background(moving.image, moving.dicom_padding)
    result = register_images(fixed.image, moving.image, fixed_analysis, moving_analysis)
    registered = resample_to_fixed(moving.image, fixed.image, result.transform, moving_analysis)
    return registered, result.transform


def greedy(fixed_path: str, moving_path: str, outdir: Path) -> tuple[sitk.Image, sitk.Transform, float]:
    """picsl-greedy affine (-a -dof 12 -m NMI), image-centre initialisation, then its own reslice."""
    from picsl_greedy import Greedy3D

    matrix_path = outdir / "greedy.mat"
    output_path = outdir / "registered.mha"
    g = Greedy3D()
    start = time.perf_counter()
    g.execute(
        f"-d 3 -threads 2 -a -dof 12 -m NMI -n {GREEDY_ITERATIONS} -ia-image-centers "
        f"-i {fixed_path} {moving_path} -o {matrix_path}"
    )
    g.execute(f"-d 3 -threads 2 -rf {fixed_path} -rb -1024 -rm {moving_path} {output_path} -r {matrix_path}")
    elapsed = time.perf_counter() - start
    return sitk.ReadImage(str(output_path)), greedy_matrix_to_itk(np.loadtxt(matrix_path)), elapsed


def greedy_matrix_to_itk(ras: np.ndarray) -> sitk.AffineTransform:
    """Greedy writes a 4×4 fixed→moving map in RAS; ITK is LPS, so conjugate with diag(-1,-1,1,1)."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps = flip @ ras @ flip
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(lps[:3, :3].ravel().tolist())
    transform.SetTranslation(lps[:3, 3].tolist())
    return transform


def main(argv: list[str]) -> int:
    tool, fixed_path, moving_path, outdir = argv[1], argv[2], argv[3], Path(argv[4])
    outdir.mkdir(parents=True, exist_ok=True)
    if tool == "seed":
        fixed, moving = sitk.ReadImage(fixed_path), sitk.ReadImage(moving_path)
        start = time.perf_counter()
        registered, transform = seed_recipe(fixed, moving)
        core = time.perf_counter() - start
    elif tool == "ours":
        registered, transform, core = ours(fixed_path, moving_path)
    elif tool == "greedy":
        registered, transform, core = greedy(fixed_path, moving_path, outdir)
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    sitk.WriteImage(registered, str(outdir / "registered.mha"))
    sitk.WriteTransform(transform, str(outdir / "transform.tfm"))
    (outdir / "timing.json").write_text(json.dumps({"core_s": core}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
