"""One case from images to results: analyse → register → resample, with a JSON-able report.

This is the Python API a notebook, the Slicer console (through ``mrml.volume_nodes``) and the batch
runner share, so every entry point gets the same padding handling and the same report.
Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from typing import Optional

import SimpleITK as sitk

from ..core.timing import StepTimer
from ..errors import RegistrationError
from ..io.arguments import check_callbacks, check_choice, check_image, check_instance, describe
from ..io.images import DicomPadding
from ..padding.analysis import BackgroundAnalysis, analyze_background
from ..registration.engine import register_images
from ..registration.options import TRANSFORM_TYPES, CancelCheck, ProgressCallback, RegistrationOptions
from ..resample.scans import INTERPOLATORS, fill_problem, resample_with_valid_mask


@dataclass
class CaseResult:
    """Everything one moving scan produces: the image on the fixed grid, its validity, the transform.

    Attributes:
        registered: the moving scan on the fixed grid, in its pixel type.
        valid_mask: UInt8 on the fixed grid, 1 where there is real moving data.
        transform: fixed physical point → moving point.
        report: JSON-able: status, findings, fill, metric, stop reason, seconds, quality.
    """

    registered: sitk.Image  # moving resampled onto the fixed grid, moving pixel type, fill where no data
    valid_mask: sitk.Image  # UInt8 on the fixed grid, 1 = real moving data, 0 = fill
    transform: sitk.Transform  # fixed physical (LPS) -> moving physical (LPS)
    report: dict  # JSON-able: status, findings, fill, metric, stop reason, seconds, quality


def analyze(image: sitk.Image, dicom_padding: Optional[DicomPadding] = None) -> dict:
    """Background findings of one image as plain data (kind, summary, padding_value, air_value, ...).

    Args:
        image: a 3D CT volume.
        dicom_padding: its DICOM Pixel Padding Value, or None.

    Returns:
        ``analyze_background(image, dicom_padding).to_dict()``.
    """
    return analyze_background(image, dicom_padding).to_dict()


def register_pair(
    fixed: sitk.Image,
    moving: sitk.Image,
    *,
    transform: str = "affine",
    fill: Optional[float] = None,
    fixed_padding: Optional[DicomPadding] = None,
    moving_padding: Optional[DicomPadding] = None,
    interpolator: str = "linear",
    options: Optional[RegistrationOptions] = None,
    fixed_analysis: Optional[BackgroundAnalysis] = None,
    moving_analysis: Optional[BackgroundAnalysis] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
) -> CaseResult:
    """Register ``moving`` onto ``fixed`` and resample it there without gray rings.

    ``fill`` is the value of every output voxel without real moving data, over the moving scan's
    padding as well as outside it: exactly the voxels the validity mask marks 0 (default: the
    moving scan's own air level). Pass ``fixed_analysis`` when registering many scans to one fixed scan,
    so it is analysed once. ``options`` (all registration knobs) wins over ``transform`` when given.
    Raises ``RegistrationError``, ``RegistrationCancelled`` or ``ValueError``.

    Args:
        fixed: the scan whose grid the result is on (3D, one value per voxel).
        moving: the scan that is moved onto it.
        transform: "rigid", "similarity" or "affine".
        fill: the value where the result has no real moving data; None: the moving scan's air level.
        fixed_padding: the fixed scan's DICOM Pixel Padding Value (``LoadedImage.dicom_padding``).
        moving_padding: the moving scan's one.
        interpolator: "linear", "bspline" or "nearest".
        options: every registration knob (``RegistrationOptions``); wins over ``transform``.
        fixed_analysis: the fixed scan's ``analyze_background`` result, to analyse it only once.
        moving_analysis: the moving scan's one.
        progress: called with a ``ProgressEvent`` per optimizer iteration, on the calling thread.
        cancel: a ``threading.Event`` or a callable returning True to stop.

    Returns:
        A ``CaseResult``: ``registered`` (moving pixel type, on the fixed grid), ``valid_mask``,
        ``transform`` (fixed physical point → moving point) and a JSON-able ``report``.

    Raises:
        TypeError: an argument is of the wrong kind (named in the message).
        ValueError: an argument has an unusable value (a 2D image, an unknown choice, a fill the
            moving pixel type cannot hold).
        RegistrationError: a scan cannot be registered (not CT, too thin, too little overlap...).
        RegistrationCancelled: ``cancel`` asked to stop.
    """
    _check_arguments(locals())  # TypeError/ValueError naming a bad argument, before any work
    started, timer = time.perf_counter(), StepTimer()
    options = options or RegistrationOptions(transform=transform)
    if fixed_analysis is None:
        with timer.step("analyse_fixed"):
            fixed_analysis = analyze_background(fixed, fixed_padding)
    if moving_analysis is None:
        with timer.step("analyse_moving"):
            moving_analysis = analyze_background(moving, moving_padding)
    for role, analysis in (("fixed", fixed_analysis), ("moving", moving_analysis)):
        if analysis.kind == "not-ct":
            raise RegistrationError(f"{role} image is {analysis.summary}")
    registering = time.perf_counter()
    result = register_images(fixed, moving, fixed_analysis, moving_analysis, options, progress, cancel)
    timer.update(
        registration_steps(time.perf_counter() - registering, result.verdict_seconds, result.refine_seconds)
    )
    fill_value = float(moving_analysis.air_value) if fill is None else fill  # an int stays exact
    with timer.step("resample"):
        registered, valid = resample_with_valid_mask(
            moving, fixed, result.transform, moving_analysis, fill_value, interpolator
        )
    report = {
        "status": "ok",
        "error": None,
        "fixed": fixed_analysis.to_dict(),
        "moving": moving_analysis.to_dict(),
        "fill": _plain(fill_value),
        "fill_source": "user" if fill is not None else "moving air level",
        "transform_type": options.transform,
        "metric": round(float(result.metric), 6),
        "stop_reason": result.stop_reason,
        "quality": dict(result.quality),
        "registration": result.to_dict(),
        "seconds": round(time.perf_counter() - started, 3),
        "timings": timer.to_dict(),
    }
    return CaseResult(registered=registered, valid_mask=valid, transform=result.transform, report=report)


def registration_steps(
    seconds: float, verdict_seconds: Optional[float] = None, refine_seconds: Optional[float] = None
) -> dict:
    """``register_images``' seconds split into the steps its result accounts for: the last stage
    (``refine_seconds``) and the verdict (``verdict_seconds``), the result's own figures; the rest is
    "register". Read from the result, so the engine's own figures are never guessed at.

    Args:
        seconds: the wall time of the whole ``register_images`` call.
        verdict_seconds: the result's ``verdict_seconds`` (None: not reported).
        refine_seconds: the result's ``refine_seconds`` (None: the last stage did not run).

    Returns:
        ``{"register": s, "refine": s, "verdict": s}`` (refine and verdict only when reported).
    """
    parts = {}
    if refine_seconds is not None:
        parts["refine"] = float(refine_seconds)
    if verdict_seconds is not None:
        parts["verdict"] = float(verdict_seconds)
    inside = sum(parts.values())
    if inside > seconds:  # rounded figures of a near-instant call: never more than the call took
        parts = {name: value * seconds / inside for name, value in parts.items()}
        inside = seconds
    return {"register": max(0.0, seconds - inside), **parts}


def _check_arguments(arguments: dict) -> None:
    """``register_pair``'s arguments: two scan volumes, their paddings and analyses, the choices, fill,
    options and callbacks."""
    for role in ("fixed", "moving"):
        check_image(arguments[role], role, volume=True)
        check_instance(arguments[f"{role}_padding"], f"{role}_padding", DicomPadding, optional=True)
        check_instance(arguments[f"{role}_analysis"], f"{role}_analysis", BackgroundAnalysis, optional=True)
    check_choice(arguments["transform"], "transform", TRANSFORM_TYPES)
    check_choice(arguments["interpolator"], "interpolator", tuple(sorted(INTERPOLATORS)))
    _check_fill(arguments["fill"], arguments["moving"])
    check_instance(arguments["options"], "options", RegistrationOptions, optional=True)
    check_callbacks(arguments["progress"], arguments["cancel"])


def _check_fill(fill, moving: sitk.Image) -> None:
    """None (the moving scan's air), or a finite number the output's pixel type (the moving one's) holds."""
    if fill is None:
        return
    if isinstance(fill, bool) or not isinstance(fill, numbers.Real):
        raise TypeError(f"fill must be a number or None, not {describe(fill)}")
    value = int(fill) if isinstance(fill, numbers.Integral) else float(fill)  # whole numbers stay exact
    if not math.isfinite(value):
        raise ValueError(f"fill must be a finite number, not {value}")
    problem = fill_problem(value, moving.GetPixelID())
    if problem is not None:
        raise ValueError(f"fill {problem} (the moving image's pixel type)")


def _plain(value: float):
    return int(value) if float(value).is_integer() else round(float(value), 3)
