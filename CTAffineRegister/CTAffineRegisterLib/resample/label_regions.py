"""Where each structure of a label map can land on the fixed grid under a non-linear transform.

A linear transform maps a structure's bounding box to a box that its corners bound (``labels``). A
B-spline or displacement field has no such shortcut, so each structure used to be resampled over the
whole fixed grid: with hundreds of structures that is hundreds of full-grid resamplings (999 labels
took 68 s against 3 s for a few). Here the transform is evaluated once over the whole fixed grid, slab
by slab, and only the range of moving positions each block of fixed voxels maps to is kept. A
structure's region is then the blocks whose range meets its box: every fixed voxel whose point lands
in the box lies in such a block, so the result is the same as over the whole grid, and each
structure's cost follows its box.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import SimpleITK as sitk

# Fixed voxels per block edge: 8³ keeps the block table small (155 000 blocks for 512²×300) and the
# regions within a few voxels of the structures' true footprints.
BLOCK_VOXELS = 8


class MappedBlocks:
    """The moving (x, y, z) continuous-index range each block of fixed voxels maps to."""

    def __init__(self, labels: sitk.Image, reference: sitk.Image, transform: sitk.Transform):
        """Evaluate ``transform`` (fixed → moving) at every voxel of ``reference``, slab by slab.

        Args:
            labels: the moving label map, whose grid gives the moving indices.
            reference: the fixed grid.
            transform: any 3D fixed → moving transform.
        """
        self.size = tuple(reference.GetSize())  # x, y, z
        nx, ny, nz = self.size
        y_starts = np.arange(0, ny, BLOCK_VOXELS)
        x_starts = np.arange(0, nx, BLOCK_VOXELS)
        to_index = np.linalg.inv(
            np.array(labels.GetDirection()).reshape(3, 3) * np.array(labels.GetSpacing())
        )
        steps = np.array(reference.GetDirection()).reshape(3, 3) * np.array(reference.GetSpacing())
        columns = np.arange(nx)[:, None] * steps[:, 0]  # physical offset of each x index
        rows = np.arange(ny)[:, None] * steps[:, 1]
        lows, highs = [], []
        for z0 in range(0, nz, BLOCK_VOXELS):
            depth = min(BLOCK_VOXELS, nz - z0)
            origin = np.array(reference.TransformIndexToPhysicalPoint((0, 0, z0)))
            field = sitk.TransformToDisplacementField(
                transform,
                sitk.sitkVectorFloat64,
                [nx, ny, depth],
                origin.tolist(),
                reference.GetSpacing(),
                reference.GetDirection(),
            )
            moved = sitk.GetArrayFromImage(field)  # (depth, ny, nx, 3): displacement
            moved += (np.arange(depth)[:, None] * steps[:, 2])[:, None, None, :]
            moved += rows[None, :, None, :]
            moved += columns[None, None, :, :]
            moved += origin - np.array(labels.GetOrigin())
            index = moved @ to_index.T
            low = np.minimum.reduceat(
                np.minimum.reduceat(index.min(axis=0), y_starts, axis=0), x_starts, axis=1
            )
            high = np.maximum.reduceat(
                np.maximum.reduceat(index.max(axis=0), y_starts, axis=0), x_starts, axis=1
            )
            lows.append(low)
            highs.append(high)
        self.lows = np.stack(lows)  # (blocks z, blocks y, blocks x, 3)
        self.highs = np.stack(highs)

    def region(self, lower: np.ndarray, upper: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
        """Numpy (z, y, x) slices of the fixed voxels whose points may land in the moving index box
        [``lower``, ``upper``] (x, y, z); None when none does.

        Args:
            lower: the box's lowest moving continuous index (x, y, z).
            upper: its highest.

        Returns:
            The smallest block-aligned part of the fixed grid holding every such voxel, or None.
        """
        hits = np.all(self.lows <= upper, axis=-1) & np.all(self.highs >= lower, axis=-1)
        if not hits.any():
            return None
        slices = []
        for axis, size in zip(range(3), self.size[::-1]):
            others = tuple(other for other in range(3) if other != axis)
            blocks = np.flatnonzero(hits.any(axis=others))
            slices.append(
                slice(int(blocks[0]) * BLOCK_VOXELS, min((int(blocks[-1]) + 1) * BLOCK_VOXELS, size))
            )
        return tuple(slices)
