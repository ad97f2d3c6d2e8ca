"""One CT series from a DICOM folder: which series, and whether its slices lie where the grid says.

SimpleITK's series reader stacks the files it is given at their mean distance. A missing slice
therefore stretches the whole scan (5.4 mm spacing for a 5.0 mm series with a 15 mm gap), and a
damaged file is left out of the series without a word, apart from a raw ITK warning. Here the
slice positions (Image Position Patient along the slice normal) are checked against an even grid:
a series with missing, doubled or unevenly spaced slices is refused unless the caller allows it,
and then the slices are put at their true positions on an even grid at the usual slice step, the
slices in a gap interpolated linearly from their neighbours.

A folder with several series gives the one with the most slices; two tied for the most (two
reconstruction kernels of one exam) are refused and listed. A folder with no series of its own is
searched below (patient/study/series trees): one series there is used and named; several are
listed, and the user passes the one meant.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

TAG_IMAGE_POSITION = "0020|0032"
# A slice further than this share of the slice step from the even grid counts as out of place.
# Positions written with two decimals (0.625 mm series) stay well inside it; a missing slice is 100%.
SLICE_POSITION_TOLERANCE = 0.1
MIN_SLICE_POSITION_TOLERANCE_MM = 0.01
# Searching below a folder stops this deep and after this many folders (a user passing "/" waits
# seconds, not hours).
MAX_SEARCH_DEPTH = 6
MAX_FOLDERS_SEARCHED = 2000
# Files looked at per folder for the DICOM preamble before asking GDCM to scan that folder.
MAX_FILES_SNIFFED = 20
MAX_LISTED = 5
# (7FE0,0010) Pixel Data, little endian; a header longer than this is not looked through.
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
MAX_DICOM_HEADER_BYTES = 1 << 20


@dataclass
class DicomRead:
    """The series as an image, its first slice's tags, notes for the user, and any slice-spacing problem."""

    image: sitk.Image
    tags: dict[str, str]
    notes: list[str] = field(default_factory=list)
    slice_problem: Optional[str] = None


def read_dicom_folder(path: str, allow_slice_gaps: bool = False) -> DicomRead:
    """Read the folder's series (the one with most slices when there are several, ``InputError`` for a
    tie); see the module doc.

    Args:
        path: the folder.
        allow_slice_gaps: put uneven slices on an even grid instead of refusing them.

    Returns:
        The ``DicomRead``: image, tags and notes.

    Raises:
        InputError: no series, a tie between series of the same size, or one that cannot be read (slice
            gaps without ``allow_slice_gaps``).
    """
    folder, series_ids, notes = _series_folder(path)
    files_by_series = {sid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder, sid) for sid in series_ids}
    _refuse_a_tie(path, files_by_series)
    chosen = max(series_ids, key=lambda sid: (len(files_by_series[sid]), sid))
    if len(series_ids) > 1:
        notes.append(
            f"folder holds {len(series_ids)} DICOM series; used {chosen} "
            f"({len(files_by_series[chosen])} files, the most slices)"
        )
    # GDCM leaves out a file it cannot parse (SimpleITK 2.5), or reads a slice whose pixel data are
    # cut short with the missing part as it comes (2.3): both are named, and left out.
    files = [name for name in files_by_series[chosen] if not _pixel_data_cut_short(name)]
    damaged = _unparsable_files(folder, files_by_series)
    damaged += [os.path.basename(name) for name in files_by_series[chosen] if name not in files]
    if not files:
        raise InputError(path, f"every file of the DICOM series is cut short: {_listing(sorted(damaged))}")
    damaged_note = _damaged_files_note(sorted(damaged))
    notes.extend(damaged_note)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InputError(path, f"DICOM series cannot be read ({_last_line(error)})") from None
    tags = {key: reader.GetMetaData(0, key) for key in reader.GetMetaDataKeys(0)}

    offsets = _slice_offsets(reader, image, len(files))
    layout = None if offsets is None else SliceLayout.of(offsets)
    problem = None if layout is None else layout.problem()
    if problem is not None:
        if not allow_slice_gaps:
            raise InputError(
                path,
                f"DICOM series has {problem}; registering it as read would stretch the scan. "
                "Use --allow-slice-gaps to read it with each slice at its true position "
                "(slices in a gap interpolated)" + "".join(f"; {note}" for note in damaged_note),
            )
        image, interpolated = layout.on_even_grid(image)
        notes.append(
            f"DICOM series has {problem}; slices placed at their true positions on an even "
            f"{layout.step:.4g} mm grid ({interpolated} of {image.GetSize()[2]} slices interpolated)"
        )
    return DicomRead(image=image, tags=tags, notes=notes, slice_problem=problem)


