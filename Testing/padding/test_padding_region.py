"""The padded region found on a grid of blocks against labelling every component at full resolution.

The tolerance stated in ``padding_region``: the two answers differ only in padding-valued voxels
within two blocks of the padded region (air specks at the padding value next to it). Real Siemens
scans differ in at most 0.1 % of their voxels, a synthetic scan whose air holds 11 % specks in at
most 0.5 %; scans without such specks give identical answers.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample

from CTAffineRegisterLib.core.morphology import dilate_box
from CTAffineRegisterLib.padding import region as padding_region
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.padding.region import block_factors, border_region, border_region_exact
from CTAffineRegisterLib.synthetic import fov_mask, insert_fov_padding, make_phantom

TOLERANCE = 0.001  # share of the voxels that may differ on real scans
HARSH_TOLERANCE = 0.005  # on a synthetic scan with far more -1024 specks in its air than real ones


def siemens_style(size=(128, 128, 48), spacing=(3.2, 3.2, 4.0), noise_hu=20.0, radius_mm=None) -> sitk.Image:
    """Exactly -1024 outside the inscribed field of view, and every value clipped at -1024: noisy air
    inside the field of view holds -1024 specks too, the hard case for telling padding by value."""
    image = make_phantom(size, spacing, seed=5, noise_hu=noise_hu)
    radius = radius_mm or 0.5 * min(n * s for n, s in zip(size[:2], spacing[:2]))
    padded = insert_fov_padding(image, -1024, radius)
    return sitk.Maximum(padded, -1024)


def _candidate(image: sitk.Image, value: float = -1024) -> np.ndarray:
    return sitk.GetArrayFromImage(image) == value


def _within_blocks_of(differ: np.ndarray, region: np.ndarray, blocks: int) -> bool:
    """Every differing voxel lies within ``blocks`` blocks of the region (box distance)."""
    reach = blocks * padding_region.BLOCK_VOXELS
    near = dilate_box(region, (reach, reach, reach))
    return bool(np.all(near[differ]))


def test_noisy_air_specks_differ_only_next_to_the_region_and_rarely():
    candidate = _candidate(siemens_style())
    exact = border_region_exact(candidate)
    found = border_region(candidate)
    specks = candidate & ~exact
    assert np.count_nonzero(specks) > 5000  # the case worth testing: many -1024 voxels in real air
    differ = found != exact
    assert np.count_nonzero(differ) <= HARSH_TOLERANCE * candidate.size
    assert np.all(candidate[differ])  # never a voxel without the padding value
    assert _within_blocks_of(differ, exact, 2)
    # the padded region itself is all there: every exact voxel more than a block inside it is found
    inner = ~dilate_box(~exact, (padding_region.BLOCK_VOXELS,) * 3)
    assert np.all(found[inner])


def test_clean_field_of_view_edge_is_exact_including_slivers_at_the_tangents():
    """No specks: the circle nearly touching the image edge leaves slivers thinner than a block, which
    the face runs must find voxel for voxel."""
    image = insert_fov_padding(make_phantom((128, 128, 24), (3.2, 3.2, 6.0), seed=2, noise_hu=0.0), 0, 204.0)
    candidate = _candidate(image, 0)
    exact = border_region_exact(candidate)
    assert np.count_nonzero(exact) > 0.1 * candidate.size
    assert np.array_equal(border_region(candidate), exact)


def test_band_thinner_than_a_block_along_one_face_falls_back_to_exact_labelling():
    candidate = np.zeros((40, 64, 64), dtype=bool)
    candidate[:, :, :2] = True  # two voxels wide along the x=0 face, through every slice
    candidate[10:12, 30:33, 30:33] = True  # an inner blob at the same value: not padding
    found = border_region(candidate)
    assert found is not None
    assert np.array_equal(found, border_region_exact(candidate))
    assert not found[10, 31, 31]


def test_region_reaching_one_face_only_is_not_padding():
    candidate = np.zeros((40, 64, 64), dtype=bool)
    candidate[0:6, 20:40, 20:40] = True  # at the padding value on the first slices only (one face)
    assert border_region_exact(candidate) is None
    assert border_region(candidate) is None


def test_block_factors_divide_the_size_and_skip_short_axes():
    assert block_factors((300, 512, 512)) == (4, 4, 4)
    assert block_factors((275, 512, 511)) == (5, 4, 1)
    assert block_factors((111, 6, 96)) == (3, 1, 4)
    for shape in [(300, 512, 512), (275, 512, 511), (111, 6, 96), (7, 7, 7)]:
        assert all(length % factor == 0 for length, factor in zip(shape, block_factors(shape)))


def test_analysis_masks_within_tolerance_of_full_resolution_labelling(monkeypatch):
    """The whole analysis: same padding value and kind, valid masks within the tolerance."""
    image = siemens_style()
    fast = analyze_background(image)
    monkeypatch.setattr(padding_region, "border_region", padding_region.border_region_exact)
    exact = analyze_background(image)
    assert fast.padding_value == exact.padding_value == -1024
    assert fast.kind == exact.kind
    assert abs(fast.padding_fraction - exact.padding_fraction) <= HARSH_TOLERANCE
    fast_valid = sitk.GetArrayViewFromImage(fast.valid_mask)
    exact_valid = sitk.GetArrayViewFromImage(exact.valid_mask)
    assert np.count_nonzero(fast_valid != exact_valid) <= HARSH_TOLERANCE * fast_valid.size
    assert np.array_equal(
        sitk.GetArrayViewFromImage(fast.body_mask), sitk.GetArrayViewFromImage(exact.body_mask)
    )
    assert fast.air_value == exact.air_value


@pytest.mark.parametrize(
    "name", ["nsclc_radiomics/LUNG1-001_ct.nii.gz", "nsclc_radiomics/LUNG1-003_ct.nii.gz"]
)
def test_real_siemens_padding_within_tolerance(name):
    image = sitk.ReadImage(str(shared_sample(name)))
    candidate = _candidate(image)
    exact = border_region_exact(candidate)
    found = border_region(candidate)
    differ = found != exact
    assert np.count_nonzero(exact) > 0.15 * candidate.size
    assert np.count_nonzero(differ) <= TOLERANCE * candidate.size
    assert _within_blocks_of(differ, exact, 2)


def test_fov_mask_ground_truth_is_found_on_clean_padding():
    """Against how the padding was drawn, not against another detector."""
    phantom = make_phantom((96, 96, 32), (3.6, 3.6, 5.0), seed=4, noise_hu=0.0)
    truth = sitk.GetArrayFromImage(fov_mask(phantom, 150.0)) == 0
    image = insert_fov_padding(phantom, -1024, 150.0)
    found = border_region(_candidate(image))
    assert np.array_equal(found, truth | (found & ~truth))  # every drawn padding voxel is found
    assert np.count_nonzero(found & ~truth) <= TOLERANCE * truth.size  # air at exactly -1024 next to it
