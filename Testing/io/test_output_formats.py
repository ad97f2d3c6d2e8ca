"""Outputs in every format by suffix: readable by SimpleITK, nibabel and Slicer's own storage node,
holding exactly what SimpleITK's writer would store, created with the user's umask."""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.io import volume_writers as output_formats
from CTAffineRegisterLib.io.images import write_image, write_text, write_transform
from CTAffineRegisterLib.io.volume_writers import format_of, write_volume

FORMATS = ["nii.gz", "nii", "nrrd", "mha"]


def _scan() -> sitk.Image:
    """Noisy int16 CT-like values on an oblique grid with odd sizes: nothing lines up by chance."""
    rng = np.random.default_rng(4)
    array = np.clip(rng.normal(-200, 400, (23, 37, 41)), -1024, 3071).astype(np.int16)
    array[:, :5, :] = -3024
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((10.5, -20.25, 30.0))
    image.SetDirection(sitk.Euler3DTransform((0, 0, 0), 0.1, -0.2, 0.3).GetMatrix())
    return image


def _mask() -> sitk.Image:
    array = np.zeros((23, 37, 41), np.uint8)
    array[3:20, 6:30, 4:38] = 1
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(_scan())
    return mask


def _same_geometry(first: sitk.Image, second: sitk.Image) -> bool:
    return (
        np.allclose(first.GetOrigin(), second.GetOrigin(), atol=1e-4)
        and np.allclose(first.GetSpacing(), second.GetSpacing(), atol=1e-6)
        and np.allclose(first.GetDirection(), second.GetDirection(), atol=1e-6)
    )


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("make", [_scan, _mask], ids=["scan", "mask"])
def test_simpleitk_reads_back_what_its_own_writer_stores(tmp_path, suffix, make):
    image = make()
    ours, theirs = tmp_path / f"ours.{suffix}", tmp_path / f"theirs.{suffix}"
    write_image(image, str(ours))
    sitk.WriteImage(image, str(theirs), True)
    read, reference = sitk.ReadImage(str(ours)), sitk.ReadImage(str(theirs))
    assert read.GetPixelID() == image.GetPixelID()
    assert np.array_equal(sitk.GetArrayViewFromImage(read), sitk.GetArrayViewFromImage(image))
    assert _same_geometry(read, reference) and _same_geometry(read, image)
    assert sorted(os.listdir(tmp_path)) == sorted([ours.name, theirs.name])  # no scratch file left


def test_nii_gz_is_one_gzip_member_holding_simpleitks_uncompressed_file(tmp_path, monkeypatch):
    """Many small chunks on several threads still make one ordinary gzip stream of the same bytes."""
    monkeypatch.setattr(output_formats, "CHUNK_BYTES", 1000)
    image = _scan()
    write_image(image, str(tmp_path / "scan.nii.gz"))
    sitk.WriteImage(image, str(tmp_path / "plain.nii"), False)
    packed = (tmp_path / "scan.nii.gz").read_bytes()
    stream = zlib.decompressobj(wbits=31)  # gzip wrapper, one member
    content = stream.decompress(packed)
    assert stream.eof and stream.unused_data == b""
    assert content == (tmp_path / "plain.nii").read_bytes()
    assert gzip.decompress(packed) == content
    assert len(content) > 20 * 1000  # it really went through many chunks
    # no file name and no time in the header (the same image always gives the same file), "fastest
    # compression" and "unknown system" as RFC 1952 words them
    assert packed[:10] == b"\x1f\x8b\x08\0\0\0\0\0\x04\xff"


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_gzip_and_zlib_streams_are_valid_for_any_thread_count(threads, monkeypatch):
    import io

    monkeypatch.setattr(output_formats, "CHUNK_BYTES", 777)
    data = np.random.default_rng(1).integers(0, 7, 20000, dtype=np.uint8).tobytes()
    chunks = [data[i : i + 777] for i in range(0, len(data), 777)]
    sink = io.BytesIO()
    output_formats.write_gzip(sink, iter(chunks), threads=threads)
    assert gzip.decompress(sink.getvalue()) == data
    sink = io.BytesIO()
    output_formats.write_zlib(sink, iter(chunks), threads=threads)
    assert zlib.decompress(sink.getvalue()) == data
    empty = io.BytesIO()
    output_formats.write_gzip(empty, iter([]), threads=threads)
    assert gzip.decompress(empty.getvalue()) == b""


