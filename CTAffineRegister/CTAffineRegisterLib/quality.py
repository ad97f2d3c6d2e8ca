"""Is a registration result believable? A verdict a person can act on, without the true answer.

After a good registration the fixed body and the moving body mapped into fixed space overlap almost
perfectly where both scans hold data, and the scale stays within what patients and scanners do.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .pyramid import coarse_grid, resample_mask
from .transforms import affine_parts

# Body Dice below these marks a result suspect / failed (good results reach 0.95-0.99).
DICE_SUSPECT = 0.90
DICE_FAILED = 0.75


def assess_quality(
    transform: sitk.Transform,
    fixed_analysis,
    moving_analysis,
    dice_suspect: float = DICE_SUSPECT,
    dice_failed: float = DICE_FAILED,
) -> dict:
    """Flag a likely failure: body masks that do not overlap after mapping, or an implausible scale.

    Dice is computed where both scans hold real data, at about 4 mm, so a field-of-view cut or
    different slice coverage does not count against a good result.
    """
    matrix, _ = affine_parts(transform)
    singular = np.linalg.svd(matrix, compute_uv=False)
    grid = coarse_grid(fixed_analysis.body_mask, 4.0)
    fixed_body = resample_mask(fixed_analysis.body_mask, grid, sitk.Transform())
    fixed_valid = resample_mask(fixed_analysis.valid_mask, grid, sitk.Transform())
    moving_body = resample_mask(moving_analysis.body_mask, grid, transform)
    moving_valid = resample_mask(moving_analysis.valid_mask, grid, transform)
    region = (sitk.GetArrayViewFromImage(fixed_valid) > 0) & (sitk.GetArrayViewFromImage(moving_valid) > 0)
    a = (sitk.GetArrayViewFromImage(fixed_body) > 0) & region
    b = (sitk.GetArrayViewFromImage(moving_body) > 0) & region
    missing = [
        role
        for role, analysis in (("fixed", fixed_analysis), ("moving", moving_analysis))
        if not sitk.GetArrayViewFromImage(analysis.body_mask).any()
    ]
    total = int(a.sum() + b.sum())
    dice = 2.0 * float(np.count_nonzero(a & b)) / total if total and not missing else None
    verdict, reasons = "ok", []
    if singular.min() < 0.67 or singular.max() > 1.5 or np.linalg.det(matrix) <= 0:
        verdict = "failed"
        reasons.append(f"implausible scale (axes scaled {singular.min():.2f}..{singular.max():.2f})")
    elif singular.min() < 0.8 or singular.max() > 1.25:
        verdict = "suspect"
        reasons.append(f"large scale change (axes scaled {singular.min():.2f}..{singular.max():.2f})")
    if missing:
        # no body to compare is not evidence of failure, but nothing confirms success either
        verdict = "suspect" if verdict == "ok" else verdict
        reasons.append(f"no body mask in the {' and '.join(missing)} scan; overlap not checked")
    elif dice is None:
        verdict = "failed"
        reasons.append("no body found where both scans hold data")
    elif dice < dice_failed:
        verdict = "failed"
        reasons.append(f"body masks overlap poorly (Dice {dice:.2f} < {dice_failed})")
    elif dice < dice_suspect:
        verdict = "suspect" if verdict == "ok" else verdict
        reasons.append(f"body masks overlap less than expected (Dice {dice:.2f} < {dice_suspect})")
    return {
        "verdict": verdict,
        "body_dice": None if dice is None else round(dice, 4),
        "scale_range": [round(float(singular.min()), 4), round(float(singular.max()), 4)],
        "reason": "; ".join(reasons) if reasons else "body masks agree and the scale is plausible",
        "figures": {"body_dice": None if dice is None else round(dice, 4)},
    }