# --- which folder, which series -----------------------------------------------------------------


def _refuse_a_tie(path: str, files_by_series: dict[str, tuple[str, ...]]) -> None:
    """Two series with the most slices (two reconstruction kernels of one exam, say): the user picks.

    Taking the one whose UID sorts last would register the soft-tissue or the bone kernel by chance.
    """
    most = max(len(files) for files in files_by_series.values())
    tied = sorted(sid for sid, files in files_by_series.items() if len(files) == most)
    if len(tied) < 2:
        return
    described = [f"{sid}{_description(files_by_series[sid][0])}" for sid in tied]
    raise InputError(
        path,
        f"folder holds {len(files_by_series)} DICOM series and {len(tied)} of them have the most slices "
        f"({most} each): {_listing(described)}; put the series to use in a folder of its own",
    )


def _description(first_file: str) -> str:
    """' (Series Description)' from a series' first file, or '' when it has none."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(first_file)
    try:
        reader.ReadImageInformation()
        text = reader.GetMetaData("0008|103e").strip() if reader.HasMetaDataKey("0008|103e") else ""
    except RuntimeError:
        return ""
    return f" ({text})" if text else ""


def _series_folder(path: str) -> tuple[str, tuple[str, ...], list[str]]:
    """The folder to read, its series IDs and a note when it is not the folder given."""
    series_ids = _series_ids(path, path)
    if series_ids:
        return path, series_ids, []
    found, searched_all = _series_below(path)
    if not found:
        where = (
            "nor do its sub-folders" if searched_all else f"nor do the first {MAX_FOLDERS_SEARCHED} below it"
        )
        raise InputError(path, f"folder holds no DICOM series ({where})")
    if len(found) > 1:
        listed = _listing([f"{os.path.relpath(folder, path)} ({count} files)" for folder, _, count in found])
        raise InputError(
            path,
            f"folder holds no DICOM series itself, but {len(found)} of its sub-folders do: {listed}; "
            "pass the series folder to use",
        )
    folder, series_ids, _ = found[0]
    below = os.path.relpath(folder, path)
    note = f"no DICOM files in the folder itself; used the series in its sub-folder {below}"
    return folder, series_ids, [note]


def _series_below(root: str) -> tuple[list[tuple[str, tuple[str, ...], int]], bool]:
    """Sub-folders holding DICOM series: (folder, series IDs, file count); and whether the search finished."""
    found, visited = [], 0
    root_depth = os.path.normpath(root).count(os.sep)
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        if os.path.normpath(folder).count(os.sep) - root_depth >= MAX_SEARCH_DEPTH:
            subfolders[:] = []
        if folder != root:  # the budget is the folders below it, as the message says
            visited += 1
        if visited > MAX_FOLDERS_SEARCHED:
            return found, False
        if folder == root or not any(
            _looks_like_dicom(os.path.join(folder, name)) for name in files[:MAX_FILES_SNIFFED]
        ):
            continue
        series_ids = _series_ids(folder, root)
        if series_ids:
            found.append((folder, series_ids, len(files)))
    return found, True


def _series_ids(folder: str, path: str) -> tuple[str, ...]:
    try:
        return tuple(sitk.ImageSeriesReader.GetGDCMSeriesIDs(folder))
    except RuntimeError as error:
        raise InputError(path, f"cannot scan folder for DICOM ({_last_line(error)})") from None


def _unparsable_files(folder: str, files_by_series: dict[str, tuple[str, ...]]) -> list[str]:
    """Files that start like DICOM but that GDCM put in no series and cannot parse: cut short or damaged."""
    in_series = {os.path.normpath(name) for files in files_by_series.values() for name in files}
    damaged = []
    for name in sorted(os.listdir(folder)):
        candidate = os.path.join(folder, name)
        if name.upper() == "DICOMDIR" or os.path.normpath(candidate) in in_series:
            continue
        if os.path.isfile(candidate) and _looks_like_dicom(candidate) and not _parses(candidate):
            damaged.append(name)
    return damaged


def _damaged_files_note(damaged: list[str]) -> list[str]:
    if not damaged:
        return []
    return [
        f"{len(damaged)} file(s) of the folder start like DICOM but cannot be read (truncated or damaged) "
        f"and were left out: {_listing(damaged)}"
    ]


def _pixel_data_cut_short(path: str) -> bool:
    """Whether the file ends before the Pixel Data element's own length says it should.

    Only the header is read (the element is looked for in the first 64 KB, then up to 1 MB, also when
    its length lies beyond the first 64 KB).
    Encapsulated (compressed) pixel data have no length here and are left to the reader.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
        at = head.find(PIXEL_DATA_TAG, 128)
        if (at < 0 or len(head) < at + 12) and size > len(head):  # the element's length may lie beyond
            head += handle.read(MAX_DICOM_HEADER_BYTES - len(head))
            at = head.find(PIXEL_DATA_TAG, 128)
    if at < 0 or len(head) < at + 12:
        return False
    explicit = head[at + 4 : at + 6] in (b"OB", b"OW", b"UN") and head[at + 6 : at + 8] == b"\0\0"
    length_at = at + 8 if explicit else at + 4
    (length,) = struct.unpack_from("<I", head, length_at)
    if length == 0xFFFFFFFF:
        return False
    return size - (length_at + 4) < length


