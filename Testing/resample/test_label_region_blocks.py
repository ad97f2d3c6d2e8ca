"""Which fixed voxels can land in a box of the moving label map (resample/label_regions.py): the region
holds every fixed voxel whose mapped point lies in the box, boundary included, for an oblique fixed grid
whose depth is no multiple of the block size, and no more blocks than those when the mapping keeps the
axes; a box beyond the mapped grid has none. Checked against every voxel mapped one by one."""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib.resample.label_regions import BLOCK_VOXELS, MappedBlocks


def _grids():
    """Fixed voxel (i, j, k) lands on moving index (41 - j, 7 + i, 9 + k) under the translation."""
    reference = sitk.Image([20, 18, 13], sitk.sitkUInt8)
    reference.SetDirection((0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))  # 90 degrees about z
    reference.SetOrigin((30.0, -5.0, 2.0))
    labels = sitk.Image([40, 40, 30], sitk.sitkUInt8)
    labels.SetOrigin((-10.0, -10.0, -4.0))
    return labels, reference


def _inside(labels, reference, transform, lower, upper) -> list[tuple[int, int, int]]:
    """(z, y, x) of every fixed voxel mapped into the box."""
    found = []
    for voxel in itertools.product(*(range(n) for n in reference.GetSize())):
        point = transform.TransformPoint(reference.TransformIndexToPhysicalPoint(voxel))
        index = np.array(labels.TransformPhysicalPointToContinuousIndex(point))
        if np.all(index >= lower - 1e-9) and np.all(index <= upper + 1e-9):
            found.append(voxel[::-1])
    return found


def test_an_axis_keeping_mapping_gives_exactly_the_blocks_of_the_voxels_in_the_box():
    labels, reference = _grids()
    transform = sitk.TranslationTransform(3, (1.0, 2.0, 3.0))
    blocks = MappedBlocks(labels, reference, transform)
    # x 30 to 34: 34 is where the block of j 0-7 starts (j = 7), so the boundary decides it
    lower, upper = np.array([30.0, 12.0, 16.0]), np.array([34.0, 20.0, 21.0])
    inside = np.array(_inside(labels, reference, transform, lower, upper))
    expected = tuple(
        slice(
            int(low) // BLOCK_VOXELS * BLOCK_VOXELS, min((int(high) // BLOCK_VOXELS + 1) * BLOCK_VOXELS, size)
        )
        for low, high, size in zip(inside.min(axis=0), inside.max(axis=0), reference.GetSize()[::-1])
    )
    assert blocks.region(lower, upper) == expected
    # beyond the last fixed slice (moving z 21), however close: no voxel, no region
    assert blocks.region(np.array([30.0, 12.0, 21.5]), np.array([34.0, 20.0, 24.0])) is None


def test_a_rotating_mapping_keeps_every_voxel_that_lands_in_the_box():
    labels, reference = _grids()
    transform = sitk.Euler3DTransform((25.0, 5.0, 8.0), 0.2, -0.1, 0.5, (1.0, 2.0, 3.0))
    blocks = MappedBlocks(labels, reference, transform)
    lower, upper = np.array([24.0, 10.0, 12.0]), np.array([34.0, 22.0, 18.0])
    inside = _inside(labels, reference, transform, lower, upper)
    region = blocks.region(lower, upper)
    assert inside and region is not None
    for voxel in inside:
        assert all(part.start <= at < part.stop for part, at in zip(region, voxel))
