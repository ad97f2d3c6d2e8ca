"""The verdict on any fixed→moving transform: ``ct-affine-register check`` and its Python API.

The same judgement ``register`` gives its own results, for a transform from anywhere (another run,
elastix, ANTs, BRAINSFit, Slicer), so a cohort registered by another tool can be screened the same
way. Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

from typing import Optional

import SimpleITK as sitk

from ..errors import InputError, RegistrationError
from ..io.arguments import check_image, check_instance, check_transform_argument
from ..io.images import DicomPadding, read_image
from ..io.transform_files import read_transform
from ..padding.analysis import BackgroundAnalysis, analyze_background
from ..quality.verdict import PROBE_LEVEL_MM, judge
from ..registration.preparation import build_pyramids


def check_transform(
    fixed: sitk.Image,
    moving: sitk.Image,
    transform: sitk.Transform,
    *,
    fixed_padding: Optional[DicomPadding] = None,
    moving_padding: Optional[DicomPadding] = None,
    fixed_analysis: Optional[BackgroundAnalysis] = None,
    moving_analysis: Optional[BackgroundAnalysis] = None,
) -> dict:
    """Verdict, reason, figures and checks for ``transform`` (fixed physical point → moving point).

    Raises ``RegistrationError`` when a scan cannot be judged at all (not CT, no valid data),
    ``TypeError``/``ValueError`` naming a bad argument (not an image or transform, a non-linear, 2D,
    singular or NaN transform) before any work.

    Args:
        fixed: the fixed scan.
        moving: the moving scan.
        transform: fixed physical point → moving point (what ``register`` writes; any linear ITK
            transform).
        fixed_padding: the fixed scan's DICOM Pixel Padding Value, or None.
        moving_padding: the moving scan's one.
        fixed_analysis: the fixed scan's ``analyze_background`` result, to analyse it only once.
        moving_analysis: the moving scan's one.

    Returns:
        A JSON-able dict: ``verdict`` ("ok", "suspect", "failed"), ``reason``, the figures and
        ``checks`` (one entry per check, with its level and sentence).

    Raises:
        TypeError: an argument is of the wrong kind (named in the message).
        ValueError: an argument has an unusable value (a 2D image, an empty image, a 2D, non-linear,
            singular or NaN transform).
        RegistrationError: a scan cannot be judged at all (not CT, no valid data).
    """
    _check_arguments(locals())  # TypeError/ValueError naming a bad argument, before any work
    fixed_analysis = fixed_analysis or analyze_background(fixed, fixed_padding)
    moving_analysis = moving_analysis or analyze_background(moving, moving_padding)
    for role, analysis in (("fixed", fixed_analysis), ("moving", moving_analysis)):
        if analysis.kind == "not-ct":
            raise RegistrationError(f"{role} image is {analysis.summary}")
    fixed_levels, moving_levels, center = build_pyramids(
        fixed, moving, fixed_analysis, moving_analysis, finest_spacing_mm=PROBE_LEVEL_MM, level_count=1
    )
    return judge(
        transform, fixed, moving, fixed_analysis, moving_analysis, fixed_levels[-1], moving_levels[-1], center
    )


def _check_arguments(arguments: dict) -> None:
    """``check_transform``'s arguments: two scans, a 3D linear SimpleITK transform, paddings, analyses
    (the CLI's refusals, as exceptions)."""
    for role in ("fixed", "moving"):
        check_image(arguments[role], role)  # a thin scan is judged (its coverage check says so)
        check_instance(arguments[f"{role}_padding"], f"{role}_padding", DicomPadding, optional=True)
        check_instance(arguments[f"{role}_analysis"], f"{role}_analysis", BackgroundAnalysis, optional=True)
    check_transform_argument(arguments["transform"], "transform", linear=True)


def check_files(fixed_path: str, moving_path: str, transform_path: str) -> dict:
    """``check_transform`` on files; every input problem is an ``InputError`` naming its file.

    Args:
        fixed_path: the fixed scan (image file or DICOM series folder).
        moving_path: the moving scan.
        transform_path: the fixed→moving transform (ITK, Slicer, ANTs file or elastix parameters).

    Returns:
        ``check_transform``'s dict, with the three paths added.

    Raises:
        InputError: an input cannot be read or judged; the message names the file.
    """
    transform = read_transform(transform_path)
    loaded = {"fixed": read_image(fixed_path), "moving": read_image(moving_path)}
    analyses = {}
    for role, scan in loaded.items():
        analyses[role] = analyze_background(scan.image, scan.dicom_padding)
        if analyses[role].kind == "not-ct":
            raise InputError(scan.path, analyses[role].summary)
    try:
        result = check_transform(
            loaded["fixed"].image,
            loaded["moving"].image,
            transform,
            fixed_analysis=analyses["fixed"],
            moving_analysis=analyses["moving"],
        )
    except RegistrationError as error:  # messages start with the role of the scan they are about
        role = "moving" if str(error).startswith("moving") else "fixed"
        raise InputError(loaded[role].path, str(error).split(" ", 2)[-1]) from None
    return {"fixed": fixed_path, "moving": moving_path, "transform": transform_path, **result}


def format_check(result: dict) -> str:
    """The verdict as a person reads it: the verdict and its reason, then one line per check.

    Args:
        result: what ``check_transform`` or ``check_files`` returned.

    Returns:
        The lines, joined with newlines.
    """
    lines = [f"verdict: {result['verdict']}", f"reason: {result['reason']}"]
    width = max(len(name) for name in result["checks"])
    for name, check in result["checks"].items():
        lines.append(f"  {name:<{width}}  {check['level']:<7}  {check['sentence']}")
    return "\n".join(lines)
