"""``register`` reads each DICOM series' Pixel Padding Value and Range Limit, for the fixed scan and for
every moving scan, whether a lone moving scan is read ahead or several are read in turn. The rings
here hold a range of values (-3024..-3001): only the tags make them padding; without them the scans
are not CT-like at all (values below -1024) and the cases fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import SimpleITK as sitk
from support.dicom_writer import write_volume
from support.padding_rings import RANGE_TAGS, ring_as_a_range
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.synthetic import make_pair


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> dict:
    pair = make_pair(seed=21, fixed_padding=-3024.0, **TINY_PAIR)
    folder = tmp_path_factory.mktemp("series")
    fixed = ring_as_a_range(pair.fixed, pair.fixed_valid_mask)
    moving = ring_as_a_range(pair.moving, pair.moving_valid_mask)
    write_volume(folder / "fixed", fixed, RANGE_TAGS, series_uid="1.2.826.0.1.3680043.2.1125.7.1")
    write_volume(folder / "moving_a", moving, RANGE_TAGS, series_uid="1.2.826.0.1.3680043.2.1125.7.2")
    write_volume(folder / "moving_b", moving, RANGE_TAGS, series_uid="1.2.826.0.1.3680043.2.1125.7.3")
    return {name: folder / name for name in ("fixed", "moving_a", "moving_b")}


def _cases(out: Path) -> list[dict]:
    return json.loads((out / "report.json").read_text())["cases"]


def _check_case(case: dict, out: Path) -> None:
    assert case["status"] == "ok", case["error"]
    for role in ("fixed", "moving"):
        assert case[role]["padding_source"] == "dicom-tag", role
    assert case["quality"]["verdict"] == "ok"
    registered = sitk.GetArrayFromImage(sitk.ReadImage(str(out / case["outputs"]["registered"])))
    assert registered.min() > -1100  # no ring value reached the output


def test_a_lone_moving_series_and_the_fixed_one_are_read_with_their_tags(tmp_path, series):
    out = tmp_path / "out"
    arguments = ["register", "--fixed", str(series["fixed"]), "--moving", str(series["moving_a"])]
    assert main([*arguments, "--out", str(out), "--quiet"]) == 0
    (case,) = _cases(out)
    assert case.get("read_ahead")  # the lone scan was read beside the fixed analysis
    _check_case(case, out)


def test_moving_series_read_in_turn_are_read_with_their_tags(tmp_path, series):
    out = tmp_path / "out"
    arguments = ["register", "--fixed", str(series["fixed"]), "--moving", str(series["moving_a"])]
    arguments += [str(series["moving_b"]), "--out", str(out), "--jobs", "1", "--quiet"]
    assert main(arguments) == 0
    cases = _cases(out)
    assert len(cases) == 2 and not any(case.get("read_ahead") for case in cases)
    for case in cases:
        _check_case(case, out)
