"""NaN and Inf voxels of a float scan: no data, never 0 HU.

A float CT may mark voxels without data as NaN (a resampled or stitched scan). SimpleITK's NIfTI
reader silently turns NaN and Inf into 0, which is water: those voxels would then be registered,
resampled and marked valid as real tissue. So for a float NIfTI file the stored values are looked
at again (only when the .nii.gz CRC-32 check could not vouch that the voxels are the stored bytes,
and the image SimpleITK returned has a voxel of exactly 0, which every replaced voxel is) and the
non-finite ones are put back as NaN; the background analysis then treats every
non-finite voxel as padding (fill value in the output, validity mask 0), and the reader adds a note
with their count.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import gzip
from typing import Optional

import numpy as np
import SimpleITK as sitk

# Stored voxels are decoded this many bytes at a time, so a .nii.gz never needs a second full copy.
_CHUNK_BYTES = 1 << 24


def restore_nifti_nonfinite(image: sitk.Image, path: str, float_voxels) -> sitk.Image:
    """``image`` with NaN wherever the NIfTI file stores NaN or Inf (SimpleITK read those as 0).

    Args:
        image: what SimpleITK read from ``path``.
        path: the NIfTI file.
        float_voxels: ``FileFacts.float_voxels`` (dtype, offset, byte count, compressed) or None.

    Returns:
        ``image`` itself when nothing was replaced, else a copy with the non-finite voxels as NaN.
    """
    if float_voxels is None or image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return image
    values = sitk.GetArrayViewFromImage(image)
    if values.size * np.dtype(float_voxels[0]).itemsize != float_voxels[2] or not (values == 0).any():
        return image
    positions = _stored_nonfinite(path, *float_voxels)
    if positions is None or positions.size == 0:
        return image
    restored = sitk.GetArrayFromImage(image)
    restored.reshape(-1)[positions] = np.nan
    result = sitk.GetImageFromArray(restored)
    result.CopyInformation(image)
    return result


def nonfinite_note(image: sitk.Image) -> Optional[str]:
    """A note with the count of NaN/Inf voxels of a float image, or None when there are none."""
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return None
    values = sitk.GetArrayViewFromImage(image)
    count = int(values.size - np.count_nonzero(np.isfinite(values)))
    if count == 0:
        return None
    share = 100.0 * count / values.size
    return (
        f"{count:,} voxels ({share:.1f}%) are NaN/Inf: read as no data (fill value in the output, "
        "validity mask 0), not as 0 HU"
    )


def _stored_nonfinite(path: str, dtype: np.dtype, offset: int, data_bytes: int, compressed: bool):
    """Flat indices of the non-finite stored voxels, read chunk by chunk; None if unreadable."""
    opener = gzip.open if compressed else open
    item = dtype.itemsize
    found, index = [], 0
    try:
        with opener(path, "rb") as handle:
            handle.seek(offset)
            remaining = data_bytes
            while remaining > 0:
                chunk = handle.read(min(_CHUNK_BYTES - _CHUNK_BYTES % item, remaining))
                if not chunk:
                    return None
                values = np.frombuffer(chunk[: len(chunk) - len(chunk) % item], dtype=dtype)
                bad = np.flatnonzero(~np.isfinite(values))
                if bad.size:
                    found.append(bad + index)
                index += values.size
                remaining -= len(chunk)
    except (OSError, EOFError):
        return None
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)
