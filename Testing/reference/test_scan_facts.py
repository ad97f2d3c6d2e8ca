"""The coverage facts a reference choice ranks candidates by (reference/facts.py), on small masks whose
answer can be counted by hand: the share of the body's in-plane outline cut by the field of view, the
body's extent along the slices, and the figures written to reference.json. Fast: no scan is read."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.reference.facts import ScanFacts, fov_cut_share, scan_facts


def _counted(body: np.ndarray, valid: np.ndarray) -> float:
    """The share by its definition, voxel by voxel: an outline voxel has an in-plane neighbour that is
    not body (outside the image counts as not body); it is cut when a neighbour holds no data."""
    outline = cut = 0
    for z, y, x in zip(*np.nonzero(body)):
        on_outline = on_edge = False
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = y + dy, x + dx
            inside = 0 <= ny < body.shape[1] and 0 <= nx < body.shape[2]
            on_outline |= not inside or not body[z, ny, nx]
            on_edge |= not inside or not valid[z, ny, nx]
        outline += on_outline
        cut += on_outline and on_edge
    return cut / outline if outline else 0.0


def test_a_body_inside_its_field_of_view_is_not_cut():
    body = np.zeros((3, 9, 9), bool)
    body[1, 2:7, 2:7] = True
    assert fov_cut_share(body, np.ones_like(body)) == 0.0
    assert fov_cut_share(np.zeros_like(body), np.zeros_like(body)) == 0.0


@pytest.mark.parametrize("side", ["left", "right", "top", "bottom"])
def test_a_square_on_one_image_border_has_three_of_its_eight_outline_voxels_cut(side):
    body = np.zeros((5, 7, 8), bool)
    rows, columns = {
        "left": (slice(2, 5), slice(0, 3)),
        "right": (slice(2, 5), slice(5, 8)),
        "top": (slice(0, 3), slice(2, 5)),
        "bottom": (slice(4, 7), slice(2, 5)),
    }[side]
    body[1:4, rows, columns] = True  # three slices: neighbours across slices do not count
    assert fov_cut_share(body, np.ones_like(body)) == pytest.approx(3 / 8)


def test_padding_next_to_the_body_cuts_it_like_the_border():
    body = np.zeros((2, 8, 8), bool)
    body[0, 2:6, 2:6] = True  # 12 outline voxels
    valid = np.ones_like(body)
    valid[0, :, 6:] = False  # padding right of the body: its right column (4 voxels) is cut
    assert fov_cut_share(body, valid) == pytest.approx(4 / 12)
    valid[0, 1, :] = False  # and above it: 3 more of the top row (its right corner was cut already)
    assert fov_cut_share(body, valid) == pytest.approx(7 / 12)
    valid[1] = False  # padding in a slice without body changes nothing
    assert fov_cut_share(body, valid) == pytest.approx(7 / 12)


def test_random_bodies_and_fields_of_view_give_the_share_by_its_definition():
    generator = np.random.default_rng(4)
    for _ in range(20):
        shape = tuple(generator.integers(1, 7, size=3))
        body = generator.random(shape) < 0.6
        valid = generator.random(shape) < 0.8
        assert fov_cut_share(body, valid) == pytest.approx(_counted(body, valid), abs=1e-12)


def _image(array: np.ndarray, spacing) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing)
    return image


def test_scan_facts_take_extent_from_the_analysed_grid_and_size_from_the_scan_as_read():
    body = np.zeros((6, 5, 4), bool)  # (z, y, x): 6 slices of 3 mm
    body[1:4, 1:4, 1:3] = True  # 3 slices with body
    valid = np.ones_like(body)
    small = _image(np.zeros_like(body), (2.0, 2.5, 3.0))
    analysis = SimpleNamespace(
        body_mask=_image(body, small.GetSpacing()),
        valid_mask=_image(valid, small.GetSpacing()),
        summary="no padding found",
        kind="air-background",
    )
    original = sitk.Image([8, 10, 18], sitk.sitkInt16)
    original.SetSpacing((1.0, 1.25, 1.0))
    facts = scan_facts(small, analysis, original)
    assert facts == ScanFacts(
        fov_cut_share=0.0,
        body_extent_mm=9.0,
        slice_mm=1.0,
        padding="no padding found",
        padding_kind="air-background",
        size=(8, 10, 18),
        spacing_mm=(1.0, 1.25, 1.0),
    )
    alone = scan_facts(small, analysis)  # no original: the analysed scan itself
    assert alone.size == (4, 5, 6) and alone.slice_mm == 3.0 and alone.spacing_mm == (2.0, 2.5, 3.0)
    assert alone.body_extent_mm == 9.0
    assert all(type(value) is int for value in alone.size)
    assert all(type(value) is float for value in (*alone.spacing_mm, alone.slice_mm))


def test_facts_are_written_rounded_and_as_plain_lists():
    facts = ScanFacts(0.123456, 412.3456, 1.23456, "p", "k", (512, 512, 300), (0.7421875, 0.7421875, 1.25))
    assert facts.to_dict() == {
        "fov_cut_share": 0.1235,
        "body_extent_mm": 412.3,
        "slice_mm": 1.235,
        "padding": "p",
        "padding_kind": "k",
        "size": [512, 512, 300],
        "spacing_mm": [0.7422, 0.7422, 1.25],
    }
