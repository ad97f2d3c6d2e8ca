"""How a MetaImage header's ``Key = Value`` lines are read before SimpleITK's read (io/file_integrity.py):
any field may come first, a value may hold ``=``, spacing may be written with commas, and a "header"
longer than 64 KiB is not taken for one. Tiny hand-written headers, checked with ``check_file``."""

from __future__ import annotations

from pathlib import Path

import pytest

from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.io.file_integrity import check_file

FIELDS = "NDims = 3\nElementType = MET_SHORT\n"


def _refusal(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        check_file(str(path))
    return str(caught.value)


def test_dim_size_on_the_first_line_is_read(tmp_path):
    path = tmp_path / "first.mha"
    path.write_bytes(f"DimSize = 2 2 2\n{FIELDS}ElementDataFile = LOCAL\n".encode() + b"\0" * 10)
    assert _refusal(path) == (
        f"{path}: truncated file: it holds 10 of the 16 bytes of voxel data its MetaImage header "
        "promises (62%)"
    )


def test_a_data_file_name_with_an_equals_sign_is_looked_for(tmp_path):
    path = tmp_path / "scan.mhd"
    path.write_bytes(f"ObjectType = Image\n{FIELDS}DimSize = 2 2 2\nElementDataFile = scan=1.raw\n".encode())
    assert _refusal(path) == (
        f"{path}: its voxel data file scan=1.raw is missing (looked for {tmp_path / 'scan=1.raw'})"
    )


def test_a_data_file_name_with_a_percent_sign_is_left_to_simpleitk(tmp_path):
    """``%`` marks a slice-file pattern, which SimpleITK resolves and checks itself."""
    path = tmp_path / "slices.mhd"
    path.write_bytes(f"{FIELDS}DimSize = 2 2 2\nElementDataFile = slice%03d.raw\n".encode())
    assert check_file(str(path)).notes == []


@pytest.mark.parametrize("spacing", ["0.5,-0.5,1", "0.5, -0.5, 1"])
def test_spacing_written_with_commas_is_read(tmp_path, spacing):
    path = tmp_path / "commas.mha"
    header = f"{FIELDS}DimSize = 2 2 2\nElementSpacing = {spacing}\nElementDataFile = LOCAL\n"
    path.write_bytes(header.encode() + b"\0" * 16)
    notes = check_file(str(path)).notes
    assert len(notes) == 1 and notes[0].startswith("negative spacing in the header (ElementSpacing y -0.5): ")


def test_a_header_longer_than_64_kib_is_not_taken_for_one(tmp_path):
    """Text headers end well within 64 KiB; a file whose ``Key = Value`` lines go on longer is left to
    SimpleITK (no truncation claimed from a field found past that)."""
    comments = "Comment = padding\n" * 4000  # 72 000 bytes
    path = tmp_path / "long.mha"
    path.write_bytes(f"{FIELDS}{comments}DimSize = 2 2 2\nElementDataFile = LOCAL\n".encode() + b"\0" * 10)
    assert check_file(str(path)).notes == []
    short = tmp_path / "short.mha"
    short.write_bytes(f"{FIELDS}{comments[: 18 * 2700]}DimSize = 2 2 2\nElementDataFile = LOCAL\n".encode())
    assert "truncated file: it holds 0 of the 16 bytes" in _refusal(short)


@pytest.mark.parametrize(
    "fields", ["ElementType = MET_OTHER\nDimSize = 2 2 2\n", "ElementType = MET_SHORT\nDimSize = 2 0 2\n"]
)
def test_a_header_not_judged_for_its_length_still_gets_its_spacing_note(tmp_path, fields):
    path = tmp_path / "odd.mha"
    path.write_bytes(f"NDims = 3\n{fields}ElementSpacing = 1 1 -2\nElementDataFile = LOCAL\n".encode())
    notes = check_file(str(path)).notes
    assert len(notes) == 1 and notes[0].startswith("negative spacing in the header (ElementSpacing z -2): ")
