"""``reference`` on three real scans: two chests of different patients and one of them cut by a
-3024 circle smaller than the body (a field of view that cuts the body). One module-wide run through
the command line, in this process; tests that change the output folder work on a copy.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil

import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.cohort_helpers import chromium_path, require_in_ci
from support.headless_browser import HeadlessChromium
from support.reference_scans import circle_cut

from CTAffineRegisterLib import choose_reference
from CTAffineRegisterLib.cli.commands import main

ROWS_JS = "Array.from(document.querySelectorAll('#cases tbody tr'))"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    first = shared_sample("nsclc_radiomics/LUNG1-001_ct.nii.gz")
    second = shared_sample("nsclc_radiomics/LUNG1-003_ct.nii.gz")
    folder = tmp_path_factory.mktemp("reference-real")
    cut = folder / "LUNG1-003_cut.nii.gz"
    sitk.WriteImage(circle_cut(sitk.ReadImage(str(second))), str(cut))
    out = folder / "ranking"
    stdout, stderr = io.StringIO(), io.StringIO()
    arguments = ["reference", "--candidates", str(first), str(second), str(cut), "--out", str(out)]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([*arguments, "--jobs", "1", "--quiet"])
    return {
        "out": out,
        "code": code,
        "stdout": stdout.getvalue(),
        "stderr": stderr.getvalue(),
        "ranking": json.loads((out / "reference.json").read_text()),
        "paths": [str(first), str(second), str(cut)],
    }


def test_a_candidate_whose_field_of_view_cuts_the_body_is_ranked_last_with_that_reason(real_run):
    ranking = real_run["ranking"]
    order = [row["id"] for row in ranking["candidates"]]
    assert real_run["code"] == 0, real_run["stderr"]
    assert order[-1] == "LUNG1-003_cut"
    last = ranking["candidates"][-1]
    assert "field of view cuts the body" in last["ranked_last_because"]
    assert last["reasons"][0].startswith("ranked last: its field of view cuts the body")
    # it is last by the rule, not by its fit: the sample fits a cut scan as well as a whole one
    assert last["registered"] == last["pairs"] == 2 and last["fit"] > 0.5
    assert ranking["recommended"]["id"] in ("LUNG1-001_ct", "LUNG1-003_ct")
    assert ranking["recommended"]["id"] == order[0]
    for row in ranking["candidates"][:2]:
        assert row["ranked_last_because"] is None
        assert row["facts"]["fov_cut_share"] < 0.1 <= last["facts"]["fov_cut_share"]
    printed = real_run["stdout"]
    assert f"recommended: {order[0]}" in printed
    assert "ranked last: its field of view cuts the body" in printed.splitlines()[3]
    assert "--fixed-from" in printed


def test_json_and_csv_hold_the_ranking_and_the_pairs_no_images(real_run):
    out, ranking = real_run["out"], real_run["ranking"]
    assert ranking["format"] == "ct-affine-register reference ranking"
    assert ranking["quality"] == "ranking" and "fit × coverage" in ranking["rule"]
    assert sorted(item["id"] for item in ranking["sample"]) == [
        "LUNG1-001_ct",
        "LUNG1-003_ct",
        "LUNG1-003_cut",
    ]
    rows = list(csv.DictReader(io.StringIO((out / "reference.csv").read_text())))
    assert [row["rank"] for row in rows] == ["1", "2", "3"]
    assert [row["id"] for row in rows] == [row["id"] for row in ranking["candidates"]]
    assert [row["recommended"] for row in rows] == ["true", "false", "false"]
    assert float(rows[0]["score"]) >= float(rows[1]["score"])
    assert "field of view cuts the body" in rows[2]["ranked_last_because"]
    assert rows[2]["fov_cut_share"] and float(rows[2]["fov_cut_share"]) >= 0.1
    for candidate in ranking["candidates"]:
        assert len(candidate["pair_results"]) == 2  # the other two scans, never itself
        for pair in candidate["pair_results"]:
            report = json.loads((out / pair["report"]).read_text())
            assert report["status"] == pair["status"] == "ok"
            assert report["quality"]["verdict"] == pair["verdict"]
            assert report["options"]["images"] is False and report["options"]["read_voxel_mm"] == 6.0
    pairs = sorted(path.name for path in (out / "pairs").iterdir())
    assert len(pairs) == 12 and all(name.endswith(("_transform.tfm", "_report.json")) for name in pairs)
    assert sorted(path.name for path in (out / "candidates").iterdir()) == [
        "LUNG1-001_ct_scan.png",
        "LUNG1-003_ct_scan.png",
        "LUNG1-003_cut_scan.png",
    ]


def test_reference_page_in_a_real_headless_browser(real_run):
    """reference.html from disk in Chromium: one row per candidate in rank order, thumbnails load,
    sorting works, the recommendation is named, no network, no script error."""
    executable = chromium_path()
    require_in_ci(executable is not None, "Debian's chromium (apt-get install chromium)")
    ranking = real_run["ranking"]
    with HeadlessChromium(executable) as browser:
        browser.open((real_run["out"] / "reference.html").as_uri())
        rows = browser.evaluate(f"{ROWS_JS}.map(row => row.dataset.id)")
        assert rows == [row["id"] for row in ranking["candidates"]]
        widths = browser.evaluate(
            "Promise.all(Array.from(document.querySelectorAll('img.thumb')).map(img => {"
            " img.loading = 'eager'; return img.decode().then(() => img.naturalWidth, () => 0); }))"
        )
        assert len(widths) == 3 and all(width > 100 for width in widths)
        assert ranking["recommended"]["id"] in browser.evaluate(
            "document.getElementById('recommended').textContent"
        )
        assert "field of view cuts the body" in browser.evaluate(f"{ROWS_JS}[2].textContent")
        browser.evaluate("document.querySelector('th[data-key=fit]').click()")
        fits = browser.evaluate(f"{ROWS_JS}.map(row => parseFloat(row.dataset.fit))")
        assert fits == sorted(fits)
        browser.evaluate("document.querySelector('th[data-key=order]').click()")
        assert browser.evaluate(f"{ROWS_JS}.map(row => row.dataset.id)") == rows
        browser.evaluate("document.querySelector('th[data-key=order]').click()")
        assert browser.evaluate(f"{ROWS_JS}.map(row => row.dataset.id)") == rows[::-1]
        urls = browser.requested_urls()
        assert urls and all(url.startswith(("file://", "about:")) for url in urls), urls
        assert browser.page_errors() == []


def test_rerun_keeps_every_registered_pair(real_run, tmp_path):
    out = tmp_path / "ranking"
    shutil.copytree(real_run["out"], out)
    before = {path.name: path.read_text() for path in (out / "pairs").glob("*_report.json")}
    ranking = choose_reference(real_run["paths"], out, jobs=1)
    after = {path.name: path.read_text() for path in (out / "pairs").glob("*_report.json")}
    assert after == before  # nothing registered again
    assert [(row["id"], row["score"]) for row in ranking["candidates"]] == [
        (row["id"], row["score"]) for row in real_run["ranking"]["candidates"]
    ]
    assert ranking["run"]["backend"] == "nothing to run"
