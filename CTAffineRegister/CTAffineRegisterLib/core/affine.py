"""Linear transforms read and rewritten through their matrix and translation, whatever their ITK type.

Stages hand their answer to the next stage as another type (Euler → similarity → affine) about the
same centre; doing it through the mapping itself works for every linear type, composites included.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def affine_parts(transform: sitk.Transform, center=None) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and translation of any (locally) linear transform about ``center`` (default its own).

    Read from how it moves four points, so composites and every ITK linear type work the same way.

    Args:
        transform: any (locally) linear transform.
        center: the point the parts are about; None: the transform's own centre.

    Returns:
        (3×3 matrix, translation) as numpy arrays.
    """
    center = np.array(center_of(transform) if center is None else center, dtype=float)
    origin = np.array(transform.TransformPoint(center.tolist()))
    matrix = np.empty((3, 3))
    for axis in range(3):
        step = center.copy()
        step[axis] += 100.0
        matrix[:, axis] = (np.array(transform.TransformPoint(step.tolist())) - origin) / 100.0
    return matrix, origin - center


def center_of(transform: sitk.Transform) -> tuple[float, ...]:
    """The centre of rotation of a centred transform; the origin for types without one.

    Args:
        transform: any transform.

    Returns:
        The centre, in physical coordinates.
    """
    try:
        return tuple(transform.Downcast().GetCenter())
    except (AttributeError, RuntimeError):
        return (0.0, 0.0, 0.0)


def as_type(transform: sitk.Transform, stage: str) -> sitk.Transform:
    """The same mapping as a "rigid", "similarity" or "affine" transform about the same centre
    (rigid and similarity keep the nearest rotation and the mean scale).

    Args:
        transform: a linear transform.
        stage: "rigid", "similarity" or "affine".

    Returns:
        A ``Euler3DTransform``, ``Similarity3DTransform`` or ``AffineTransform``.
    """
    center = center_of(transform)
    matrix, translation = affine_parts(transform, center)
    if stage == "affine":
        result = sitk.AffineTransform(3)
        result.SetMatrix(matrix.ravel().tolist())
    else:
        rotation, scale = nearest_rotation(matrix)
        if stage == "rigid":
            result = sitk.Euler3DTransform()
            result.SetCenter(center)
            result.SetMatrix(rotation.ravel().tolist())
        else:
            result = sitk.Similarity3DTransform()
            result.SetCenter(center)
            result.SetMatrix(rotation.ravel().tolist())
            result.SetScale(scale)
    result.SetCenter(center)
    result.SetTranslation(translation.tolist())
    return result


def nearest_rotation(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """Closest proper rotation (polar decomposition) and the mean scale of a 3×3 matrix.

    Args:
        matrix: a 3×3 matrix.

    Returns:
        (rotation matrix, mean scale).
    """
    u, singular, vt = np.linalg.svd(matrix)
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:
        u[:, -1] *= -1
        rotation = u @ vt
    return rotation, float(np.cbrt(abs(np.prod(singular))))


def is_rigid(transform: sitk.Transform, tolerance: float = 1e-3) -> bool:
    """True for a rotation plus translation (no scale, shear or reflection).

    Args:
        transform: a linear transform.
        tolerance: how far the matrix may be from a rotation.

    Returns:
        True or False.
    """
    matrix, _ = affine_parts(transform)
    return bool(np.allclose(matrix.T @ matrix, np.eye(3), atol=tolerance) and np.linalg.det(matrix) > 0)


def mapping_key(transform: sitk.Transform) -> tuple:
    """The mapping itself (matrix and translation), independent of the transform type.

    Args:
        transform: a linear transform.

    Returns:
        A hashable tuple: matrix, translation and centre, rounded to 9 decimals.
    """
    matrix, translation = affine_parts(transform)
    return tuple(np.round(np.concatenate([matrix.ravel(), translation, center_of(transform)]), 9))


def copy_transform(transform: sitk.Transform) -> sitk.Transform:
    """An independent copy of the same concrete type (the optimiser changes transforms in place).

    Args:
        transform: the transform to copy.

    Returns:
        The copy.
    """
    concrete = transform.Downcast()
    return type(concrete)(concrete)


def affine_about(initial: sitk.Transform, center) -> sitk.Transform:
    """Any linear transform (composites too) as one AffineTransform about ``center``.

    Args:
        initial: a linear transform (or composite of linear ones).
        center: the centre of the result.

    Returns:
        The ``AffineTransform``.
    """
    matrix, translation = affine_parts(initial, center)
    affine = sitk.AffineTransform(3)
    affine.SetCenter(center)
    affine.SetMatrix(matrix.ravel().tolist())
    affine.SetTranslation(translation.tolist())
    return affine


def mean_distance(first: sitk.Transform, second: sitk.Transform, points: np.ndarray) -> float:
    """Mean distance (mm) between where two linear transforms send the same points.

    Args:
        first: a linear transform.
        second: another one.
        points: (N, 3) physical points.

    Returns:
        The mean of the N distances.
    """
    center = center_of(first)
    (matrix_a, shift_a), (matrix_b, shift_b) = affine_parts(first, center), affine_parts(second, center)
    relative = np.asarray(points, float) - np.asarray(center)
    difference = relative @ (matrix_a - matrix_b).T + (shift_a - shift_b)
    return float(np.linalg.norm(difference, axis=1).mean())
