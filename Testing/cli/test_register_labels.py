"""``register --moving-labels``: one label map per moving scan, carried with that scan's transform.

Label values and pixel type survive end to end, no label appears that was not in the input, a label
map is never paired with another scan's transform, arguments that cannot be paired are refused before
any work, a label map path that is a scan or an output is refused, and a changed label map counts as
a changed input when a cohort is resumed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.cohort_helpers import case_report, hidden_files, write_fixed, write_moving

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort.inputs import MovingInput, check_labels_are_not_scans, inputs_from_paths
from CTAffineRegisterLib.io.images import InputError
from CTAffineRegisterLib.resample.labels import label_values, resample_labels

SOFT_TISSUE, BONE = 7, 300
PAIRING = "check which label map goes with which scan"


def _run(*arguments: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["register", *map(str, arguments)])
    return status, out.getvalue(), err.getvalue()


def _tissue_labels(scan: sitk.Image) -> sitk.Image:
    """uint16 labels of the scan itself: soft tissue 7, bone 300, background 0."""
    values = sitk.GetArrayViewFromImage(scan)
    labels = np.zeros(values.shape, np.uint16)
    labels[(values > -300) & (values <= 150)] = SOFT_TISSUE
    labels[(values > 150) & (values <= 3000)] = BONE
    image = sitk.GetImageFromArray(labels)
    image.CopyInformation(scan)
    return image


def _body_on_another_grid(scan: sitk.Image) -> sitk.Image:
    """uint8 body mask on a grid of its own: finer spacing, cropped, but in the scan's physical space."""
    body = sitk.GetImageFromArray((sitk.GetArrayViewFromImage(scan) > -300).view(np.uint8))
    body.CopyInformation(scan)
    size = scan.GetSize()
    cropped = body[2 : size[0] - 2, 1 : size[1] - 1, :]
    spacing = [value * 0.75 for value in cropped.GetSpacing()]
    grid_size = [int(round(n * s / t)) for n, s, t in zip(cropped.GetSize(), cropped.GetSpacing(), spacing)]
    return sitk.Resample(
        cropped,
        grid_size,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        cropped.GetOrigin(),
        spacing,
        cropped.GetDirection(),
        0,
        sitk.sitkUInt8,
    )


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("register_labels")
    fixed = write_fixed(folder / "fixed.nii.gz")
    scans = [write_moving(folder / "p1.nii.gz", 1), write_moving(folder / "p2.nii.gz", 2)]
    labels = [folder / "labels" / "p1_seg.nrrd", folder / "labels" / "p2_body.nii.gz"]
    labels[0].parent.mkdir()
    sitk.WriteImage(_tissue_labels(sitk.ReadImage(str(scans[0]))), str(labels[0]))
    sitk.WriteImage(_body_on_another_grid(sitk.ReadImage(str(scans[1]))), str(labels[1]))
    return {"folder": folder, "fixed": fixed, "scans": scans, "labels": labels}


@pytest.fixture(scope="module")
def carried(inputs):
    """One run of two scans with their label maps, shared by the tests that only read it."""
    out = inputs["folder"] / "out"
    status, stdout, stderr = _run(
        "--fixed", inputs["fixed"], "--moving", *inputs["scans"], "--moving-labels", *inputs["labels"],
        "--out", out, "--jobs", "1", "--quiet",
    )  # fmt: skip
    return {"out": out, "status": status, "stdout": stdout, "stderr": stderr}


def test_each_scan_gets_its_labels_on_the_fixed_grid_values_and_type_kept(inputs, carried):
    assert carried["status"] == 0, carried["stderr"]
    out, fixed = carried["out"], sitk.ReadImage(str(inputs["fixed"]))
    fixed_values = sitk.GetArrayViewFromImage(fixed)
    for case_id, labels_path, pixel_type in (
        ("p1", inputs["labels"][0], sitk.sitkUInt16),
        ("p2", inputs["labels"][1], sitk.sitkUInt8),
    ):
        report = case_report(out, case_id)
        assert report["labels_path"] == str(labels_path)
        assert report["outputs"]["labels"] == f"{case_id}_labels.nii.gz"
        assert report["inputs"]["labels"]["path"] == os.path.realpath(labels_path)
        assert 0 < report["labels_seconds"] < report["seconds"]
        written = sitk.ReadImage(str(out / f"{case_id}_labels.nii.gz"))
        assert written.GetPixelID() == pixel_type
        assert written.GetSize() == fixed.GetSize()
        assert np.allclose(written.GetOrigin(), fixed.GetOrigin())
        assert np.allclose(written.GetSpacing(), fixed.GetSpacing())
        source = sitk.ReadImage(str(labels_path))
        # every structure survives and nothing else appears (background included)
        assert label_values(written) == label_values(source)
        assert set(np.unique(sitk.GetArrayViewFromImage(written))) == set(label_values(source)) | {0}
        # the carried body lies on the fixed scan's body
        body = (fixed_values > -300) & (fixed_values <= 3000)
        assert _dice(body, sitk.GetArrayViewFromImage(written) > 0) > 0.85
    bone = (fixed_values > 150) & (fixed_values <= 3000)
    carried_bone = sitk.GetArrayViewFromImage(sitk.ReadImage(str(out / "p1_labels.nii.gz"))) == BONE
    assert _dice(bone, carried_bone) > 0.6
    assert hidden_files(out) == []


