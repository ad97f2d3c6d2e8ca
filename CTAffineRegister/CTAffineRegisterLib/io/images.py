"""Reading CT inputs (files and DICOM series folders) and writing outputs atomically.

Pure module: SimpleITK, numpy and the standard library. Every failure is an
``InputError`` naming the file and the problem, so callers never show a traceback from
deep inside SimpleITK. What the file's header hides from SimpleITK (truncation, negative
spacing) is checked in ``io.file_integrity``; DICOM folders are read by ``io.dicom``.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError, OutputExistsError
from .dicom import read_dicom_folder
from .file_integrity import (
    check_file,
    damage_behind_read_failure,
    reason_from_reader_error,
    special_file_reason,
    verify_voxels,
)
from .itk_messages import native_stderr_captured, notes_from_reader_output
from .nonfinite import nonfinite_note, restore_nifti_nonfinite
from .volume_writers import format_of, write_volume

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")

# DICOM tags kept from a series: they decide how padding is detected.
TAG_PIXEL_PADDING_VALUE = "0028|0120"
TAG_PIXEL_PADDING_RANGE_LIMIT = "0028|0121"
TAG_RESCALE_INTERCEPT = "0028|1052"
TAG_RESCALE_SLOPE = "0028|1053"
TAG_PIXEL_REPRESENTATION = "0028|0103"
TAG_BITS_ALLOCATED = "0028|0100"
TAG_RECONSTRUCTION_DIAMETER = "0018|1100"
TAG_SERIES_DESCRIPTION = "0008|103e"

# Reader warnings that a note of our own already explains better (kept out of the notes).
EXPLAINED_READER_WARNINGS = ("Non uniform sampling or missing slices", "No Series were found")


@dataclass
class DicomPadding:
    """Pixel Padding Value (and Range Limit) from DICOM, already converted to HU.

    Attributes:
        value_hu: the Pixel Padding Value, in HU.
        range_limit_hu: the Pixel Padding Range Limit in HU, or None.
    """

    value_hu: float
    range_limit_hu: Optional[float] = None

    def hu_range(self) -> tuple[float, float]:
        """The padding values, low to high (one value without a range limit).

        Returns:
            (low, high) in HU.
        """
        if self.range_limit_hu is None:
            return (self.value_hu, self.value_hu)
        return (min(self.value_hu, self.range_limit_hu), max(self.value_hu, self.range_limit_hu))


@dataclass
class LoadedImage:
    """A 3D scalar image in HU with what its file told us about padding, and notes for the user.

    ``notes`` say what the user should know about how the scan was read (several series in the
    folder, a series taken from a sub-folder, slice gaps bridged, a negative spacing read as a flip,
    reader warnings). ``slice_problem`` is set when a DICOM series has missing or uneven slices
    (only ever returned when ``allow_slice_gaps`` was given).

    Attributes:
        image: the 3D scalar image, in HU.
        path: the path it was read from.
        name: a short name for messages and output stems.
        dicom_padding: the series' Pixel Padding Value, or None.
        reconstruction_diameter_mm: the DICOM Reconstruction Diameter, or None.
        notes: what the user should know about the read.
        slice_problem: missing or uneven slices that were bridged, or None.
    """

    image: sitk.Image
    path: str
    name: str
    dicom_padding: Optional[DicomPadding] = None
    reconstruction_diameter_mm: Optional[float] = None
    notes: list[str] = field(default_factory=list)
    slice_problem: Optional[str] = None

    @property
    def note(self) -> Optional[str]:
        """All notes in one line (the reports' ``note``), or None."""
        return "; ".join(self.notes) if self.notes else None


def output_stem(path: str) -> str:
    """The name outputs are derived from: file name without image suffix, or the DICOM folder's name.

    Args:
        path: an input's path.

    Returns:
        The stem.
    """
    base = os.path.basename(os.path.normpath(str(path)))
    lower = base.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


def read_image(
    path: str, *, allow_slice_gaps: bool = False, capture_itk_warnings: bool = False
) -> LoadedImage:
    """Read a 3D CT from a file SimpleITK understands or from a DICOM series folder.

    ``allow_slice_gaps``: a DICOM series with missing, doubled or unevenly spaced slices is refused
    (``InputError``) unless this is True; then its slices are put at their true positions on an even
    grid and the gap is filled by interpolation, with a note. ``capture_itk_warnings``: catch what
    ITK/GDCM print on stderr during the read and turn it into notes; for command-line processes
    only, since it redirects the process's file descriptor 2 for the duration (never inside Slicer).

    Args:
        path: an image file (NIfTI, NRRD, MetaImage, DICOM file...) or a DICOM series folder.
        allow_slice_gaps: read a series with missing or uneven slices onto an even grid.
        capture_itk_warnings: turn ITK's stderr output during the read into notes (CLI only).

    Returns:
        A ``LoadedImage``: the image in HU, the DICOM padding, notes and the file's name.

    Raises:
        InputError: the file or folder cannot be read as a 3D scan; the message names it and says why.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"read_image: path must be a file or folder path (str or os.PathLike), not {type(path).__name__}"
        )
    path = os.fspath(path)
    is_folder = _existing_kind(path)
    with native_stderr_captured(capture_itk_warnings) as captured:
        loaded = _read_dicom(path, allow_slice_gaps) if is_folder else _read_file(path)
    loaded.notes.extend(notes_from_reader_output(captured.text, EXPLAINED_READER_WARNINGS))
    _check_usable(loaded.image, path)
    nonfinite = nonfinite_note(loaded.image)
    if nonfinite is not None:
        loaded.notes.append(nonfinite)
    return loaded


def _existing_kind(path: str) -> bool:
    """True for a folder, False for a file; refuse what is absent or cannot be opened, saying which."""
    try:
        os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "no such file or folder") from None
    except NotADirectoryError:
        raise InputError(path, "no such file or folder (a part of the path is a file)") from None
    except PermissionError:
        raise InputError(path, "permission denied: a folder on the path cannot be entered") from None
    except OSError as error:
        raise InputError(path, f"cannot be reached ({error.strerror or error})") from None
    special = special_file_reason(path)
    if special is not None:
        raise InputError(path, special)
    if os.path.isdir(path):
        try:
            os.listdir(path)
        except PermissionError:
            raise InputError(path, "permission denied: the folder cannot be listed") from None
        return True
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise InputError(path, "permission denied: the file cannot be opened for reading") from None
    except OSError as error:
        raise InputError(path, f"cannot be opened ({error.strerror or error})") from None
    return False


def _read_file(path: str) -> LoadedImage:
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty")
    facts = check_file(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
        image = reader.Execute()
    except RuntimeError as error:
        raise InputError(path, damage_behind_read_failure(path) or _describe_read_error(error)) from None
    if not verify_voxels(path, facts, image):  # identical to the stored bytes: no NaN was read as 0
        image = restore_nifti_nonfinite(image, path, facts.float_voxels)
    tags = {key: reader.GetMetaData(key) for key in reader.GetMetaDataKeys()}
    return _loaded(image, tags, path, list(facts.notes))


def _read_dicom(path: str, allow_slice_gaps: bool) -> LoadedImage:
    series = read_dicom_folder(path, allow_slice_gaps)
    loaded = _loaded(series.image, series.tags, path, series.notes)
    loaded.slice_problem = series.slice_problem
    return loaded


def _loaded(image: sitk.Image, tags: dict[str, str], path: str, notes: list[str]) -> LoadedImage:
    return LoadedImage(
        image=_to_3d_scalar(image, path),
        path=path,
        name=output_stem(path),
        dicom_padding=_padding_from_tags(tags),
        reconstruction_diameter_mm=_float_tag(tags, TAG_RECONSTRUCTION_DIAMETER),
        notes=notes,
    )


def _to_3d_scalar(image: sitk.Image, path: str) -> sitk.Image:
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, f"has {image.GetNumberOfComponentsPerPixel()} components per voxel, not a CT")
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise InputError(path, f"is {image.GetDimension()}D; a 3D volume is needed")
    return image


def _check_usable(image: sitk.Image, path: str) -> None:
    if min(image.GetSize()) < 1 or image.GetNumberOfPixels() == 0:
        raise InputError(path, "image is empty")
    pixel_id = image.GetPixelID()
    if pixel_id in (sitk.sitkFloat32, sitk.sitkFloat64):
        values = sitk.GetArrayViewFromImage(image)
        finite = np.isfinite(values)
        if not finite.any():
            raise InputError(path, "holds no finite values (all NaN/Inf)")
    if pixel_id in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        raise InputError(path, "complex-valued image, not a CT")


def _describe_read_error(error: Exception) -> str:
    """SimpleITK's exception text turned into what is wrong with the file."""
    text = str(error)
    if "determinant is 0" in text or "Bad direction" in text:
        return (
            "its direction matrix is singular (determinant 0: the axis directions in its header do not "
            "span 3D space), so voxel positions are undefined"
        )
    if "Zero-valued spacing" in text:
        return "its header gives a voxel spacing of 0, so voxel positions are undefined"
    known = reason_from_reader_error(text)
    if known is not None:
        return known
    return f"not a readable image ({_main_message(text)})"


def _main_message(text: str) -> str:
    """The ITK ERROR line's message (without the object address), plus the last line when it says more."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception thrown", "/"))]
    for index, line in enumerate(useful):
        if "ERROR:" in line:
            message = re.sub(r"^.*?ERROR:\s*(\w+\(0x[0-9a-fA-F]+\):\s*)?", "", line)
            if message.endswith(":") and index + 1 < len(useful):
                message = f"{message} {useful[-1]}"
            return message[:200]
    return (useful or lines or ["unknown error"])[-1][:200]


def _padding_from_tags(tags: dict[str, str]) -> Optional[DicomPadding]:
    """Pixel Padding Value is in stored units and may have been read unsigned: convert to signed HU."""
    stored = _float_tag(tags, TAG_PIXEL_PADDING_VALUE)
    if stored is None:
        return None
    slope = _float_tag(tags, TAG_RESCALE_SLOPE) or 1.0
    intercept = _float_tag(tags, TAG_RESCALE_INTERCEPT) or 0.0
    signed = (_float_tag(tags, TAG_PIXEL_REPRESENTATION) or 0.0) == 1.0
    bits = int(_float_tag(tags, TAG_BITS_ALLOCATED) or 16)
    value = _as_signed(stored, bits) if signed else stored
    limit_stored = _float_tag(tags, TAG_PIXEL_PADDING_RANGE_LIMIT)
    limit = None
    if limit_stored is not None:
        limit_value = _as_signed(limit_stored, bits) if signed else limit_stored
        limit = limit_value * slope + intercept
    return DicomPadding(value_hu=value * slope + intercept, range_limit_hu=limit)


def _as_signed(stored: float, bits: int) -> float:
    """A value like 63536 read from a signed 16-bit field means -2000."""
    if bits not in (8, 16, 32):
        bits = 16
    if stored >= 2 ** (bits - 1):
        return stored - 2**bits
    return stored


def _float_tag(tags: dict[str, str], key: str) -> Optional[float]:
    text = tags.get(key)
    if text is None:
        return None
    text = text.strip().split("\\")[0]
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def ensure_writable(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing file unless the user asked for it.

    Args:
        path: the output to write.
        overwrite: the user allows replacing it.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(path)


def _atomic_target(path: str) -> tuple[int, str]:
    """A new hidden file beside ``path``, created with mode 0666 less the umask (0644 under the usual
    022) like any file a program creates; ``tempfile.mkstemp`` would make every output 0600."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    suffix = _suffix_of(base)
    for _ in range(100):
        temporary = os.path.join(directory, f".{base}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"{path}: no free temporary name beside it")


def _suffix_of(base: str) -> str:
    lower = base.lower()
    for suffix in (".nii.gz", ".seg.nrrd") + IMAGE_SUFFIXES + (".tfm", ".h5", ".txt", ".png", ".json"):
        if lower.endswith(suffix):
            return base[len(base) - len(suffix) :]
    return os.path.splitext(base)[1]


def _commit(temporary: str, path: str, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)  # fails if something appeared at path meanwhile
    except FileExistsError:
        os.unlink(temporary)
        raise OutputExistsError(path) from None
    except OSError:
        if os.path.exists(path):
            os.unlink(temporary)
            raise OutputExistsError(path) from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


def write_atomically(path: str, writer, overwrite: bool = False) -> None:
    """Call ``writer(temporary_path)`` then move the result into place, so no half-written file is left.

    Args:
        path: the output.
        writer: writes the content to the path it is given.
        overwrite: replace an existing file.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = str(path)
    ensure_writable(path, overwrite)
    handle, temporary = _atomic_target(path)
    os.close(handle)
    try:
        writer(temporary)
        _commit(temporary, path, overwrite)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_image(image: sitk.Image, path: str, overwrite: bool = False) -> None:
    """Write an image atomically in the format its suffix names: .nii.gz (default for outputs),
    .nii, .nrrd or .mha fast through ``io.volume_writers``; other suffixes through SimpleITK.

    Args:
        image: the image to write.
        path: where; the suffix chooses the format.
        overwrite: replace an existing file.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    image_format = format_of(str(path))
    write_atomically(path, lambda temporary: write_volume(image, temporary, image_format), overwrite)


def write_transform(transform: sitk.Transform, path: str, overwrite: bool = False) -> None:
    """Write a transform atomically, in the format its suffix names (.tfm, .txt, .h5, .mat).

    Args:
        transform: the transform to write.
        path: where.
        overwrite: replace an existing file.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    write_atomically(path, lambda temporary: sitk.WriteTransform(transform, temporary), overwrite)


def write_text(text: str, path: str, overwrite: bool = False) -> None:
    """Write UTF-8 text atomically (reports, CSV, HTML): no half-written file is ever left.

    Args:
        text: the content.
        path: the output.
        overwrite: replace an existing file.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """

    def _write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)

    write_atomically(path, _write, overwrite)
