"""Small CT-like DICOM series written slice by slice, with the tags a series reader groups and sorts by."""

from __future__ import annotations

import struct
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


# --- explicit-VR files: a Pixel Padding Value stored as US ----------------------------------------
#
# SimpleITK writes implicit-VR files, and GDCM reads their Pixel Padding Value back signed whenever
# Pixel Representation is 1. Some scanners write it with an explicit VR of US (unsigned) instead:
# GDCM then hands over 63536 where -2000 is meant. These files are written byte by byte so that the
# reader sees exactly that.

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_LONG_VRS = {"OB", "OW", "OF", "SQ", "UT", "UN"}


def _element(group: int, element: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr == "UI" else (b" " if vr in ("CS", "DS", "IS", "LO", "SH") else b"\0")
    head = struct.pack("<HH", group, element) + vr.encode("ascii")
    if vr in _LONG_VRS:
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def write_explicit_vr_slice(
    path: Path,
    pixels: np.ndarray,
    z: float,
    index: int,
    series_uid: str,
    padding_stored: int,
    intercept: float = -1024.0,
    spacing_mm: float = 2.0,
) -> None:
    """One signed 16-bit CT slice whose Pixel Padding Value is written with VR US (``padding_stored``
    as an unsigned number, e.g. 63536 for -2000), explicit VR little endian."""
    rows, columns = pixels.shape
    instance = f"{series_uid}.{index + 1}"
    text = {  # (group, element): (VR, value) in ascending tag order
        (0x0008, 0x0016): ("UI", CT_IMAGE_STORAGE),
        (0x0008, 0x0018): ("UI", instance),
        (0x0008, 0x0060): ("CS", "CT"),
        (0x0018, 0x0050): ("DS", f"{spacing_mm:g}"),
        (0x0020, 0x000D): ("UI", "1.2.826.0.1.3680043.2.1125.1"),
        (0x0020, 0x000E): ("UI", series_uid),
        (0x0020, 0x0013): ("IS", str(index + 1)),
        (0x0020, 0x0032): ("DS", f"0\\0\\{z:g}"),
        (0x0020, 0x0037): ("DS", "1\\0\\0\\0\\1\\0"),
    }
    image = {
        (0x0028, 0x0002): ("US", struct.pack("<H", 1)),
        (0x0028, 0x0004): ("CS", b"MONOCHROME2"),
        (0x0028, 0x0010): ("US", struct.pack("<H", rows)),
        (0x0028, 0x0011): ("US", struct.pack("<H", columns)),
        (0x0028, 0x0030): ("DS", f"{spacing_mm:g}\\{spacing_mm:g}".encode()),
        (0x0028, 0x0100): ("US", struct.pack("<H", 16)),
        (0x0028, 0x0101): ("US", struct.pack("<H", 16)),
        (0x0028, 0x0102): ("US", struct.pack("<H", 15)),
        (0x0028, 0x0103): ("US", struct.pack("<H", 1)),
        (0x0028, 0x0120): ("US", struct.pack("<H", padding_stored)),
        (0x0028, 0x1052): ("DS", f"{intercept:g}".encode()),
        (0x0028, 0x1053): ("DS", b"1"),
    }
    body = b"".join(_element(g, e, vr, value.encode()) for (g, e), (vr, value) in text.items())
    body += b"".join(_element(g, e, vr, value) for (g, e), (vr, value) in image.items())
    body += _element(0x7FE0, 0x0010, "OW", np.ascontiguousarray(pixels, dtype="<i2").tobytes())
    meta = _element(0x0002, 0x0001, "OB", b"\0\1")
    meta += _element(0x0002, 0x0002, "UI", CT_IMAGE_STORAGE.encode())
    meta += _element(0x0002, 0x0003, "UI", instance.encode())
    meta += _element(0x0002, 0x0010, "UI", EXPLICIT_VR_LITTLE_ENDIAN.encode())
    meta += _element(0x0002, 0x0012, "UI", b"1.2.826.0.1.3680043.2.1125.99")
    length = _element(0x0002, 0x0000, "UL", struct.pack("<I", len(meta)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + length + meta + body)


def write_volume(folder: Path, image: sitk.Image, tags: dict, series_uid: str = SERIES_UID) -> list[Path]:
    """An int16 HU volume (axis-aligned) as a CT series, one file per slice, each with ``tags`` added
    (e.g. a Pixel Padding Value "0028|0120" and Range Limit "0028|0121", in stored units = HU here)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    spacing, origin = image.GetSpacing(), image.GetOrigin()
    paths = []
    for index in range(image.GetSize()[2]):
        piece = sitk.Cast(image[:, :, index : index + 1], sitk.sitkInt16)
        z = origin[2] + index * spacing[2]
        for tag, text in {
            "0020|000e": series_uid,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0008|0060": "CT",
            "0020|0032": f"{origin[0]:g}\\{origin[1]:g}\\{z:g}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(index + 1),
            "0008|0018": f"{series_uid}.{index + 1}",
            "0028|0030": f"{spacing[1]:g}\\{spacing[0]:g}",
            "0018|0050": f"{spacing[2]:g}",
            **tags,
        }.items():
            piece.SetMetaData(tag, text)
        path = folder / f"slice_{index:03d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(piece)
        paths.append(path)
    return paths
