"""``reference`` and ``register --fixed-from`` from the command line, on tiny phantoms: the pick is
used and named, and bad inputs give one ``error:`` line (exit 2) or rank the candidate last."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk
from support.cohort_helpers import TINY
from support.dicom_writer import write_series

from CTAffineRegisterLib import InputError, choose_reference
from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.reference.report import csv_text, render_ranking_page
from CTAffineRegisterLib.synthetic import make_pair

# The cohort tests' tiny phantoms on a wider field, so the body lies inside it (not cut by the border)
SMALL = {**TINY, "fixed_size": (56, 56, 24)}


def write_fixed(path):
    sitk.WriteImage(make_pair(seed=0, **SMALL).fixed, str(path))
    return path


def write_moving(path, seed: int):
    sitk.WriteImage(make_pair(seed=seed, **SMALL).moving, str(path))
    return path


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference-phantoms")
    scans = [
        write_fixed(folder / "a.nii.gz"),
        write_moving(folder / "b.nii.gz", 1),
        write_moving(folder / "c.nii.gz", 2),
    ]
    out = folder / "ranking"
    code = main(["reference", "--candidates", *map(str, scans), "--out", str(out), "--jobs", "1", "--quiet"])
    return {"folder": folder, "scans": scans, "out": out, "code": code}


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    try:
        code = main(list(arguments))
    except SystemExit as stop:  # argparse refusals
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_register_fixed_from_uses_the_recommended_scan_and_the_report_says_so(phantoms, tmp_path, capsys):
    ranking = json.loads((phantoms["out"] / "reference.json").read_text())
    assert phantoms["code"] == 0 and ranking["recommended"] is not None
    json_path = phantoms["out"] / "reference.json"
    moving = write_moving(tmp_path / "new.nii.gz", 5)
    out = tmp_path / "cohort"
    code, printed, errors = run(
        capsys,
        "register",
        "--fixed-from",
        str(json_path),
        "--moving",
        str(moving),
        "--out",
        str(out),
        "--jobs",
        "1",
    )
    assert code in (0, 1), errors  # a tiny phantom may get a "failed" verdict; the fixed scan matters here
    report = json.loads((out / "report.json").read_text())
    assert report["fixed"]["path"] == ranking["recommended"]["path"]
    assert report["cases"][0]["status"] == "ok"
    assert report["cases"][0]["inputs"]["fixed"]["path"] == os.path.realpath(ranking["recommended"]["path"])
    assert report["fixed"]["chosen_by"].startswith(f"recommended by {json_path}")
    assert ranking["recommended"]["reasons"][0] in report["fixed"]["chosen_by"]
    assert "fixed scan chosen: recommended by" in (out / "report.html").read_text()


def test_a_fixed_scan_given_by_hand_is_named_as_such(phantoms, tmp_path, capsys):
    broken = tmp_path / "broken.nii.gz"  # the case fails at once; the report's header is what is checked
    broken.write_bytes(b"not an image")
    out = tmp_path / "cohort"
    code, _, _ = run(
        capsys, "register", "--fixed", str(phantoms["scans"][0]), "--moving", str(broken), "--out", str(out)
    )
    assert code == 1
    assert json.loads((out / "report.json").read_text())["fixed"]["chosen_by"] == "given by the user"
    assert "fixed scan chosen: given by the user" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist; run 'ct-affine-register reference' first"),
        ("{not json", "is not JSON; expected the reference.json of 'ct-affine-register reference'"),
        (
            '{"format": "ct-affine-register cohort report"}',
            "is not a ranking written by 'ct-affine-register reference'",
        ),
        (
            '{"format": "ct-affine-register reference ranking", "recommended": null}',
            "recommends no scan (every candidate failed); see its reasons",
        ),
        (
            '{"format": "ct-affine-register reference ranking", '
            '"recommended": {"path": "/gone/scan.nii.gz"}}',
            "recommends /gone/scan.nii.gz, which no longer exists",
        ),
    ],
)
def test_fixed_from_a_bad_ranking_is_one_error_line(phantoms, tmp_path, capsys, content, message):
    json_path = tmp_path / "reference.json"
    if content is not None:
        json_path.write_text(content)
    out = tmp_path / "cohort"
    code, _, errors = run(
        capsys,
        "register",
        "--fixed-from",
        str(json_path),
        "--moving",
        str(phantoms["scans"][1]),
        "--out",
        str(out),
    )
    assert code == 2
    assert errors == f"error: {json_path}: {message}\n"
    assert errors.count("\n") == 1 and "Traceback" not in errors
    assert not out.exists()  # refused before any work


def test_fixed_and_fixed_from_together_are_refused(phantoms, tmp_path, capsys):
    code, _, errors = run(
        capsys,
        "register",
        "--fixed",
        str(phantoms["scans"][0]),
        "--fixed-from",
        str(phantoms["out"] / "reference.json"),
        "--moving",
        str(phantoms["scans"][1]),
        "--out",
        str(tmp_path / "x"),
    )
    assert code == 2 and "not allowed with argument" in errors


def test_an_unreadable_candidate_is_ranked_last_and_the_others_are_still_ranked(phantoms, tmp_path, capsys):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image at all")
    out = tmp_path / "ranking"
    code, printed, errors = run(
        capsys,
        "reference",
        "--candidates",
        str(broken),
        *map(str, phantoms["scans"][:2]),
        "--out",
        str(out),
        "--jobs",
        "1",
        "--quiet",
    )
    ranking = json.loads((out / "reference.json").read_text())
    assert code == 1
    assert [row["id"] for row in ranking["candidates"]][-1] == "broken"
    assert ranking["candidates"][-1]["ranked_last_because"].startswith("it cannot be a fixed scan:")
    assert ranking["recommended"]["id"] in ("a", "b")
    assert f"error: {broken}:" in errors and "Traceback" not in errors
    # the broken scan is also in the sample: its pair onto each good candidate fails, named, and counts 0
    good = ranking["candidates"][0]
    assert good["pairs"] == 2 and good["registered"] == 1
    assert "recommended:" in printed


def test_a_ranking_file_this_tool_did_not_write_is_left_alone(phantoms, tmp_path, capsys):
    out = tmp_path / "ranking"
    out.mkdir()
    (out / "reference.csv").write_text("someone's,own,table\n")
    code, _, errors = run(
        capsys, "reference", "--candidates", *map(str, phantoms["scans"]), "--out", str(out)
    )
    assert code == 2
    refusal = "already exists and was not written by ct-affine-register (use --overwrite)"
    assert errors == f"error: {out / 'reference.csv'}: {refusal}\n"
    assert (out / "reference.csv").read_text() == "someone's,own,table\n"
    assert not (out / "pairs").exists()


def test_an_output_folder_that_is_a_file_is_refused(phantoms, tmp_path, capsys):
    out = tmp_path / "file"
    out.write_text("x")
    code, _, errors = run(
        capsys, "reference", "--candidates", *map(str, phantoms["scans"]), "--out", str(out)
    )
    assert code == 2 and errors.startswith(f"error: {out}: is a file")


def test_reference_needs_candidates(capsys, tmp_path):
    code, _, errors = run(capsys, "reference", "--out", str(tmp_path / "x"))
    assert code == 2 and "--candidates" in errors


def test_local_worker_processes_rank_as_this_process_does(phantoms, tmp_path):
    """Each pair names its own fixed scan; worker processes start with the first candidate's and read
    the others themselves: the same figures as in this process."""
    ranking = choose_reference(phantoms["scans"], tmp_path / "ranking", jobs=2)
    assert ranking["run"]["backend"] == "2 local worker processes"
    in_process = json.loads((phantoms["out"] / "reference.json").read_text())
    assert [(row["id"], row["score"]) for row in ranking["candidates"]] == [
        (row["id"], row["score"]) for row in in_process["candidates"]
    ]
    for row in ranking["candidates"]:
        for pair in row["pair_results"]:
            report = json.loads((tmp_path / "ranking" / pair["report"]).read_text())
            assert report["inputs"]["fixed"]["path"] == os.path.realpath(row["path"])


def test_rerun_at_another_quality_is_refused_before_any_work(phantoms, tmp_path, capsys):
    out = tmp_path / "ranking"
    shutil.copytree(phantoms["out"], out)
    before = sorted((path.name, path.stat().st_mtime_ns) for path in (out / "pairs").iterdir())
    with pytest.raises(InputError, match="finished from other options .*use --overwrite to redo them"):
        choose_reference(phantoms["scans"], out, quality="full", jobs=1)
    # the command line's --quality reaches the ranking the same way
    code, _, errors = run(
        capsys,
        "reference",
        "--candidates",
        *map(str, phantoms["scans"]),
        "--out",
        str(out),
        "--quality",
        "full",
    )
    assert code == 2 and "finished from other options" in errors and "use --overwrite" in errors
    assert sorted((path.name, path.stat().st_mtime_ns) for path in (out / "pairs").iterdir()) == before


def test_the_table_marks_only_the_recommended_scan(phantoms):
    ranking = json.loads((phantoms["out"] / "reference.json").read_text())
    rows = list(csv.DictReader(io.StringIO(csv_text(ranking))))
    assert [row["id"] for row in rows] == [candidate["id"] for candidate in ranking["candidates"]]
    assert [row["id"] for row in rows if row["recommended"] == "true"] == [ranking["recommended"]["id"]]
    # every candidate failed: one is still ranked first, none is recommended
    nothing = {**ranking, "recommended": None}
    rows = list(csv.DictReader(io.StringIO(csv_text(nothing))))
    assert rows[0]["rank"] == "1" and {row["recommended"] for row in rows} == {"false"}


def test_the_page_shows_paths_as_text_never_as_markup(phantoms):
    ranking = json.loads((phantoms["out"] / "reference.json").read_text())
    markup = "/data/<script>alert(1)</script>/a.nii.gz"
    ranking["recommended"] = {**ranking["recommended"], "path": markup}
    ranking["candidates"] = [{**candidate, "path": markup} for candidate in ranking["candidates"]]
    page = render_ranking_page(ranking)
    assert "<script>alert" not in page  # the page's own script aside, no markup from a path
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 1 + len(ranking["candidates"])


def test_candidates_root_and_sample_size_from_the_command_line(phantoms, tmp_path, capsys):
    """``--sample-size`` reaches the ranking, and an output folder below ``--candidates-root`` is not
    searched for candidates (a scan left there by another run is no candidate)."""
    root = tmp_path / "scans"
    root.mkdir()
    for scan in phantoms["scans"]:
        shutil.copy(scan, root / scan.name)
    out = root / "ranking"
    out.mkdir()
    shutil.copy(phantoms["scans"][0], out / "left_over.nii.gz")
    code, _, errors = run(
        capsys, "reference", "--candidates-root", str(root), "--out", str(out),
        "--sample-size", "1", "--jobs", "1", "--quiet",
    )  # fmt: skip
    assert code in (0, 1), errors
    ranking = json.loads((out / "reference.json").read_text())
    assert sorted(Path(c["path"]).name for c in ranking["candidates"]) == sorted(
        s.name for s in phantoms["scans"]
    )
    assert len(ranking["sample"]) == 1


def test_allow_slice_gaps_from_the_command_line_reads_a_series_with_a_gap(phantoms, tmp_path, capsys):
    write_series(tmp_path / "gap", [0, 2, 4, *range(8, 42, 2)], size=40)  # one slice missing after 4 mm
    out = tmp_path / "ranking"
    arguments = ["reference", "--candidates", str(tmp_path / "gap"), str(phantoms["scans"][0])]
    code, _, errors = run(
        capsys, *arguments, "--out", str(out), "--jobs", "1", "--quiet", "--allow-slice-gaps"
    )
    assert "missing slice" not in errors, errors
    ranking = json.loads((out / "reference.json").read_text())
    gap = next(c for c in ranking["candidates"] if c["id"] == "gap")
    # read onto an even grid (the bridged slice counted); these test slices are no CT, which is fine
    assert gap["facts"] is not None and gap["facts"]["size"][2] == 21
    assert "missing slice" not in (gap["problem"] or "")
