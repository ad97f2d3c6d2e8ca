"""Small images made from arrays on the grid of a scan, for tests that need a particular content."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def on_grid_of(values: np.ndarray, like: sitk.Image) -> sitk.Image:
    """``values`` (z, y, x) as an image with ``like``'s origin, spacing and direction."""
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(like)
    return image


def dose_map(like: sitk.Image) -> sitk.Image:
    """A smooth float map on ``like``'s grid that is not CT-like (no negative values): a dose map."""
    z, y, x = np.indices(sitk.GetArrayViewFromImage(like).shape, dtype=np.float32)
    return on_grid_of((x + y + z) * 0.5, like)
