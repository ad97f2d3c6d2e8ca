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

from ..core.affine import affine_about, affine_parts
from ..errors import InputError
from .file_integrity import special_file_reason
from .tfm_text import itk_text_problem

# elastix transform names with their parameter layout (see elastix's transform components).
_ELASTIX_LINEAR = ("AffineTransform", "EulerTransform", "SimilarityTransform", "TranslationTransform")
# How many TransformParameters each of them has in 3D.
_ELASTIX_PARAMETER_COUNTS = {
    "AffineTransform": 12,
    "EulerTransform": 6,
    "SimilarityTransform": 7,
    "TranslationTransform": 3,
}
# A matrix whose smallest singular value is below this share of its largest is singular: it maps a
# 500 mm scan onto less than a thousandth of a millimetre in some direction.
_SINGULAR_RATIO = 1e-9


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
    if os.path.exists(path) and special_file_reason(path) is not None:
        raise InputError(path, special_file_reason(path))
    if not os.path.isfile(path):
        reason = "is a folder; a transform is one file" if os.path.isdir(path) else "no such file"
        raise InputError(path, reason)
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied")
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty")
    if _looks_like_elastix(path):
        transform = _read_elastix(path, seen=())
        _refuse_unusable(transform, path)
        return transform
    # ITK takes some malformed text files (a NaN among the parameters) with a crash, not an error.
    try:
        problem = itk_text_problem(path)
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror})") from None
    if problem is not None:
        raise InputError(path, problem)
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
    _refuse_unusable(transform, path)
    return transform


def transform_problem(transform: sitk.Transform) -> Optional[str]:
    """Why ``transform`` cannot map points at all, or None.

    A NaN or Inf parameter makes every mapped point NaN (numpy then warns, the verdict's linear algebra
    fails); a linear transform whose matrix is singular (determinant 0, e.g. all zeros) squeezes the
    whole fixed grid onto a plane, line or point, so a resampled image is one constant value. Both
    are refused by name before any work instead of being judged or applied.

    Args:
        transform: any SimpleITK transform (composites are looked into).

    Returns:
        The reason in words, or None when the transform is usable.
    """
    for part in _parts(transform):
        bad = _nonfinite_count(part)
        if bad:
            verb = "is" if bad == 1 else "are"
            return f"{bad} of its parameters {verb} NaN or Inf, so it maps no point to a place"
    if not transform.IsLinear():
        return None
    matrix, _ = affine_parts(transform, (0.0, 0.0, 0.0))
    if not np.isfinite(matrix).all():
        return "it maps points to NaN or Inf, so it maps no point anywhere"
    singular = np.linalg.svd(matrix, compute_uv=False)
    if singular[0] == 0 or singular[-1] <= _SINGULAR_RATIO * singular[0]:
        return (
            "its matrix is singular (determinant 0): it squeezes all of space onto a plane, a line or a "
            "point, so it cannot be judged or resampled with"
        )
    return None


def _parts(transform: sitk.Transform) -> list[sitk.Transform]:
    """The transforms a composite is made of (nested composites flattened), or the transform itself."""
    concrete = transform.Downcast() if hasattr(transform, "Downcast") else transform
    if isinstance(concrete, sitk.CompositeTransform):
        parts = []
        for index in range(concrete.GetNumberOfTransforms()):
            parts.extend(_parts(concrete.GetNthTransform(index)))
        return parts
    return [transform]


def _nonfinite_count(part: sitk.Transform) -> int:
    """NaN/Inf among a transform's parameters (a displacement field's vectors read as an array)."""
    concrete = part.Downcast() if hasattr(part, "Downcast") else part
    fixed = np.asarray(part.GetFixedParameters(), dtype=float)
    if isinstance(concrete, sitk.DisplacementFieldTransform):
        values = sitk.GetArrayViewFromImage(concrete.GetDisplacementField())
    else:
        values = np.asarray(part.GetParameters(), dtype=float)
    return int(values.size - np.count_nonzero(np.isfinite(values))) + int(
        fixed.size - np.count_nonzero(np.isfinite(fixed))
    )


def _refuse_unusable(transform: sitk.Transform, path: str) -> None:
    problem = transform_problem(transform)
    if problem is not None:
        raise InputError(path, problem)


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
    _check_elastix_counts(entries, kind, path)
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


def _check_elastix_counts(entries: dict[str, list[str]], kind: str, path: str) -> None:
    """elastix writes exactly so many parameters and a 3-value centre: anything else is another file's
    (2D, another transform) or an edited one, and taking part of it would judge some other transform."""
    expected = _ELASTIX_PARAMETER_COUNTS[kind]
    parameters = entries.get("TransformParameters")
    if parameters is None:
        raise InputError(path, f"elastix {kind} without TransformParameters")
    if len(parameters) != expected:
        raise InputError(
            path, f"elastix 3D {kind} has {expected} TransformParameters, this file gives {len(parameters)}"
        )
    declared = entries.get("NumberOfParameters")
    if declared is not None and declared[:1] != [str(expected)]:
        raise InputError(
            path,
            f"NumberOfParameters says {' '.join(declared) or 'nothing'}, "
            f"but its {kind} has {len(parameters)} TransformParameters",
        )
    center = entries.get("CenterOfRotationPoint")
    if center is not None and len(center) != 3:
        raise InputError(
            path, f"CenterOfRotationPoint has {len(center)} values; a 3D transform's centre has 3"
        )


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
