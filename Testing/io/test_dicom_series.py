"""DICOM folders: missing, doubled and uneven slices, damaged files, series in sub-folders."""

from __future__ import annotations

import os
import shutil
import struct

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.dicom_writer import SERIES_UID, write_series

from CTAffineRegisterLib.io.dicom import PIXEL_DATA_TAG, SliceLayout
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
    assert "true positions" in loaded.note and "(2 of 12 slices interpolated)" in loaded.note
    assert image.GetPixelID() == sitk.sitkInt16  # the type as stored, interpolated slices rounded


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
    listed = f"{os.path.join('study1', 'ct')} (12 files), {os.path.join('study2', 'ct')} (5 files); pass"
    assert f"sub-folders do: {listed}" in message  # named from the folder given
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


def _stack(values, dtype, origin=(-20.0, -20.0, 3.0)) -> sitk.Image:
    """Slices of 2x2 voxels holding one value each, as SimpleITK's series reader stacks them."""
    image = sitk.GetImageFromArray(np.array(values, dtype=dtype)[:, None, None] * np.ones((1, 2, 2), dtype))
    image.SetOrigin(origin)
    image.SetSpacing((1.5, 1.5, 1.0))
    return image


def test_slices_go_on_the_even_grid_from_the_first_slice_whatever_the_file_order():
    """The first slice along the normal need not be the image's first (the files' order): the grid
    starts at the first slice's position, spans to the last one, and keeps float values unrounded."""
    offsets = np.array([10.0, 0.0, 2.5, 5.0])  # 7.5 missing; the file read first lies 10 mm up
    layout = SliceLayout.of(offsets)
    even, interpolated = layout.on_even_grid(_stack([40.0, 1.0, 2.0, 3.0], np.float32))
    assert even.GetSize()[2] == 5 and interpolated == 1
    assert even.GetOrigin() == pytest.approx((-20.0, -20.0, 3.0))
    assert even.GetSpacing()[2] == pytest.approx(2.5)
    assert sitk.GetArrayViewFromImage(even)[:, 0, 0].tolist() == pytest.approx([1.0, 2.0, 3.0, 21.5, 40.0])
    up = SliceLayout.of(np.array([2.5, 5.0, 7.5, 12.5]))  # the first slice 2.5 mm above the origin
    even, interpolated = up.on_even_grid(_stack([1, 2, 3, 5], np.int16))
    assert even.GetOrigin() == pytest.approx((-20.0, -20.0, 5.5)) and even.GetSize()[2] == 5
    assert sitk.GetArrayViewFromImage(even)[:, 0, 0].tolist() == [1, 2, 3, 4, 5] and interpolated == 1
    assert even.GetPixelID() == sitk.sitkInt16


