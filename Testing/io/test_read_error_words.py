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
    # a source position after it says nothing more
    cut = HEADER.rsplit("bad dim", 1)[0]
    assert _describe_read_error(RuntimeError(cut)) == "not a readable image (Could not read header:)"


NRRD_NO_SIZES = (
    "Exception thrown in SimpleITK ImageFileReader_Execute: "
    "/tmp/SimpleITK-build/ITK/Modules/IO/NRRD/src/itkNrrdImageIO.cxx:410:\n"
    "itk::ERROR: NrrdImageIO(0x556521b76cb0): ReadImageInformation: Error reading b.nrrd:\n"
    '[nrrd] nrrdLoad: trouble reading "b.nrrd"\n'
    "[nrrd] nrrdRead: trouble\n"
    "[nrrd] _nrrdRead: trouble reading NRRD file\n"
    "[nrrd] _nrrdFormatNRRD_read: finished reading header, but there were problems\n"
    "[nrrd] _nrrdHeaderCheck: didn't see required field: sizes\n"
)


def test_of_several_lines_after_an_error_line_ending_in_a_colon_the_last_is_kept():
    """NRRD's reader stacks its callers' complaints; the last line names what is wrong."""
    assert _describe_read_error(RuntimeError(NRRD_NO_SIZES)) == (
        "not a readable image (ReadImageInformation: Error reading b.nrrd: "
        "[nrrd] _nrrdHeaderCheck: didn't see required field: sizes)"
    )


def test_without_an_error_line_the_last_line_is_the_reason():
    text = "Exception thrown in SimpleITK ImageFileReader_Execute: /x.cxx:9:\nthe file is not an image\n\n"
    assert _describe_read_error(RuntimeError(text)) == "not a readable image (the file is not an image)"
    assert (
        _describe_read_error(RuntimeError("/only/a/path.cxx:12"))
        == "not a readable image (/only/a/path.cxx:12)"
    )
    assert _describe_read_error(RuntimeError("")) == "not a readable image (unknown error)"
    # ITK's "Exception thrown in" preamble is not a reason while another line is left
    preamble = "Exception thrown in SimpleITK ImageFileReader_Execute: /x.cxx:9:\n/x.cxx:9\n"
    assert _describe_read_error(RuntimeError(preamble)) == "not a readable image (/x.cxx:9)"


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
