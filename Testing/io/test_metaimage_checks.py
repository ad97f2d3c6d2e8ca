"""MetaImage headers as other tools write them (io/file_integrity.py): optional fields left out, a
detached data file with a HeaderSize, slice lists and patterns, several channels; a file cut short is
refused with the exact byte counts, a complete one reads back exactly. Hand-written tiny headers."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.refusals import refusal

from CTAffineRegisterLib.io.images import read_image

VOXELS = (np.arange(4 * 5 * 6).reshape(4, 5, 6) * 7 - 500).astype("<i2")  # z, y, x: 240 bytes


def _header(extra: str = "", data_file: str = "LOCAL", dims: str = "6 5 4") -> bytes:
    return (
        f"ObjectType = Image\nNDims = 3\n{extra}DimSize = {dims}\nElementType = MET_SHORT\n"
        f"ElementDataFile = {data_file}\n"
    ).encode()


def _reads_exactly(path: Path) -> list[str]:
    loaded = read_image(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(loaded.image), VOXELS)
    return loaded.notes


def _truncated(present: int, expected: int, share: int, what: str = "") -> str:
    return (
        f"truncated file: it holds {present} of the {expected} bytes of {what}voxel data its MetaImage "
        f"header promises ({share}%)"
    )


def test_a_header_with_only_the_required_fields_reads(tmp_path):
    path = tmp_path / "minimal.mha"
    path.write_bytes(_header() + VOXELS.tobytes())
    assert _reads_exactly(path) == []


def test_a_detached_file_with_a_header_size_is_checked_after_those_bytes(tmp_path):
    (tmp_path / "scan.raw").write_bytes(b"J" * 100 + VOXELS.tobytes())
    header = tmp_path / "scan.mhd"
    header.write_bytes(_header("HeaderSize = 100\n", "scan.raw"))
    assert _reads_exactly(header) == []
    (tmp_path / "cut.raw").write_bytes(b"J" * 100 + VOXELS.tobytes()[:-10])
    cut = tmp_path / "cut.mhd"
    cut.write_bytes(_header("HeaderSize = 100\n", "cut.raw"))
    assert refusal(cut) == _truncated(230, 240, 96)


def test_header_size_minus_one_takes_the_last_bytes_whatever_comes_before(tmp_path):
    (tmp_path / "scan.raw").write_bytes(b"J" * 77 + VOXELS.tobytes())
    header = tmp_path / "scan.mhd"
    header.write_bytes(_header("HeaderSize = -1\n", "scan.raw"))
    assert _reads_exactly(header) == []


@pytest.mark.parametrize("data_file", ["LIST", "LIST 2D", "slice%d.raw 0 3 1"])
def test_slice_lists_and_patterns_are_left_to_simpleitk_and_read(tmp_path, data_file):
    for z in range(4):
        (tmp_path / f"slice{z}.raw").write_bytes(VOXELS[z].tobytes())
    listing = "".join(f"slice{z}.raw\n" for z in range(4)) if data_file.startswith("LIST") else ""
    header = tmp_path / "slices.mhd"
    header.write_bytes(_header("", data_file) + listing.encode())
    assert _reads_exactly(header) == []


def test_a_slice_list_keeps_the_notes_of_its_header(tmp_path):
    for z in range(4):
        (tmp_path / f"slice{z}.raw").write_bytes(VOXELS[z].tobytes())
    header = tmp_path / "slices.mhd"
    header.write_bytes(
        _header("ElementSpacing = -1 1 1\n", "LIST") + "".join(f"slice{z}.raw\n" for z in range(4)).encode()
    )
    notes = read_image(str(header)).notes
    assert len(notes) == 1 and "ElementSpacing x -1" in notes[0]


def test_two_channels_cut_short_are_counted_with_both_channels(tmp_path):
    both = np.stack([VOXELS, VOXELS + 1], axis=-1).astype("<i2")
    path = tmp_path / "two.mha"
    path.write_bytes(_header("ElementNumberOfChannels = 2\n") + both.tobytes()[:-100])
    assert refusal(path) == _truncated(380, 480, 79)


def test_a_single_slice_cut_short_is_refused(tmp_path):
    path = tmp_path / "one.mha"
    path.write_bytes(_header(dims="6 5 1") + VOXELS[:1].tobytes()[:-4])
    assert refusal(path) == _truncated(56, 60, 93)


def test_compressed_data_cut_short_gives_the_compressed_byte_counts(tmp_path):
    packed = zlib.compress(VOXELS.tobytes())
    fields = f"CompressedData = True\nCompressedDataSize = {len(packed)}\n"
    path = tmp_path / "packed.mha"
    path.write_bytes(_header(fields) + packed)
    assert _reads_exactly(path) == []
    cut = tmp_path / "cut.mha"
    cut.write_bytes(_header(fields) + packed[:-20])
    present = len(packed) - 20
    share = round(100 * present / len(packed))
    assert refusal(cut) == _truncated(present, len(packed), share, "compressed ")
    empty = tmp_path / "empty.mha"
    empty.write_bytes(_header(fields))
    assert refusal(empty) == _truncated(0, len(packed), 0, "compressed ")


def test_a_header_size_beyond_the_data_file_holds_nothing(tmp_path):
    (tmp_path / "short.raw").write_bytes(b"x" * 10)
    header = tmp_path / "short.mhd"
    header.write_bytes(
        _header("CompressedData = True\nCompressedDataSize = 0\nHeaderSize = 50\n", "short.raw")
    )
    assert refusal(header) == _truncated(0, 0, 0, "compressed ")


@pytest.mark.parametrize("missing", ["DimSize", "ElementType"])
def test_a_header_without_a_required_field_is_refused_by_name_not_with_a_traceback(tmp_path, missing):
    lines = [line for line in _header().decode().splitlines(keepends=True) if not line.startswith(missing)]
    path = tmp_path / "incomplete.mha"
    path.write_bytes("".join(lines).encode() + VOXELS.tobytes())
    message = refusal(path)
    assert message.startswith("not a readable image")


def test_compressed_local_data_without_its_size_is_refused_not_read_wrong(tmp_path):
    """SimpleITK cannot decompress voxel data in the header file without CompressedDataSize: it printed
    "Uncompress failed" on stderr and returned wrong voxels (a detached data file is fine: its size is
    the file's)."""
    packed = zlib.compress(VOXELS.tobytes())
    path = tmp_path / "no_size.mha"
    path.write_bytes(_header("CompressedData = True\n") + packed)
    assert refusal(path) == (
        "its voxel data are compressed but its header gives no CompressedDataSize, which SimpleITK needs "
        "to decompress them"
    )
    (tmp_path / "data.zraw").write_bytes(packed)
    detached = tmp_path / "detached.mhd"
    detached.write_bytes(_header("CompressedData = True\n", "data.zraw"))
    assert _reads_exactly(detached) == []