def test_a_dicomdir_and_other_files_beside_the_slices_are_not_called_damaged(tmp_path):
    """A DICOMDIR (an index, no image) and a text file sit beside the slices of many exports; only a
    file that starts like DICOM and cannot be read is named as damaged."""
    write_series(tmp_path / "exam", EVEN)
    (tmp_path / "exam" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    (tmp_path / "exam" / "notes.txt").write_text("scanned on Tuesday")
    loaded = read_image(str(tmp_path / "exam"))
    assert loaded.image.GetSize()[2] == 12 and loaded.notes == []
    (tmp_path / "exam" / "IM_BROKEN").write_bytes(b"\0" * 128 + b"DICM")
    assert (
        "cannot be read (truncated or damaged) and were left out: IM_BROKEN"
        in read_image(str(tmp_path / "exam")).note
    )


def test_a_long_list_of_files_names_five_and_counts_the_rest():
    from CTAffineRegisterLib.io.dicom import _listing

    names = [f"IM{index}" for index in range(7)]
    assert _listing(names) == "IM0, IM1, IM2, IM3, IM4 and 2 more"
    assert _listing(names[:5]) == "IM0, IM1, IM2, IM3, IM4"


def _layout(offsets, step) -> SliceLayout:
    offsets = np.array(offsets)
    order = np.argsort(offsets)
    return SliceLayout(offsets, step, float(offsets.min()), np.rint((offsets - offsets.min()) / step), order)


@pytest.mark.parametrize(
    "below, above, taken_as_is",
    [
        # the grid position at 0 mm lies a millionth of the gap above one slice, or below the next:
        # that close it is still interpolated (and counted); any closer, the slice is taken as it is
        (-1.9999999999999868e-06, 1.9999979999999866, False),
        (-1.9999979999999866, 1.9999999999999745e-06, False),
        (-1.9e-06, 1.9999979999999866, True),
        (-1.9999979999999866, 1.9e-06, True),
    ],
)
def test_a_grid_position_nearer_a_slice_than_a_millionth_of_the_gap_takes_that_slice(
    below, above, taken_as_is
):
    even, interpolated = _layout([-5.0, below, above, 5.0], 5.0).on_even_grid(
        _stack([10.0, 20.0, 30.0, 40.0], np.float32)
    )
    assert even.GetSize()[2] == 3 and interpolated == (0 if taken_as_is else 1)
    middle = float(sitk.GetArrayViewFromImage(even)[1, 0, 0])
    assert (middle in (20.0, 30.0)) == taken_as_is and 20.0 <= middle <= 30.0


def test_slices_within_a_hundredth_of_a_millimetre_are_one_position_and_the_first_is_kept():
    """Positions written with two decimals round apart by 0.01 mm at most: two slices that close are a
    double (as the layout counts them), and the grid bridges from the first of them."""
    offsets = [0.0, 0.01, 10.0, 15.0, 20.0]
    assert "1 slice(s) at the position of another" in SliceLayout.of(np.array(offsets)).problem()
    even, interpolated = _layout(offsets, 5.0).on_even_grid(_stack([1.0, 2.0, 3.0, 4.0, 5.0], np.float32))
    assert even.GetSize()[2] == 5 and interpolated == 1
    # at 5 mm: halfway from the first of the two (1) to the slice at 10 mm (3)
    assert sitk.GetArrayViewFromImage(even)[:, 0, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def _dicom_bytes(
    before: int = 0, length: int = 64, explicit: bool = True, preamble: bytes = b"\0" * 128, data: bytes = b""
) -> bytes:
    """A DICOM file as far as the cut-short check reads it: preamble, DICM, ``before`` bytes of other
    elements, then the Pixel Data element (explicit OW or implicit VR) holding ``length`` bytes."""
    element = PIXEL_DATA_TAG + (b"OW\0\0" if explicit else b"") + struct.pack("<I", length)
    stored = min(length, 256)  # an encapsulated element's "length" is no length
    return preamble + b"DICM" + b"\x01" * before + element + (data + bytes(stored))[:stored]


# the Pixel Data element's header right across byte 65 536, where the first look stops
_ACROSS = (1 << 16) - 132 - 8
_FAKE = PIXEL_DATA_TAG + b"OW\0\0" + b"\xff\xff\xff\x7f"  # the tag's bytes among the voxels


@pytest.mark.parametrize(
    "content, cut, cut_short",
    [
        (_dicom_bytes(), 0, False),
        (_dicom_bytes(), 1, True),
        (_dicom_bytes(explicit=False), 0, False),
        (_dicom_bytes(explicit=False), 1, True),
        (_dicom_bytes(length=0xFFFFFFFF), 0, False),  # encapsulated: no length to check
        (b"ACME CT export, no image" * 6 + b"\0" * 20 + b"DICM" + b"\x01" * 300, 0, False),  # no Pixel Data
        # the 128-byte preamble is free-form: the tag's bytes there are not the element
        (_dicom_bytes(preamble=PIXEL_DATA_TAG + bytes(124)), 1, True),
        (_dicom_bytes(preamble=PIXEL_DATA_TAG + bytes(124), before=70_000), 1, True),
        (_dicom_bytes(before=200, data=_FAKE), 0, False),  # the first tag is the element
        (_dicom_bytes(before=70_000, data=_FAKE), 0, False),
        (_dicom_bytes(before=70_000), 0, False),  # a header longer than 64 KB is looked through
        (_dicom_bytes(before=70_000), 1, True),
        (_dicom_bytes(before=_ACROSS), 1, True),
        (_dicom_bytes(before=1 << 20), 1, False),  # beyond 1 MB: not looked for
        (_dicom_bytes(length=64), 64, True),  # the file ends right after the element's length
        (_dicom_bytes(length=64), 70, False),  # too little of the element left to tell
        (bytes(128) + _dicom_bytes(preamble=b"")[4:], 1, True),  # no preamble: the element at byte 128
    ],
)
def test_a_slice_whose_pixel_data_end_early_is_found_from_its_header(tmp_path, content, cut, cut_short):
    """A slice file cut short is left out and named (the series reader of SimpleITK 2.3 would read its
    missing voxels as they come); a whole one is kept. Only the header is read to tell."""
    from CTAffineRegisterLib.io.dicom import _pixel_data_cut_short

    path = tmp_path / "IM0001"
    path.write_bytes(content[: len(content) - cut])
    assert _pixel_data_cut_short(str(path)) is cut_short


_BYTES = bytes(128) + b"DICM" + PIXEL_DATA_TAG + b"OB\0\0" + struct.pack("<I", 16)


@pytest.mark.parametrize(
    "content, cut_short",
    [
        (_dicom_bytes(length=0x80000000), True),  # 2 GB of pixel data promised by a small file
        (_BYTES + bytes(16), False),  # explicit OB: 8-bit pixel data
        (_BYTES + bytes(15), True),
        (_BYTES.replace(b"OB", b"UN") + bytes(16), False),  # explicit UN: pixel data of unknown kind
    ],
)
def test_the_pixel_data_length_is_read_unsigned_and_for_bytes_too(tmp_path, content, cut_short):
    from CTAffineRegisterLib.io.dicom import _pixel_data_cut_short

    path = tmp_path / "IM0001"
    path.write_bytes(content)
    assert _pixel_data_cut_short(str(path)) is cut_short


FIRST_OFFSETS = [
    130.0,
    30.0,
    140.0,
    50.0,
    70.0,
    100.0,
    55.0,
    120.0,
    135.0,
    125.0,
    40.0,
    5.0,
    75.0,
    10.0,
    15.0,
    80.0,
]
FIRST_OFFSETS += [45.0, 50.0, 145.0, 0.0, 115.0, 35.0, 110.0, 65.0, 25.0, 85.0, 95.0, 90.0, 60.0, 20.0, 105.0]


def test_of_two_slices_at_one_position_the_first_read_is_kept():
    """Files in any order, two of them at 50 mm (the 4th and the 18th read): the 4th is kept."""
    layout = SliceLayout.of(np.array(FIRST_OFFSETS))
    assert layout.problem() == "1 slice(s) at the position of another"
    even, _ = layout.on_even_grid(_stack(list(range(len(FIRST_OFFSETS))), np.int16))
    assert sitk.GetArrayViewFromImage(even)[10, 0, 0] == 3


@pytest.mark.parametrize(
    "offsets, problem",
    [
        (np.arange(8) * 5.0 + 100, None),  # the grid need not start at the image origin
        (np.arange(4) * 5.0 + 1.25, None),
        ([0.0, 5.0, 5.0], "1 slice(s) at the position of another"),  # one distance between slices
        ([0.0, 5.0, 10.4, 15.0, 20.0, 25.0], None),  # 0.4 mm off: within a tenth of the step
        ([0.0, 5.0, 11.0, 15.0, 20.0, 25.0], "unevenly spaced slices"),
        (
            np.delete(np.arange(12) * 5.0 + 100, [6, 7]),
            "2 missing slice(s) (widest gap 15 mm, after the slice 25 mm from the first; slices otherwise "
            "5 mm apart)",
        ),
        (
            [0.0, 5.0, 5.0, 10.0, 20.0, 25.0],
            "1 missing slice(s) (widest gap 10 mm, after the slice 10 mm from the first; slices otherwise "
            "5 mm apart) and 1 slice(s) at the position of another",
        ),
    ],
)
def test_what_is_wrong_with_the_slice_positions_is_said(offsets, problem):
    found = SliceLayout.of(np.array(offsets)).problem()
    assert found == problem or (problem is not None and found.startswith(problem))


def test_a_slice_exactly_a_tenth_of_the_step_off_the_grid_is_on_it():
    assert _layout([0.0, 5.0, 10.5, 15.0], 5.0).problem() is None
    assert _layout([0.0, 5.0, 10.51, 15.0], 5.0).problem().startswith("unevenly spaced slices")


def test_three_slices_are_checked_two_are_not(tmp_path):
    write_series(tmp_path / "three", [0.0, 5.0, 15.0])
    with pytest.raises(InputError, match="DICOM series has"):
        read_image(str(tmp_path / "three"))
    write_series(tmp_path / "two", [0.0, 15.0])
    assert read_image(str(tmp_path / "two")).image.GetSpacing()[2] == pytest.approx(15.0)


def test_a_bridged_series_starts_at_its_first_slice(tmp_path):
    write_series(tmp_path / "gap", [100.0 + z for z in GAP])
    image = read_image(str(tmp_path / "gap"), allow_slice_gaps=True).image
    assert image.GetOrigin() == pytest.approx((-20.0, -20.0, 100.0)) and image.GetSize()[2] == 12


def test_a_series_is_read_as_the_first_slice_says_and_gaps_are_refused_by_default(tmp_path):
    from CTAffineRegisterLib.io.dicom import read_dicom_folder

    write_series(tmp_path / "even", EVEN)
    assert read_dicom_folder(str(tmp_path / "even")).tags["0020|0013"].strip() == "1"  # its Instance Number
    write_series(tmp_path / "gap", GAP)
    with pytest.raises(InputError, match="2 missing slice"):
        read_dicom_folder(str(tmp_path / "gap"))


def test_a_slice_cut_short_that_gdcm_keeps_in_the_series_is_left_out_and_named(tmp_path, monkeypatch):
    """The GDCM of SimpleITK 2.3 (Slicer 5.8) keeps a slice whose pixel data are cut short in the series
    and reads the missing voxels as they come: it is left out here, and named."""
    paths = write_series(tmp_path / "cut", EVEN)
    paths[-1].write_bytes(paths[-1].read_bytes()[:-300])
    monkeypatch.setattr(
        sitk.ImageSeriesReader,
        "GetGDCMSeriesFileNames",
        staticmethod(lambda folder, series_id="": tuple(str(path) for path in paths)),
    )
    loaded = read_image(str(tmp_path / "cut"))
    assert loaded.image.GetSize()[2] == 11
    assert loaded.note.endswith("cannot be read (truncated or damaged) and were left out: slice_011.dcm")


class _PositionsOnly:
    """The series reader as far as the slice positions go: each file's Image Position Patient text."""

    def __init__(self, texts):
        self.texts = texts

    def HasMetaDataKey(self, index, key):  # noqa: N802 (SimpleITK's name)
        return key == "0020|0032"

    def GetMetaData(self, index, key):  # noqa: N802
        return self.texts[index]


def test_slice_positions_are_the_first_three_numbers_of_each_files_position():
    """A malformed position with a fourth number still gives its first three: the gap check stays."""
    from CTAffineRegisterLib.io.dicom import _slice_offsets

    image = sitk.Image([2, 2, 3], sitk.sitkInt16)
    image.SetOrigin((-20.0, -20.0, 0.0))
    reader = _PositionsOnly(["-20\\-20\\0\\1", "-20\\-20\\5\\1", "-20\\-20\\15\\1"])
    assert _slice_offsets(reader, image, 3).tolist() == [0.0, 5.0, 15.0]
    assert _slice_offsets(_PositionsOnly(["-20\\-20"] * 3), image, 3) is None  # no position: no check
