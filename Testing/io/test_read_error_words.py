"""The words a user reads when SimpleITK cannot read a file (io/images.py): ITK's exception text, many
lines with a source path and an object address, becomes one short reason; and a DICOM padding value
stored unsigned is read as the signed number it is. SimpleITK's texts are quoted as it words them."""

from __future__ import annotations

import pytest

from CTAffineRegisterLib.io.images import _as_signed, _describe_read_error

NO_READER = (
    "Exception thrown in SimpleITK ImageFileReader_Execute: "
    "/tmp/SimpleITK/Code/IO/src/sitkImageReaderBase.cxx:97:\n"
    'sitk::ERROR: Unable to determine ImageIO reader for "/data/scan.nii"'
)
HEADER = (
    "Exception thrown in SimpleITK ImageFileReader_Execute: "
    "/tmp/ITK/Modules/IO/NIFTI/src/itkNiftiImageIO.cxx:1012:\n"
    "ITK ERROR: NiftiImageIO(0x55d5c8a0b2c0): Could not read header:\n"
    "/tmp/ITK/Modules/IO/NIFTI/src/itkNiftiImageIO.cxx:1012\n"
    "bad dim[0] = 9\n"
)


def test_the_itk_error_line_is_kept_without_the_source_path_and_the_object_address():
    assert _describe_read_error(RuntimeError(NO_READER)) == (
        'not a readable image (Unable to determine ImageIO reader for "/data/scan.nii")'
    )


def test_an_error_line_ending_in_a_colon_gets_the_last_line_that_says_more():
    assert (
        _describe_read_error(RuntimeError(HEADER))
        == "not a readable image (Could not read header: bad dim[0] = 9)"
    )
    last = "ITK ERROR: NiftiImageIO(0x1): Could not read header:\n"
    assert _describe_read_error(RuntimeError(last)) == "not a readable image (Could not read header:)"


def test_without_an_error_line_the_last_line_is_the_reason():
    text = "Exception thrown in SimpleITK ImageFileReader_Execute: /x.cxx:9:\nthe file is not an image\n\n"
    assert _describe_read_error(RuntimeError(text)) == "not a readable image (the file is not an image)"
    assert (
        _describe_read_error(RuntimeError("/only/a/path.cxx:12"))
        == "not a readable image (/only/a/path.cxx:12)"
    )
    assert _describe_read_error(RuntimeError("")) == "not a readable image (unknown error)"


def test_a_long_reason_is_cut_to_200_characters():
    reason = _describe_read_error(RuntimeError("ITK ERROR: " + "x" * 300))
    assert reason == f"not a readable image ({'x' * 200})"
    assert _describe_read_error(RuntimeError("y" * 300)) == f"not a readable image ({'y' * 200})"


def test_singular_directions_and_zero_spacing_are_named():
    for text in ("ITK ERROR: ImageFileReader: determinant is 0", "ITK ERROR: Bad direction in the header"):
        assert _describe_read_error(RuntimeError(text)) == (
            "its direction matrix is singular (determinant 0: the axis directions in its header do not "
            "span 3D space), so voxel positions are undefined"
        )
    assert _describe_read_error(RuntimeError("ITK ERROR: Zero-valued spacing is not supported")) == (
        "its header gives a voxel spacing of 0, so voxel positions are undefined"
    )


@pytest.mark.parametrize(
    "stored, bits, value",
    [
        (63536, 16, -2000),
        (32767, 16, 32767),
        (32768, 16, -32768),
        (200, 8, -56),
        (127, 8, 127),
        (128, 8, -128),
        (2**31, 32, -(2**31)),
        (2**31 - 1, 32, 2**31 - 1),
        (63536, 12, -2000),  # bits DICOM does not allocate are taken as 16
        (-2000, 16, -2000),
    ],
)
def test_a_padding_value_read_unsigned_is_the_signed_number_it_stands_for(stored, bits, value):
    assert _as_signed(stored, bits) == value
