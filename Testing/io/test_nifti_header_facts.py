"""What a NIfTI-1 header makes the checks around SimpleITK's read do (io/file_integrity.py), on small
hand-written headers: which headers are judged at all (the rest SimpleITK refuses or reads its own way,
so no truncation is claimed and no note given), how many bytes of voxels they promise, which spacing is
noted, and which .nii.gz files get their voxels' CRC-32 checked after the read."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.io.file_integrity import check_file
from CTAffineRegisterLib.io.images import read_image


def _nifti(
    sizes=(4, 3, 2),
    datatype=4,
    bitpix=16,
    pixdim=(1.0, 1.0, 1.0),
    slope=1.0,
    intercept=0.0,
    order="<",
    rank=None,
    unused=(1, 1, 1, 1),
    vox_offset=352,
    data=None,
) -> bytes:
    """A NIfTI-1 single file: header, empty extension flag, voxels (all of them unless ``data``)."""
    rank = len(sizes) if rank is None else rank
    dims = (list(sizes) + list(unused) + [1] * 7)[:7]
    header = bytearray(348)
    struct.pack_into(order + "i", header, 0, 348)
    struct.pack_into(order + "8h", header, 40, rank, *dims)
    struct.pack_into(order + "2h", header, 70, datatype, bitpix)
    spacing = (list(pixdim) + [1.0] * 7)[:7]
    struct.pack_into(order + "8f", header, 76, 1.0, *spacing)
    struct.pack_into(order + "f", header, 108, float(vox_offset))
    struct.pack_into(order + "2f", header, 112, slope, intercept)
    header[344:348] = b"n+1\0"
    if data is None:
        count = int(np.prod(sizes[:rank])) * max(bitpix // 8, 1)
        data = bytes(range(256)) * (count // 256) + bytes(range(count % 256))
    return bytes(header) + b"\0" * (vox_offset - 348) + data


def _write(folder: Path, name: str, content: bytes) -> str:
    path = folder / name
    path.write_bytes(gzip.compress(content, mtime=0) if name.endswith(".gz") else content)
    return str(path)


def _refusal(path: str) -> str:
    with pytest.raises(InputError) as caught:
        check_file(path)
    return str(caught.value)


def test_one_to_seven_axes_are_judged_whatever_the_unused_dims_hold(tmp_path):
    """dim[0] says how many of dim[1..7] count: a 1-axis and a 7-axis file are judged, a size of 1 is a
    size, and what the unused dims hold (0, or 2) changes nothing."""
    cases = {
        "line.nii": dict(sizes=(24,)),
        "seven.nii": dict(sizes=(2, 2, 2, 1, 1, 1, 3)),
        "flat.nii": dict(sizes=(4, 3, 1)),
        "zeros.nii": dict(unused=(0, 0, 0, 0)),
        "twos.nii": dict(unused=(2, 2, 2, 2)),
    }
    for name, fields in cases.items():
        complete = _nifti(**fields)
        assert check_file(_write(tmp_path, name, complete)).notes == []
        promised = len(complete) - 352
        cut = _write(tmp_path, "cut-" + name, complete[:-2])
        assert _refusal(cut) == (
            f"{cut}: truncated file: it holds {promised - 2:,} of the {promised:,} bytes of voxel data its "
            f"NIfTI header promises ({100.0 * (promised - 2) / promised:.0f}%)"
        )


@pytest.mark.parametrize(
    "fields",
    [
        dict(rank=0),
        dict(rank=8),
        dict(bitpix=0),
        dict(bitpix=12),
        dict(bitpix=-16),
        dict(sizes=(4, 0, 2)),
        dict(sizes=(4, 3, -2)),
        dict(sizes=(0, 3, 2)),
    ],
    ids=["rank0", "rank8", "bitpix0", "bitpix12", "bitpix-16", "size0", "size-2", "first-size0"],
)
def test_a_header_simpleitk_refuses_is_left_to_it(tmp_path, fields):
    """No truncation claimed and no note (even with a negative spacing): SimpleITK words the refusal."""
    content = _nifti(pixdim=(-1.0, 1.0, 1.0), data=b"", **fields)
    facts = check_file(_write(tmp_path, "odd.nii", content))
    assert facts.notes == [] and facts.float_voxels is None


def test_a_header_only_file_holds_none_of_its_voxels(tmp_path):
    path = _write(tmp_path, "header.nii", _nifti(vox_offset=348, data=b""))
    assert _refusal(path) == (
        f"{path}: truncated file: it holds 0 of the 48 bytes of voxel data its NIfTI header promises (0%)"
    )


def test_a_big_endian_file_is_judged_in_its_own_byte_order(tmp_path):
    complete = _nifti(order=">", sizes=(5, 4, 3), pixdim=(0.5, -0.5, 2.0))
    assert len(check_file(_write(tmp_path, "big.nii", complete)).notes) == 1
    cut = _write(tmp_path, "big-cut.nii", complete[:-20])
    assert _refusal(cut).startswith(f"{cut}: truncated file: it holds 100 of the 120 bytes ")


def test_negative_spacing_notes_name_the_spatial_axes_of_the_file(tmp_path):
    """x, y and z of a 3D file, in a plain .nii too; a 2D file has no z; the 4th axis is time."""
    notes = check_file(_write(tmp_path, "z.nii", _nifti(pixdim=(1.0, 1.0, -2.5)))).notes
    assert len(notes) == 1 and notes[0].startswith("negative spacing in the header (pixdim z -2.5): ")
    flat = _nifti(sizes=(4, 3), pixdim=(1.0, 1.0, -2.5))
    assert check_file(_write(tmp_path, "flat.nii.gz", flat)).notes == []
    timed = _nifti(sizes=(2, 2, 2, 3), pixdim=(1.0, 1.0, 1.0, -2.0))
    assert check_file(_write(tmp_path, "timed.nii", timed)).notes == []


def test_only_float_voxels_are_looked_at_for_nan(tmp_path):
    """An RGB file (a type SimpleITK converts) and integers have no float voxels to look into."""
    rgb = check_file(_write(tmp_path, "rgb.nii.gz", _nifti(datatype=128, bitpix=24)))
    assert rgb.float_voxels is None and rgb.voxel_dtype is None
    assert check_file(_write(tmp_path, "int.nii", _nifti())).float_voxels is None
    floats = check_file(_write(tmp_path, "float.nii", _nifti(datatype=16, bitpix=32))).float_voxels
    assert floats == (np.dtype("<f4"), 352, 96, False)


def test_an_integer_file_with_a_slope_reads_rescaled(tmp_path):
    path = _write(tmp_path, "scaled.nii", _nifti(sizes=(2, 2, 2), slope=2.0, intercept=-1.0))
    array = sitk.GetArrayFromImage(read_image(path).image)
    stored = np.frombuffer(_nifti(sizes=(2, 2, 2))[352:], dtype="<i2").reshape(2, 2, 2)
    assert np.array_equal(array, stored * 2.0 - 1.0)


def _with_wrong_crc(content: bytes) -> bytes:
    packed = bytearray(gzip.compress(content, mtime=0))
    crc = struct.unpack("<I", packed[-8:-4])[0]
    packed[-8:-4] = struct.pack("<I", crc ^ 1)
    return bytes(packed)


@pytest.mark.parametrize("slope", [0.0, 1.0])
def test_an_unscaled_nii_gz_with_a_wrong_crc_is_refused(tmp_path, slope):
    """A slope of 0 means no scaling (as 1 with intercept 0): the voxels are checked against the CRC.
    Noise compresses badly, so SimpleITK's reader never reaches the trailer and cannot see it."""
    noise = np.random.default_rng(5).integers(-1000, 1000, size=64 * 64 * 40).astype("<i2").tobytes()
    path = tmp_path / "unscaled.nii.gz"
    path.write_bytes(_with_wrong_crc(_nifti(sizes=(64, 64, 40), slope=slope, data=noise)))
    with pytest.raises(InputError) as caught:
        read_image(str(path))
    assert str(caught.value).startswith(f"{path}: damaged file: the gzip data do not check out (")
    assert "incorrect data check" in str(caught.value)