def test_each_label_map_goes_with_its_own_scans_transform(inputs, carried):
    """The same result as carrying the labels with the transform written for that case; the other
    case's transform would put them elsewhere."""
    out, fixed = carried["out"], sitk.ReadImage(str(inputs["fixed"]))
    labels = sitk.ReadImage(str(inputs["labels"][0]))
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "p1_labels.nii.gz")))
    own = resample_labels(labels, fixed, sitk.ReadTransform(str(out / "p1_transform.tfm")))
    other = resample_labels(labels, fixed, sitk.ReadTransform(str(out / "p2_transform.tfm")))
    assert np.mean(written == sitk.GetArrayViewFromImage(own)) > 0.999
    assert np.mean(written == sitk.GetArrayViewFromImage(other)) < 0.99


def _refused(*arguments) -> str:
    started = time.perf_counter()
    status, stdout, stderr = _run(*arguments, "--quiet")
    assert status == 2, stderr
    assert time.perf_counter() - started < 5.0  # before any registration
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def test_labels_that_cannot_be_paired_with_the_scans_are_refused_before_any_work(inputs, tmp_path):
    fixed, scans, labels = inputs["fixed"], inputs["scans"], inputs["labels"]
    out = tmp_path / "out"
    line = _refused("--fixed", fixed, "--moving", *scans, "--moving-labels", labels[0], "--out", out)
    assert line == (
        "error: --moving-labels gives 1 label map for 2 --moving scans; give one per scan, in the same "
        "order (scans without labels: use a CSV --moving-list)"
    )
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(map(str, scans)) + "\n")
    line = _refused("--fixed", fixed, "--moving-list", listing, "--moving-labels", *labels, "--out", out)
    assert line.startswith("error: --moving-labels goes with --moving, not --moving-list;")
    line = _refused(
        "--fixed", fixed, "--moving-root", inputs["folder"], "--moving-labels", *labels, "--out", out
    )
    assert line.startswith("error: --moving-labels goes with --moving, not --moving-root;")
    assert not out.exists()  # not even the output folder was made


def test_a_scan_given_as_labels_is_refused_before_any_work(inputs, tmp_path):
    fixed, scans, labels = inputs["fixed"], inputs["scans"], inputs["labels"]
    out = tmp_path / "out"
    line = _refused(
        "--fixed", fixed, "--moving", *scans, "--moving-labels", labels[0], scans[1], "--out", out
    )
    assert line == f"error: {scans[1]}: is the moving scan of case p2, not a label map; {PAIRING}"
    line = _refused("--fixed", fixed, "--moving", scans[0], "--moving-labels", fixed, "--out", out)
    assert line == f"error: {fixed}: is the fixed scan, not a label map; {PAIRING}"
    link = tmp_path / "looks_like_labels.nii.gz"  # a hard link is the same file under another name
    os.link(scans[0], link)
    line = _refused("--fixed", fixed, "--moving", scans[0], "--moving-labels", link, "--out", out)
    assert line == f"error: {link}: is the moving scan of case p1 ({scans[0]}), not a label map; {PAIRING}"
    assert not out.exists()


def test_a_csv_labels_column_naming_a_scan_is_refused_the_same_way(inputs, tmp_path):
    listing = tmp_path / "cohort.csv"
    scan = inputs["scans"][0]
    listing.write_text(f"id,path,labels\nP1,{scan},{scan}\n")
    out = tmp_path / "out"
    line = _refused("--fixed", inputs["fixed"], "--moving-list", listing, "--out", out)
    assert line == f"error: {scan}: is the moving scan of case P1, not a label map; {PAIRING}"
    assert not out.exists()


