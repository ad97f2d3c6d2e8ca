"""A picture a person looks at to judge a registration: three planes, checkerboard and colour fusion.

Top row: checkerboard of fixed and registered (edges that continue across tiles mean alignment).
Bottom row: fixed in magenta, registered in green (grey where they agree, colour where they do not).
Pure module: SimpleITK writes the PNG, so no imaging library is needed.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

# Soft-tissue-and-bone window: skin, lungs, organs and bone edges all stay visible.
WINDOW_HU = (-1000.0, 1000.0)
PANEL_PIXELS = 256
CHECKER_TILES = 8
# The cohort page shows each picture this many times smaller (768×512 -> 256×170).
THUMBNAIL_FACTOR = 3


def qc_picture(fixed: sitk.Image, registered: sitk.Image) -> sitk.Image:
    """An RGB 2D image: the three orthogonal planes through the fixed scan's centre.

    Only the three planes are resampled (onto the isotropic grid's middle planes), not the whole
    isotropic volumes: the same pixels for a hundredth of the work on a 512×512×300 scan.

    Args:
        fixed: the fixed scan.
        registered: the moving scan on the fixed grid.

    Returns:
        The RGB picture: a checkerboard row over a colour-fusion row (fixed magenta, registered green).
    """
    size, spacing, origin, direction = _isotropic_grid(fixed)
    checker_row, fusion_row = [], []
    for axis in (0, 1, 2):  # numpy axes: axial, coronal, sagittal planes
        plane_grid = _middle_plane(size, spacing, origin, direction, axis)
        fixed_plane = sitk.Resample(
            fixed, plane_grid, sitk.Transform(), sitk.sitkLinear, WINDOW_HU[0], sitk.sitkFloat32
        )
        registered_plane = sitk.Resample(
            registered, plane_grid, sitk.Transform(), sitk.sitkLinear, WINDOW_HU[0]
        )
        fixed_pixels = _plane(_windowed(fixed_plane), axis)
        registered_pixels = _plane(_windowed(registered_plane), axis)
        checker_row.append(_gray_to_rgb(_checkerboard(fixed_pixels, registered_pixels)))
        fusion_row.append(_fusion(fixed_pixels, registered_pixels))
    picture = np.concatenate([_row(checker_row), _row(fusion_row)], axis=0)
    return sitk.GetImageFromArray(picture, isVector=True)


def write_qc_picture(fixed: sitk.Image, registered: sitk.Image, path: str) -> None:
    """Write the QC picture as PNG (the caller makes it atomic).

    Args:
        fixed: the fixed scan.
        registered: the moving scan on the fixed grid.
        path: the PNG to write.
    """
    sitk.WriteImage(qc_picture(fixed, registered), path, imageIO="PNGImageIO")


def _isotropic_grid(image: sitk.Image):
    """Square pixels, at most PANEL_PIXELS across, so planes are not squashed by slice thickness:
    (size, spacing, origin, direction) of a grid covering the image."""
    extent = [n * s for n, s in zip(image.GetSize(), image.GetSpacing())]
    spacing = max(extent) / PANEL_PIXELS
    size = [max(1, int(round(e / spacing))) for e in extent]
    corner = np.array(image.TransformContinuousIndexToPhysicalPoint([-0.5] * 3))
    half_pixel = np.array(image.GetDirection()).reshape(3, 3) @ np.full(3, spacing / 2.0)
    return size, spacing, corner + half_pixel, image.GetDirection()


def _middle_plane(size, spacing, origin, direction, numpy_axis: int) -> sitk.Image:
    """The isotropic grid's middle plane across ``numpy_axis``, as a one-voxel-thick reference image."""
    axis = 2 - numpy_axis
    plane_size = list(size)
    plane_size[axis] = 1
    offset = [0.0, 0.0, 0.0]
    offset[axis] = (size[axis] // 2) * spacing
    reference = sitk.Image(plane_size, sitk.sitkUInt8)
    reference.SetSpacing([spacing] * 3)
    reference.SetDirection(direction)
    reference.SetOrigin([float(v) for v in origin + np.array(direction).reshape(3, 3) @ np.array(offset)])
    return reference


def _windowed(image: sitk.Image) -> np.ndarray:
    """Clipped to the window in the image's own type first: a float64 value such as 1e300 (a fill)
    would overflow float32."""
    low, high = WINDOW_HU
    array = np.clip(sitk.GetArrayViewFromImage(image), low, high).astype(np.float32)
    return (np.clip((array - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _plane(array: np.ndarray, axis: int) -> np.ndarray:
    """The one-voxel-thick plane as 2D; coronal and sagittal flipped so the head is up."""
    plane = np.take(array, 0, axis=axis)
    return plane if axis == 0 else plane[::-1, :]


def _checkerboard(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    tile = max(1, max(first.shape) // CHECKER_TILES)
    rows, columns = np.indices(first.shape)
    use_first = ((rows // tile) + (columns // tile)) % 2 == 0
    return np.where(use_first, first, second)


def _fusion(fixed: np.ndarray, registered: np.ndarray) -> np.ndarray:
    return np.stack([fixed, registered, fixed], axis=-1)


def _gray_to_rgb(plane: np.ndarray) -> np.ndarray:
    return np.stack([plane] * 3, axis=-1)


def _row(panels: list[np.ndarray]) -> np.ndarray:
    """Panels side by side, each centred on a square canvas."""
    canvases = []
    for panel in panels:
        canvas = np.zeros((PANEL_PIXELS, PANEL_PIXELS, 3), dtype=np.uint8)
        height, width = min(panel.shape[0], PANEL_PIXELS), min(panel.shape[1], PANEL_PIXELS)
        top, left = (PANEL_PIXELS - height) // 2, (PANEL_PIXELS - width) // 2
        canvas[top : top + height, left : left + width] = panel[:height, :width]
        canvases.append(canvas)
    return np.concatenate(canvases, axis=1)


def thumbnail(picture: sitk.Image, factor: int = THUMBNAIL_FACTOR) -> sitk.Image:
    """The QC picture ``factor`` times smaller (block means), for a cohort page of hundreds of rows.

    Args:
        picture: the QC picture.
        factor: how many times smaller.

    Returns:
        The smaller picture.
    """
    array = sitk.GetArrayViewFromImage(picture)
    height, width = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = array[:height, :width].reshape(height // factor, factor, width // factor, factor, -1)
    small = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)
    return sitk.GetImageFromArray(small, isVector=True)
