"""Where a DICOM series is looked for and what a file must be to count as DICOM (io/dicom.py): hidden
folders are skipped, the search stops six folders down, a file is DICOM by its DICM preamble or a
.dcm name in any case, and a series' description is quoted when a folder holds several."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk
from support.dicom_writer import SERIES_UID, write_series

from CTAffineRegisterLib.io.dicom import MAX_SEARCH_DEPTH, _looks_like_dicom
from CTAffineRegisterLib.io.images import InputError, read_image

EVEN = [2.5 * index for index in range(4)]


def test_a_file_is_dicom_by_its_preamble_or_a_dcm_name_in_any_case(tmp_path):
    preamble = tmp_path / "IM0001"
    preamble.write_bytes(b"\0" * 128 + b"DICM" + b"\2\0")
    shifted = tmp_path / "IM0002"
    shifted.write_bytes(b"\0" * 129 + b"DICM")
    upper = tmp_path / "SLICE.DCM"
    upper.write_bytes(b"not even a header")
    short = tmp_path / "tiny"
    short.write_bytes(b"DICM")
    assert [_looks_like_dicom(str(path)) for path in (preamble, shifted, upper, short)] == [
        True,
        False,
        True,
        False,
    ]
    assert _looks_like_dicom(str(tmp_path)) is False  # a folder
    assert _looks_like_dicom(str(tmp_path / "missing.dcm")) is False


def test_a_series_in_a_hidden_folder_is_not_taken(tmp_path):
    write_series(tmp_path / "patient" / ".trash" / "old", EVEN)
    with pytest.raises(InputError, match="no DICOM series .nor do its sub-folders"):
        read_image(str(tmp_path / "patient"))


def test_the_search_goes_six_folders_down_and_no_further(tmp_path):
    reachable = tmp_path / "a" / os.path.join(*["d"] * MAX_SEARCH_DEPTH)
    write_series(reachable, EVEN)
    assert read_image(str(tmp_path / "a")).image.GetSize()[2] == len(EVEN)
    too_deep = tmp_path / "b" / os.path.join(*["d"] * (MAX_SEARCH_DEPTH + 1))
    write_series(too_deep, EVEN)
    with pytest.raises(InputError, match="no DICOM series"):
        read_image(str(tmp_path / "b"))


def test_several_series_below_are_listed_with_their_descriptions(tmp_path):
    write_series(tmp_path / "patient" / "one", EVEN, series_uid=SERIES_UID + ".1")
    write_series(tmp_path / "patient" / "two", EVEN[:3], series_uid=SERIES_UID + ".2")
    with pytest.raises(InputError) as caught:
        read_image(str(tmp_path / "patient"))
    assert "one (4 files)" in caught.value.reason and "two (3 files)" in caught.value.reason


def _describe(path, text: str) -> None:
    image = sitk.ReadImage(str(path))
    image.SetMetaData("0008|103e", text)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(path))
    writer.Execute(image)


def test_tied_series_are_named_with_their_description_when_they_have_one(tmp_path):
    first = write_series(tmp_path / "exam", EVEN, series_uid=SERIES_UID + ".1", prefix="a")
    write_series(tmp_path / "exam", EVEN, series_uid=SERIES_UID + ".2", prefix="b")
    _describe(first[0], "  lung kernel  ")
    with pytest.raises(InputError) as caught:
        read_image(str(tmp_path / "exam"))
    reason = caught.value.reason
    assert f": {SERIES_UID}.1 (lung kernel), {SERIES_UID}.2; put the series" in reason


def test_the_search_stops_after_2000_folders_and_says_so(tmp_path):
    from CTAffineRegisterLib.io.dicom import MAX_FOLDERS_SEARCHED

    root = tmp_path / "archive"
    for index in range(MAX_FOLDERS_SEARCHED):
        (root / f"f{index:05d}").mkdir(parents=True)
    write_series(root / "zz_last", EVEN)  # the 2 001st folder below the root, in sorted order
    with pytest.raises(InputError) as caught:
        read_image(str(root))
    assert (
        caught.value.reason
        == f"folder holds no DICOM series (nor do the first {MAX_FOLDERS_SEARCHED} below it)"
    )
    (root / "f00000").rmdir()  # exactly 2000 folders below the root: the last one is still searched
    assert read_image(str(root)).image.GetSize()[2] == len(EVEN)


def test_an_unreadable_file_is_not_taken_for_dicom(tmp_path, monkeypatch):
    """A file the user may not open (no read permission on a shared drive) is not DICOM, so it is never
    named as a damaged DICOM file; tested by refusing the open, as root may open any file."""
    from CTAffineRegisterLib.io import dicom

    locked = tmp_path / "IM0001"
    locked.write_bytes(b"\0" * 128 + b"DICM")

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(dicom, "open", refuse, raising=False)
    assert _looks_like_dicom(str(locked)) is False


def test_an_image_of_another_format_with_a_dcm_name_is_not_called_damaged(tmp_path):
    """A preview saved as preview.dcm beside the slices is not DICOM, but a reader makes sense of it:
    it is left out of the series without a note that it is truncated or damaged."""
    write_series(tmp_path / "exam", EVEN)
    preview = sitk.GetImageFromArray(np.zeros((4, 4), dtype=np.uint8))
    sitk.WriteImage(preview, str(tmp_path / "preview.png"))
    os.replace(tmp_path / "preview.png", tmp_path / "exam" / "preview.dcm")
    loaded = read_image(str(tmp_path / "exam"))
    assert loaded.image.GetSize()[2] == len(EVEN)
    assert loaded.notes == []


def test_a_tied_series_whose_first_file_cannot_be_read_is_named_by_its_uid_alone(tmp_path):
    from CTAffineRegisterLib.io.dicom import _description

    (tmp_path / "gone.dcm").write_bytes(b"not an image")
    assert _description(str(tmp_path / "gone.dcm")) == ""
    assert _description(str(tmp_path / "missing.dcm")) == ""


@pytest.mark.parametrize("refused", ["ct", "patient"])
def test_a_folder_that_cannot_be_scanned_is_reported_under_the_folder_given(tmp_path, monkeypatch, refused):
    write_series(tmp_path / "patient" / "ct", EVEN)
    scan = sitk.ImageSeriesReader.GetGDCMSeriesIDs

    def refuse_below(folder):
        if folder.endswith(refused):
            raise RuntimeError("Exception thrown in SimpleITK\nITK ERROR: cannot open directory")
        return scan(folder)

    monkeypatch.setattr(sitk.ImageSeriesReader, "GetGDCMSeriesIDs", staticmethod(refuse_below))
    with pytest.raises(InputError) as raised:
        read_image(str(tmp_path / "patient"))
    assert str(raised.value) == (
        f"{tmp_path / 'patient'}: cannot scan folder for DICOM (ITK ERROR: cannot open directory)"
    )


def test_only_folders_with_files_that_look_like_dicom_are_scanned_below(tmp_path, monkeypatch):
    """Searching a large tree stays fast: GDCM scans the folder given and the sub-folders holding a
    file that looks like DICOM, not every folder (a folder of reports, one of nothing)."""
    write_series(tmp_path / "patient" / "ct", EVEN)
    (tmp_path / "patient" / "reports").mkdir()
    (tmp_path / "patient" / "reports" / "report.txt").write_text("no findings")
    (tmp_path / "patient" / "empty").mkdir()
    scan, scanned = sitk.ImageSeriesReader.GetGDCMSeriesIDs, []

    def record(folder):
        scanned.append(os.path.relpath(folder, tmp_path))
        return scan(folder)

    monkeypatch.setattr(sitk.ImageSeriesReader, "GetGDCMSeriesIDs", staticmethod(record))
    assert read_image(str(tmp_path / "patient")).image.GetSize()[2] == len(EVEN)
    assert scanned == ["patient", os.path.join("patient", "ct")]
