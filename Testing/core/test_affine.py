"""Stages hand their answer to the next stage as another transform type: the mapping must survive.

A similarity stage's scale dropped on the way to the next stage would be found again only by later
stages (or the last stage's probes), so results could still look right: pin the hand-over itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.core.affine import affine_parts, as_type

POINTS = [(0.0, 0.0, 0.0), (120.0, -40.0, 30.0), (-80.0, 95.0, -150.0)]


def _similarity() -> sitk.Similarity3DTransform:
    transform = sitk.Similarity3DTransform()
    transform.SetCenter((10.0, -20.0, 35.0))
    transform.SetRotation((0.0, 0.0, 1.0), np.deg2rad(7.0))
    transform.SetScale(1.12)
    transform.SetTranslation((4.0, -6.0, 9.0))
    return transform


@pytest.mark.parametrize("stage", ["similarity", "affine"])
def test_a_similarity_hands_its_scale_on(stage):
    original = _similarity()
    converted = as_type(original, stage)
    for point in POINTS:
        assert np.allclose(converted.TransformPoint(point), original.TransformPoint(point), atol=1e-6)
    matrix, _ = affine_parts(converted)
    assert np.linalg.svd(matrix, compute_uv=False) == pytest.approx([1.12] * 3, abs=1e-9)


def test_a_rigid_stage_keeps_the_rotation_and_drops_only_the_scale():
    rigid = as_type(_similarity(), "rigid")
    matrix, _ = affine_parts(rigid)
    assert np.allclose(matrix.T @ matrix, np.eye(3), atol=1e-9) and np.linalg.det(matrix) > 0
    assert np.allclose(
        rigid.TransformPoint((10.0, -20.0, 35.0)), _similarity().TransformPoint((10.0, -20.0, 35.0))
    )
