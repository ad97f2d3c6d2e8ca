"""Candidate reference scans derived from real chests, for the ``reference`` tests and benchmark
(not a test module): a field of view that cuts the body, a slab that covers half the chest."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

PADDING_HU = -3024


def circle_cut(image: sitk.Image, radius_mm: float = 130.0) -> sitk.Image:
    """The scan with everything outside an in-plane circle about the image centre set to -3024, as a
    scanner's reconstruction circle smaller than the patient leaves it (the circle cuts the body).

    Args:
        image: a real chest CT.
        radius_mm: the circle's radius (the chests here are about 350 mm wide).

    Returns:
        The cut scan (same grid and pixel type).
    """
    array = sitk.GetArrayFromImage(image)
    rows, columns = np.indices(array.shape[1:])
    spacing = image.GetSpacing()
    radius = np.hypot((rows - array.shape[1] / 2) * spacing[1], (columns - array.shape[2] / 2) * spacing[0])
    array[:, radius > radius_mm] = PADDING_HU
    cut = sitk.GetImageFromArray(array)
    cut.CopyInformation(image)
    return cut


def z_slab(image: sitk.Image, first: float = 0.0, last: float = 0.4) -> sitk.Image:
    """The slices between two fractions of the scan's length: part of the chest only.

    Args:
        image: a real chest CT.
        first: where the slab starts (fraction of the slices).
        last: where it ends.

    Returns:
        The slab (its own origin keeps it where it was).
    """
    slices = image.GetSize()[2]
    return image[:, :, int(first * slices) : max(int(first * slices) + 1, int(last * slices))]
