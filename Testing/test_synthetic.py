"""Synthetic phantoms and pairs: realistic values, exact geometry, deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib import synthetic

SMALL = dict(fixed_size=(64, 64, 40), fixed_spacing=(4.0, 4.0, 6.0), moving_spacing=(4.5, 4.5, 7.0))


@pytest.fixture(scope="module")
def phantom() -> sitk.Image:
    return synthetic.make_phantom(size=(96, 96, 64), spacing=(3.5, 3.5, 4.5), seed=3)


def test_phantom_holds_ct_tissues(phantom):
    array = sitk.GetArrayViewFromImage(phantom)
    assert phantom.GetPixelID() == sitk.sitkInt16
    assert phantom.GetSize() == (96, 96, 64)
    corners = [int(array[k, j, i]) for k in (0, -1) for j in (0, -1) for i in (0, -1)]
    assert all(-1080 < value < -920 for value in corners), corners  # air with noise
    body = array[:, 48 - 10 : 48 + 10, 48 - 10 : 48 + 10]
    assert np.count_nonzero(array < -700) > 0.3 * array.size  # air and lungs
    assert np.count_nonzero((array > -700) & (array < -500)) < 0.02 * array.size  # sharp-ish edges
    assert np.count_nonzero(array > 600) > 200  # cortical bone, ribs, pelvis
    assert np.count_nonzero((array > -150) & (array < -60)) > 1000  # fat layer
    assert -150 < float(np.median(body)) < 150  # soft tissue in the middle of the body


def test_phantom_is_deterministic_for_a_seed(phantom):
    again = synthetic.make_phantom(size=(96, 96, 64), spacing=(3.5, 3.5, 4.5), seed=3)
    other = synthetic.make_phantom(size=(96, 96, 64), spacing=(3.5, 3.5, 4.5), seed=4)
    assert np.array_equal(sitk.GetArrayViewFromImage(again), sitk.GetArrayViewFromImage(phantom))
    assert not np.array_equal(sitk.GetArrayViewFromImage(other), sitk.GetArrayViewFromImage(phantom))


def test_phantom_honours_grid_geometry():
    direction = (0, 1, 0, -1, 0, 0, 0, 0, 1)  # rotated 90 degrees in the axial plane
    image = synthetic.make_phantom((40, 50, 20), (4.0, 4.0, 8.0), (-90.0, 80.0, -70.0), direction, noise_hu=0)
    assert image.GetOrigin() == (-90.0, 80.0, -70.0)
    assert image.GetDirection() == tuple(float(d) for d in direction)
    assert image.GetSpacing() == (4.0, 4.0, 8.0)


def test_fov_padding_is_a_circle_in_physical_mm_of_an_oblique_grid():
    direction = sitk.Euler3DTransform((0, 0, 0), 0.0, 0.0, np.deg2rad(30)).GetMatrix()
    image = synthetic.make_phantom((60, 60, 6), (3.0, 3.0, 5.0), None, direction, noise_hu=0)
    center = (12.0, -6.0, 0.0)
    padded = synthetic.insert_fov_padding(image, -3024, 70.0, center=center)
    array = sitk.GetArrayViewFromImage(padded)
    original = sitk.GetArrayViewFromImage(image)
    axes = np.array(direction).reshape(3, 3)
    checked = 0
    for index in [(0, 0, 2), (30, 30, 3), (45, 20, 1), (29, 52, 5), (10, 40, 0), (55, 55, 4)]:
        relative = np.array(image.TransformIndexToPhysicalPoint(index)) - center
        in_plane = np.hypot(relative @ axes[:, 0], relative @ axes[:, 1])
        value = array[index[2], index[1], index[0]]
        if in_plane > 70.5:
            assert value == -3024
            checked += 1
        elif in_plane < 69.5:
            assert value == original[index[2], index[1], index[0]]
            checked += 1
    assert checked >= 5
    assert padded.GetPixelID() == image.GetPixelID()


def test_random_affine_stays_within_its_ranges():
    rng = np.random.default_rng(7)
    for _ in range(20):
        transform = synthetic.random_affine(rng, 10.0, 20.0, (0.9, 1.1), 0.05, center=(5.0, 6.0, 7.0))
        matrix = np.array(transform.GetMatrix()).reshape(3, 3)
        singular = np.linalg.svd(matrix, compute_uv=False)
        assert 0.85 < singular.min() and singular.max() < 1.16
        assert np.linalg.det(matrix) > 0
        assert np.linalg.norm(transform.GetTranslation()) <= 20.0 + 1e-9
        assert transform.GetCenter() == (5.0, 6.0, 7.0)


def test_pair_moving_is_fixed_anatomy_through_the_true_transform():
    pair = synthetic.make_pair(5, noise_hu=0, couch=False, **SMALL)
    assert pair.moving.GetSize() != pair.fixed.GetSize()
    assert pair.moving.GetSpacing() != pair.fixed.GetSpacing()
    moving = sitk.GetArrayViewFromImage(pair.moving)
    assert moving[0, 0, 0] == -3024 and np.count_nonzero(moving == -3024) > 0.1 * moving.size
    assert np.count_nonzero(sitk.GetArrayViewFromImage(pair.fixed) == -3024) == 0
    # fixed(p) == moving(T(p)): resampling the moving scan through the truth reproduces the fixed one
    fixed = sitk.Cast(pair.fixed, sitk.sitkFloat32)
    right = sitk.Resample(
        pair.moving, pair.fixed, pair.true_transform, sitk.sitkLinear, -1000, sitk.sitkFloat32
    )
    wrong = sitk.Resample(
        pair.moving, pair.fixed, pair.true_transform.GetInverse(), sitk.sitkLinear, -1000, sitk.sitkFloat32
    )
    assert np.array_equal(sitk.GetArrayViewFromImage(pair.moving_valid_mask) == 0, moving == -3024)
    body = sitk.GetArrayViewFromImage(fixed) > -500
    error_right = np.median(np.abs(sitk.GetArrayFromImage(right - fixed)[body]))
    error_wrong = np.median(np.abs(sitk.GetArrayFromImage(wrong - fixed)[body]))
    assert error_right < 25 and error_wrong > 2 * error_right


def test_pair_body_points_lie_inside_the_body_and_the_fixed_fov():
    pair = synthetic.make_pair(2, fixed_padding=-2048, fixed_fov_radius_mm=110.0, point_count=500, **SMALL)
    assert pair.body_points.shape == (500, 3)
    assert synthetic.body_inside(pair.body_points).all()
    valid = sitk.GetArrayViewFromImage(pair.fixed_valid_mask)
    for point in pair.body_points[:50]:
        i, j, k = pair.fixed.TransformPhysicalPointToIndex(point.tolist())
        assert valid[k, j, i] == 1


def test_pair_uses_a_given_true_transform():
    truth = sitk.Euler3DTransform((0, 0, 0), 0.05, -0.02, 0.1, (6.0, -4.0, 3.0))
    pair = synthetic.make_pair(4, true_transform=truth, **SMALL)
    for point in ([10.0, 20.0, 30.0], [-60.0, 15.0, -20.0]):
        assert np.allclose(pair.true_transform.TransformPoint(point), truth.TransformPoint(point))


def test_pair_is_deterministic_for_a_seed():
    first = synthetic.make_pair(9, **SMALL)
    second = synthetic.make_pair(9, **SMALL)
    assert np.array_equal(sitk.GetArrayViewFromImage(first.moving), sitk.GetArrayViewFromImage(second.moving))
    assert first.true_transform.GetParameters() == second.true_transform.GetParameters()
    assert np.array_equal(first.body_points, second.body_points)


def test_pair_from_real_image_has_the_exact_answer():
    image = synthetic.make_phantom((48, 48, 32), (6.0, 6.0, 8.0), noise_hu=0, couch=False)
    truth = sitk.Euler3DTransform((0, 0, 0), 0.0, 0.0, 0.1, (5.0, -3.0, 2.0))
    pair = synthetic.make_pair_from_image(image, 1, (7.0, 7.0, 9.0), -1500, None, true_transform=truth)
    assert isinstance(pair.true_transform, sitk.AffineTransform)
    for point in ([10.0, 20.0, 30.0], [-40.0, 5.0, 0.0]):
        assert np.allclose(pair.true_transform.TransformPoint(point), truth.TransformPoint(point))
    assert np.count_nonzero(sitk.GetArrayViewFromImage(pair.moving) == -1500) > 0
    assert pair.body_points.shape[1] == 3 and len(pair.body_points) > 100
