"""Reading, comparing and converting linear transforms through the mapping itself (core/affine.py).

Every stage of a registration hands its answer on through these helpers, the cohort de-duplicates
starting points by ``mapping_key``, and the polish step judges its spread by ``mean_distance``: a
slip in any of them moves a patient by millimetres while every figure still looks plausible. Small
transforms with known answers, no images.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.core.affine import (
    affine_about,
    affine_parts,
    as_type,
    center_of,
    copy_transform,
    is_rigid,
    mapping_key,
    mean_distance,
    nearest_rotation,
)

CENTER = (10.0, -20.0, 35.0)
POINTS = np.array([(0.0, 0.0, 0.0), (120.0, -40.0, 30.0), (-80.0, 95.0, -150.0), (3.0, 7.0, -11.0)])
SHEAR = np.array([[1.1, 0.2, 0.0], [0.0, 0.9, 0.1], [0.05, 0.0, 1.3]])


def _affine(matrix=SHEAR, translation=(4.0, -6.0, 9.0), center=CENTER) -> sitk.AffineTransform:
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(np.asarray(matrix, float).ravel().tolist())
    transform.SetTranslation(translation)
    transform.SetCenter(center)
    return transform


def _euler(angle_deg=20.0, translation=(1.0, 2.0, 3.0), center=CENTER) -> sitk.Euler3DTransform:
    transform = sitk.Euler3DTransform()
    transform.SetCenter(center)
    transform.SetRotation(0.0, 0.0, np.deg2rad(angle_deg))
    transform.SetTranslation(translation)
    return transform


def _same_points(first: sitk.Transform, second: sitk.Transform) -> bool:
    return all(
        np.allclose(first.TransformPoint(p.tolist()), second.TransformPoint(p.tolist()), atol=1e-6)
        for p in POINTS
    )


def test_affine_parts_reads_the_matrix_and_the_shift_about_the_transform_centre():
    matrix, translation = affine_parts(_affine())
    assert np.allclose(matrix, SHEAR, atol=1e-9)
    assert np.allclose(translation, (4.0, -6.0, 9.0), atol=1e-9)


def test_affine_parts_about_another_point_still_describes_the_same_mapping():
    transform, elsewhere = _affine(), np.array((-50.0, 60.0, 5.0))
    matrix, translation = affine_parts(transform, elsewhere)
    assert np.allclose(matrix, SHEAR, atol=1e-9)
    for point in POINTS:
        expected = transform.TransformPoint(point.tolist())
        assert np.allclose(matrix @ (point - elsewhere) + elsewhere + translation, expected, atol=1e-6)


def test_center_of_a_centred_transform_and_of_types_without_a_centre():
    assert center_of(_euler()) == pytest.approx(CENTER)
    assert center_of(sitk.TranslationTransform(3, (1.0, 2.0, 3.0))) == (0.0, 0.0, 0.0)
    composite = sitk.CompositeTransform([_euler(), _affine()])
    assert center_of(composite) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("stage", "kind"),
    [
        ("rigid", sitk.Euler3DTransform),
        ("similarity", sitk.Similarity3DTransform),
        ("affine", sitk.AffineTransform),
    ],
)
def test_as_type_gives_the_asked_type_about_the_same_centre(stage, kind):
    source = _euler(angle_deg=-35.0, translation=(7.0, -3.0, 12.0))
    converted = as_type(source, stage)
    assert isinstance(converted.Downcast(), kind)
    assert center_of(converted) == pytest.approx(CENTER)
    assert _same_points(converted, source)


def test_as_type_affine_keeps_a_shear_that_the_rigid_stage_cannot():
    source = _affine()
    assert _same_points(as_type(source, "affine"), source)
    rigid_matrix, _ = affine_parts(as_type(source, "rigid"))
    assert np.allclose(rigid_matrix.T @ rigid_matrix, np.eye(3), atol=1e-9)
    assert not np.allclose(rigid_matrix, SHEAR, atol=1e-3)


def test_as_type_of_a_composite_keeps_the_mapping():
    composite = sitk.CompositeTransform(
        [_euler(angle_deg=10.0), _euler(angle_deg=15.0, translation=(0, 0, 5))]
    )
    converted = as_type(composite, "rigid")
    assert _same_points(converted, composite)


def test_nearest_rotation_splits_off_the_mean_scale():
    rotation = sitk.Euler3DTransform()
    rotation.SetRotation(0.3, -0.2, 0.5)
    turn = np.array(rotation.GetMatrix()).reshape(3, 3)
    found, scale = nearest_rotation(2.0 * turn)
    assert np.allclose(found, turn, atol=1e-9)
    assert scale == pytest.approx(2.0)
    _, mean_scale = nearest_rotation(np.diag([1.0, 2.0, 4.0]))
    assert mean_scale == pytest.approx(2.0)  # the geometric mean: volume kept


def test_nearest_rotation_of_a_mirror_is_a_proper_rotation():
    found, scale = nearest_rotation(np.diag([1.0, 1.0, -1.0]))
    assert np.linalg.det(found) == pytest.approx(1.0)
    assert np.allclose(found.T @ found, np.eye(3), atol=1e-9)
    assert scale == pytest.approx(1.0)


def test_is_rigid_accepts_a_turn_and_refuses_scale_shear_and_mirror():
    assert is_rigid(_euler(angle_deg=40.0))
    assert not is_rigid(_affine(matrix=np.diag([1.01, 1.0, 1.0])))
    assert not is_rigid(_affine())
    assert not is_rigid(_affine(matrix=np.diag([1.0, 1.0, -1.0])))
    # the tolerance is how far from a rotation still counts
    assert is_rigid(_affine(matrix=np.diag([1.0002, 1.0, 1.0])))
    assert not is_rigid(_affine(matrix=np.diag([1.0002, 1.0, 1.0])), tolerance=1e-5)


def test_mapping_key_is_the_mapping_not_the_type():
    euler = _euler()
    assert mapping_key(euler) == mapping_key(as_type(euler, "affine"))
    assert mapping_key(euler) != mapping_key(_euler(translation=(1.0, 2.0, 3.001)))
    assert mapping_key(euler) != mapping_key(_euler(angle_deg=20.01))
    assert hash(mapping_key(euler)) == hash(mapping_key(_euler()))


def test_copy_transform_is_independent_and_of_the_same_type():
    original = _euler()
    copy = copy_transform(original)
    assert isinstance(copy, sitk.Euler3DTransform)
    assert _same_points(copy, original)
    copy.SetTranslation((100.0, 0.0, 0.0))
    assert original.GetTranslation() == pytest.approx((1.0, 2.0, 3.0))


def test_affine_about_a_new_centre_maps_every_point_the_same():
    composite = sitk.CompositeTransform([_euler(angle_deg=25.0), _affine()])
    result = affine_about(composite, (0.0, 50.0, -10.0))
    assert isinstance(result, sitk.AffineTransform)
    assert result.GetCenter() == pytest.approx((0.0, 50.0, -10.0))
    assert _same_points(result, composite)


def test_mean_distance_in_millimetres():
    identity = _affine(matrix=np.eye(3), translation=(0.0, 0.0, 0.0))
    shifted = _affine(matrix=np.eye(3), translation=(3.0, 4.0, 0.0))
    assert mean_distance(identity, shifted, POINTS) == pytest.approx(5.0)
    assert mean_distance(shifted, identity, POINTS) == pytest.approx(5.0)
    # a 90° turn about CENTER moves a point r mm away from the axis by r·√2
    turned = _euler(angle_deg=90.0, translation=(0.0, 0.0, 0.0))
    points = np.array([CENTER]) + np.array([(10.0, 0.0, 0.0), (0.0, 30.0, 7.0)])
    assert mean_distance(identity, turned, points) == pytest.approx((10.0 + 30.0) * np.sqrt(2) / 2)


def test_mean_distance_is_the_mean_of_the_point_by_point_distances_whatever_the_centres():
    first = _affine(translation=(2.0, 0.0, -1.0), center=CENTER)
    second = _euler(angle_deg=35.0, translation=(5.0, 1.0, 0.0), center=(-60.0, 15.0, 80.0))
    expected = np.mean(
        [
            np.linalg.norm(np.subtract(first.TransformPoint(p), second.TransformPoint(p)))
            for p in POINTS.tolist()
        ]
    )
    assert mean_distance(first, second, POINTS) == pytest.approx(expected, rel=1e-12)
    assert mean_distance(second, first, POINTS) == pytest.approx(expected, rel=1e-12)
    # same matrix, shifts along one axis: 1 - 2 = -1 mm at every point, not 1 + 2
    one, two = _affine(np.eye(3), (1.0, 0.0, 0.0)), _affine(np.eye(3), (2.0, 0.0, 0.0))
    assert mean_distance(one, two, POINTS) == pytest.approx(1.0)


def test_the_mapping_key_tells_centres_apart_and_rounds_to_a_billionth():
    here, there = _euler(center=CENTER), _euler(center=(0.0, 0.0, 0.0))  # same angle and shift
    assert mapping_key(here) != mapping_key(there)
    assert mapping_key(_euler(translation=(1.0, 2.0, 3.0 + 3e-10))) == mapping_key(_euler())
    assert mapping_key(_euler(translation=(1.0, 2.0, 3.0 + 4e-9))) != mapping_key(_euler())


def test_the_nearest_rotation_of_a_mirroring_matrix_gives_up_its_weakest_axis():
    """A matrix that mirrors z while shrinking it most: the proper rotation nearest to it is the identity
    (z is the axis to turn back), not a half-turn about x or y."""
    rotation, scale = nearest_rotation(np.diag([3.0, 2.0, -1.0]))
    assert rotation == pytest.approx(np.eye(3), abs=1e-12)
    assert scale == pytest.approx(6.0 ** (1.0 / 3.0))
