"""Small CT-like DICOM series written slice by slice, with the tags a series reader groups and sorts by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

SERIES_UID = "1.2.826.0.1.3680043.2.1125.7"


def write_series(
    folder: Path, positions, series_uid: str = SERIES_UID, size: int = 24, prefix: str = "slice"
) -> list[Path]:
    """One CT-like slice file per z position (mm); slice i holds the value 100 * i + 1 inside a body."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    yy, xx = np.mgrid[:size, :size]
    body = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    paths = []
    for index, z in enumerate(positions):
        values = np.where(body, 100 * index + 1, -1000).astype(np.int16)[None]
        image = sitk.GetImageFromArray(values)
        for tag, text in {
            "0020|000e": series_uid,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0008|0060": "CT",
            "0020|0032": f"-20\\-20\\{z:g}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(index + 1),
            "0008|0018": f"{series_uid}.{index + 1}",
            "0028|0030": "1.5\\1.5",
        }.items():
            image.SetMetaData(tag, text)
        path = folder / f"{prefix}_{index:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(image)
        paths.append(path)
    return paths
