"""A cohort run from the command line, in this process: outputs, reports, error lines, resume.

One module-wide run of six cases (four register, two fail) is shared by the tests that only read
it; tests that change an output folder work on a copy.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import SimpleITK as sitk
from support.cohort_helpers import (
    case_report,
    chromium_path,
    hidden_files,
    require_in_ci,
    write_fixed,
    write_moving,
)
from support.headless_browser import HeadlessChromium

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort.case import CaseOptions, input_fingerprint
from CTAffineRegisterLib.cohort.inputs import MovingInput, inputs_from_list_file
from CTAffineRegisterLib.cohort.resume import BLOCKED, CONFLICT, DONE, RUN, plan_case
from CTAffineRegisterLib.cohort.run import exit_status, run_cohort
from CTAffineRegisterLib.registration.engine import RegistrationOptions

CASE_KEYS = {
    "format", "schema", "tool_version", "id", "moving_path", "status", "error", "trustworthy",
    "trust_reason", "inputs", "options", "where", "run_id", "started", "finished", "seconds",
    "fixed", "moving", "fill", "quality", "outputs", "output_bytes",
}  # fmt: skip


def _run_cli(*arguments: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(arguments))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Inputs a/scan, b/scan, c/scan_2 (names that used to collide), a file named ".nii.gz", a
    missing file and a 2D image; one run with --jobs 1 (in this process)."""
    folder = tmp_path_factory.mktemp("cohort")
    fixed = write_fixed(folder / "in" / "fixed.nii.gz")
    moving = [
        write_moving(folder / "in" / "a" / "scan.nii.gz", 1),
        write_moving(folder / "in" / "b" / "scan.nii.gz", 2),
        write_moving(folder / "in" / "c" / "scan_2.nii.gz", 3),
        write_moving(folder / "in" / "d" / ".nii.gz", 4),
        folder / "in" / "missing.nii.gz",
        folder / "in" / "flat.nrrd",
    ]
    sitk.WriteImage(sitk.Image([16, 16], sitk.sitkInt16), str(moving[-1]))
    out = folder / "out"
    arguments = ["register", "--fixed", str(fixed), "--moving", *map(str, moving)]
    arguments += ["--out", str(out), "--jobs", "1"]
    status, stdout, stderr = _run_cli(*arguments)
    return {"folder": folder, "fixed": fixed, "moving": moving, "out": out, "arguments": arguments,
            "status": status, "stdout": stdout, "stderr": stderr}  # fmt: skip


def test_every_case_gets_its_own_outputs_and_nothing_hidden(cohort):
    out = cohort["out"]
    assert cohort["status"] == 1  # two cases failed
    report = json.loads((out / "report.json").read_text())
    ids = [case["id"] for case in report["cases"]]
    assert ids == ["scan", "scan_3", "scan_2", "unnamed", "missing", "flat"]
    for case_id, path in zip(ids[:4], cohort["moving"][:4]):
        own = case_report(out, case_id)
        assert own["status"] == "ok" and own["moving_path"] == str(path)
        for role, name in own["outputs"].items():
            assert (out / name).stat().st_size == own["output_bytes"][role]
    assert hidden_files(out) == []
    assert not any(name.startswith(("missing", "flat")) and "report" not in name for name in os.listdir(out))


def test_case_report_schema_and_where_it_ran(cohort):
    own = case_report(cohort["out"], "scan")
    assert CASE_KEYS <= set(own)
    assert own["format"] == "ct-affine-register case report" and own["trustworthy"] is True
    assert own["where"]["backend"] == "in-process" and own["where"]["host"] and own["where"]["worker"] is None
    assert own["inputs"]["moving"] == input_fingerprint(str(cohort["moving"][0]))
    assert own["options"] == CaseOptions().to_dict()
    assert set(own["outputs"]) == {"registered", "transform", "validmask", "qc", "qc_thumb"}
    assert own["outputs"]["registered"] == "scan_registered.nii.gz"
    thumb = sitk.ReadImage(str(cohort["out"] / own["outputs"]["qc_thumb"]))
    full = sitk.ReadImage(str(cohort["out"] / own["outputs"]["qc"]))
    assert thumb.GetSize()[0] == full.GetSize()[0] // 3
    failed = case_report(cohort["out"], "missing")
    assert failed["status"] == "failed" and failed["outputs"] == {} and failed["trustworthy"] is False


