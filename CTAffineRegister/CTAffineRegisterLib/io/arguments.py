"""Argument checks for the Python API: a wrong argument fails at once, by name, before any work.

Without them ``register_pair(None, ...)``, a numpy array or a path string fails deep inside
SimpleITK; a 2D, 4D, vector, complex or empty image ends in an ``IndexError`` from the background
analysis; ``fill=nan`` or ``interpolator="cubic"`` fail only after the whole registration. Each
public entry point checks its own arguments on its first line, with a private ``_check_arguments``
built from the checks here, and gets a ``TypeError`` (wrong kind of thing) or ``ValueError`` (right
kind, unusable value) that names the argument and says what to pass instead.

Pure module: SimpleITK, numpy and the standard library; it imports only ``io`` (the ``LoadedImage``
of the hint, ``transform_files``' transform check), so every stage above can use it without an import
loop.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import SimpleITK as sitk

from .images import LoadedImage
from .transform_files import transform_problem

COMPLEX_PIXEL_IDS = (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64)


def check_image(value: Any, name: str, volume: bool = False) -> None:
    """A 3D image with one real value per voxel and no empty axis; ``volume``: at least 2 voxels per axis.

    Args:
        value: what the caller passed.
        name: the argument's name, for the message.
        volume: also require at least 2 voxels along every axis.

    Raises:
        TypeError: it is not a SimpleITK image (with a hint for paths, arrays, ``LoadedImage``).
        ValueError: not 3D, several components, complex, empty, or (``volume``) a single slice.
    """
    if not isinstance(value, sitk.Image):
        raise TypeError(f"{name} must be a SimpleITK.Image, not {describe(value)}{_hint(value)}")
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


def check_image_type(value: Any, name: str) -> None:
    """Only that ``value`` is a SimpleITK image (what it holds is checked by its own function).

    Args:
        value: what the caller passed.
        name: the argument's name, for the message.

    Raises:
        TypeError: it is not a SimpleITK image (with a hint for paths, arrays, ``LoadedImage``).
    """
    if not isinstance(value, sitk.Image):
        raise TypeError(f"{name} must be a SimpleITK.Image, not {describe(value)}{_hint(value)}")


def check_transform_argument(value: Any, name: str = "transform", linear: bool = False) -> None:
    """A 3D SimpleITK transform that maps points (finite parameters, linear part not singular).

    Args:
        value: the argument as given.
        name: the argument's name, for the message.
        linear: refuse non-linear transforms too (only linear ones can be judged).

    Raises:
        TypeError: not a SimpleITK transform (None, a path, a matrix).
        ValueError: not 3D, non-linear when ``linear``, NaN/Inf parameters or a singular matrix.
    """
    if not isinstance(value, sitk.Transform):
        hint = ""
        if isinstance(value, (str, os.PathLike)):
            hint = "; read it first: read_transform(path)"
        raise TypeError(f"{name} must be a SimpleITK.Transform (fixed → moving), not {describe(value)}{hint}")
    if value.GetDimension() != 3:
        raise ValueError(f"{name} must be a 3D transform, not {value.GetDimension()}D ({value.GetName()})")
    if linear and not value.IsLinear():
        raise ValueError(
            f"{name} is a non-linear transform ({value.GetName()}); only linear transforms can be checked"
        )
    problem = transform_problem(value)
    if problem is not None:
        raise ValueError(f"{name}: {problem}")


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> None:
    """One of a few accepted strings; a typo fails at once with the list, not after the registration.

    Args:
        value: what the caller passed.
        name: the argument's name.
        choices: the accepted strings.

    Raises:
        ValueError: ``value`` is not one of them (the message lists them).
    """
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {listed}, not {value!r}")


def check_instance(value: Any, name: str, kind: type, optional: bool = False) -> None:
    """An instance of one class (or None when optional), named in the message otherwise.

    Args:
        value: what the caller passed.
        name: the argument's name.
        kind: the class it must be an instance of.
        optional: None is accepted too.

    Raises:
        TypeError: it is something else.
    """
    if value is None and optional:
        return
    if not isinstance(value, kind):
        allowed = f"a {kind.__name__}" + (" or None" if optional else "")
        raise TypeError(f"{name} must be {allowed}, not {describe(value)}")


def check_callbacks(progress: Any, cancel: Any) -> None:
    """``progress`` and ``cancel`` are callables (``cancel`` may be an Event) or None.

    Args:
        progress: None or a callable taking a ``ProgressEvent``.
        cancel: None, a ``threading.Event`` (anything with ``is_set``) or a callable.

    Raises:
        TypeError: either is something else.
    """
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be a callable taking a ProgressEvent, or None, not {describe(progress)}"
        )
    if cancel is not None and not callable(cancel) and not callable(getattr(cancel, "is_set", None)):
        raise TypeError(
            f"cancel must be a threading.Event, a callable returning True to stop, or None, "
            f"not {describe(cancel)}"
        )


def describe(value: Any) -> str:
    """What a wrong argument is, in words a message can use (the path, the array's shape, the type).

    Args:
        value: anything.

    Returns:
        "None", "a numpy array of shape ...", "the path '...'" or "a <type name>".
    """
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
        return "; read it first: read_image(path).image"
    if isinstance(value, LoadedImage):
        return "; pass its .image (and its .dicom_padding as the padding argument)"
    return ""
