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
    """An RGB 2D image: the three orthogonal planes through the fixed scan's centre."""
    fixed_iso = _isotropic(fixed)
    registered_iso = sitk.Resample(registered, fixed_iso, sitk.Transform(), sitk.sitkLinear, WINDOW_HU[0])
    fixed_array = _windowed(fixed_iso)
    registered_array = _windowed(registered_iso)
    checker_row, fusion_row = [], []
    for axis in (0, 1, 2):  # numpy axes: axial, coronal, sagittal planes
        fixed_plane = _plane(fixed_array, axis)
        registered_plane = _plane(registered_array, axis)
        checker_row.append(_gray_to_rgb(_checkerboard(fixed_plane, registered_plane)))
        fusion_row.append(_fusion(fixed_plane, registered_plane))
    picture = np.concatenate([_row(checker_row), _row(fusion_row)], axis=0)
    return sitk.GetImageFromArray(picture, isVector=True)


def write_qc_picture(fixed: sitk.Image, registered: sitk.Image, path: str) -> None:
    """Write the QC picture as PNG (the caller makes it atomic)."""
    sitk.WriteImage(qc_picture(fixed, registered), path, imageIO="PNGImageIO")


def _isotropic(image: sitk.Image) -> sitk.Image:
    """Square pixels, at most PANEL_PIXELS across, so planes are not squashed by slice thickness."""
    extent = [n * s for n, s in zip(image.GetSize(), image.GetSpacing())]
    spacing = max(extent) / PANEL_PIXELS
    size = [max(1, int(round(e / spacing))) for e in extent]
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing([spacing] * 3)
    reference.SetDirection(image.GetDirection())
    corner = np.array(image.TransformContinuousIndexToPhysicalPoint([-0.5] * 3))
    half_pixel = np.array(image.GetDirection()).reshape(3, 3) @ np.full(3, spacing / 2.0)
    reference.SetOrigin([float(v) for v in corner + half_pixel])
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, WINDOW_HU[0], sitk.sitkFloat32)


def _windowed(image: sitk.Image) -> np.ndarray:
    array = sitk.GetArrayViewFromImage(image).astype(np.float32)
    low, high = WINDOW_HU
    return (np.clip((array - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _plane(array: np.ndarray, axis: int) -> np.ndarray:
    """Middle plane; coronal and sagittal flipped so the head is up."""
    plane = np.take(array, array.shape[axis] // 2, axis=axis)
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
    """The QC picture ``factor`` times smaller (block means), for a cohort page of hundreds of rows."""
    array = sitk.GetArrayViewFromImage(picture)
    height, width = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    blocks = array[:height, :width].reshape(height // factor, factor, width // factor, factor, -1)
    small = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)
    return sitk.GetImageFromArray(small, isVector=True)
