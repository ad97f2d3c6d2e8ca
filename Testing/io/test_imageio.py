"""Reading inputs (files, DICOM folders, padding tags) and writing outputs atomically."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.dicom_writer import write_explicit_vr_slice

from CTAffineRegisterLib.io.images import (
    InputError,
    OutputExistsError,
    _padding_from_tags,
    output_stem,
    read_image,
    write_atomically,
    write_image,
    write_text,
    write_transform,
)
from CTAffineRegisterLib.padding.analysis import analyze_background


@pytest.mark.parametrize(
    "path, stem",
    [
        ("/data/b/scan_0042.nii.gz", "scan_0042"),
        ("scan.nii", "scan"),
        ("a/b/volume.NRRD", "volume"),
        ("x.mha", "x"),
        ("/data/dicom/patient_7/", "patient_7"),
        ("/data/dicom/series.2", "series.2"),
    ],
)
def test_output_stem(path, stem):
    assert output_stem(path) == stem


def test_padding_value_written_unsigned_is_read_as_the_signed_value_it_means(tmp_path):
    """A series whose Pixel Padding Value has the explicit VR US: GDCM hands over 63536 where -2000
    (stored; -3024 HU) is meant. Read for real, not from a dictionary of tags."""
    size, slices = 48, 10
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    inside_fov, body = yy**2 + xx**2 < 22**2, yy**2 + xx**2 < 14**2
    for index in range(slices):
        noise = np.random.default_rng(index).integers(-6, 7, (size, size))
        stored = np.where(body, 1064, 24) + noise  # 40 HU tissue in -1000 HU air
        stored[~inside_fov] = -2000
        path = tmp_path / "ge" / f"{index:02d}.dcm"
        write_explicit_vr_slice(path, stored, 2.0 * index, index, "1.2.826.0.1.3680043.2.1125.9", 63536)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(tmp_path / "ge" / "00.dcm"))
    reader.ReadImageInformation()
    assert reader.GetMetaData("0028|0120") == "63536"  # the case this test is about: read unsigned

    loaded = read_image(str(tmp_path / "ge"))
    assert loaded.dicom_padding.value_hu == -3024 and loaded.dicom_padding.range_limit_hu is None
    analysis = analyze_background(loaded.image, loaded.dicom_padding)
    assert analysis.padding_value == -3024 and analysis.padding_source == "dicom-tag"
    expected = np.broadcast_to(~inside_fov, (slices, size, size))
    assert np.array_equal(sitk.GetArrayViewFromImage(analysis.valid_mask) == 0, expected)


def test_padding_tag_with_slope_and_range_limit():
    tags = {"0028|0120": "20", "0028|0121": "30", "0028|0103": "0", "0028|1052": "-1024", "0028|1053": "0.5"}
    padding = _padding_from_tags(tags)
    assert padding.value_hu == -1014 and padding.range_limit_hu == -1009
    assert padding.hu_range() == (-1014, -1009)
    signed = {"0028|0120": "65516", "0028|0121": "65526", "0028|0103": "1", "0028|1053": "2"}
    assert _padding_from_tags(signed).hu_range() == (-40, -20)  # both read unsigned, both made signed


def test_no_padding_tag_means_none():
    assert _padding_from_tags({"0028|1052": "-1024"}) is None


def _write_series(folder: str, series_uid: str, slices: int, value: int) -> None:
    """A tiny CT series written slice by slice with the tags a series reader groups by."""
    os.makedirs(folder, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for index in range(slices):
        image = sitk.GetImageFromArray(np.full((1, 16, 16), value, dtype=np.int16))
        for tag, text in {
            "0020|000e": series_uid,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0008|0060": "CT",
            "0020|0032": f"0\\0\\{index * 2.0}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0013": str(index + 1),
            "0008|0018": f"{series_uid}.{index + 1}",
        }.items():
            image.SetMetaData(tag, text)
        writer.SetFileName(os.path.join(folder, f"{series_uid[-1]}_{index:03d}.dcm"))
        writer.Execute(image)


def test_folder_with_two_series_uses_the_longer_one_and_says_so(tmp_path):
    folder = str(tmp_path / "two_series")
    _write_series(folder, "1.2.826.0.1.3680043.2.1125.2", 3, -100)
    _write_series(folder, "1.2.826.0.1.3680043.2.1125.3", 5, 200)
    loaded = read_image(folder)
    assert loaded.image.GetSize()[2] == 5
    assert "2 DICOM series" in loaded.note and "most slices" in loaded.note
    assert loaded.name == "two_series"


def test_real_dicom_series_keeps_its_padding_tag():
    loaded = read_image(str(shared_sample("dcmqi/ct-3slice")))
    assert loaded.image.GetSize() == (512, 512, 3)
    assert loaded.dicom_padding.value_hu == -3024
    assert loaded.reconstruction_diameter_mm == pytest.approx(415)
    assert loaded.note is None


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda folder: os.path.join(folder, "absent.nii.gz"), "no such file"),
        (lambda folder: _write_bytes(folder, "empty.nrrd", b""), "empty"),
        (lambda folder: _write_bytes(folder, "junk.mha", b"\x00\x01not an image"), "not a readable image"),
        (lambda folder: _empty_folder(folder), "no DICOM series"),
    ],
)
def test_bad_inputs_name_the_file_and_the_problem(tmp_path, make, reason):
    path = make(str(tmp_path))
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert str(caught.value).startswith(path)
    assert reason in str(caught.value)


def _write_bytes(folder: str, name: str, content: bytes) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(content)
    return path


def _empty_folder(folder: str) -> str:
    path = os.path.join(folder, "no_dicom_here")
    os.makedirs(path)
    _write_bytes(path, "readme.txt", b"hello")
    return path


def test_vector_image_is_refused(tmp_path):
    path = str(tmp_path / "rgb.mha")
    sitk.WriteImage(sitk.Image([8, 8, 8], sitk.sitkVectorUInt8, 3), path)
    with pytest.raises(InputError, match="components per voxel"):
        read_image(path)


def test_inputs_are_not_modified(tmp_path):
    source = shared_sample("totalsegmentator/example_ct_sm.nii.gz")
    copy = tmp_path / "scan.nii.gz"
    shutil.copy(source, copy)
    before = copy.read_bytes()
    loaded = read_image(str(copy))
    sitk.GetArrayViewFromImage(loaded.image)  # touch the pixels
    assert copy.read_bytes() == before


def test_atomic_write_refuses_to_overwrite_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.nii.gz"
    image = sitk.Image([4, 4, 4], sitk.sitkInt16)
    write_image(image, str(target))
    first = target.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        write_image(image + 1, str(target))
    assert target.read_bytes() == first
    write_image(image + 1, str(target), overwrite=True)
    assert sitk.GetArrayViewFromImage(sitk.ReadImage(str(target))).max() == 1
    assert sorted(os.listdir(tmp_path)) == ["out.nii.gz"]
    # a transform and a text are never overwritten unless asked either
    write_transform(sitk.Transform(3, sitk.sitkIdentity), str(tmp_path / "moving.tfm"))
    with pytest.raises(OutputExistsError, match="already exists"):
        write_transform(sitk.Euler3DTransform(), str(tmp_path / "moving.tfm"))
    write_transform(sitk.Euler3DTransform(), str(tmp_path / "moving.tfm"), overwrite=True)
    assert sitk.ReadTransform(str(tmp_path / "moving.tfm")).GetName() == "Euler3DTransform"
    write_text("first", str(tmp_path / "summary.txt"))
    with pytest.raises(OutputExistsError, match="already exists"):
        write_text("second", str(tmp_path / "summary.txt"))
    assert (tmp_path / "summary.txt").read_text() == "first"


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "report.json"

    class Boom(Exception):
        pass

    def failing_writer(temporary):
        with open(temporary, "w") as handle:
            handle.write("half")
        raise Boom()

    with pytest.raises(Boom):
        write_atomically(str(target), failing_writer)
    assert os.listdir(tmp_path) == []
    write_text("{}", str(target))
    assert target.read_text() == "{}"


def test_the_temporary_lies_beside_the_output_keeps_its_suffix_and_a_taken_name_is_skipped(
    tmp_path, monkeypatch
):
    """Beside the output (the final rename stays on one disk), with its whole suffix (a writer that
    goes by the name sees .nii.gz), under another name when one is taken."""
    import secrets

    seen = []

    def writer(temporary):
        seen.append(temporary)
        sitk.WriteImage(sitk.Image([2, 2, 2], sitk.sitkInt16), temporary)

    monkeypatch.chdir(tmp_path)  # not the output's folder
    (tmp_path / "out").mkdir()
    write_atomically(str(tmp_path / "out" / "scan.nii.gz"), writer)
    assert os.path.dirname(seen[0]) == str(tmp_path / "out") and seen[0].endswith(".nii.gz")
    (tmp_path / "out" / ".notes.txt.aaaaaaaa.txt").write_text("taken")
    names = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda size: next(names))
    write_text("notes", str(tmp_path / "out" / "notes.txt"))
    assert (tmp_path / "out" / "notes.txt").read_text() == "notes"


@pytest.mark.parametrize("refusal", [FileExistsError, PermissionError])
def test_an_output_appearing_meanwhile_is_kept_also_without_hard_links(tmp_path, monkeypatch, refusal):
    """The final step links the temporary to the output name, which fails if a file appeared there
    meanwhile; a file system without hard links (PermissionError) falls back to a rename after checking.
    Either way the other file stays, nothing is left behind, and the output is written when free."""
    target = tmp_path / "summary.txt"

    def appear_then_refuse(source, destination):
        target.write_text("the other run's")
        raise refusal(17, "refused", destination)

    monkeypatch.setattr(os, "link", appear_then_refuse)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_text("ours", str(target))
    assert target.read_text() == "the other run's" and os.listdir(tmp_path) == ["summary.txt"]
    if refusal is PermissionError:
        target.unlink()
        monkeypatch.setattr(os, "link", lambda source, destination: (_ for _ in ()).throw(refusal()))
        write_text("ours", str(target))
        assert target.read_text() == "ours" and os.listdir(tmp_path) == ["summary.txt"]
