"""A DICOM folder that ITK cannot read is refused with the last line ITK wrote (its own words), at most
200 characters, or "unknown error" when ITK said nothing."""

from __future__ import annotations

from CTAffineRegisterLib.io.dicom import _last_line


def test_the_last_non_blank_line_of_itks_error_is_kept_stripped():
    error = RuntimeError(
        "Exception thrown in SimpleITK ImageSeriesReader_Execute:\n  detail\n  ITK ERROR: no slices  \n\n"
    )
    assert _last_line(error) == "ITK ERROR: no slices"


def test_a_long_line_is_cut_at_200_characters_and_silence_is_named():
    assert _last_line(RuntimeError("first\n" + "x" * 300)) == "x" * 200
    assert _last_line(RuntimeError("  \n \n")) == "unknown error"