def test_each_failure_is_one_error_line_naming_the_input(cohort):
    errors = [line for line in cohort["stderr"].splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {cohort['moving'][4]}: no such file or folder",
        f"error: {cohort['moving'][5]}: is 2D; a 3D volume is needed",
    ]
    assert "FAILED" not in cohort["stderr"] and "failed:" not in cohort["stderr"]
    assert "Traceback" not in cohort["stderr"]
    assert cohort["stdout"].startswith("4 registered: 4 ok, 0 suspect, 0 failed verdict; 2 failed; report: ")


def test_summary_json_and_csv_hold_every_case(cohort):
    report = json.loads((cohort["out"] / "report.json").read_text())
    assert report["format"] == "ct-affine-register cohort report"
    assert report["counts"] == {
        "cases": 6, "registered": 4, "verdicts": {"ok": 4, "suspect": 0, "failed": 0},
        "failed": 2, "cancelled": 0, "resumed": 0,
    }  # fmt: skip
    assert report["fixed"]["path"] == str(cohort["fixed"]) and report["run"]["state"] == "finished"
    # the summary's cases carry the cohort review; too few here to judge outliers
    assert report["cases"][0]["quality"]["cohort"]["judged"] is False
    rows = list(csv.DictReader(io.StringIO((cohort["out"] / "report.csv").read_text())))
    assert [row["id"] for row in rows] == [case["id"] for case in report["cases"]]
    assert rows[0]["status"] == "ok" and rows[0]["padding_kind"] == "fov-padding"
    assert rows[0]["padding_value"] == "-3024" and float(rows[0]["figure_body_dice"]) > 0.8
    assert rows[4]["status"] == "failed" and "no such file" in rows[4]["error"]


def test_memory_of_a_case_is_released(cohort):
    """The registration method used to stay alive with its images (35 MB per case) through the
    iteration callback's reference cycle: a long --jobs 1 cohort grew without bound."""
    gc.collect()
    assert sum(isinstance(obj, sitk.ImageRegistrationMethod) for obj in gc.get_objects()) == 0


