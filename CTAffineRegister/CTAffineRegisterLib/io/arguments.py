"""Argument checks for the Python API: a wrong argument fails at once, by name, before any work.

Without them ``register_pair(None, ...)``, a numpy array or a path string fails deep inside
SimpleITK; a 2D, 4D, vector, complex or empty image ends in an ``IndexError`` from the background
analysis; ``fill=nan`` or ``interpolator="cubic"`` fail only after the whole registration. Each
public entry point calls one function here on its first line, with ``locals()`` (its arguments,
nothing else yet), and gets a ``TypeError`` (wrong kind of thing) or ``ValueError`` (right kind,
unusable value) that names the argument and says what to pass instead.

Pure module: SimpleITK, numpy and the standard library. ``background`` and ``registration`` call
into this module, so their classes are imported inside the functions that need them.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..resample.scans import INTERPOLATORS, fill_problem
from .images import DicomPadding, LoadedImage

COMPLEX_PIXEL_IDS = (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64)


def check_analyze_background(arguments: dict[str, Any]) -> None:
    """``background.analyze_background(image, dicom_padding)``."""
    check_image(arguments["image"], "image")
    _check_instance(arguments["dicom_padding"], "dicom_padding", DicomPadding, optional=True)


def check_register_pair(arguments: dict[str, Any]) -> None:
    """``pipeline.register_pair(fixed, moving, *, transform, fill, ...)``."""
    from ..padding.analysis import BackgroundAnalysis
    from ..registration.engine import TRANSFORM_TYPES, RegistrationOptions

    for role in ("fixed", "moving"):
        check_image(arguments[role], role, volume=True)
        _check_instance(arguments[f"{role}_padding"], f"{role}_padding", DicomPadding, optional=True)
        _check_instance(arguments[f"{role}_analysis"], f"{role}_analysis", BackgroundAnalysis, optional=True)
    _check_choice(arguments["transform"], "transform", TRANSFORM_TYPES)
    _check_choice(arguments["interpolator"], "interpolator", tuple(sorted(INTERPOLATORS)))
    _check_fill(arguments["fill"], arguments["moving"])
    _check_instance(arguments["options"], "options", RegistrationOptions, optional=True)
    _check_callbacks(arguments["progress"], arguments["cancel"])


def check_register_images(arguments: dict[str, Any]) -> None:
    """``registration.register_images(fixed, moving, fixed_analysis, moving_analysis, options, ...)``."""
    from ..padding.analysis import BackgroundAnalysis
    from ..registration.engine import RegistrationOptions

    for role in ("fixed", "moving"):
        check_image(arguments[role], role, volume=True)
        analysis = arguments[f"{role}_analysis"]
        if analysis is None:
            raise TypeError(
                f"{role}_analysis is required: pass background.analyze_background({role}) "
                "(or use pipeline.register_pair, which makes it)"
            )
        _check_instance(analysis, f"{role}_analysis", BackgroundAnalysis)
    _check_instance(arguments["options"], "options", RegistrationOptions, optional=True)
    _check_callbacks(arguments["progress"], arguments["cancel"])


def check_image(value: Any, name: str, volume: bool = False) -> None:
    """A 3D image with one real value per voxel and no empty axis; ``volume``: at least 2 voxels per axis."""
    if not isinstance(value, sitk.Image):
        raise TypeError(f"{name} must be a SimpleITK.Image, not {_what(value)}{_hint(value)}")
    size = tuple(value.GetSize())
    if value.GetDimension() != 3:
        squeeze = " (take image[:, :, :, 0] for a 4D image with one volume)" if size[3:] == (1,) else ""
        raise ValueError(f"{name} must be a 3D image, not {value.GetDimension()}D (size {size}){squeeze}")
    if value.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"{name} must have one value per voxel, not {value.GetNumberOfComponentsPerPixel()} "
            f"({value.GetPixelIDTypeAsString()})"
        )
    if value.GetPixelID() in COMPLEX_PIXEL_IDS:
        raise ValueError(f"{name} must be real-valued, not {value.GetPixelIDTypeAsString()}")
    if min(size) < 1 or value.GetNumberOfPixels() == 0:
        raise ValueError(f"{name} is empty (size {size})")
    if volume and min(size) < 2:
        raise ValueError(
            f"{name} is a single slice (size {size}); registration needs 2 or more voxels per axis"
        )


def _check_fill(fill: Any, moving: sitk.Image) -> None:
    """None (the moving scan's air), or a finite number the output's pixel type (the moving one's) holds."""
    if fill is None:
        return
    if isinstance(fill, bool) or not isinstance(fill, numbers.Real):
        raise TypeError(f"fill must be a number or None, not {_what(fill)}")
    value = float(fill)
    if not math.isfinite(value):
        raise ValueError(f"fill must be a finite number, not {value}")
    problem = fill_problem(value, moving.GetPixelID())
    if problem is not None:
        raise ValueError(f"fill {problem} (the moving image's pixel type)")


def _check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {listed}, not {value!r}")


def _check_instance(value: Any, name: str, kind: type, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, kind):
        allowed = f"a {kind.__name__}" + (" or None" if optional else "")
        raise TypeError(f"{name} must be {allowed}, not {_what(value)}")


def _check_callbacks(progress: Any, cancel: Any) -> None:
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable taking a ProgressEvent, or None, not {_what(progress)}")
    if cancel is not None and not callable(cancel) and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(
            f"cancel must be a threading.Event, a callable returning True to stop, or None, "
            f"not {_what(cancel)}"
        )


def _what(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    if isinstance(value, (str, os.PathLike)):
        return f"the path {os.fspath(value)!r}"
    name = f"{type(value).__module__}.{type(value).__qualname__}".replace("builtins.", "")
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _hint(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "; make one with sitk.GetImageFromArray(array) and set its spacing, origin and direction"
    if isinstance(value, (str, os.PathLike)):
        return "; read it first: imageio.read_image(path).image"
    if isinstance(value, LoadedImage):
        return "; pass its .image (and its .dicom_padding as the padding argument)"
    return ""
