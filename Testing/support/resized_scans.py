"""The same anatomy made larger or smaller: a bigger or smaller patient with a known scale."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk


def resized(image: sitk.Image, factors: Sequence[float]) -> sitk.Image:
    """The same anatomy ``factors`` times larger along each axis, about the scan centre, on a grid
    grown (or shrunk) to hold it, same spacing, air (-1024) outside."""
    size, spacing = np.array(image.GetSize()), np.array(image.GetSpacing())
    center = image.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2.0).tolist())
    shrink = sitk.AffineTransform(3)
    shrink.SetCenter(center)
    shrink.SetMatrix(np.diag([1.0 / f for f in factors]).ravel().tolist())
    new_size = np.round(size * np.asarray(factors)).astype(int)
    grid = sitk.Image([int(n) for n in new_size], image.GetPixelID())
    grid.SetSpacing(spacing.tolist())
    grid.SetDirection(image.GetDirection())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    grid.SetOrigin((np.array(center) - direction @ (spacing * (new_size - 1) / 2.0)).tolist())
    return sitk.Resample(image, grid, shrink, sitk.sitkLinear, -1024.0, image.GetPixelID())
