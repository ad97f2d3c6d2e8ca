"""Two DICOM series with the same, largest number of slices in one folder are refused and both listed
(issue 21, item 14): two reconstruction kernels of one exam are common, and neither is "the most"."""

from __future__ import annotations

import pytest
from support.dicom_writer import write_series

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.io.images import InputError, read_image

SOFT = "1.2.826.0.1.3680043.2.1125.7"
BONE = "1.2.826.0.1.3680043.2.1125.8"
SHORT = "1.2.826.0.1.3680043.2.1125.9"


def test_two_series_with_the_same_slice_count_are_refused_and_listed(tmp_path, capsys):
    folder = tmp_path / "exam"
    write_series(folder, [0, 2, 4, 6], series_uid=SOFT, prefix="soft")
    write_series(folder, [0, 2, 4, 6], series_uid=BONE, prefix="bone")
    with pytest.raises(InputError) as raised:
        read_image(str(folder))
    message = str(raised.value)
    assert message.startswith(f"{folder}: folder holds 2 DICOM series and 2 of them have the most slices")
    assert "(4 each)" in message and SOFT in message and BONE in message
    assert main(["inspect", str(folder)]) == 1
    assert f"error: {folder}: folder holds 2 DICOM series" in capsys.readouterr().err


def test_a_tie_below_the_most_slices_does_not_matter(tmp_path):
    folder = tmp_path / "exam"
    write_series(folder, [0, 2, 4, 6, 8], series_uid=SOFT, prefix="soft")
    write_series(folder, [0, 2, 4], series_uid=BONE, prefix="bone")
    write_series(folder, [0, 2, 4], series_uid=SHORT, prefix="short")
    loaded = read_image(str(folder))
    assert loaded.image.GetSize()[2] == 5
    assert "3 DICOM series" in loaded.note and SOFT in loaded.note
