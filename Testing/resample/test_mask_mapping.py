"""The validity mask mapped on blocks equals ITK's nearest-neighbour resampling, voxel for voxel."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.resample import valid_mask as mask_mapping
from CTAffineRegisterLib.resample.valid_mask import affine_index_map, map_valid_mask


def _itk(valid: sitk.Image, reference: sitk.Image, transform: sitk.Transform) -> np.ndarray:
    resampled = sitk.Resample(valid, reference, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(resampled)


def _random_case(rng: np.random.Generator):
    """A speckled mask with a cut-off side on an oblique grid, a reference grid, an affine."""
    moving_size = rng.integers(5, 48, 3)
    array = (rng.random(moving_size[::-1]) > 0.15).astype(np.uint8)
    array[:, :, : moving_size[0] // 3] = 0
    valid = sitk.GetImageFromArray(array)
    valid.SetSpacing(tuple(rng.uniform(0.5, 3.0, 3)))
    valid.SetOrigin(tuple(rng.uniform(-20, 20, 3)))
    valid.SetDirection(sitk.Euler3DTransform((0, 0, 0), *rng.uniform(-0.5, 0.5, 3)).GetMatrix())
    reference = sitk.Image([int(n) for n in rng.integers(5, 48, 3)], sitk.sitkInt16)
    reference.SetSpacing(tuple(rng.uniform(0.5, 3.0, 3)))
    reference.SetOrigin(tuple(rng.uniform(-20, 20, 3)))
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(tuple((np.eye(3) + rng.uniform(-0.3, 0.3, (3, 3))).ravel()))
    transform.SetTranslation(tuple(rng.uniform(-10, 10, 3)))
    transform.SetCenter(tuple(rng.uniform(-5, 5, 3)))
    return valid, reference, transform


@pytest.mark.parametrize("seed", range(12))
def test_random_grids_and_affines_match_itk_exactly(seed):
    valid, reference, transform = _random_case(np.random.default_rng(seed))
    expected = _itk(valid, reference, transform)
    mapped = map_valid_mask(valid, reference, transform)
    assert mapped.GetPixelID() == sitk.sitkUInt8
    assert _same_grid(mapped, reference)
    assert np.array_equal(sitk.GetArrayViewFromImage(mapped), expected)


def test_demo_pair_mask_matches_itk_and_mostly_skips_the_voxel_by_voxel_work(monkeypatch):
    pair = synthetic.make_pair(
        seed=1, fixed_size=(96, 96, 72), fixed_spacing=(3.0, 3.0, 3.5), anatomy_scale=0.9
    )
    analysis = analyze_background(pair.moving)
    worked = []
    original = mask_mapping._nearest_values

    def counting(valid, blocks, *rest):
        worked.append(len(blocks))
        return original(valid, blocks, *rest)

    monkeypatch.setattr(mask_mapping, "_nearest_values", counting)
    mapped = sitk.GetArrayFromImage(map_valid_mask(analysis.valid_mask, pair.fixed, pair.true_transform))
    assert np.array_equal(mapped, _itk(analysis.valid_mask, pair.fixed, pair.true_transform))
    assert 0 < mapped.mean() < 1
    block_count = np.prod([n // f for n, f in zip(mapped.shape, mask_mapping._output_factors(mapped.shape))])
    assert 0 < sum(worked) < 0.5 * block_count  # most blocks were decided whole, even on a small grid


@pytest.mark.parametrize(
    "transform",
    [
        sitk.Transform(3, sitk.sitkIdentity),
        sitk.TranslationTransform(3, (7.3, -2.9, 11.0)),
        sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.3, -0.2, 0.9, (4.0, 0.0, -5.0)),
    ],
    ids=["identity", "translation", "rigid"],
)
def test_other_linear_transforms_match_itk(transform):
    valid, reference, _ = _random_case(np.random.default_rng(99))
    expected = _itk(valid, reference, transform)
    assert np.array_equal(sitk.GetArrayViewFromImage(map_valid_mask(valid, reference, transform)), expected)


def test_a_transform_that_is_not_affine_goes_to_itk():
    valid, reference, _ = _random_case(np.random.default_rng(5))
    bspline = sitk.BSplineTransformInitializer(reference, [3, 3, 3])
    parameters = np.random.default_rng(6).normal(0.0, 4.0, len(bspline.GetParameters()))
    bspline.SetParameters(tuple(parameters))
    assert affine_index_map(valid, reference, bspline) is None
    expected = _itk(valid, reference, bspline)
    assert np.array_equal(sitk.GetArrayViewFromImage(map_valid_mask(valid, reference, bspline)), expected)


@pytest.mark.parametrize("flat", ["moving", "reference"])
def test_a_2d_image_has_no_index_map(flat):
    volume = sitk.Image([4, 4, 4], sitk.sitkUInt8)
    plane = sitk.Image([4, 4], sitk.sitkUInt8)
    moving, reference = (plane, volume) if flat == "moving" else (volume, plane)
    assert affine_index_map(moving, reference, sitk.AffineTransform(3)) is None


def test_affine_index_map_agrees_with_itk_index_arithmetic():
    valid, reference, transform = _random_case(np.random.default_rng(11))
    matrix, offset = affine_index_map(valid, reference, transform)
    for index in [(0, 0, 0), (3, 1, 4), tuple(n - 1 for n in reference.GetSize())]:
        point = transform.TransformPoint(reference.TransformIndexToPhysicalPoint(index))
        expected = valid.TransformPhysicalPointToContinuousIndex(point)
        assert np.allclose(matrix @ np.array(index) + offset, expected, atol=1e-9)


def _same_grid(first: sitk.Image, second: sitk.Image) -> bool:
    return (
        first.GetSize() == second.GetSize()
        and np.allclose(first.GetOrigin(), second.GetOrigin())
        and np.allclose(first.GetSpacing(), second.GetSpacing())
        and np.allclose(first.GetDirection(), second.GetDirection())
    )
