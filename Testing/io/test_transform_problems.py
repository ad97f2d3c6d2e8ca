"""Transforms that cannot map points are refused by name (io/transform_files.transform_problem): NaN
or Inf in any part of a composite, in the fixed parameters (the centre) too, counted exactly."""

from __future__ import annotations

import math

import SimpleITK as sitk

from CTAffineRegisterLib.io.transform_files import transform_problem


def _euler(angle_z=0.1, center=(1.0, 2.0, 3.0), shift=(4.0, 5.0, 6.0)) -> sitk.Euler3DTransform:
    return sitk.Euler3DTransform(center, 0.0, 0.0, angle_z, shift)


def test_a_nan_in_the_first_part_of_a_nested_composite_is_found():
    inner = sitk.CompositeTransform([_euler(angle_z=math.nan), _euler()])
    outer = sitk.CompositeTransform([inner, sitk.TranslationTransform(3, (1.0, 0.0, 0.0))])
    assert transform_problem(outer) == "1 of its parameters is NaN or Inf, so it maps no point to a place"


def test_nans_in_the_parameters_and_the_centre_are_all_counted():
    transform = _euler(angle_z=math.inf, center=(math.nan, 0.0, 0.0))
    assert (
        transform_problem(transform) == "2 of its parameters are NaN or Inf, so it maps no point to a place"
    )
    assert transform_problem(_euler(center=(0.0, math.nan, math.nan))).startswith("2 of its parameters are ")


def test_usable_and_singular_transforms():
    assert transform_problem(_euler()) is None
    assert transform_problem(sitk.CompositeTransform([_euler(), _euler(angle_z=0.3)])) is None
    flat = sitk.AffineTransform(3)
    flat.SetMatrix((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0))
    flat.SetCenter((50.0, -20.0, 10.0))
    assert transform_problem(flat).startswith("its matrix is singular (determinant 0)")


def _affine(diagonal) -> sitk.AffineTransform:
    transform = sitk.AffineTransform(3)
    transform.SetMatrix((diagonal[0], 0.0, 0.0, 0.0, diagonal[1], 0.0, 0.0, 0.0, diagonal[2]))
    return transform


def test_singular_means_a_tiny_share_of_the_largest_scale_and_zero_is_singular():
    from CTAffineRegisterLib.io.transform_files import _SINGULAR_RATIO

    assert transform_problem(_affine((0.0, 0.0, 0.0))).startswith("its matrix is singular")
    assert transform_problem(_affine((2.0, 1.0, 2.0 * _SINGULAR_RATIO * 0.5))).startswith(
        "its matrix is singular"
    )
    assert transform_problem(_affine((2.0, 1.0, 2.0 * _SINGULAR_RATIO * 2.0))) is None
    assert transform_problem(_affine((2.0 * _SINGULAR_RATIO * 2.0, 1.0, 2.0))) is None


def test_a_matrix_so_large_that_points_overflow_maps_no_point():
    assert (
        transform_problem(_affine((1e307, 1e307, 1e307)))
        == "it maps points to NaN or Inf, so it maps no point anywhere"
    )
