"""DICOM folders: missing, doubled and uneven slices, damaged files, series in sub-folders."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.dicom_writer import SERIES_UID, write_series

from CTAffineRegisterLib.io.dicom import SliceLayout
from CTAffineRegisterLib.io.images import InputError, read_image

EVEN = [5.0 * i for i in range(12)]
GAP = EVEN[:6] + EVEN[8:]  # slices at 30 and 35 mm missing: a 15 mm gap


def test_even_series_reads_without_notes(tmp_path):
    write_series(tmp_path / "even", EVEN)
    loaded = read_image(str(tmp_path / "even"))
    assert loaded.image.GetSize()[2] == 12 and loaded.image.GetSpacing()[2] == pytest.approx(5.0)
    assert loaded.notes == [] and loaded.slice_problem is None


def test_missing_slices_are_refused_naming_the_gap_and_the_flag(tmp_path):
    """SimpleITK reads this as 10 slices 5.5 mm apart: the whole scan stretched."""
    write_series(tmp_path / "gap", GAP)
    assert sitk.ReadImage([str(p) for p in sorted((tmp_path / "gap").iterdir())]).GetSpacing()[2] != 5.0
    with pytest.raises(InputError) as caught:
        read_image(str(tmp_path / "gap"))
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "gap"))
    assert (
        "2 missing slice(s)" in message
        and "widest gap 15 mm" in message
        and "25 mm from the first" in message
    )
    assert "--allow-slice-gaps" in message


def test_allowed_gap_keeps_each_slice_at_its_true_position(tmp_path):
    write_series(tmp_path / "gap", GAP)
    loaded = read_image(str(tmp_path / "gap"), allow_slice_gaps=True)
    image = loaded.image
    assert image.GetSize()[2] == 12 and image.GetSpacing()[2] == pytest.approx(5.0)
    assert image.GetOrigin() == pytest.approx((-20.0, -20.0, 0.0))
    centre = sitk.GetArrayViewFromImage(image)[:, 12, 12]
    # measured slices unchanged at their own z; the two in the gap interpolated between 501 and 601
    assert list(centre[:6]) == [1, 101, 201, 301, 401, 501]
    assert list(centre[8:]) == [601, 701, 801, 901]
    assert list(centre[6:8]) == [534, 568]
    assert loaded.slice_problem.startswith("2 missing slice(s)")
    assert "true positions" in loaded.note and "2 of 12 slices interpolated" in loaded.note


def test_uneven_and_doubled_slices_are_refused(tmp_path):
    write_series(tmp_path / "uneven", [0, 5, 10, 15, 17.5, 20, 25, 30])
    write_series(tmp_path / "doubled", [0, 5, 10, 10, 15, 20])
    with pytest.raises(InputError, match="unevenly spaced slices"):
        read_image(str(tmp_path / "uneven"))
    with pytest.raises(InputError, match="1 slice.s. at the position of another"):
        read_image(str(tmp_path / "doubled"))
    doubled = read_image(str(tmp_path / "doubled"), allow_slice_gaps=True)
    assert doubled.image.GetSize()[2] == 5  # one of the two at 10 mm kept


def test_truncated_slice_file_is_named(tmp_path):
    """GDCM leaves a damaged file out of the series; the gap it leaves and the file are both named."""
    paths = write_series(tmp_path / "cut", EVEN)
    data = paths[4].read_bytes()
    paths[4].write_bytes(data[: len(data) - 300])
    with pytest.raises(InputError) as caught:
        read_image(str(tmp_path / "cut"))
    assert "1 missing slice(s)" in str(caught.value) and "slice_004.dcm" in str(caught.value)
    last = write_series(tmp_path / "cut_end", EVEN)[-1]
    last.write_bytes(last.read_bytes()[:400])
    loaded = read_image(str(tmp_path / "cut_end"))  # no gap: read, with a note about the file
    assert loaded.image.GetSize()[2] == 11
    assert "cannot be read (truncated or damaged)" in loaded.note and "slice_011.dcm" in loaded.note


def test_nested_folder_uses_the_only_series_below_and_says_where(tmp_path):
    write_series(tmp_path / "patient" / "study" / "series", EVEN)
    loaded = read_image(str(tmp_path / "patient"))
    assert loaded.image.GetSize()[2] == 12
    assert loaded.name == "patient"
    assert f"sub-folder {os.path.join('study', 'series')}" in loaded.note


def test_nested_folder_with_several_series_lists_them(tmp_path):
    write_series(tmp_path / "patient" / "study1" / "ct", EVEN, series_uid=SERIES_UID + ".1")
    write_series(tmp_path / "patient" / "study2" / "ct", EVEN[:5], series_uid=SERIES_UID + ".2")
    with pytest.raises(InputError) as caught:
        read_image(str(tmp_path / "patient"))
    message = caught.value.reason
    assert "2 of its sub-folders do" in message
    assert os.path.join("study1", "ct") + " (12 files)" in message and os.path.join("study2", "ct") in message
    assert "pass the series folder" in message


def test_folder_with_no_dicom_anywhere_says_so(tmp_path):
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "empty" / "deeper" / "notes.txt").write_text("not DICOM")
    with pytest.raises(InputError, match="no DICOM series .nor do its sub-folders"):
        read_image(str(tmp_path / "empty"))


def test_gap_warning_of_the_series_reader_is_not_repeated_as_a_note(tmp_path, capfd):
    write_series(tmp_path / "gap", GAP)
    capfd.readouterr()
    loaded = read_image(str(tmp_path / "gap"), allow_slice_gaps=True, capture_itk_warnings=True)
    assert "WARNING" not in capfd.readouterr().err
    assert len(loaded.notes) == 1 and "Non uniform" not in loaded.note


def test_slice_layout_tolerates_rounded_positions():
    """Positions written with two decimals (0.625 mm slices) are an even series."""
    offsets = np.round(np.arange(40) * 0.625, 2)
    assert SliceLayout.of(offsets).problem() is None
    assert SliceLayout.of(np.delete(offsets, 20)).problem().startswith("1 missing slice(s)")


def test_real_series_with_two_slices_removed_is_refused(tmp_path):
    source = shared_sample("dcm_qa_ct/philips_phantom_5mm")
    copy = tmp_path / "philips"
    shutil.copytree(source, copy)
    full = read_image(str(copy))
    assert full.notes == [] and full.image.GetSpacing()[2] == pytest.approx(5.0, abs=0.01)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(copy))
    for name in files[10:12]:
        os.remove(name)
    with pytest.raises(InputError, match="2 missing slice"):
        read_image(str(copy))
    bridged = read_image(str(copy), allow_slice_gaps=True)
    assert bridged.image.GetSize()[2] == full.image.GetSize()[2]
    assert bridged.image.GetSpacing()[2] == pytest.approx(full.image.GetSpacing()[2], abs=0.01)
    kept = sitk.GetArrayViewFromImage(bridged.image)
    original = sitk.GetArrayViewFromImage(full.image)
    assert np.array_equal(kept[:10], original[:10]) and np.array_equal(kept[12:], original[12:])