def test_a_nii_gz_whose_length_field_is_wrong_is_damaged_not_truncated(tmp_path):
    packed = bytearray(gzip.compress(_nifti(sizes=(10, 10, 10)), mtime=0))
    packed[-4:] = struct.pack("<I", 999)
    path = tmp_path / "length.nii.gz"
    path.write_bytes(bytes(packed))
    assert _refusal(str(path)).startswith(f"{path}: damaged file: the gzip data do not check out (")


def test_a_complete_gzip_stream_with_too_few_voxels_is_truncated(tmp_path):
    path = _write(tmp_path, "short.nii.gz", _nifti(sizes=(4, 4, 4))[:-64])
    assert _refusal(path) == (
        f"{path}: truncated file: it holds 64 of the 128 bytes of voxel data its NIfTI header promises (50%)"
    )


def test_a_stream_cut_before_the_voxels_start_holds_none_of_them(tmp_path):
    """A large extension: the stream ends (no end-of-stream marker) before the voxel offset."""
    content = _nifti(vox_offset=1024)
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    cut = squeezer.compress(content[:600]) + squeezer.flush(zlib.Z_FULL_FLUSH)
    path = tmp_path / "early.nii.gz"
    path.write_bytes(cut)
    assert _refusal(str(path)) == (
        f"{path}: truncated file: it holds 0 of the 48 bytes of voxel data its NIfTI header promises (0%); "
        "the gzip stream ends before its end-of-stream marker"
    )


