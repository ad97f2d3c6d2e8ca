"""The accuracy measures of the tests and benchmarks (quality/accuracy.py) on known transforms and tiny
images: the TRE's mean and max in mm, and ring voxels counted strictly below the threshold inside the
valid mask only."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.quality.accuracy import RING_THRESHOLD_HU, ring_voxels, target_registration_error


def test_tre_is_the_mean_and_max_distance_between_the_two_mappings():
    truth = sitk.TranslationTransform(3, (0.0, 0.0, 0.0))
    estimated = sitk.ScaleTransform(3, (2.0, 2.0, 2.0))  # sends p to 2p: off by |p|
    points = [[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert target_registration_error(estimated, truth, points) == pytest.approx((2.0, 5.0))
    assert target_registration_error(estimated, truth, np.array([0.0, 6.0, 8.0])) == pytest.approx(
        (10.0, 10.0)
    )


def test_tre_without_points_is_refused():
    identity = sitk.TranslationTransform(3)
    with pytest.raises(ValueError, match="no points"):
        target_registration_error(identity, identity, np.empty((0, 3)))


def test_ring_voxels_are_darker_than_the_threshold_inside_the_valid_mask():
    values = np.array([[[-1200.0, RING_THRESHOLD_HU, -1100.5, 0.0]]])
    valid = np.array([[[1, 1, 0, 1]]], dtype=np.uint8)
    count = ring_voxels(sitk.GetImageFromArray(values), sitk.GetImageFromArray(valid))
    assert count == 1  # the threshold itself is no ring voxel, nor is a dark voxel outside the mask
    assert ring_voxels(sitk.GetImageFromArray(values), sitk.GetImageFromArray(valid), threshold=1.0) == 3


def test_ring_voxels_of_images_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="differ in size"):
        ring_voxels(sitk.Image([4, 1, 1], sitk.sitkFloat32), sitk.Image([3, 1, 1], sitk.sitkUInt8))
