"""Reading a registration result from any tool as one linear fixed→moving transform.

``check`` judges results of other tools too, so it takes what they write: every file SimpleITK
reads (ITK ``.tfm``/``.txt``, ``.h5``, ``.mat``; Slicer, BRAINSFit and ANTs write these) and elastix's
``TransformParameters.N.txt``. All of them already map fixed points to moving points (ITK's
resampling convention), so nothing is inverted. Only linear transforms can be judged; anything
else is refused with a reason that names the file.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..core.affine import affine_about
from ..errors import InputError

# elastix transform names with their parameter layout (see elastix's transform components).
_ELASTIX_LINEAR = ("AffineTransform", "EulerTransform", "SimilarityTransform", "TranslationTransform")


# Files SimpleITK reads transforms from; named in the message when another file cannot be read.
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".h5", ".hdf5", ".mat")


def read_any_transform(path: str) -> sitk.Transform:
    """Any 3D fixed→moving transform, non-linear ones included (``apply`` resamples with them).

    Args:
        path: an ITK/Slicer/ANTs transform file, or elastix parameters (TransformParameters.0.txt).

    Returns:
        The transform, fixed physical point → moving point.

    Raises:
        InputError: the file cannot be read as a 3D transform; names the file.
    """
    path = str(path)
    if not os.path.isfile(path):
        reason = "is a folder; a transform is one file" if os.path.isdir(path) else "no such file"
        raise InputError(path, reason)
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied")
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty")
    if _looks_like_elastix(path):
        return _read_elastix(path, seen=())
    try:
        transform = sitk.ReadTransform(path)
    except RuntimeError as error:
        detail = _last_line(error)
        if not path.lower().endswith(TRANSFORM_SUFFIXES):
            detail = (
                f"transforms are read from {', '.join(TRANSFORM_SUFFIXES)} files and elastix parameter files"
            )
        raise InputError(path, f"not a readable transform file ({detail})") from None
    if transform.GetDimension() != 3:
        raise InputError(path, f"holds a {transform.GetDimension()}D transform; a 3D transform is needed")
    return transform


def read_transform(path: str) -> sitk.AffineTransform:
    """A linear fixed→moving transform, as one affine: what the verdict can judge.

    Args:
        path: an ITK/Slicer/ANTs transform file, or elastix parameters.

    Returns:
        One ``AffineTransform`` (composites of linear transforms are multiplied out).

    Raises:
        InputError: the file cannot be read, or the transform is not linear; names the file.
    """
    return _as_linear(read_any_transform(path), str(path))


def _as_linear(transform: sitk.Transform, path: str) -> sitk.AffineTransform:
    if not transform.IsLinear():
        name = transform.GetName()
        raise InputError(
            path, f"holds a non-linear transform ({name}); only linear transforms can be checked"
        )
    center = np.zeros(3)
    try:
        center = np.array(transform.Downcast().GetCenter(), dtype=float)
    except (AttributeError, RuntimeError):
        pass
    return affine_about(transform, center)


def _looks_like_elastix(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror})") from None
    return "(Transform " in head and "(TransformParameters " in head


def read_elastix_parameters(path: str) -> dict[str, list[str]]:
    """Parse elastix's ``(Key value value ...)`` text format into strings.

    Args:
        path: an elastix parameter file.

    Returns:
        Each key's values, as strings.
    """
    entries: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.split("//", 1)[0].strip()
            if line.startswith("(") and line.endswith(")"):
                key, *values = line[1:-1].split()
                entries[key] = [value.strip('"') for value in values]
    return entries


def _read_elastix(path: str, seen: tuple[str, ...]) -> sitk.AffineTransform:
    """elastix's linear transforms, composed with their initial transform when there is one."""
    entries = read_elastix_parameters(path)
    kind = entries.get("Transform", ["?"])[0]
    if kind not in _ELASTIX_LINEAR:
        raise InputError(path, f"holds an elastix {kind}; only linear transforms can be checked")
    try:
        parameters = [float(value) for value in entries["TransformParameters"]]
        center = [float(value) for value in entries.get("CenterOfRotationPoint", ["0", "0", "0"])]
        compute_zyx = entries.get("ComputeZYX", ["false"])[0].lower() == "true"
        transform = _elastix_linear(kind, parameters, center, compute_zyx)
    except (KeyError, ValueError, IndexError):
        raise InputError(path, f"elastix {kind} parameters are missing or malformed") from None
    initial = _initial_transform(entries, path, seen)
    if initial is None:
        return transform
    if entries.get("HowToCombineTransforms", ["Compose"])[0] != "Compose":
        raise InputError(
            path, "adds its transforms ('HowToCombineTransforms Add'); only Compose can be checked"
        )
    # elastix applies the initial transform first: T(x) = T_this(T_initial(x))
    return affine_about(sitk.CompositeTransform([transform, initial]), center)


def _elastix_linear(
    kind: str, parameters: list[float], center: list[float], compute_zyx: bool = False
) -> sitk.AffineTransform:
    if kind == "AffineTransform":
        matrix, translation = np.array(parameters[:9]).reshape(3, 3), parameters[9:12]
    elif kind == "EulerTransform":
        euler = sitk.Euler3DTransform(center, *parameters[:3], parameters[3:6])
        euler.SetComputeZYX(compute_zyx)
        matrix, translation = np.array(euler.GetMatrix()).reshape(3, 3), euler.GetTranslation()
    elif kind == "SimilarityTransform":
        similarity = sitk.Similarity3DTransform()
        similarity.SetCenter(center)
        similarity.SetParameters(parameters[:7])
        matrix, translation = np.array(similarity.GetMatrix()).reshape(3, 3), similarity.GetTranslation()
    else:  # TranslationTransform
        matrix, translation = np.eye(3), parameters[:3]
    if len(translation) != 3:
        raise ValueError("too few parameters")
    transform = sitk.AffineTransform(3)
    transform.SetCenter(center)
    transform.SetMatrix(np.asarray(matrix, dtype=float).ravel().tolist())
    transform.SetTranslation([float(value) for value in translation])
    return transform


def _initial_transform(entries: dict, path: str, seen: tuple[str, ...]) -> Optional[sitk.AffineTransform]:
    name = entries.get("InitialTransformParametersFileName", ["NoInitialTransform"])[0]
    if name == "NoInitialTransform":
        return None
    candidate = name if os.path.isabs(name) else os.path.join(os.path.dirname(path), os.path.basename(name))
    if not os.path.isfile(candidate):
        candidate = name
    if not os.path.isfile(candidate):
        raise InputError(path, f"its initial transform {name} was not found")
    if os.path.abspath(candidate) in seen:
        raise InputError(path, "its initial transforms refer to each other in a loop")
    return _read_elastix(candidate, seen + (os.path.abspath(path),))


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else "unknown error")[:200]
