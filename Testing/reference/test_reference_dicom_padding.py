"""``reference`` reads each candidate DICOM series' padding tags, as ``register`` does: rings holding a
range of values (-3024..-3001) are padding only by their tags; read without them, the candidates are
not CT-like and every one is ranked last as unusable."""

from __future__ import annotations

import json

from support.cohort_helpers import TINY
from support.dicom_writer import write_volume
from support.padding_rings import RANGE_TAGS, ring_as_a_range

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.synthetic import make_pair

SMALL = {**TINY, "fixed_size": (56, 56, 24)}


def test_candidate_series_padded_with_a_range_are_ranked_as_usable(tmp_path):
    folders = []
    for seed in (1, 2):
        pair = make_pair(seed=seed, **SMALL)
        folder = tmp_path / f"series_{seed}"
        scan = ring_as_a_range(pair.moving, pair.moving_valid_mask)
        write_volume(folder, scan, RANGE_TAGS, series_uid=f"1.2.826.0.1.3680043.2.1125.8.{seed}")
        folders.append(str(folder))
    out = tmp_path / "ranking"
    code = main(["reference", "--candidates", *folders, "--out", str(out), "--jobs", "1", "--quiet"])
    ranking = json.loads((out / "reference.json").read_text())
    assert code in (0, 1)  # a tiny phantom may get a "failed" verdict; the reading is what matters here
    assert ranking["recommended"] is not None
    assert [row["problem"] for row in ranking["candidates"]] == [None, None]
    assert all("fov-padding (-3024..-3001" in row["facts"]["padding"] for row in ranking["candidates"])
