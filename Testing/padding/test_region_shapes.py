"""The padded region on image sizes a block of 4 does not divide (blocks of 5, 3 or 2 voxels along x,
read by the plain boolean path rather than as packed rows), and with two separate padded regions.
Clean padding (no specks): the block answer must equal full-resolution labelling voxel for voxel."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.padding.region import block_factors, border_region, border_region_exact
from CTAffineRegisterLib.synthetic import insert_fov_padding, make_phantom


@pytest.mark.parametrize(
    ("size", "x_block"), [((45, 40, 12), 5), ((57, 40, 12), 3), ((50, 40, 12), 5), ((46, 40, 12), 2)]
)
def test_clean_padding_is_exact_whatever_block_divides_the_width(size, x_block):
    image = insert_fov_padding(
        make_phantom(size, (8.0, 8.0, 10.0), seed=3, noise_hu=0.0), 0, 0.45 * size[0] * 8.0
    )
    candidate = sitk.GetArrayFromImage(image) == 0
    assert block_factors(candidate.shape)[2] == x_block
    exact = border_region_exact(candidate)
    assert exact is not None and np.count_nonzero(exact) > 0.1 * candidate.size
    assert np.array_equal(border_region(candidate), exact)


def test_two_separate_padded_regions_are_both_padding():
    candidate = np.zeros((12, 40, 45), dtype=bool)
    candidate[:, :, :6] = True  # a band along x = 0 through every slice
    candidate[:, :, -6:] = True  # and another along the opposite face, not connected to the first
    candidate[5:7, 18:21, 20:23] = True  # an inner blob at the same value: not padding
    expected = candidate.copy()
    expected[5:7, 18:21, 20:23] = False
    assert np.array_equal(border_region_exact(candidate), expected)
    assert np.array_equal(border_region(candidate), expected)
