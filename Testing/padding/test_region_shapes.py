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


@pytest.mark.parametrize("width", [1, 2, 8, 9])
def test_narrow_images_are_exact(width):
    """Widths of one or two voxels, and widths where the runs in from both faces meet or overlap."""
    candidate = np.zeros((12, 40, width), dtype=bool)
    candidate[:, :5, :] = True  # padding along the y = 0 face through every slice and the whole width
    if width >= 8:  # a band thinner than a block along the opposite face (on a narrower image its 12 or
        candidate[:, -3:, :] = True  # 24 face pixels would be taken for specks: the stated tolerance)
    candidate[5, 20, 0] = True  # a speck touching one face only: not padding
    expected = candidate.copy()
    expected[5, 20, 0] = False
    assert np.array_equal(border_region_exact(candidate), expected)
    assert np.array_equal(border_region(candidate), expected)


def _thin_band(face_pixels: int, y_size: int) -> np.ndarray:
    """A band one voxel deep along the x = 0 face, through every slice (so it reaches three faces)."""
    candidate = np.zeros((16, y_size, 12), dtype=bool)
    candidate[:, : face_pixels // 16, 0] = True
    return candidate


def test_a_thin_band_of_64_face_pixels_is_padding_not_a_speck():
    candidate = _thin_band(64, 40)
    assert np.array_equal(border_region(candidate), border_region_exact(candidate))
    assert np.count_nonzero(border_region(candidate)) == 64


def test_on_a_large_face_a_thin_band_below_its_share_counts_as_a_speck():
    # 16 x 4000 face pixels: the share (0.2 %) is 128 pixels, so a 96-pixel band the blocks do not
    # explain is taken for air specks (the tolerance the module states), not labelled exactly.
    candidate = _thin_band(96, 4000)
    assert np.count_nonzero(border_region_exact(candidate)) == 96
    assert border_region(candidate) is None


def test_a_region_reaching_exactly_two_faces_is_padding():
    candidate = np.zeros((12, 40, 45), dtype=bool)
    candidate[3:8, :5, :5] = True  # in the corner of the y = 0 and x = 0 faces, away from the z faces
    assert np.array_equal(border_region_exact(candidate), candidate)
    thin = np.zeros((12, 40, 45), dtype=bool)
    thin[3:8, :5, 0] = True  # one voxel deep along x = 0, touching y = 0 too
    assert np.array_equal(border_region_exact(thin), thin)


def _outside_circle(shape, radius, center) -> np.ndarray:
    _, y, x = np.mgrid[0 : shape[0], 0 : shape[1], 0 : shape[2]]
    return (y - center[0]) ** 2 + (x - center[1]) ** 2 > radius**2


@pytest.mark.parametrize(
    "candidate",
    [
        _outside_circle((12, 16, 9), 5.128, (0.264, 7.319)),  # the field of view's centre on the y = 0 face
        _outside_circle((12, 20, 20), 7.067, (10.937, 7.399)),  # off-centre, cutting the x = 0 face
        np.pad(np.ones((8, 2, 5), bool), ((0, 0), (0, 0), (0, 19))),  # a band along x = 0, 2 rows tall
        np.pad(np.ones((3, 2, 24), bool), ((5, 0), (0, 0), (0, 0))),  # the last 3 slices, 2 rows tall
    ],
    ids=["centre-on-a-face", "off-centre", "band-on-2-rows", "end-slices-on-2-rows"],
)
def test_clean_padding_on_small_and_off_centre_fields_of_view_is_exact(candidate):
    exact = border_region_exact(candidate)
    assert exact is not None and np.array_equal(exact, candidate)  # all of it reaches two faces
    assert np.array_equal(border_region(candidate), exact)