def test_a_second_gzip_member_after_zero_padding_at_the_read_boundary_is_counted(tmp_path):
    """Several gzip members (pigz, bgzip), the first ending exactly where the 1 MiB reads of the stream
    check end, then zero padding: every member is counted, so the complete file is not called truncated."""
    content = _nifti(sizes=(128, 128, 40))
    boundary = 1 << 20
    split = next(
        size
        for size in range(boundary - 18, boundary - 2000, -1)
        if len(gzip.compress(content[:size], compresslevel=0, mtime=0)) == boundary
    )
    path = tmp_path / "members.nii.gz"
    first = gzip.compress(content[:split], compresslevel=0, mtime=0)
    path.write_bytes(first + b"\0" * 7 + gzip.compress(content[split:], mtime=0))
    facts = check_file(str(path))
    assert facts.notes == [] and facts.stream_crc is None  # the last member's length is not the file's
    cut = tmp_path / "members-cut.nii.gz"
    cut.write_bytes(first + b"\0" * 7 + gzip.compress(content[split:-1000], mtime=0))
    assert _refusal(str(cut)).startswith(f"{cut}: truncated file: it holds 1,309,720 of the 1,310,720 bytes ")


def test_a_float_nii_gz_of_several_members_keeps_its_nan_and_its_spacing_note(tmp_path):
    """The stream check reads such a file whole; what the header told must survive that path."""
    values = np.arange(24, dtype="<f4") - 5.0
    values[[3, 17]] = np.nan
    content = _nifti(datatype=16, bitpix=32, pixdim=(1.0, 1.0, -1.0), data=values.tobytes())
    path = tmp_path / "members.nii.gz"
    path.write_bytes(gzip.compress(content[:400], mtime=0) + gzip.compress(content[400:], mtime=0))
    loaded = read_image(str(path))
    back = sitk.GetArrayFromImage(loaded.image).ravel()
    assert np.array_equal(np.isnan(back), np.isnan(values))
    assert any(note.startswith("negative spacing in the header (pixdim z -1): ") for note in loaded.notes)


def test_a_nii_gz_with_a_large_extension_is_read_and_its_voxels_checked(tmp_path):
    noise = np.random.default_rng(7).integers(-1000, 1000, size=64 * 64 * 40).astype("<i2").tobytes()
    content = _nifti(sizes=(64, 64, 40), vox_offset=2048, data=noise)
    path = tmp_path / "extended.nii.gz"
    path.write_bytes(gzip.compress(content, mtime=0))
    assert np.array_equal(
        sitk.GetArrayFromImage(read_image(str(path)).image).ravel(), np.frombuffer(noise, "<i2")
    )
    path.write_bytes(_with_wrong_crc(content))
    with pytest.raises(InputError, match="damaged file: the gzip data do not check out"):
        read_image(str(path))
