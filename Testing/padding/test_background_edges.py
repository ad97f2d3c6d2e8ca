"""A padding value with no padded region is not padding (issue 21, item 16a): a 1×1×100 column whose
middle holds one value 20 times was called "fov-padding (15, 0% of voxels)"."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.padding.analysis import _classify, analyze_background


def _column() -> sitk.Image:
    values = np.random.default_rng(0).integers(-1000, 1000, 100)
    values[40:60] = 15  # a spike in the histogram of the "faces" (every voxel of a column is on one)
    return sitk.GetImageFromArray(values.reshape(100, 1, 1).astype(np.int16))


def test_a_spike_without_a_padded_region_is_not_called_padding():
    analysis = analyze_background(_column())
    assert analysis.kind != "fov-padding"
    assert analysis.padding_value is None and analysis.padding_fraction == 0.0
    assert "padding" not in analysis.summary
    assert sitk.GetArrayViewFromImage(analysis.valid_mask).all()


def test_inspect_on_the_column_says_no_padding(tmp_path, capsys):
    path = tmp_path / "column.nrrd"
    sitk.WriteImage(_column(), str(path))
    assert main(["inspect", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "0% of voxels" not in printed and "fov-padding" not in printed


@pytest.mark.parametrize(
    ("fraction", "printed"),
    [(0.004, "0.4%"), (0.0099, "1.0%"), (0.01, "1%"), (0.015, "2%"), (0.21, "21%"), (0.6, "60%")],
)
def test_a_padded_share_below_one_percent_is_not_printed_as_zero(fraction, printed):
    kind, summary = _classify(-3024.0, (-3024.0, -3024.0), fraction, False, None, -1000.0, True, None)
    assert kind == "fov-padding" and f"(-3024, {printed} of voxels, irregular padded region)" in summary


@pytest.mark.parametrize(
    ("corners", "padding", "note"),
    [
        (-3024.0, (-3024.0, -3024.0), False),
        (-1000.0, (-3024.0, -3024.0), True),  # Slicer would take air for the background here
        (-3001.0, (-3024.0, -3001.0), False),  # a value of the padding range
        (-3000.0, (-3024.0, -3001.0), True),
    ],
)
def test_the_summary_says_when_slicers_corner_value_is_not_the_padding(corners, padding, note):
    summary = _classify(corners, padding, 0.2, False, None, -1000.0, True, None)[1]
    assert ("; Slicer's corner background says " + f"{corners:.0f}" in summary) is note
    assert summary.endswith("irregular padded region)") is not note


def test_without_padding_the_summary_says_air_or_no_background():
    assert _classify(-1000.0, None, 0.0, False, None, -998.0, True, None) == (
        "air-background",
        "air background (-998)",
    )
    assert _classify(40.0, None, 0.0, False, None, -1024.0, False, None) == (
        "no-background",
        "no background (cropped: corners are tissue)",
    )
