"""Reading refuses what SimpleITK would read wrongly, and says why: truncation, damage, permissions,
singular directions; negative spacing and reader warnings become notes."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.io.images import InputError, read_image
from CTAffineRegisterLib.io.itk_messages import native_stderr_captured, notes_from_reader_output
from CTAffineRegisterLib.synthetic import make_phantom


@pytest.fixture(scope="module")
def phantom() -> sitk.Image:
    return make_phantom(size=(48, 48, 32), spacing=(6.0, 6.0, 7.0), seed=5)


def _written(folder: Path, name: str, image: sitk.Image, compress: bool = True) -> Path:
    path = folder / name
    sitk.WriteImage(image, str(path), compress)
    return path


def _cut(path: Path, share: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut{int(share * 100)}_{path.name}")
    cut.write_bytes(data[: int(len(data) * share)])
    return cut


def _refusal(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        read_image(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message  # names the file first
    return message


# --- truncated and damaged files ----------------------------------------------------------------


@pytest.mark.parametrize("share", [0.95, 0.5])
def test_truncated_nii_gz_is_refused_as_truncated(tmp_path, phantom, share):
    """SimpleITK reads these with the missing voxels as 0 (95%) or as "not CT-like" (50%)."""
    cut = _cut(_written(tmp_path, "scan.nii.gz", phantom), share)
    message = _refusal(cut)
    assert "truncated file" in message and "NIfTI header" in message
    assert "end-of-stream" in message


@pytest.mark.parametrize("share", [0.95, 0.5])
def test_truncated_uncompressed_nii_is_refused(tmp_path, phantom, share):
    cut = _cut(_written(tmp_path, "scan.nii", phantom, compress=False), share)
    message = _refusal(cut)
    assert "truncated file" in message
    assert f"({round(100 * share)}%)" in message or f"({round(100 * share) - 1}%)" in message


@pytest.mark.parametrize("missing_bytes", [2, 100])
def test_uncompressed_nii_missing_its_last_voxels_is_refused(tmp_path, phantom, missing_bytes):
    """A copy that broke off a few bytes early (one int16 voxel, fifty): the header's 352 bytes are
    no voxel data, so they cannot make up for the missing ones; SimpleITK would read zeros there."""
    path = _written(tmp_path, "scan.nii", phantom, compress=False)
    data = path.read_bytes()
    assert len(data) == 352 + 2 * phantom.GetNumberOfPixels()  # int16 voxels right after the header
    cut = tmp_path / "cut.nii"
    cut.write_bytes(data[:-missing_bytes])
    message = _refusal(cut)
    assert "truncated file" in message and "NIfTI header" in message


@pytest.mark.parametrize("name, compress", [("scan.mha", False), ("scan.mha", True), ("scan.nrrd", True)])
def test_truncated_metaimage_and_nrrd_say_truncated(tmp_path, phantom, name, compress):
    """MetaImage said "No such file or directory" for a file that is right there."""
    message = _refusal(_cut(_written(tmp_path, name, phantom, compress), 0.95))
    assert "truncated file" in message
    assert "No such file" not in message


def test_missing_detached_data_file_is_named(tmp_path, phantom):
    header = _written(tmp_path, "scan.mhd", phantom, compress=False)
    os.remove(tmp_path / "scan.raw")
    assert "voxel data file scan.raw is missing" in _refusal(header)
    nrrd_header = _written(tmp_path, "other.nhdr", phantom, compress=False)
    os.remove(tmp_path / "other.raw")
    assert "voxel data file other.raw cannot be opened" in _refusal(nrrd_header)


@pytest.fixture(scope="module")
def noisy() -> sitk.Image:
    """Noise compresses badly: the gzip stream is far longer than the reader's first buffer."""
    values = np.random.default_rng(3).integers(-1000, 1000, size=(40, 64, 64)).astype(np.int16)
    return sitk.GetImageFromArray(values)


@pytest.mark.parametrize("which", ["small", "large"])
def test_nii_gz_with_a_wrong_crc_is_refused_as_damaged(tmp_path, phantom, noisy, which):
    """The length is right and the voxels decompress, but the gzip CRC-32 does not match them."""
    path = _written(tmp_path, "scan.nii.gz", phantom if which == "small" else noisy)
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # first byte of the trailer's CRC-32
    path.write_bytes(bytes(data))
    message = _refusal(path)
    assert "damaged file" in message and "gzip" in message


