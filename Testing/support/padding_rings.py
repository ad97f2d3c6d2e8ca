"""A field-of-view ring padded with a *range* of values (-3024..-3001, as DICOM's Pixel Padding Value
with a Padding Range Limit allows): padding only by its tags, and below any CT value without them."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from support.grid_images import on_grid_of

# The DICOM tags that say so: Pixel Padding Value and Pixel Padding Range Limit (stored units = HU here).
RANGE_TAGS = {"0028|0120": "-3024", "0028|0121": "-3001"}


def ring_as_a_range(scan: sitk.Image, valid_mask: sitk.Image) -> sitk.Image:
    """``scan`` with every voxel outside ``valid_mask`` set to a value of -3024..-3001, in turn."""
    values = sitk.GetArrayFromImage(scan)
    ring = sitk.GetArrayFromImage(valid_mask) == 0
    assert ring.any(), "the scan has no padding ring to spread"
    values[ring] = -3024 + np.arange(np.count_nonzero(ring)) % 24
    return on_grid_of(values, scan)
