"""Where the registration starts: the z-scan of placements must reach past the difference in
coverage of the two scans along the body axis (a short scan can lie anywhere along a long one)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.registration import initialization


def _cylinder_scan(slices: int, spacing=(5.0, 5.0, 5.0)) -> sitk.Image:
    """A water cylinder in air, 40×40 voxels in plane, ``slices`` slices along z."""
    z, y, x = np.mgrid[0:slices, 0:40, 0:40]
    body = (x - 19.5) ** 2 + (y - 19.5) ** 2 < 14**2
    array = np.where(body, 40, -1000).astype(np.int16)
    array += (np.arange(array.size).reshape(array.shape) % 7).astype(np.int16)  # a little texture
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


@pytest.mark.parametrize("fixed_slices, moving_slices", [(60, 12), (12, 60)])
def test_the_z_scan_reaches_past_the_difference_in_coverage(fixed_slices, moving_slices):
    fixed, moving = _cylinder_scan(fixed_slices), _cylinder_scan(moving_slices)
    fixed_analysis, moving_analysis = analyze_background(fixed), analyze_background(moving)
    placements = initialization.candidate_placements(fixed_analysis, moving_analysis, (97.5, 97.5, 0.0))
    base = np.array(placements["body-moments"].GetTranslation())
    shifts = [
        np.array(transform.GetTranslation()) - base
        for name, transform in placements.items()
        if re.fullmatch(r"z-scan[+-]\d+mm", name)
    ]
    along_z = sorted([0.0] + [float(shift[2]) for shift in shifts])  # 0: the body-moments placement
    assert all(abs(shift[0]) < 1e-9 and abs(shift[1]) < 1e-9 for shift in shifts)  # along the body axis only
    difference = abs(fixed_slices - moving_slices) * 5.0  # 240 mm more coverage on one side
    # the short scan may lie at either end of the long one: half the difference each way, and more
    assert along_z[0] <= -0.5 * difference and along_z[-1] >= 0.5 * difference
    assert max(np.diff(along_z)) <= initialization.Z_SCAN_STEP_MM + 1e-6  # no gap a basin could hide in