def _listing(items: list[str]) -> str:
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def _parses(path: str) -> bool:
    """Whether any SimpleITK reader can make sense of the file's header (a non-image DICOM object can)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        return "Unable to determine ImageIO reader" not in str(error)
    return True


def _looks_like_dicom(path: str) -> bool:
    """The DICM preamble at byte 128 (every DICOM Part 10 file has it), or a .dcm name."""
    if not os.path.isfile(path):  # a named pipe would block the open below
        return False
    if path.lower().endswith(".dcm"):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


# --- where the slices are -----------------------------------------------------------------------


def _slice_offsets(reader: sitk.ImageSeriesReader, image: sitk.Image, count: int) -> Optional[np.ndarray]:
    """Each slice's distance (mm) from the image origin along its normal; None without positions."""
    if count < 3:
        return None  # two slices always define an even grid
    normal = np.array(image.GetDirection()).reshape(3, 3)[:, 2]
    origin = np.array(image.GetOrigin())
    offsets = []
    for index in range(count):
        if not reader.HasMetaDataKey(index, TAG_IMAGE_POSITION):
            return None
        try:
            position = np.array(
                [float(v) for v in reader.GetMetaData(index, TAG_IMAGE_POSITION).split("\\")[:3]]
            )
        except ValueError:
            return None
        if position.size != 3:
            return None
        offsets.append(float((position - origin) @ normal))
    return np.array(offsets)


