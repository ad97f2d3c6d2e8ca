"""Label maps under a non-linear transform: each structure is resampled over the part of the fixed
grid its box can reach, not over the whole grid (issue 21, item 16c), with the same result."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.resample import labels as labels_module
from CTAffineRegisterLib.resample.label_regions import MappedBlocks
from CTAffineRegisterLib.resample.labels import resample_labels

SIZE = (56, 48, 40)  # x, y, z


def _grid(spacing=(2.0, 2.0, 2.5), origin=(-50.0, -40.0, -30.0)) -> sitk.Image:
    image = sitk.Image(SIZE, sitk.sitkUInt8)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _many_structures() -> sitk.Image:
    """60 small boxes spread over the grid, values 1..45 (uint16)."""
    values = np.zeros(SIZE[::-1], np.uint16)
    value = 1
    for z in range(2, SIZE[2] - 6, 12):
        for y in range(2, SIZE[1] - 6, 10):
            for x in range(2, SIZE[0] - 6, 11):
                values[z : z + 4, y : y + 5, x : x + 4] = value
                value += 1
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(_grid(spacing=(1.8, 1.9, 2.4), origin=(-48.0, -41.0, -29.0)))
    return image


def _smooth_field(reference: sitk.Image) -> sitk.Transform:
    """A displacement of up to 3 mm that varies across the grid (a non-linear transform)."""
    z, y, x = np.meshgrid(*(np.arange(n) for n in SIZE[::-1]), indexing="ij")
    field = np.stack(
        [3.0 * np.sin(z / 7.0), 2.0 * np.cos(x / 9.0), 1.5 * np.sin((x + y) / 11.0) + 2.0], axis=-1
    ).astype(np.float64)
    image = sitk.GetImageFromArray(field, isVector=True)
    image.CopyInformation(reference)
    return sitk.DisplacementFieldTransform(image)


@pytest.fixture(scope="module")
def case():
    reference = _grid()
    return _many_structures(), reference, _smooth_field(reference)


def test_each_structure_is_resampled_over_its_own_region_only(case, monkeypatch):
    labels, reference, transform = case
    regions = []
    original = labels_module._structure_share

    def counting(array, labels_image, reference_image, transform_, structure, region):
        regions.append(int(np.prod([part.stop - part.start for part in region])))
        return original(array, labels_image, reference_image, transform_, structure, region)

    monkeypatch.setattr(labels_module, "_structure_share", counting)
    resample_labels(labels, reference, transform)
    grid = int(np.prod(SIZE))
    assert len(regions) == 60
    # a 4×5×4-voxel structure (plus its reach and the 8-voxel blocks) is a few percent of the grid
    assert max(regions) < 0.1 * grid
    assert sum(regions) < 2 * grid  # before: 60 whole grids


def test_the_result_is_the_one_over_the_whole_grid(case, monkeypatch):
    labels, reference, transform = case
    bounded = sitk.GetArrayFromImage(resample_labels(labels, reference, transform))
    whole = tuple(slice(0, size) for size in SIZE[::-1])
    monkeypatch.setattr(MappedBlocks, "region", lambda self, lower, upper: whole)
    everywhere = sitk.GetArrayFromImage(resample_labels(labels, reference, transform))
    assert np.array_equal(bounded, everywhere)
    assert len(np.unique(bounded)) == 61  # every structure arrives


def test_blocks_cover_every_voxel_that_maps_into_a_box(case):
    labels, reference, transform = case
    blocks = MappedBlocks(labels, reference, transform)
    rng = np.random.default_rng(3)
    for _ in range(20):
        index = [int(rng.integers(0, n)) for n in SIZE]
        moving = labels.TransformPhysicalPointToContinuousIndex(
            transform.TransformPoint(reference.TransformIndexToPhysicalPoint(index))
        )
        region = blocks.region(np.array(moving) - 0.01, np.array(moving) + 0.01)
        assert region is not None
        assert all(part.start <= i < part.stop for part, i in zip(region, index[::-1]))
    assert blocks.region(np.full(3, 1e6), np.full(3, 1e6 + 1)) is None