def test_rerun_skips_finished_cases_and_reruns_failed_and_incomplete_ones(cohort, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(cohort["out"], out)
    arguments = [*cohort["arguments"][:-4], "--out", str(out), "--jobs", "1"]
    before = {path.name: path.stat().st_mtime_ns for path in out.glob("scan*_report.json")}
    (out / "scan_2_qc.png").unlink()  # an incomplete case: one output missing
    status, stdout, stderr = _run_cli(*arguments)
    assert status == 1  # the two bad inputs still fail
    assert "4 registered: 4 ok" in stdout and "(3 finished by an earlier run)" in stdout
    assert (out / "scan_2_qc.png").is_file()
    after = {path.name: path.stat().st_mtime_ns for path in out.glob("scan*_report.json")}
    assert after["scan_report.json"] == before["scan_report.json"]  # untouched
    assert after["scan_3_report.json"] == before["scan_3_report.json"]
    assert after["scan_2_report.json"] != before["scan_2_report.json"]  # redone
    assert stderr.count("error:") == 2
    summary = json.loads((out / "report.json").read_text())
    assert [case.get("resumed", False) for case in summary["cases"]][:4] == [True, True, False, True]


def test_rerun_with_other_options_or_changed_inputs_is_refused(cohort, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(cohort["out"], out)
    arguments = [*cohort["arguments"][:-4], "--out", str(out), "--jobs", "1"]
    listing = sorted(os.listdir(out))
    status = main([*arguments, "--fill", "-1000"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "finished from other options (fill None now -1000.0)" in err
    assert "4 finished cases like this" in err
    moved = cohort["moving"][1]
    stat = moved.stat()
    try:
        os.utime(moved, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the scan was replaced
        assert main(arguments) == 2
        assert f"scan_3_report.json: finished from another moving input ({moved}" in capsys.readouterr().err
    finally:
        os.utime(moved, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert sorted(os.listdir(out)) == listing  # nothing was written


def test_plan_of_each_case(cohort, tmp_path):
    fixed = input_fingerprint(str(cohort["fixed"]))
    options = CaseOptions()
    case = MovingInput(str(cohort["moving"][0]), "scan")
    assert plan_case(case, str(cohort["out"]), options, fixed, overwrite=False).action == DONE
    assert plan_case(case, str(cohort["out"]), options, fixed, overwrite=True).action == RUN
    other = CaseOptions(interpolator="bspline")
    assert plan_case(case, str(cohort["out"]), other, fixed, overwrite=False).action == CONFLICT
    failed_before = MovingInput("x.nii.gz", "missing")
    assert plan_case(failed_before, str(cohort["out"]), options, fixed, overwrite=False).action == RUN
    (tmp_path / "new_qc.png").write_bytes(b"someone else's picture")
    blocked = plan_case(MovingInput("new.nii.gz", "new"), str(tmp_path), options, fixed, overwrite=False)
    assert blocked.action == BLOCKED and "new_qc.png: already exists" in blocked.reason


def test_existing_foreign_outputs_fail_only_their_case_before_registering(cohort, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scan_transform.tfm").write_text("keep me")
    start = time.perf_counter()
    summary = run_cohort(cohort["fixed"], [cohort["moving"][0]], out, jobs=1)
    assert time.perf_counter() - start < 5.0  # no registration was started
    assert (out / "scan_transform.tfm").read_text() == "keep me"
    case = summary["cases"][0]
    assert case["status"] == "failed" and "scan_transform.tfm: already exists" in case["error"]
    assert not (out / "scan_report.json").exists() and exit_status(summary) == 1


def test_failed_verdict_keeps_outputs_marks_them_untrustworthy_and_fails_the_run(cohort, tmp_path):
    """A start at an implausible scale with no room to recover (one iteration, no last stage: with it,
    the probes carry even this start back): the result must be judged "failed"."""
    wrong = sitk.AffineTransform(3)
    wrong.SetMatrix([1.8, 0, 0, 0, 1.8, 0, 0, 0, 1.8])
    options = RegistrationOptions(
        initial_transform=wrong, max_iterations_per_level=1, level_count=1, refine_to_optimum=False
    )
    out = tmp_path / "out"
    summary = run_cohort(cohort["fixed"], [cohort["moving"][0]], out, jobs=1, options=options)
    case = summary["cases"][0]
    assert case["status"] == "ok" and case["quality"]["verdict"] == "failed"
    assert case["trustworthy"] is False and case["trust_reason"].startswith("quality verdict failed: ")
    assert (out / "scan_registered.nii.gz").is_file()
    assert summary["summary_line"] == "1 registered: 0 ok, 0 suspect, 1 failed verdict; 0 failed"
    assert exit_status(summary) == 1
    assert case_report(out, "scan")["options"]["registration"]["max_iterations_per_level"] == 1


ROWS_JS = "Array.from(document.querySelectorAll('#cases tbody tr'))"


def test_cohort_page_in_a_real_headless_browser(cohort, tmp_path):
    """report.html opened from disk by Debian's Chromium: every case listed, failures first,
    thumbnails load and link to the full pictures, sorting works, no network, no script error."""
    executable = chromium_path()
    require_in_ci(executable is not None, "Debian's chromium (apt-get install chromium)")
    page = cohort["out"] / "report.html"
    with HeadlessChromium(executable) as browser:
        browser.open(page.as_uri())
        rows = browser.evaluate(f"{ROWS_JS}.map(row => row.dataset.id)")
        assert rows[:2] == ["missing", "flat"] and sorted(rows[2:]) == ["scan", "scan_2", "scan_3", "unnamed"]
        sizes = browser.evaluate(
            "Promise.all(Array.from(document.querySelectorAll('img.thumb')).map(img => {"
            " img.loading = 'eager'; return img.decode().then(() => img.naturalWidth, () => 0); }))"
        )
        assert sizes == [256] * 4
        links = browser.evaluate(
            "Array.from(document.querySelectorAll('img.thumb')).map(i => i.parentNode.href)"
        )
        assert all(
            link.endswith("_qc.png") and Path(unquote(link[len("file://") :])).is_file() for link in links
        )
        assert "no picture" in browser.evaluate(f"{ROWS_JS}[0].textContent")

        browser.evaluate("document.querySelector('th[data-key=seconds]').click()")
        seconds = browser.evaluate(f"{ROWS_JS}.map(row => parseFloat(row.dataset.seconds))")
        assert seconds == sorted(seconds)
        browser.evaluate("document.querySelector('th[data-key=seconds]').click()")
        assert (
            browser.evaluate(f"{ROWS_JS}.map(row => parseFloat(row.dataset.seconds))")
            == sorted(seconds)[::-1]
        )
        browser.evaluate("document.querySelector('th[data-key=padding]').click()")
        padding = browser.evaluate(f"{ROWS_JS}.map(row => row.dataset.padding)")
        assert padding == sorted(padding) and padding[-1] == "fov-padding"
        browser.evaluate("document.querySelector('th[data-key=verdict]').click()")
        assert browser.evaluate(f"{ROWS_JS}.map(row => row.dataset.id)") == rows

        dots = browser.evaluate("document.querySelectorAll('#figures circle').length")
        summary = json.loads((cohort["out"] / "report.json").read_text())
        expected = sum(
            1 + sum(isinstance(value, (int, float)) for value in case["quality"]["figures"].values())
            for case in summary["cases"]
            if case["status"] == "ok"
        )
        assert dots == expected  # one per registered case for each numeric figure and for seconds
        browser.screenshot(str(tmp_path / "report.png"))
        browser.open("about:blank")
        browser.open(page.as_uri() + "#sort=seconds-desc")  # a sorted view can be bookmarked
        reloaded = browser.evaluate(f"{ROWS_JS}.map(row => parseFloat(row.dataset.seconds))")
        assert reloaded[:4] == sorted(seconds)[::-1][:4]
        urls = browser.requested_urls()
        assert urls and all(url.startswith(("file://", "about:")) for url in urls), urls
        assert browser.page_errors() == []
    if os.environ.get("CTAR_SCREENSHOT"):  # to look at the page: CTAR_SCREENSHOT=page.png pytest ...
        shutil.copy(tmp_path / "report.png", os.environ["CTAR_SCREENSHOT"])
    picture = sitk.ReadImage(str(tmp_path / "report.png"))
    assert picture.GetSize()[0] >= 1000 and picture.GetNumberOfComponentsPerPixel() >= 3


def test_labels_from_a_csv_list_are_carried_to_the_fixed_grid(cohort, tmp_path):
    moving = cohort["moving"][0]
    scan = sitk.ReadImage(str(moving))
    labels = sitk.Cast(scan > -500, sitk.sitkUInt8) + sitk.Cast(scan > 300, sitk.sitkUInt8)  # body 1, bone 2
    sitk.WriteImage(labels, str(tmp_path / "scan_seg.nrrd"))
    listing = tmp_path / "cohort.csv"
    listing.write_text(f"id,path,labels\nP1,{moving},scan_seg.nrrd\n")
    out = tmp_path / "out"
    summary = run_cohort(cohort["fixed"], inputs_from_list_file(listing), out, jobs=1)
    case = summary["cases"][0]
    assert case["status"] == "ok" and case["labels_path"] == str(tmp_path / "scan_seg.nrrd")
    assert case["outputs"]["labels"] == "P1_labels.nii.gz"
    carried = sitk.ReadImage(str(out / "P1_labels.nii.gz"))
    fixed = sitk.ReadImage(str(cohort["fixed"]))
    assert carried.GetSize() == fixed.GetSize() and carried.GetPixelID() == sitk.sitkUInt8
    values = sitk.GetArrayViewFromImage(carried)
    assert set(np.unique(values)) == {0, 1, 2}
    body = sitk.GetArrayViewFromImage(fixed) > -500  # the carried body lies on the fixed body
    overlap = 2 * np.count_nonzero(body & (values > 0)) / (np.count_nonzero(body) + np.count_nonzero(values))
    assert overlap > 0.85


def test_labels_of_a_scan_stored_far_from_the_fixed_one_are_carried(tmp_path):
    """Another dataset's scanner puts its scans hundreds of millimetres away in physical space: a label
    map is checked against its own moving scan (where it lies), not against the fixed scan."""
    fixed = write_fixed(tmp_path / "fixed.nii.gz")
    scan = sitk.ReadImage(str(write_moving(tmp_path / "scan.nii.gz", 1)))
    scan.SetOrigin(np.add(scan.GetOrigin(), (0.0, 0.0, 600.0)).tolist())  # another table position
    sitk.WriteImage(scan, str(tmp_path / "scan.nii.gz"))
    labels = sitk.Cast(scan > -500, sitk.sitkUInt8) + sitk.Cast(scan > 300, sitk.sitkUInt8)  # body 1, bone 2
    sitk.WriteImage(labels, str(tmp_path / "scan_seg.nrrd"))
    listing = tmp_path / "cohort.csv"
    listing.write_text("id,path,labels\nP1,scan.nii.gz,scan_seg.nrrd\n")
    out = tmp_path / "out"
    summary = run_cohort(fixed, inputs_from_list_file(listing), out, jobs=1)
    case = summary["cases"][0]
    assert case["status"] == "ok", case.get("error")
    carried = sitk.GetArrayFromImage(sitk.ReadImage(str(out / case["outputs"]["labels"])))
    body = (
        sitk.GetArrayFromImage(sitk.ReadImage(str(fixed))) > -500
    )  # the carried body lies on the fixed body
    overlap = (
        2 * np.count_nonzero(body & (carried > 0)) / (np.count_nonzero(body) + np.count_nonzero(carried))
    )
    assert set(np.unique(carried)) == {0, 1, 2} and overlap > 0.85


def test_labels_that_do_not_lie_on_their_scan_fail_the_case_before_it_registers(cohort, tmp_path):
    moving = cohort["moving"][0]
    scan = sitk.ReadImage(str(moving))
    labels = sitk.Cast(scan > -500, sitk.sitkUInt8)
    labels.SetOrigin(np.add(labels.GetOrigin(), (0.0, 0.0, 2000.0)).tolist())  # labels of another scan
    sitk.WriteImage(labels, str(tmp_path / "elsewhere.nrrd"))
    listing = tmp_path / "cohort.csv"
    listing.write_text(f"id,path,labels\nP1,{moving},elsewhere.nrrd\n")
    summary = run_cohort(cohort["fixed"], inputs_from_list_file(listing), tmp_path / "out", jobs=1)
    case = summary["cases"][0]
    assert case["status"] == "failed" and case["error"].startswith(str(tmp_path / "elsewhere.nrrd"))
    assert "registration" not in case  # refused before any registration work
    assert not any(
        name.startswith("P1_") and not name.endswith("_report.json") for name in os.listdir(tmp_path / "out")
    )
