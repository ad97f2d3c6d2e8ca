"""What an image file's own header promises, checked around SimpleITK's read.

SimpleITK reads a truncated NIfTI (.nii or .nii.gz) without a word: the missing voxels come back
as 0, and a scan cut at 95% registers "fine". A MetaImage cut short fails with "No such file or
directory", and a negative spacing in a header becomes a silent flip of that axis. The header
says how many bytes of voxel data follow and which spacing was written, so reading its first few
hundred bytes tells what SimpleITK does not. A .nii.gz is checked in three steps, each only as
expensive as it must be: the gzip trailer's byte count against the header's (a few bytes read);
then, only when they disagree, the whole gzip stream (end-of-stream marker and CRC-32); and after
SimpleITK's read, the CRC-32 of the voxels it returned against the trailer's (0.04-0.08 s for a
512x512x300 int16 scan), which catches damage that keeps the length.

Pure module: numpy, SimpleITK and the standard library.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import struct
import sys
import zlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
# NIfTI datatype codes SimpleITK reads into a buffer of the same bytes.
NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8"}
# MetaImage element sizes in bytes (MetaIO's MET_ValueTypeSize).
METAIMAGE_ELEMENT_BYTES = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG": 4,
    "MET_ULONG": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}
# Text headers (MetaImage, NRRD) end well within this; a longer "header" is not one.
MAX_TEXT_HEADER_BYTES = 65536
# Bytes before the voxels of a .nii.gz decompressed to check its CRC; more (huge extensions) is skipped.
MAX_NIFTI_PREFIX_BYTES = 1 << 20
AXES = "xyz"


@dataclass
class FileFacts:
    """What the header told: notes for the user, and what is needed to check the voxels after reading."""

    notes: list[str] = field(default_factory=list)
    stream_crc: Optional[int] = None  # CRC-32 from a .nii.gz trailer whose byte count matched the header
    prefix_crc: Optional[int] = None  # CRC-32 of the bytes before the voxels in that stream
    voxel_dtype: Optional[np.dtype] = None  # the voxels' type as stored, when SimpleITK keeps it as is
    voxel_bytes: int = 0
    # Where a NIfTI file's float voxels lie, (dtype with byte order, offset, bytes, gzip-compressed):
    # SimpleITK's NIfTI reader turns NaN and Inf into 0, so ``nonfinite`` looks at the stored values.
    float_voxels: Optional[tuple[np.dtype, int, int, bool]] = None


def special_file_reason(path: str) -> Optional[str]:
    """Why ``path`` is neither a regular file nor a folder (a named pipe, a device, a socket), or None.

    Opening a named pipe waits for a writer forever, and Python's signal handlers cannot run while
    ``open()`` waits, so Ctrl-C and SIGTERM would be ignored: such paths are refused before any open.
    Raises ``OSError`` from ``os.stat`` (a missing path is the caller's to word).
    """
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode):
        kind = "a character device"
    elif stat.S_ISBLK(mode):
        kind = "a block device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "a special file"
    return f"is {kind}, not a regular file or folder; copy its contents to a file first"


def check_file(path: str) -> FileFacts:
    """Refuse a truncated file (``InputError``); notes on header facts SimpleITK hides.

    Args:
        path: an image file.

    Returns:
        The ``FileFacts`` found in its header (notes, voxel byte count, checksum...).

    Raises:
        InputError: the file is cut short or damaged; names it.
    """
    lower = path.lower()
    if lower.endswith((".nii", ".nii.gz")):
        return _check_nifti(path)
    if lower.endswith((".mha", ".mhd")):
        return _check_metaimage(path)
    if lower.endswith((".nrrd", ".nhdr")):
        return _check_nrrd(path)
    return FileFacts()


def verify_voxels(path: str, facts: FileFacts, image: sitk.Image) -> bool:
    """After SimpleITK's read of a .nii.gz: the voxels it returned must be the ones the CRC-32 vouches for.

    Args:
        path: the file read.
        facts: what ``check_file`` found.
        image: what SimpleITK returned.

    Returns:
        True when they are byte for byte the stored ones (so no NaN was turned into 0 either).

    Raises:
        InputError: the compressed stream is damaged; names the file.
    """
    if facts.stream_crc is None or facts.voxel_dtype is None:
        return False
    array = sitk.GetArrayViewFromImage(image)
    if array.dtype != facts.voxel_dtype or array.nbytes != facts.voxel_bytes or not array.flags.c_contiguous:
        return False  # SimpleITK converted the voxels: the stream check below is the only judge
    if zlib.crc32(array, facts.prefix_crc) == facts.stream_crc:
        return True
    # Either the stream is damaged or our idea of SimpleITK's buffer is wrong (or NaN read as 0):
    # the stream decides.
    _raise_if_stream_damaged(path, facts.voxel_bytes, None)
    return False


def damage_behind_read_failure(path: str) -> Optional[str]:
    """When SimpleITK could not read a gzip-compressed file, a damaged stream is the likely reason.

    Args:
        path: the file SimpleITK could not read.

    Returns:
        The reason, or None when the stream looks sound.
    """
    if not _starts_with(path, GZIP_MAGIC):
        return None
    _, problem = _scan_gzip(path)
    return None if problem is None else f"damaged file: {problem}"


def reason_from_reader_error(text: str) -> Optional[str]:
    """NRRD's own wording for a file cut short or damaged, turned into a reason a user recognises.

    Args:
        text: the reader's error message.

    Returns:
        The reason, or None when the wording is not recognised.
    """
    if "[nrrd]" in text and "data read error" in text:
        return "damaged file: its gzip-compressed voxel data cannot be decompressed"
    match = re.search(r'couldn\'t open "([^"]+)" \(data file', text)
    if match:
        return (
            f"its voxel data file {os.path.basename(match.group(1))} cannot be opened (missing or unreadable)"
        )
    match = re.search(r"expected (\d+) bytes but received (\d+)", text)
    if match:
        expected, received = int(match.group(1)), int(match.group(2))
        return _truncated_reason(received, expected, "NRRD header")
    match = re.search(r"fread got only (\d+) (\d+)-sized things, not (\d+)", text)
    if match:
        got, size, wanted = (int(group) for group in match.groups())
        return _truncated_reason(got * size, wanted * size, "NRRD header")
    return None


# --- NIfTI --------------------------------------------------------------------------------------


@dataclass
class _NiftiHeader:
    byte_order: str  # "<" or ">"
    vox_offset: int
    data_bytes: int
    pixdim: tuple[float, ...]  # spacing of the (up to three) spatial axes, as written
    dtype: Optional[np.dtype]  # None for types SimpleITK converts (RGB, complex, ...)
    scaled: bool  # scl_slope/scl_inter make SimpleITK rescale the voxels


def _check_nifti(path: str) -> FileFacts:
    compressed = _starts_with(path, GZIP_MAGIC)
    try:
        head = _read_start(path, compressed, 540)
    except (EOFError, OSError, zlib.error):
        raise InputError(
            path, "truncated or damaged file: its gzip stream breaks off inside the header"
        ) from None
    if _is_nifti2(head):
        raise InputError(path, "is a NIfTI-2 file, which SimpleITK cannot read; save it as NIfTI-1 or NRRD")
    header = _parse_nifti_header(head)
    if header is None:
        return FileFacts()  # not a single-file NIfTI: SimpleITK says what it is
    notes = _negative_spacing_notes("pixdim", header.pixdim)
    floats = None
    if header.dtype is not None and header.dtype.kind == "f":
        floats = (
            header.dtype.newbyteorder(header.byte_order),
            header.vox_offset,
            header.data_bytes,
            compressed,
        )
    expected_total = header.vox_offset + header.data_bytes
    if not compressed:
        present = os.path.getsize(path) - header.vox_offset
        if present < header.data_bytes:
            raise InputError(path, _truncated_reason(max(present, 0), header.data_bytes, "NIfTI header"))
        return FileFacts(notes, float_voxels=floats)
    stream_crc, stored_size = _gzip_trailer(path)
    if stored_size != expected_total % 2**32:
        # Cut short (the "trailer" is then compressed data) or several gzip members: read it all.
        _raise_if_stream_damaged(path, header.data_bytes, header.vox_offset)
        return FileFacts(notes, float_voxels=floats)
    facts = FileFacts(notes, stream_crc=stream_crc, float_voxels=floats)
    usable = header.dtype is not None and not header.scaled and header.vox_offset <= MAX_NIFTI_PREFIX_BYTES
    if usable and header.byte_order == _native_order():
        prefix = head[: header.vox_offset]
        if len(prefix) < header.vox_offset:
            prefix = _read_start(path, True, header.vox_offset)
        facts.prefix_crc = zlib.crc32(prefix)
        facts.voxel_dtype = header.dtype
        facts.voxel_bytes = header.data_bytes
    return facts


def _parse_nifti_header(head: bytes) -> Optional[_NiftiHeader]:
    """A NIfTI-1 single-file header in either byte order; None if it is not one."""
    if len(head) < 348:
        return None
    for order in "<>":
        size = struct.unpack_from(order + "i", head, 0)[0]
        if size == 348 and head[344:347] == b"n+1":
            dims = struct.unpack_from(order + "8h", head, 40)
            datatype, bitpix = struct.unpack_from(order + "2h", head, 70)
            pixdim = struct.unpack_from(order + "8f", head, 76)
            vox_offset = int(struct.unpack_from(order + "f", head, 108)[0])
            slope, intercept = struct.unpack_from(order + "2f", head, 112)
            return _nifti_header(order, dims, datatype, bitpix, pixdim, vox_offset, slope, intercept)
    return None


def _is_nifti2(head: bytes) -> bool:
    return (
        len(head) >= 8
        and head[4:7] in (b"n+2", b"ni2")
        and 540 in struct.unpack("<i", head[:4]) + struct.unpack(">i", head[:4])
    )


def _nifti_header(
    order, dims, datatype, bitpix, pixdim, vox_offset, slope, intercept
) -> Optional[_NiftiHeader]:
    rank = dims[0]
    if not 1 <= rank <= 7 or bitpix <= 0 or bitpix % 8 or any(n < 1 for n in dims[1 : rank + 1]):
        return None  # a header SimpleITK will refuse or read its own way
    data_bytes = int(np.prod([int(n) for n in dims[1 : rank + 1]], dtype=np.int64)) * (bitpix // 8)
    code = NIFTI_DTYPES.get(datatype)
    dtype = None if code is None else np.dtype(code)
    scaled = not (slope == 0 or (slope == 1 and intercept == 0))  # NaN compares unequal: scaled
    return _NiftiHeader(
        order, max(int(vox_offset), 0), data_bytes, tuple(pixdim[1 : min(rank, 3) + 1]), dtype, scaled
    )


# --- MetaImage ----------------------------------------------------------------------------------


def _check_metaimage(path: str) -> FileFacts:
    fields, header_bytes = _metaimage_fields(path)
    if fields is None:
        return FileFacts()
    notes = _negative_spacing_notes("ElementSpacing", _numbers(fields.get("elementspacing", "")))
    data_name = fields.get("elementdatafile", "").strip()
    sizes = _numbers(fields.get("dimsize", ""))
    element = METAIMAGE_ELEMENT_BYTES.get(fields.get("elementtype", "").strip().upper())
    header_size = (_numbers(fields.get("headersize", "")) or [0.0])[0]
    if data_name.upper() == "LOCAL":
        data_path, offset = path, header_bytes
    elif data_name and "%" not in data_name and " " not in data_name and data_name.upper() != "LIST":
        data_path = os.path.join(os.path.dirname(path), data_name)
        if not os.path.isfile(data_path):
            raise InputError(path, f"its voxel data file {data_name} is missing (looked for {data_path})")
        offset = int(header_size)
    else:
        return FileFacts(notes)  # a list or pattern of slice files: SimpleITK checks those
    if header_size < 0:
        return FileFacts(notes)  # HeaderSize -1: the data are the file's last bytes, whatever its length
    present = os.path.getsize(data_path) - offset
    if fields.get("compresseddata", "").strip().lower() == "true":
        compressed_size = _numbers(fields.get("compresseddatasize", ""))
        if not compressed_size and data_path == path:
            # SimpleITK then prints "Uncompress failed" and returns wrong voxels (a detached file is
            # read whole, so it needs no size).
            raise InputError(
                path,
                "its voxel data are compressed but its header gives no CompressedDataSize, which "
                "SimpleITK needs to decompress them",
            )
        if compressed_size and present < compressed_size[0]:
            reason = _truncated_reason(
                max(present, 0), int(compressed_size[0]), "MetaImage header", "compressed "
            )
            raise InputError(path, reason)
        return FileFacts(notes)
    if element is None or not sizes or any(n < 1 for n in sizes):
        return FileFacts(notes)
    channels = int((_numbers(fields.get("elementnumberofchannels", "1")) or [1])[0])
    expected = int(np.prod([int(n) for n in sizes], dtype=np.int64)) * element * max(channels, 1)
    if present < expected:
        raise InputError(path, _truncated_reason(max(present, 0), expected, "MetaImage header"))
    return FileFacts(notes)


def _metaimage_fields(path: str) -> tuple[Optional[dict[str, str]], int]:
    """``Key = Value`` lines up to ElementDataFile (keys lower-cased) and the header's length in bytes."""
    with open(path, "rb") as handle:
        start = handle.read(MAX_TEXT_HEADER_BYTES)
    fields, position = {}, 0
    while position < len(start):
        end = start.find(b"\n", position)
        if end < 0:
            return None, 0
        line = start[position:end].decode("latin-1").strip()
        position = end + 1
        key, separator, value = line.partition("=")
        if not separator:
            return None, 0
        fields[key.strip().lower()] = value.strip()
        if key.strip().lower() == "elementdatafile":
            return fields, position
    return None, 0


# --- NRRD ---------------------------------------------------------------------------------------


def _check_nrrd(path: str) -> FileFacts:
    """Truncation is NRRD's own error (see ``reason_from_reader_error``); here only the spacing."""
    with open(path, "rb") as handle:
        start = handle.read(MAX_TEXT_HEADER_BYTES)
    header = start.split(b"\n\n", 1)[0].decode("latin-1")
    for line in header.splitlines():
        key, separator, value = line.partition(":")
        if separator and key.strip().lower() == "spacings":
            return FileFacts(_negative_spacing_notes("spacings", _numbers(value)))
    return FileFacts()


# --- shared -------------------------------------------------------------------------------------


def _negative_spacing_notes(field_name: str, spacing: list[float] | tuple[float, ...]) -> list[str]:
    negative = [(AXES[axis], value) for axis, value in enumerate(spacing[:3]) if value < 0]
    if not negative:
        return []
    written = ", ".join(f"{axis} {value:g}" for axis, value in negative)
    axes = " and ".join(axis for axis, _ in negative)
    return [
        f"negative spacing in the header ({field_name} {written}): SimpleITK reads it as a positive spacing "
        f"with the {axes} axis flipped in the direction matrix, so the scan is mirrored along {axes} "
        "compared with a reader that ignores the sign; check its orientation"
    ]


def _raise_if_stream_damaged(path: str, data_bytes: int, vox_offset: Optional[int]) -> None:
    """Decompress the whole stream: missing end-of-stream marker, bad CRC-32 or too few bytes are refused."""
    total, problem = _scan_gzip(path)
    if problem is not None:
        if vox_offset is not None and "end-of-stream" in problem:
            reason = _truncated_reason(max(total - vox_offset, 0), data_bytes, "NIfTI header")
            raise InputError(path, f"{reason}; {problem}")
        raise InputError(path, f"damaged file: {problem}")
    if vox_offset is not None and total - vox_offset < data_bytes:
        raise InputError(path, _truncated_reason(max(total - vox_offset, 0), data_bytes, "NIfTI header"))


def _scan_gzip(path: str) -> tuple[int, Optional[str]]:
    """Bytes the gzip stream decompresses to, and what is wrong with it (None: complete, checks pass).

    zlib checks each member's CRC-32 and length itself; output is taken in bounded pieces, so a
    highly compressed stream never needs its full size in memory.
    """
    total, pending = 0, b""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        with open(path, "rb") as handle:
            while True:
                if not pending:
                    pending = handle.read(1 << 20)
                    if not pending:
                        break
                total += len(decompressor.decompress(pending, 1 << 24))
                pending = decompressor.unconsumed_tail
                if decompressor.eof:
                    pending = decompressor.unused_data.lstrip(b"\0") + pending
                    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    if not pending:  # the member ended with the chunk: another may follow in the file
                        pending = handle.read(1 << 20).lstrip(b"\0")
                        if not pending:
                            return total, None
    except zlib.error as error:
        return total, f"the gzip data do not check out ({error})"
    return total, "the gzip stream ends before its end-of-stream marker"


def _truncated_reason(present: int, expected: int, source: str, what: str = "") -> str:
    share = 100.0 * present / expected if expected else 0.0
    return (
        f"truncated file: it holds {present:,} of the {expected:,} bytes of {what}voxel data its {source} "
        f"promises ({share:.0f}%)"
    )


def _gzip_trailer(path: str) -> tuple[int, int]:
    """CRC-32 and length (mod 2**32) the last gzip member says it decompresses to."""
    with open(path, "rb") as handle:
        handle.seek(-8, os.SEEK_END)
        return struct.unpack("<II", handle.read(8))


def _read_start(path: str, compressed: bool, count: int) -> bytes:
    opener = gzip.open if compressed else open
    with opener(path, "rb") as handle:
        return handle.read(count)


def _starts_with(path: str, magic: bytes) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(magic)) == magic


def _numbers(text: str) -> list[float]:
    values = []
    for word in text.replace(",", " ").split():
        try:
            values.append(float(word))
        except ValueError:
            return []
    return values


def _native_order() -> str:
    return "<" if sys.byteorder == "little" else ">"