@pytest.mark.parametrize("which", ["small", "large"])
def test_nii_gz_with_a_damaged_byte_is_refused(tmp_path, phantom, noisy, which):
    """SimpleITK reads the large one without complaint, with thousands of wrong voxels; on the small
    one it says only that it cannot find a reader."""
    image = phantom if which == "small" else noisy
    path = _written(tmp_path, "scan.nii.gz", image)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    if which == "large":
        silently = sitk.GetArrayViewFromImage(sitk.ReadImage(str(path)))
        assert np.count_nonzero(silently != sitk.GetArrayViewFromImage(image)) > 1000
    assert "damaged file" in _refusal(path)


def test_complete_files_read_back_exactly(tmp_path, phantom):
    """No false alarm: every format, compressed or not, and a gzip of several members."""
    expected = sitk.GetArrayViewFromImage(phantom)
    paths = [
        _written(tmp_path, "a.nii.gz", phantom),
        _written(tmp_path, "b.nii", phantom, compress=False),
        _written(tmp_path, "c.mha", phantom),
        _written(tmp_path, "d.mhd", phantom, compress=False),
        _written(tmp_path, "e.nrrd", phantom),
    ]
    plain = (tmp_path / "b.nii").read_bytes()
    members = tmp_path / "members.nii.gz"
    members.write_bytes(gzip.compress(plain[:5000]) + gzip.compress(plain[5000:]))
    for path in paths + [members]:
        loaded = read_image(str(path))
        assert np.array_equal(sitk.GetArrayViewFromImage(loaded.image), expected), path
        assert loaded.notes == []


def test_nifti2_is_named_as_such(tmp_path):
    header = bytearray(544)
    struct.pack_into("<i", header, 0, 540)
    header[4:12] = b"n+2\0\r\n\x1a\n"
    path = tmp_path / "two.nii"
    path.write_bytes(bytes(header) + bytes(240))
    assert "NIfTI-2" in _refusal(path)


# --- misleading reasons -------------------------------------------------------------------------


def _header_edited(path: Path, old: bytes, new: bytes) -> Path:
    data = path.read_bytes()
    assert old in data
    edited = path.with_name("edited_" + path.name)
    edited.write_bytes(data.replace(old, new, 1))
    return edited


def test_singular_direction_says_so(tmp_path):
    image = sitk.Image([6, 5, 4], sitk.sitkInt16)
    path = _written(tmp_path, "flat.mha", image, compress=False)
    edited = _header_edited(
        path, b"TransformMatrix = 1 0 0 0 1 0 0 0 1", b"TransformMatrix = 1 0 0 1 0 0 0 0 1"
    )
    message = _refusal(edited)
    assert "direction matrix is singular" in message
    assert "not a readable image" not in message


def test_zero_spacing_says_so(tmp_path):
    image = sitk.Image([6, 5, 4], sitk.sitkInt16)
    image.SetSpacing((0.8, 0.9, 2.0))
    path = _written(tmp_path, "zero.nrrd", image, compress=False)
    message = _refusal(_header_edited(path, b"(0,0,2)", b"(0,0,0)"))
    assert "spacing of 0" in message