def test_nrrd_and_mha_headers_name_their_compression(tmp_path):
    image = _scan()
    write_image(image, str(tmp_path / "scan.nrrd"))
    write_image(image, str(tmp_path / "scan.mha"))
    nrrd = (tmp_path / "scan.nrrd").read_bytes()
    header, data = nrrd.split(b"\n\n", 1)
    assert b"\nencoding: gzip" in header
    assert gzip.decompress(data) == sitk.GetArrayViewFromImage(image).tobytes()
    mha = (tmp_path / "scan.mha").read_bytes()
    end = mha.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
    header, data = mha[:end].decode(), mha[end:]
    assert "CompressedData = True" in header
    assert int(re.search(r"CompressedDataSize = (\d+)", header).group(1)) == len(data)
    assert zlib.decompress(data) == sitk.GetArrayViewFromImage(image).tobytes()


def test_validity_mask_is_uint8_and_small(tmp_path):
    mask = _mask()
    write_image(mask, str(tmp_path / "mask.nii.gz"))
    raw = mask.GetNumberOfPixels()
    assert (tmp_path / "mask.nii.gz").stat().st_size < raw / 20
    assert sitk.ReadImage(str(tmp_path / "mask.nii.gz")).GetPixelID() == sitk.sitkUInt8


@pytest.mark.parametrize("suffix", ["nii.gz", "nrrd", "mha"])
def test_a_body_mask_is_compressed_by_runs_in_every_compressed_format(tmp_path, suffix):
    """A 0/1 mask of a body (an elliptic cylinder) is written with run-length matching, as the module
    promises: under 1/25 of its voxel bytes in every compressed format (zlib's default matching at
    level 1 needs about 1/21 here)."""
    z, y, x = np.mgrid[:48, :48, :48]
    body = ((x - 24) ** 2 / (48 / 2.2) ** 2 + (y - 24) ** 2 / 16**2 < 1).astype(np.uint8)
    path = tmp_path / f"mask.{suffix}"
    write_image(sitk.GetImageFromArray(body), str(path))
    assert path.stat().st_size < body.size / 25
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), body)


@pytest.mark.parametrize("suffix", ["nii.gz", "nii"])
def test_nibabel_reads_the_same_voxels_and_affine(tmp_path, suffix):
    nibabel = pytest.importorskip("nibabel")
    image = _scan()
    write_image(image, str(tmp_path / f"ours.{suffix}"))
    sitk.WriteImage(image, str(tmp_path / f"theirs.{suffix}"))
    ours, theirs = (
        nibabel.load(str(tmp_path / f"ours.{suffix}")),
        nibabel.load(str(tmp_path / f"theirs.{suffix}")),
    )
    assert np.array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
    assert np.array_equal(np.asarray(ours.dataobj).T, sitk.GetArrayViewFromImage(image))
    assert np.allclose(ours.affine, theirs.affine, atol=1e-5)


@pytest.mark.parametrize("suffix", FORMATS)
def test_slicer_storage_node_reads_every_format(tmp_path, suffix):
    slicer = pytest.importorskip("slicer", reason="slicer-core wheel not installed (Python 3.10-3.13 only)")
    from CTAffineRegisterLib.mrml import volume_nodes as mrml_bridge

    scene = slicer.vtkMRMLScene()
    try:
        image = _scan()
        path = str(tmp_path / f"scan.{suffix}")
        write_image(image, path)
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "read")
        storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(path)
        assert storage.ReadData(node)
        expected = mrml_bridge.add_volume_node_from_image(scene, image, "expected")
        assert np.allclose(mrml_bridge.ijk_to_ras(node), mrml_bridge.ijk_to_ras(expected), atol=1e-4)
        assert np.array_equal(slicer.util.arrayFromVolume(node), slicer.util.arrayFromVolume(expected))
    finally:
        scene.Clear(1)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        paths = [tmp_path / f"scan.{suffix}" for suffix in FORMATS]
        for path in paths:
            write_image(_scan(), str(path))
        write_text("{}", str(tmp_path / "report.json"))
        write_transform(sitk.TranslationTransform(3, (1.0, 2.0, 3.0)), str(tmp_path / "t.tfm"))
        paths += [tmp_path / "report.json", tmp_path / "t.tfm"]
        overwritten = tmp_path / "scan.nii.gz"
        write_image(_mask(), str(overwritten), overwrite=True)
    finally:
        os.umask(previous)
    for path in paths:
        assert (path.stat().st_mode & 0o777) == 0o666 & ~umask, path.name