def test_labels_where_an_output_goes_are_refused_even_with_overwrite(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    labels = out / "p1_labels.nii.gz"  # the case's own labels output would replace its input
    labels.write_bytes(inputs["labels"][0].read_bytes())
    before = labels.read_bytes()
    arguments = ["--fixed", inputs["fixed"], "--moving", inputs["scans"][0], "--moving-labels", labels]
    line = _refused(*arguments, "--out", out, "--overwrite")
    assert line == f"error: {labels}: is the input {labels}; writing it would destroy an input"
    assert labels.read_bytes() == before and os.listdir(out) == ["p1_labels.nii.gz"]


def test_missing_labels_fail_their_case_only_before_it_registers(inputs, tmp_path):
    missing = tmp_path / "nowhere_seg.nii.gz"
    out = tmp_path / "out"
    status, stdout, stderr = _run(
        "--fixed", inputs["fixed"], "--moving", *inputs["scans"],
        "--moving-labels", missing, inputs["labels"][1], "--out", out, "--jobs", "1", "--quiet",
    )  # fmt: skip
    assert status == 1
    assert stderr.strip().splitlines() == [f"error: {missing}: no such file"]
    failed, done = case_report(out, "p1"), case_report(out, "p2")
    assert failed["status"] == "failed" and "registration" not in failed and failed["outputs"] == {}
    assert sorted(path.name for path in out.glob("p1_*")) == ["p1_report.json"]
    assert done["status"] == "ok" and (out / "p2_labels.nii.gz").is_file()


def test_resume_treats_the_label_map_as_an_input_of_its_case(inputs, tmp_path):
    fixed, scan = inputs["fixed"], inputs["scans"][0]
    labels = tmp_path / "p1_seg.nrrd"
    labels.write_bytes(inputs["labels"][0].read_bytes())
    out = tmp_path / "out"
    with_labels = ["--fixed", fixed, "--moving", scan, "--moving-labels", labels, "--out", out, "--jobs", "1"]
    assert _run(*with_labels, "--quiet")[0] == 0
    first = (out / "p1_report.json").stat().st_mtime_ns

    status, stdout, _ = _run(*with_labels, "--quiet")  # nothing changed: the case is kept
    assert status == 0 and "(1 finished by an earlier run)" in stdout
    assert (out / "p1_report.json").stat().st_mtime_ns == first

    line = _refused("--fixed", fixed, "--moving", scan, "--out", out)  # now without labels
    assert line.startswith(f"error: {out / 'p1_report.json'}: finished from another labels input (")
    assert "now none)" in line and "use --overwrite" in line

    # the label map is edited: bone taken out. Refused without --overwrite, redone with it.
    edited = sitk.ReadImage(str(labels))
    edited = sitk.ChangeLabel(edited, changeMap={BONE: SOFT_TISSUE})
    sitk.WriteImage(edited, str(labels))
    line = _refused(*with_labels)
    assert line.startswith(f"error: {out / 'p1_report.json'}: finished from another labels input ({labels}")
    assert label_values(sitk.ReadImage(str(out / "p1_labels.nii.gz"))) == [SOFT_TISSUE, BONE]
    status, stdout, stderr = _run(*with_labels, "--overwrite", "--quiet")
    assert status == 0, stderr
    assert label_values(sitk.ReadImage(str(out / "p1_labels.nii.gz"))) == [SOFT_TISSUE]
    report = case_report(out, "p1")
    assert report["inputs"]["labels"]["bytes"] == labels.stat().st_size
    assert report["inputs"]["labels"]["mtime_ns"] == labels.stat().st_mtime_ns


def test_a_case_first_run_without_labels_is_not_resumed_with_labels(inputs, tmp_path):
    fixed, scan, labels = inputs["fixed"], inputs["scans"][0], inputs["labels"][0]
    out = tmp_path / "out"
    assert _run("--fixed", fixed, "--moving", scan, "--out", out, "--jobs", "1", "--quiet")[0] == 0
    line = _refused("--fixed", fixed, "--moving", scan, "--moving-labels", labels, "--out", out)
    assert line.startswith(f"error: {out / 'p1_report.json'}: finished from another labels input (none; now ")
    assert not (out / "p1_labels.nii.gz").exists()


def test_summary_lists_the_labels_of_each_case(carried, inputs):
    summary = json.loads((carried["out"] / "report.json").read_text())
    assert [case["labels_path"] for case in summary["cases"]] == [str(path) for path in inputs["labels"]]
    names = [case["outputs"]["labels"] for case in summary["cases"]]
    assert names == ["p1_labels.nii.gz", "p2_labels.nii.gz"]


# -- the same from Python ----------------------------------------------------------------------------


def test_inputs_from_paths_pairs_labels_in_order_and_keeps_them_through_renaming(tmp_path):
    cases = inputs_from_paths(["a/scan.nii.gz", "b/scan.nii.gz"], labels=["a/seg.nrrd", Path("b/seg.nrrd")])
    assert cases == [
        MovingInput("a/scan.nii.gz", "scan", "a/seg.nrrd"),
        MovingInput("b/scan.nii.gz", "scan_2", "b/seg.nrrd"),
    ]
    assert [case.labels for case in inputs_from_paths(["a.nii.gz"])] == [None]
    with pytest.raises(ValueError, match=r"1 label map\(s\) for 2 moving scan\(s\); give one per scan"):
        inputs_from_paths(["a.nii.gz", "b.nii.gz"], labels=["a_seg.nii.gz"])
    with pytest.raises(TypeError, match="labels must be a list of paths, not a single path"):
        inputs_from_paths(["a.nii.gz"], labels="a_seg.nii.gz")


def test_label_maps_that_are_scans_are_named_from_python(tmp_path):
    scan, fixed = tmp_path / "scan.nii.gz", tmp_path / "fixed.nii.gz"
    scan.write_bytes(b"x")
    symlink = tmp_path / "seg.nii.gz"
    symlink.symlink_to(scan)
    with pytest.raises(InputError) as refused:
        check_labels_are_not_scans(fixed, [MovingInput(str(scan), "scan", str(symlink))])
    assert refused.value.path == str(symlink)
    assert refused.value.reason.startswith("is the moving scan of case scan (")
    check_labels_are_not_scans(fixed, [MovingInput(str(scan), "scan", str(tmp_path / "x"))])  # no error
