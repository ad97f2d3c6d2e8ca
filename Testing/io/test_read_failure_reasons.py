"""The words a refused NRRD or gzip file gets (io/file_integrity.py): how much of the voxel data is
there, whether the compressed stream is damaged, and never "damaged" for a sound stream ITK refuses for
another reason. Small files, exact figures."""

from __future__ import annotations

import gzip
import re
import struct
import zlib

import numpy as np
import pytest
import SimpleITK as sitk
from support.refusals import refusal

from CTAffineRegisterLib.io.file_integrity import reason_from_reader_error
from CTAffineRegisterLib.io.images import read_image
from CTAffineRegisterLib.synthetic import make_phantom

VOXEL_BYTES = 48 * 48 * 32 * 2  # the phantom's int16 voxels: 147,456 bytes
TRUNCATED = (
    "truncated file: it holds {present} of the 147,456 bytes of voxel data "
    "its NRRD header promises ({share}%)"
)


@pytest.fixture(scope="module")
def phantom() -> sitk.Image:
    image = make_phantom(size=(48, 48, 32), spacing=(6.0, 6.0, 7.0), seed=5)
    assert image.GetNumberOfPixels() * 2 == VOXEL_BYTES and image.GetPixelID() == sitk.sitkInt16
    return image


def test_raw_nrrd_cut_short_says_how_many_bytes_are_there(tmp_path, phantom):
    path = tmp_path / "scan.nrrd"
    sitk.WriteImage(phantom, str(path), False)
    cut = tmp_path / "cut.nrrd"
    cut.write_bytes(path.read_bytes()[:-1000])
    assert refusal(cut) == (
        "truncated file: it holds 146,456 of the 147,456 bytes of voxel data its NRRD header promises (99%)"
    )


def test_gzip_nrrd_cut_short_says_how_many_bytes_are_there(tmp_path, phantom):
    path = tmp_path / "scan.nrrd"
    sitk.WriteImage(phantom, str(path), True)
    data = path.read_bytes()
    cut = tmp_path / "cut.nrrd"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    message = refusal(cut)
    found = re.fullmatch(
        r"truncated file: it holds ([\d,]+) of the 147,456 bytes of voxel data its NRRD header promises "
        r"\((\d+)%\)",
        message,
    )
    assert found, message
    present = int(found.group(1).replace(",", ""))
    assert 0 < present < VOXEL_BYTES
    assert int(found.group(2)) == round(100 * present / VOXEL_BYTES)


def test_gzip_nrrd_damaged_inside_its_stream_is_called_damaged(tmp_path, phantom):
    path = tmp_path / "scan.nrrd"
    sitk.WriteImage(phantom, str(path), True)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for index in range(middle, middle + 50):
        data[index] ^= 0x5A
    damaged = tmp_path / "damaged.nrrd"
    damaged.write_bytes(bytes(data))
    assert refusal(damaged) == "damaged file: its gzip-compressed voxel data cannot be decompressed"


def test_a_sound_nii_gz_refused_for_its_header_is_not_called_damaged(tmp_path):
    path = tmp_path / "flat.nii"
    sitk.WriteImage(sitk.Image([6, 5, 4], sitk.sitkInt16), str(path), False)
    header = bytearray(path.read_bytes())
    header[252:256] = struct.pack("<hh", 0, 1)  # no qform; an sform whose third row is zero
    header[280:328] = struct.pack("<12f", 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
    packed = tmp_path / "flat.nii.gz"
    packed.write_bytes(gzip.compress(bytes(header)))
    message = refusal(packed)
    assert "damaged" not in message
    assert "orthonormal" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[nrrd] _nrrdEncodingGzip_read: expected 147456 bytes but received 140036",
            TRUNCATED.format(present="140,036", share=95),
        ),
        (
            "[nrrd] _nrrdEncodingRaw_read: fread got only 73228 2-sized things, not 73728 (99.3%)",
            TRUNCATED.format(present="146,456", share=99),
        ),
        (
            "[nrrd] _nrrdEncodingGzip_read: error reading from gzFile\n[nrrd] _nrrdGzRead: data read error",
            "damaged file: its gzip-compressed voxel data cannot be decompressed",
        ),
        ("MetaImage: data read error", None),
        ("[nrrd] nrrdLoad: trouble reading", None),
    ],
)
def test_both_nrrd_wordings_of_a_short_read_give_the_same_reason(text, expected):
    assert reason_from_reader_error(text) == expected


def _nii_gz_bytes(tmp_path, phantom) -> bytes:
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(phantom, str(path), True)
    return path.read_bytes()


def test_nii_gz_cut_short_says_how_many_voxel_bytes_are_there(tmp_path, phantom):
    data = _nii_gz_bytes(tmp_path, phantom)
    kept = data[: int(len(data) * 0.6)]
    present = (
        len(zlib.decompressobj(31).decompress(kept)) - 352
    )  # what the stream still holds, past the header
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(kept)
    assert refusal(cut) == (
        f"truncated file: it holds {present:,} of the 147,456 bytes of voxel data its NIfTI header promises "
        f"({round(100 * present / VOXEL_BYTES)}%); the gzip stream ends before its end-of-stream marker"
    )


def test_a_complete_gzip_stream_of_a_short_nii_is_refused_with_its_byte_counts(tmp_path, phantom):
    plain = tmp_path / "scan.nii"
    sitk.WriteImage(phantom, str(plain), False)
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(plain.read_bytes()[:-1000]))
    assert refusal(short) == (
        "truncated file: it holds 146,456 of the 147,456 bytes of voxel data its NIfTI header promises (99%)"
    )


def test_zero_padding_after_the_gzip_stream_is_not_damage(tmp_path, phantom):
    padded = tmp_path / "padded.nii.gz"
    padded.write_bytes(_nii_gz_bytes(tmp_path, phantom) + b"\0" * 300)
    image = read_image(str(padded)).image
    assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(phantom))
