"""What a person sees in the QC picture (quality/picture.py): the window's grey levels, the head up in
the coronal and sagittal planes, checkerboard tiles alternating fixed and registered, the fusion's
colours (fixed magenta, registered green), each panel centred on its black square; and the cohort
page's thumbnail as block means. Fast: tiny synthetic volumes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.quality.picture import (
    CHECKER_TILES,
    PANEL_PIXELS,
    qc_picture,
    thumbnail,
    write_qc_picture,
)


def _volume(array: np.ndarray, spacing=(1.0, 1.0, 2.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    return image


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """Fixed: air in its lower half (z), +1000 HU in its upper half; registered: 0 HU everywhere."""
    upper = np.full((16, 32, 32), -1000, np.int16)
    upper[8:] = 1000
    fixed = _volume(upper)
    registered = _volume(np.zeros((16, 32, 32), np.float32))
    return sitk.GetArrayFromImage(qc_picture(fixed, registered))


def test_two_rows_of_three_square_panels(picture):
    assert picture.shape == (2 * PANEL_PIXELS, 3 * PANEL_PIXELS, 3) and picture.dtype == np.uint8
    assert PANEL_PIXELS == 256 and CHECKER_TILES == 8


def test_the_fusion_shows_fixed_in_magenta_and_registered_in_green_with_the_head_up(picture):
    fusion = picture[PANEL_PIXELS:]
    for panel in (1, 2):  # coronal, sagittal: the fixed scan's upper half (high z) at the top
        column = panel * PANEL_PIXELS + PANEL_PIXELS // 2
        assert fusion[10, column].tolist() == [255, 127, 255]  # +1000 HU white, 0 HU mid-grey
        assert fusion[PANEL_PIXELS - 10, column].tolist() == [0, 127, 0]  # -1000 HU black


def test_checkerboard_tiles_alternate_fixed_and_registered(picture):
    tile = PANEL_PIXELS // CHECKER_TILES
    coronal = picture[:PANEL_PIXELS, PANEL_PIXELS : 2 * PANEL_PIXELS]
    assert coronal[10, 10].tolist() == [255, 255, 255]  # first tile: fixed (top: +1000 HU)
    assert coronal[10, tile + 10].tolist() == [127, 127, 127]  # next tile: registered
    assert coronal[tile + 10, 10].tolist() == [127, 127, 127]
    assert coronal[tile + 10, tile + 10].tolist() == [255, 255, 255]
    assert coronal[PANEL_PIXELS - 10, 10].tolist() == [127, 127, 127]  # row 7: registered
    assert coronal[PANEL_PIXELS - 10, tile + 10].tolist() == [0, 0, 0]  # fixed's air


def test_a_flat_scan_is_centred_on_a_black_square():
    fixed = _volume(np.full((16, 16, 32), 1000, np.int16), (1.0, 1.0, 1.0))  # 32 mm wide, 16 deep and high
    picture = sitk.GetArrayFromImage(qc_picture(fixed, fixed))
    axial = picture[:PANEL_PIXELS, :PANEL_PIXELS]
    assert (axial[:64] == 0).all() and (axial[192:] == 0).all()  # 128 rows of scan, centred
    assert (axial[64:192] == 255).all()
    sagittal = picture[PANEL_PIXELS:, 2 * PANEL_PIXELS :]
    assert (sagittal[:, :64] == 0).all() and (sagittal[:, 192:] == 0).all()
    assert (sagittal[64:192, 64:192] == 255).all()


def test_the_window_maps_minus_1000_to_black_and_1000_to_white_clipping_beyond():
    values = {-3024: 0, -1000: 0, 0: 127, 500: 191, 1000: 255, 3000: 255}
    for hu, grey in values.items():
        scan = _volume(np.full((8, 8, 8), hu, np.float64))
        picture = sitk.GetArrayFromImage(qc_picture(scan, scan))
        assert picture[PANEL_PIXELS // 2, PANEL_PIXELS // 2].tolist() == [grey] * 3, hu


def test_a_thumbnail_is_the_block_means_of_whole_blocks():
    rgb = np.zeros((4, 7, 3), np.uint8)
    rgb[:3, :3] = [[[0, 1, 2]] * 3] * 2 + [[[3, 4, 6]] * 3]  # block means 1, 2, 3.33
    rgb[:3, 3:6] = 250
    rgb[3, :] = 99  # the rows and columns beyond whole blocks are dropped
    rgb[:, 6] = 99
    small = thumbnail(sitk.GetImageFromArray(rgb, isVector=True), 3)
    assert small.GetSize() == (2, 1) and small.GetNumberOfComponentsPerPixel() == 3
    assert sitk.GetArrayFromImage(small).tolist() == [[[1, 2, 3], [250, 250, 250]]]
    default = thumbnail(sitk.GetImageFromArray(np.full((512, 768, 3), 7, np.uint8), isVector=True))
    assert default.GetSize() == (256, 170)


def test_the_picture_is_written_as_png_whatever_the_file_is_called(tmp_path):
    scan = _volume(np.zeros((4, 8, 8), np.int16))
    path = tmp_path / "qc_picture.tmp"
    write_qc_picture(scan, scan, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sitk.ReadImage(str(path), imageIO="PNGImageIO").GetSize() == (3 * PANEL_PIXELS, 2 * PANEL_PIXELS)


def test_picture_pixels_sit_on_the_scans_own_positions():
    """A step from -1000 to +1000 HU between voxels 31 and 32 along x (1 mm voxels, 64 mm across,
    so 0.25 mm picture pixels): pixel i's centre lies at x = -0.5 + 0.125 + 0.25 i mm, and linear
    interpolation puts it 2000 HU × (x - 31) up the step."""
    step = np.full((64, 64, 64), -1000, np.int16)
    step[:, :, 32:] = 1000
    scan = _volume(step, (1.0, 1.0, 1.0))
    axial = sitk.GetArrayFromImage(qc_picture(scan, scan))[PANEL_PIXELS : 2 * PANEL_PIXELS, :PANEL_PIXELS, 0]
    for column in (126, 127, 128):
        x = -0.5 + 0.125 + 0.25 * column
        hu = -1000.0 + 2000.0 * (x - 31.0)
        assert (axial[:, column] == int((hu + 1000.0) / 2000.0 * 255.0)).all(), column
    assert (axial[:, 120] == 0).all() and (axial[:, 140] == 255).all()


def test_a_scan_about_one_picture_pixel_thin_still_shows_its_axial_plane():
    thin = _volume(np.full((2, 256, 256), 1000, np.int16), (2.0, 2.0, 0.6))  # 512 mm wide, 1.2 mm thin
    picture = sitk.GetArrayFromImage(qc_picture(thin, thin))
    assert (picture[:PANEL_PIXELS, :PANEL_PIXELS] == 255).all()


def test_a_negative_huge_fill_draws_black_without_warnings():
    values = np.zeros((8, 8, 8), np.float64)
    values[:, :, :4] = -1e300  # a fill near float64's limit, far beyond float32's
    scan = _volume(values, (1.0, 1.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picture = sitk.GetArrayFromImage(qc_picture(scan, scan))
    axial = picture[:PANEL_PIXELS, :PANEL_PIXELS, 0]
    assert axial[:, 0].tolist() == [0] * PANEL_PIXELS and axial[:, -1].tolist() == [127] * PANEL_PIXELS


def test_a_narrow_panel_gets_checker_tiles_of_whole_pixels():
    """A scan 512 mm wide but 20 mm deep and high: its sagittal panel is 10 × 10 pixels, too small
    for eight tiles of whole pixels, so the tiles are one pixel each."""
    scan = _volume(np.full((10, 10, 256), 1000, np.int16), (2.0, 2.0, 2.0))
    dark = _volume(np.full((10, 10, 256), -1000, np.int16), (2.0, 2.0, 2.0))
    picture = sitk.GetArrayFromImage(qc_picture(scan, dark))
    top, left = (PANEL_PIXELS - 10) // 2, 2 * PANEL_PIXELS + (PANEL_PIXELS - 10) // 2
    sagittal = picture[top : top + 10, left : left + 10, 0]
    rows, columns = np.indices((10, 10))
    assert np.array_equal(sagittal, np.where((rows + columns) % 2 == 0, 255, 0))
