"""The cohort summary as a user reads it (cohort/summary.py): its counts and one-line tally, the
report.csv cells a spreadsheet gets, and report.json/.csv/.html written together, or one line naming
the file a full disk stopped. Fast: plain case dicts, no run."""

from __future__ import annotations

import copy
import csv
import errno
import io
import json
import os

from CTAffineRegisterLib._version import __version__
from CTAffineRegisterLib.cohort import summary as cohort_summary
from CTAffineRegisterLib.cohort.summary import (
    CSV_COLUMNS,
    build_summary,
    count_cases,
    csv_text,
    summary_line,
    write_summary,
)


def _case(case_id, status="ok", verdict="ok", **extra):
    case = {"id": case_id, "status": status, "moving_path": f"/data/{case_id}.nii.gz"}
    if status == "ok":
        case["quality"] = {"verdict": verdict, "reason": "fine", "figures": {"body_dice": 0.9}}
    case.update(extra)
    return case


def test_counts_are_verdicts_of_registered_cases_and_the_other_statuses():
    cases = [
        _case("a"),
        _case("b", verdict="suspect", resumed=True),
        _case("c", verdict="failed"),
        _case("d", verdict="odd"),  # registered, but no verdict counted
        _case("e", status="failed", resumed=True),
        _case("f", status="cancelled"),
        _case("g", status="running"),
    ]
    assert count_cases(cases) == {
        "cases": 7,
        "registered": 4,
        "verdicts": {"ok": 1, "suspect": 1, "failed": 1},
        "failed": 1,
        "cancelled": 1,
        "resumed": 2,
    }
    assert count_cases([{"status": "ok", "quality": None}])["verdicts"] == {
        "ok": 0,
        "suspect": 0,
        "failed": 0,
    }


def test_the_summary_line_adds_cancelled_and_resumed_only_when_there_are_some():
    counts = {"registered": 3, "verdicts": {"ok": 1, "suspect": 1, "failed": 1}, "failed": 2}
    plain = {"counts": {**counts, "cancelled": 0, "resumed": 0}}
    assert summary_line(plain) == "3 registered: 1 ok, 1 suspect, 1 failed verdict; 2 failed"
    full = {"counts": {**counts, "cancelled": 4, "resumed": 5}}
    assert summary_line(full) == (
        "3 registered: 1 ok, 1 suspect, 1 failed verdict; 2 failed; 4 cancelled "
        "(5 finished by an earlier run)"
    )


def test_the_summary_carries_the_header_the_counts_and_copies_of_the_cases():
    cases = [_case("a"), _case("b", status="failed", error="/data/b: gone")]
    before = copy.deepcopy(cases)
    summary = build_summary(cases, {"fixed": {"path": "/f.nii"}, "run": {"state": "finished"}})
    assert cases == before  # the case reports are never changed
    assert summary["format"] == "ct-affine-register cohort report" and summary["schema"] == 1
    assert summary["tool_version"] == __version__
    assert summary["fixed"] == {"path": "/f.nii"} and summary["run"] == {"state": "finished"}
    assert summary["succeeded"] == 1 and summary["failed"] == 1
    assert summary["counts"]["cases"] == 2
    assert summary["summary_line"] == "1 registered: 1 ok, 0 suspect, 0 failed verdict; 1 failed"
    assert [case["id"] for case in summary["cases"]] == ["a", "b"]
    assert summary["cases"][0] is not cases[0]
    assert list(summary)[-1] == "cases"  # the long list last, after everything a reader looks for


def test_a_csv_row_per_case_with_plain_cells_and_a_column_per_numeric_figure():
    first = _case(
        "a",
        trustworthy=True,
        seconds=3.5,
        fill=-1000.0,
        where={"host": "node1", "worker": "w2"},
        moving={
            "kind": "fov-padding",
            "padding_value": -3024,
            "padding_fraction": 0.2,
            "air_value": -1000,
            "fov": {"radius_mm": 250},
        },
    )
    first["quality"].update(
        own_verdict="ok",
        verdict="suspect",
        cohort={"outlier": True},
        figures={"zeta": 1, "alpha": 0.5, "flag": True},
    )
    second = _case("b", status="failed", error="/data/b: gone", resumed=True)
    summary = {"cases": [first, second]}
    text = csv_text(summary)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS + ["figure_alpha", "figure_zeta"])
    assert text.startswith("id,input,status,")  # the marker that lets a rerun replace it
    assert rows[0] == {
        "id": "a",
        "input": "/data/a.nii.gz",
        "status": "ok",
        "verdict": "suspect",
        "own_verdict": "ok",
        "reason": "fine",
        "trustworthy": "true",
        "cohort_outlier": "true",
        "padding_kind": "fov-padding",
        "padding_value": "-3024",
        "padding_fraction": "0.2",
        "fov_radius_mm": "250",
        "air_value": "-1000",
        "fill": "-1000.0",
        "seconds": "3.5",
        "resumed": "false",
        "host": "node1",
        "worker": "w2",
        "error": "",
        "figure_alpha": "0.5",
        "figure_zeta": "1",
    }
    assert rows[1]["status"] == "failed" and rows[1]["error"] == "/data/b: gone"
    assert rows[1]["verdict"] == "" and rows[1]["own_verdict"] == "" and rows[1]["resumed"] == "true"
    assert rows[1]["figure_alpha"] == "" and rows[1]["trustworthy"] == ""
    plain = list(csv.DictReader(io.StringIO(csv_text({"cases": [_case("c")]}))))[0]
    assert plain["own_verdict"] == "ok" and plain["figure_body_dice"] == "0.9"
    assert "\r" not in text


def test_the_three_summary_files_are_written_and_replace_the_last_runs(tmp_path):
    summary = build_summary([_case("a")], {"run": {}})
    (tmp_path / "report.json").write_text("old")
    assert write_summary(str(tmp_path), summary) is None
    assert json.loads((tmp_path / "report.json").read_text()) == summary
    assert (tmp_path / "report.json").read_text() == json.dumps(summary, indent=2) + "\n"
    assert (tmp_path / "report.csv").read_text() == csv_text(summary)
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(os.listdir(tmp_path)) == ["report.csv", "report.html", "report.json"]


def test_a_summary_file_a_full_disk_stops_is_named_in_one_line(tmp_path, monkeypatch):
    written = []

    def write_text(text, path, overwrite):
        if path.endswith(".csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append((os.path.basename(path), overwrite))

    monkeypatch.setattr(cohort_summary, "write_text", write_text)
    line = write_summary(str(tmp_path), build_summary([_case("a")], {"run": {}}))
    path = os.path.join(str(tmp_path), "report.csv")
    assert line == (
        f"{path}: cannot write the cohort summary (no space left on the device); every case's own "
        "*_report.json is complete, rerun the same command to rebuild it"
    )
    assert written == [("report.json", True)]  # the page after it is not attempted
