"""The numpy morphology must give exactly what SimpleITK's binary filters give, only faster."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.core import morphology

RADII = [(1, 1, 0), (2, 2, 0), (2, 2, 1), (3, 2, 1), (1, 1, 1)]


def _blobs(shape=(24, 30, 36), seed=0) -> np.ndarray:
    """Random smooth blobs touching the array edges: holes, gaps and thin bridges to close and open."""
    noise = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    smooth = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(noise), 1.5))
    return (smooth > 0.05).astype(np.uint8)


def _itk(function, mask: np.ndarray, radius, *args) -> np.ndarray:
    return sitk.GetArrayFromImage(function(sitk.GetImageFromArray(mask), list(radius), *args)).astype(bool)


@pytest.mark.parametrize("radius", RADII)
def test_kernel_is_itks_ball(radius):
    point = np.zeros((9, 11, 13), np.uint8)
    point[4, 5, 6] = 1
    expected = _itk(sitk.BinaryDilate, point, radius)
    assert np.array_equal(morphology.dilate(point, radius), expected)
    assert len(morphology.ellipsoid_offsets(radius)) == int(expected.sum())


@pytest.mark.parametrize("radius", RADII)
def test_dilate_erode_close_open_match_simpleitk(radius):
    mask = _blobs(seed=sum(radius))
    assert np.array_equal(morphology.dilate(mask, radius), _itk(sitk.BinaryDilate, mask, radius))
    assert np.array_equal(morphology.erode(mask, radius), _itk(sitk.BinaryErode, mask, radius))
    closed = _itk(sitk.BinaryMorphologicalClosing, mask, radius)
    assert np.array_equal(morphology.close(mask, radius), closed)
    opened = _itk(sitk.BinaryMorphologicalOpening, mask, radius)
    assert np.array_equal(morphology.open_(mask, radius), opened)
    # the operations did something, so equality above is not two unchanged copies
    assert not np.array_equal(closed, mask) and not np.array_equal(opened, mask)


@pytest.mark.parametrize("radius", [(1, 1, 1), (2, 2, 1), (3, 1, 0)])
def test_box_dilation_matches_simpleitk(radius):
    mask = _blobs(seed=7)
    expected = _itk(sitk.BinaryDilate, mask, radius, sitk.sitkBox)
    assert np.array_equal(morphology.dilate_box(mask, radius), expected)


def test_kernel_larger_than_the_array_is_safe():
    mask = np.zeros((2, 3, 3), np.uint8)
    mask[1, 1, 1] = 1
    grown = morphology.dilate(mask, (4, 4, 4))
    assert grown.all()
    assert not morphology.erode(np.zeros_like(mask), (4, 4, 4)).any()
    assert morphology.erode(np.ones_like(mask), (4, 4, 4)).all()  # outside counts as inside


def test_inputs_are_not_modified():
    mask = _blobs(seed=3)
    before = mask.copy()
    for operation in (morphology.dilate, morphology.erode, morphology.close, morphology.open_):
        operation(mask, (2, 2, 1))
    morphology.dilate_box(mask, (1, 1, 1))
    assert np.array_equal(mask, before)


def test_face_erosion_matches_simpleitks_cross_kernel():
    mask = _blobs(seed=5)
    expected = _itk(sitk.BinaryErode, mask, (1, 1, 1), sitk.sitkCross)
    eroded = morphology.erode_faces(mask)
    assert np.array_equal(eroded, expected)
    assert eroded.sum() < mask.sum()


def test_face_dilation_matches_simpleitks_cross_kernel_and_keeps_the_input():
    mask = _blobs(seed=6)
    before = mask.copy()
    expected = _itk(sitk.BinaryDilate, mask, (1, 1, 1), sitk.sitkCross)
    grown = morphology.dilate_faces(mask)
    assert grown.dtype == bool and np.array_equal(grown, expected)
    assert grown.sum() > mask.sum() and np.array_equal(mask, before)
    point = np.zeros((3, 3, 3), np.uint8)
    point[1, 1, 1] = 1
    assert int(morphology.dilate_faces(point).sum()) == 7  # itself and its six face neighbours
