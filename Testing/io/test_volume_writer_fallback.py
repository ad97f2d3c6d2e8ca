"""The writers' second way (io/volume_writers.py): when the header cannot be made from a one-voxel image
(a 2D image, or SimpleITK's header does not read back), SimpleITK writes the file uncompressed beside the
output and the writer compresses it, header kept. Every format must read back voxel for voxel, with its
geometry, and leave no scratch file behind."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.io import volume_writers
from CTAffineRegisterLib.io.volume_writers import write_volume


def _image(shape) -> sitk.Image:
    # 2570 is 0x0a0a: the voxels hold "\n\n", NRRD's header end, right after the header
    values = (np.arange(int(np.prod(shape))).reshape(shape) % 7 * 2570 - 3000).astype(np.int16)
    values.flat[0] = 2570
    image = sitk.GetImageFromArray(values)
    image.SetSpacing([0.5, 0.75, 2.0][: image.GetDimension()])
    image.SetOrigin([-10.0, 20.0, 5.0][: image.GetDimension()])
    return image


def _same(path, image: sitk.Image) -> None:
    back = sitk.ReadImage(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    assert back.GetSpacing() == pytest.approx(image.GetSpacing())
    assert back.GetOrigin() == pytest.approx(image.GetOrigin())


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_a_2d_image_is_written_through_an_uncompressed_copy(tmp_path, suffix):
    image = _image((30, 40))
    path = tmp_path / f"slice{suffix}"
    write_volume(image, str(path))
    _same(path, image)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_a_3d_image_whose_one_voxel_header_fails_is_written_the_second_way(tmp_path, suffix, monkeypatch):
    monkeypatch.setattr(volume_writers, "_header_from_one_voxel", lambda image, image_format, path: None)
    image = _image((6, 30, 40))
    path = tmp_path / f"scan{suffix}"
    write_volume(image, str(path))
    _same(path, image)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("chunks", [[], [b"voxels " * 1000, b"", b"more"]])
@pytest.mark.parametrize("stream", ["zlib", "gzip"])
def test_a_zlib_or_gzip_stream_of_any_chunks_decompresses_and_its_length_is_told(chunks, stream):
    import gzip
    import io
    import zlib

    sink = io.BytesIO()
    write, read = {
        "zlib": (volume_writers.write_zlib, zlib.decompress),
        "gzip": (volume_writers.write_gzip, gzip.decompress),
    }[stream]
    written = write(sink, iter(chunks), threads=1)
    assert read(sink.getvalue()) == b"".join(chunks)
    assert written == len(sink.getvalue())


def test_a_metaimage_header_gives_its_compressed_size_as_one_number(tmp_path):
    """Other MetaImage readers parse the whole value: nothing may follow the number on its line."""
    import re

    path = tmp_path / "scan.mha"
    write_volume(_image((6, 30, 40)), str(path))
    content = path.read_bytes()
    end = content.index(b"ElementDataFile = LOCAL\n") + len(b"ElementDataFile = LOCAL\n")
    sizes = re.findall(rb"(?m)^CompressedDataSize = (.*)$", content[:end])
    assert sizes == [b"%020d" % (len(content) - end)]