@dataclass
class SliceLayout:
    """Slice offsets in file order, where they lie on an even grid of the usual step, and what is off."""

    offsets: np.ndarray  # mm along the normal, in the order of the image's slices
    step: float  # the usual distance between neighbouring slices
    start: float  # where the even grid starts (mm)
    grid_index: np.ndarray  # nearest grid position of each slice, slices sorted by offset
    order: np.ndarray  # the slices sorted by offset

    @classmethod
    def of(cls, offsets: np.ndarray) -> Optional[SliceLayout]:
        """The even grid that fits the slices best: grid positions from the median step, then the step
        and start fitted to them (positions written as 0.62, 1.25, 1.88 ... make a 0.625 mm grid).

        Args:
            offsets: the slices' positions along the slice normal (mm), in any order.

        Returns:
            The layout, or None.
        """
        order = np.argsort(offsets, kind="stable")
        ordered = offsets[order]
        steps = np.diff(ordered)
        distinct = steps[steps > MIN_SLICE_POSITION_TOLERANCE_MM]
        if distinct.size == 0:
            return None  # every slice at one position: nothing SimpleITK could stack either
        step, start = float(np.median(distinct)), float(ordered[0])
        grid_index = np.rint((ordered - start) / step).astype(np.int64)
        step, start = (float(value) for value in np.polyfit(grid_index, ordered, 1))
        grid_index = np.rint((ordered - start) / step).astype(np.int64)
        return cls(offsets=offsets, step=step, start=start, grid_index=grid_index, order=order)

    def problem(self) -> Optional[str]:
        """What is wrong with the slice positions, in words; None when they lie on the even grid."""
        ordered = self.offsets[self.order]
        tolerance = max(SLICE_POSITION_TOLERANCE * self.step, MIN_SLICE_POSITION_TOLERANCE_MM)
        off_grid = np.abs(ordered - self.start - self.grid_index * self.step) > tolerance
        jumps = np.diff(self.grid_index)
        doubled = int(np.count_nonzero(jumps == 0))
        missing = int(np.sum(np.maximum(jumps - 1, 0)))
        if off_grid.any():
            steps = np.diff(ordered)
            return (
                f"unevenly spaced slices (distances from {steps.min():.4g} to {steps.max():.4g} mm, "
                f"usually {self.step:.4g} mm)"
            )
        if missing == 0 and doubled == 0:
            return None
        parts = []
        if missing:
            widest = int(np.argmax(jumps))
            start = ordered[widest]
            parts.append(
                f"{missing} missing slice(s) (widest gap {jumps[widest] * self.step:.4g} mm, after the slice "
                f"{start - ordered[0]:.4g} mm from the first; slices otherwise {self.step:.4g} mm apart)"
            )
        if doubled:
            parts.append(f"{doubled} slice(s) at the position of another")
        return " and ".join(parts)

    def on_even_grid(self, image: sitk.Image) -> tuple[sitk.Image, int]:
        """The slices on an even grid of ``step`` from the first slice, never beyond the last one;
        grid positions between two slices are interpolated linearly. Also returns how many were.

        Args:
            image: the series as read, slice by slice.

        Returns:
            (image on the even grid, number of grid slices interpolated).
        """
        array = sitk.GetArrayViewFromImage(image)
        ordered = self.offsets[self.order]
        first_of_doubles = np.concatenate([[True], np.diff(ordered) > MIN_SLICE_POSITION_TOLERANCE_MM])
        positions, slices = ordered[first_of_doubles], self.order[first_of_doubles]
        count = int(np.floor((positions[-1] - positions[0]) / self.step + 0.01)) + 1
        result = np.empty((count,) + array.shape[1:], dtype=array.dtype)
        interpolated = 0
        for target in range(count):
            where = positions[0] + target * self.step
            upper = int(np.clip(np.searchsorted(positions, where), 1, len(positions) - 1))
            below, above = array[slices[upper - 1]], array[slices[upper]]
            weight = float(
                np.clip((where - positions[upper - 1]) / (positions[upper] - positions[upper - 1]), 0, 1)
            )
            if weight < 1e-6 or weight > 1 - 1e-6:
                result[target] = below if weight < 0.5 else above
                continue
            interpolated += 1
            mixed = (1 - weight) * below.astype(np.float64) + weight * above
            result[target] = np.rint(mixed) if array.dtype.kind in "iu" else mixed
        even = sitk.GetImageFromArray(result)
        normal = np.array(image.GetDirection()).reshape(3, 3)[:, 2]
        even.SetOrigin(tuple(float(v) for v in np.array(image.GetOrigin()) + positions[0] * normal))
        even.SetSpacing(image.GetSpacing()[:2] + (self.step,))
        even.SetDirection(image.GetDirection())
        return even, interpolated


def _last_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines or ["unknown error"])[-1][:200]