@contextmanager
def _unprivileged():
    """Permissions do not bite for root: become "nobody" for the block (a real check, not a fake)."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.setegid(65534)
        os.seteuid(65534)
    except OSError as error:
        pytest.skip(f"running as root and cannot drop privileges to test permissions ({error})")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def world_folder():
    """A folder every user can enter (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="ctar-permissions-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def test_unreadable_file_says_permission_denied(world_folder, phantom):
    path = _written(world_folder, "locked.nii.gz", phantom)
    path.chmod(0o000)
    with _unprivileged(), pytest.raises(InputError) as caught:
        read_image(str(path))
    assert str(caught.value).startswith(str(path))
    assert "permission denied" in caught.value.reason and "no such file" not in caught.value.reason


def test_unlistable_folder_and_closed_parent_say_permission_denied(world_folder, phantom):
    closed = world_folder / "closed"
    closed.mkdir()
    inside = _written(closed, "scan.nii.gz", phantom)
    closed.chmod(0o000)
    with _unprivileged():
        for path, detail in ((closed, "cannot be listed"), (inside, "cannot be entered")):
            with pytest.raises(InputError) as caught:
                read_image(str(path))
            assert caught.value.path == str(path)
            assert "permission denied" in caught.value.reason and detail in caught.value.reason


def test_path_that_is_not_a_path_is_a_type_error():
    with pytest.raises(TypeError, match="read_image: path must be"):
        read_image(None)


# --- notes: negative spacing, reader warnings ---------------------------------------------------


def _negative_pixdim(tmp_path: Path, image: sitk.Image) -> Path:
    """A NIfTI whose header says pixdim[1] = -spacing (as some converters write)."""
    path = _written(tmp_path, "scan.nii", image, compress=False)
    data = bytearray(path.read_bytes())
    spacing = struct.unpack_from("<f", data, 80)[0]
    struct.pack_into("<f", data, 80, -spacing)
    struct.pack_into("<hh", data, 252, 1, 0)  # qform only: the header's own geometry, no sform
    negative = tmp_path / "negative.nii.gz"
    negative.write_bytes(gzip.compress(bytes(data)))
    return negative


def test_negative_nifti_spacing_is_read_as_a_flip_and_noted(tmp_path, phantom):
    loaded = read_image(str(_negative_pixdim(tmp_path, phantom)))
    direction = np.array(loaded.image.GetDirection()).reshape(3, 3)
    assert direction[0, 0] == pytest.approx(-1.0)  # what SimpleITK does with it
    assert loaded.image.GetSpacing()[0] == pytest.approx(6.0)
    assert len([note for note in loaded.notes if "negative spacing" in note]) == 1
    assert "pixdim x -6" in loaded.note and "flipped" in loaded.note


@pytest.mark.parametrize("name, old, new", [("scan.mha", b"ElementSpacing = 6", b"ElementSpacing = -6")])
def test_negative_metaimage_spacing_is_noted(tmp_path, phantom, name, old, new):
    path = _header_edited(_written(tmp_path, name, phantom, compress=False), old, new)
    loaded = read_image(str(path))
    assert "negative spacing" in loaded.note and "ElementSpacing x -6" in loaded.note


def test_negative_nrrd_spacings_field_is_noted_but_space_directions_are_not(tmp_path):
    image = sitk.Image([6, 5, 4], sitk.sitkInt16)
    path = _written(tmp_path, "scan.nrrd", image, compress=False)
    data = path.read_bytes()
    header, _, voxels = data.partition(b"\n\n")
    lines = [line for line in header.split(b"\n") if not line.startswith((b"space", b"kinds"))]
    spacings = tmp_path / "spacings.nrrd"
    spacings.write_bytes(b"\n".join(lines + [b"spacings: 1 -2 1"]) + b"\n\n" + voxels)
    assert "spacings y -2" in read_image(str(spacings)).note
    directions = _header_edited(path, b"space directions: (1,0,0)", b"space directions: (-1,0,0)")
    assert read_image(str(directions)).notes == []  # a negative direction vector is an orientation


def test_itk_warnings_become_notes_instead_of_stderr(tmp_path, phantom, capfd):
    """A header whose sform disagrees with pixdim makes ITK print a multi-line WARNING block."""
    path = _written(tmp_path, "scan.nii", phantom, compress=False)
    data = bytearray(path.read_bytes())
    struct.pack_into("<f", data, 80, -struct.unpack_from("<f", data, 80)[0])  # sform kept: they disagree
    path.write_bytes(bytes(data))
    capfd.readouterr()
    read_image(str(path))
    assert "WARNING: In" in capfd.readouterr().err  # what the user saw before, raw
    loaded = read_image(str(path), capture_itk_warnings=True)
    assert "WARNING" not in capfd.readouterr().err
    warned = [note for note in loaded.notes if note.startswith("reader said: NiftiImageIO:")]
    assert len(warned) == 1 and "unexpected scales in sform" in warned[0]
    assert "0x" not in warned[0] and "\n" not in warned[0]


def test_reader_output_parsing_joins_blocks_and_drops_explained_ones():
    text = (
        "WARNING: In /build/itkImageSeriesReader.hxx, line 502\n"
        "ImageSeriesReader (0x55d0c0de): Non uniform sampling or missing slices detected,  maximum\n"
        "nonuniformity:9.6\n\n"
        "WARNING: In /build/itkNiftiImageIO.cxx, line 2008\n"
        "NiftiImageIO (0x1234): a.nii has unexpected scales in sform\n\n"
        "MetaImage: M_ReadElementsData: data not read completely\n"
        "   ideal = 10 : actual = 5\n"
    )
    assert notes_from_reader_output(text, ("Non uniform sampling",)) == [
        "reader said: NiftiImageIO: a.nii has unexpected scales in sform",
        "reader said: MetaImage: M_ReadElementsData: data not read completely ideal = 10 : actual = 5",
    ]


def test_capture_puts_stderr_back_even_when_the_read_fails(capfd):
    with pytest.raises(RuntimeError):
        with native_stderr_captured() as captured:
            os.write(2, b"native text\n")
            raise RuntimeError("read failed")
    assert captured.text == "native text\n"
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
