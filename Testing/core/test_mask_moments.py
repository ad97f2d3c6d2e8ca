"""Mask moments from projections: the same centre and spread as listing every voxel, on any grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.core.pyramid import centroid, mask_moments


def _oblique_mask(seed: int) -> sitk.Image:
    rng = np.random.default_rng(seed)
    array = np.zeros((30, 40, 50), np.uint8)
    array[5:25, 8:30, 10:45] = rng.random((20, 22, 35)) > 0.4  # a ragged block, off centre
    mask = sitk.GetImageFromArray(array)
    mask.SetSpacing((0.8, 1.3, 2.5))
    mask.SetOrigin((12.0, -40.0, 300.0))
    mask.SetDirection(sitk.VersorTransform((0.2, 0.9, 0.4), 0.5).GetMatrix())
    return mask


def _listed_points(mask: sitk.Image) -> np.ndarray:
    index = np.argwhere(sitk.GetArrayFromImage(mask) > 0)[:, ::-1].astype(float)
    return np.array([mask.TransformContinuousIndexToPhysicalPoint(point.tolist()) for point in index])


@pytest.mark.parametrize("seed", [1, 2])
def test_mask_moments_match_every_voxel_listed(seed):
    mask = _oblique_mask(seed)
    points = _listed_points(mask)
    voxels, center, covariance = mask_moments(mask)
    assert voxels == len(points)
    np.testing.assert_allclose(center, points.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(covariance, np.cov(points.T, bias=True), atol=1e-8)
    np.testing.assert_allclose(center, centroid(mask), atol=1e-9)


def test_mask_moments_of_an_empty_mask_are_the_image_centre_and_no_spread():
    mask = sitk.Image(8, 6, 4, sitk.sitkUInt8)
    mask.SetSpacing((2.0, 2.0, 3.0))
    voxels, center, covariance = mask_moments(mask)
    assert voxels == 0
    np.testing.assert_allclose(center, (7.0, 5.0, 4.5))
    assert not covariance.any()


def test_a_single_voxel_is_its_own_centre_with_no_spread():
    mask = sitk.Image(8, 6, 4, sitk.sitkUInt8)
    mask.SetSpacing((2.0, 2.0, 3.0))
    mask[5, 1, 2] = 1
    voxels, center, covariance = mask_moments(mask)
    assert voxels == 1 and not covariance.any()
    np.testing.assert_allclose(center, (10.0, 2.0, 6.0))
    assert centroid(mask) == tuple(center)