def test_format_of_suffixes_and_an_unknown_format():
    assert format_of("/a/b/scan.NII.GZ") == "nii.gz"
    assert format_of("scan.nii") == "nii"
    assert format_of("x.nrrd") == "nrrd" and format_of("x.mha") == "mha"
    assert format_of("x.png") is None and format_of("x.gz") is None
    with pytest.raises(ValueError, match="unknown output format"):
        write_volume(_scan(), "x.nii.gz", "jpeg")


def test_tiny_image_round_trips(tmp_path):
    image = sitk.Image([1, 1, 1], sitk.sitkInt16) + 7
    for suffix in FORMATS:
        write_image(image, str(tmp_path / f"one.{suffix}"))
        assert sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / f"one.{suffix}")))[0, 0, 0] == 7


@pytest.mark.parametrize("suffix", ["nii.gz", "nrrd", "mha"])
@pytest.mark.parametrize("pixel", [sitk.sitkInt16, sitk.sitkUInt8, sitk.sitkFloat32, sitk.sitkInt32])
def test_header_from_one_voxel_equals_simpleitks_own_header(tmp_path, monkeypatch, suffix, pixel):
    """The fast path (header of a one-voxel image, voxels from memory) and the safe path (SimpleITK's
    whole uncompressed file, compressed) write the same bytes once decompressed."""
    image = sitk.Cast(_scan(), pixel)
    fast, safe = tmp_path / f"fast.{suffix}", tmp_path / f"safe.{suffix}"
    write_volume(image, str(fast))
    monkeypatch.setattr(output_formats, "_header_from_one_voxel", lambda *arguments: None)
    write_volume(image, str(safe))
    assert _decompressed(fast.read_bytes(), suffix) == _decompressed(safe.read_bytes(), suffix)
    assert np.array_equal(
        sitk.GetArrayFromImage(sitk.ReadImage(str(safe))), sitk.GetArrayViewFromImage(image)
    )


def test_a_header_that_does_not_read_back_is_written_again_the_safe_way(tmp_path, monkeypatch):
    image = _scan()
    real_header = output_formats._header_from_one_voxel

    def wrong_header(image, image_format, path):
        header = bytearray(real_header(image, image_format, path))
        struct.pack_into("<3h", header, 42, 1, 2, 3)  # a size that does not match the voxels
        return bytes(header)

    monkeypatch.setattr(output_formats, "_header_from_one_voxel", wrong_header)
    write_volume(image, str(tmp_path / "scan.nii.gz"))
    read = sitk.ReadImage(str(tmp_path / "scan.nii.gz"))
    assert read.GetSize() == image.GetSize()
    assert np.array_equal(sitk.GetArrayViewFromImage(read), sitk.GetArrayViewFromImage(image))
    assert os.listdir(tmp_path) == ["scan.nii.gz"]


def _decompressed(content: bytes, suffix: str) -> bytes:
    """Header text (compression fields dropped) and voxels, for comparing two files of one format."""
    if suffix == "nii.gz":
        return gzip.decompress(content)
    if suffix == "nrrd":
        header, data = content.split(b"\n\n", 1)
        return header + gzip.decompress(data)
    end = content.index(b"ElementDataFile = LOCAL\n")
    header = re.sub(rb"CompressedDataSize = \d+\n", b"", content[:end])
    return header + zlib.decompress(content[end + len(b"ElementDataFile = LOCAL\n") :])
