"""What a rerun into the same folder does with each case, decided from the files alone (cohort/resume.py).

No registration: a "finished" case is a report and outputs written by hand, the way a finished run
leaves them, so every rule of the resume promise (done, run, conflict, blocked, and the words of a
refusal) is checked in milliseconds.
"""

from __future__ import annotations

import datetime
import json
import os

import pytest

from CTAffineRegisterLib.cohort.case import CASE_REPORT_FORMAT, CaseOptions, input_fingerprint
from CTAffineRegisterLib.cohort.inputs import MovingInput
from CTAffineRegisterLib.cohort.outputs import output_names
from CTAffineRegisterLib.cohort.resume import BLOCKED, CONFLICT, DONE, RUN, plan_case

OPTIONS = CaseOptions()


@pytest.fixture
def finished(tmp_path):
    """(case, out_dir, fixed fingerprint) of a case finished with OPTIONS."""
    fixed, moving = tmp_path / "fixed.nii", tmp_path / "m0.nii"
    fixed.write_bytes(b"F" * 300)
    moving.write_bytes(b"M" * 200)
    out = tmp_path / "out"
    out.mkdir()
    case = MovingInput(str(moving), "m0")
    names = output_names("m0", OPTIONS.output_format, False)
    sizes = {}
    for role, name in names.items():
        if role != "report":
            (out / name).write_bytes(b"x" * (10 + len(role)))
            sizes[role] = 10 + len(role)
    report = {
        "format": CASE_REPORT_FORMAT,
        "status": "ok",
        "inputs": {
            "fixed": input_fingerprint(str(fixed)),
            "moving": input_fingerprint(str(moving)),
            "labels": None,
        },
        "options": OPTIONS.to_dict(),
        "outputs": {role: name for role, name in names.items() if role != "report"},
        "output_bytes": sizes,
    }
    (out / names["report"]).write_text(json.dumps(report), encoding="utf-8")
    return case, str(out), input_fingerprint(str(fixed))


def _plan(finished, case=None, options=OPTIONS, overwrite=False):
    original, out, fixed_fingerprint = finished
    return plan_case(case or original, out, options, fixed_fingerprint, overwrite)


def _report(out) -> tuple[str, dict]:
    path = os.path.join(out, output_names("m0")["report"])
    with open(path, encoding="utf-8") as handle:
        return path, json.load(handle)


def _rewrite(out, **changes) -> None:
    path, report = _report(out)
    report.update(changes)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle)


def test_an_unchanged_finished_case_is_done_and_keeps_its_report(finished):
    plan = _plan(finished)
    assert plan.action == DONE
    assert plan.previous["status"] == "ok" and plan.reason is None


def test_a_new_case_runs_and_overwrite_runs_even_a_finished_one(finished, tmp_path):
    assert _plan(finished, case=MovingInput(str(tmp_path / "fixed.nii"), "new")).action == RUN
    plan = _plan(finished, overwrite=True)
    assert plan.action == RUN and plan.previous["status"] == "ok"


@pytest.mark.parametrize("status", ["failed", "cancelled", "running"])
def test_an_unfinished_case_of_this_tool_runs_again(finished, status):
    _rewrite(finished[1], status=status)
    assert _plan(finished).action == RUN


def test_an_output_missing_resized_or_unlisted_makes_the_case_run_again(finished):
    _, out, _ = finished
    names = output_names("m0")
    registered = os.path.join(out, names["registered"])
    with open(registered, "ab") as handle:
        handle.write(b"more")
    assert _plan(finished).action == RUN
    os.remove(registered)
    assert _plan(finished).action == RUN


def test_an_output_listed_under_another_name_makes_the_case_run_again(finished):
    _, out, _ = finished
    _, report = _report(out)
    outputs = dict(report["outputs"], qc="elsewhere.png")
    _rewrite(out, outputs=outputs)
    assert _plan(finished).action == RUN
    _rewrite(out, outputs=None, output_bytes=None)
    assert _plan(finished).action == RUN


def test_files_no_report_claims_block_the_case_and_name_the_file(finished):
    _, out, _ = finished
    path, _ = _report(out)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("someone else's notes")
    plan = _plan(finished)
    assert plan.action == BLOCKED and plan.reason.startswith(path) and "--overwrite" in plan.reason
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"format": "another tool", "status": "ok"}, handle)
    assert _plan(finished).action == BLOCKED
    os.remove(path)
    plan = _plan(finished)
    assert plan.action == BLOCKED
    assert plan.reason.startswith(os.path.join(out, "m0_")) and "already exists" in plan.reason


def test_a_moving_scan_at_another_path_is_a_conflict_naming_both(finished, tmp_path):
    other = tmp_path / "other.nii"
    other.write_bytes(b"O" * 123)
    plan = _plan(finished, case=MovingInput(str(other), "m0"))
    assert plan.action == CONFLICT
    moving = os.path.realpath(finished[0].path)
    assert plan.reason.endswith(
        f"finished from another moving input ({moving}, 200 bytes; now {os.path.realpath(other)}, 123 bytes)"
    )


def test_a_moving_scan_now_missing_is_a_conflict_saying_so(finished):
    os.remove(finished[0].path)
    plan = _plan(finished)
    assert plan.action == CONFLICT
    moving = os.path.realpath(finished[0].path)
    assert plan.reason.endswith(f"({moving}, 200 bytes; now {moving} missing)")


def test_a_missing_moving_scan_that_was_missing_before_names_the_missing_file(finished):
    os.remove(finished[0].path)
    _, out, _ = finished
    _, report = _report(out)
    moving = os.path.realpath(finished[0].path)
    report["inputs"]["moving"] = {"path": moving, "kind": "missing"}
    _rewrite(out, inputs=report["inputs"])
    assert _plan(finished).action == DONE  # the same (missing) input as recorded
    report["inputs"]["moving"] = {"path": moving + ".old", "kind": "missing"}
    _rewrite(out, inputs=report["inputs"])
    plan = _plan(finished)
    assert plan.action == CONFLICT and f"({moving}.old missing; now {moving} missing)" in plan.reason


def test_a_moving_scan_edited_in_place_is_a_conflict_saying_what_changed(finished):
    path = finished[0].path
    stat = os.stat(path)
    with open(path, "wb") as handle:
        handle.write(b"N" * 250)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    plan = _plan(finished)
    assert plan.action == CONFLICT
    assert plan.reason.endswith(f"({os.path.realpath(path)}: 200 bytes, now 250, its content changed)")


def test_a_same_size_edit_with_its_time_put_back_is_a_content_change(finished):
    path = finished[0].path
    stat = os.stat(path)
    with open(path, "wb") as handle:
        handle.write(b"N" * 200)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    plan = _plan(finished)
    assert plan.action == CONFLICT
    assert plan.reason.endswith("its content changed (same size and modification time))")


def test_a_series_folder_that_gained_a_file_is_a_conflict_counting_files(finished, tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"a" * 10)
    case = MovingInput(str(series), "m0")
    _, out, _ = finished
    _, report = _report(out)
    report["inputs"]["moving"] = input_fingerprint(str(series))
    _rewrite(out, inputs=report["inputs"])
    assert _plan(finished, case=case).action == DONE
    (series / "2.dcm").write_bytes(b"b" * 10)
    plan = _plan(finished, case=case)
    assert plan.action == CONFLICT
    assert "1 files, now 2" in plan.reason and "10 bytes, now 20" in plan.reason


def test_other_options_are_a_conflict_naming_each_option_that_changed(finished):
    plan = _plan(finished, options=CaseOptions(fill=-500.0, interpolator="bspline"))
    assert plan.action == CONFLICT
    assert plan.reason.endswith("other options (fill None now -500.0, interpolator 'linear' now 'bspline')")


def test_a_report_from_before_content_samples_still_counts_as_done(finished):
    _, out, _ = finished
    _, report = _report(out)
    del report["inputs"]["moving"]["sample"]
    _rewrite(out, inputs=report["inputs"])
    assert _plan(finished).action == DONE


def test_another_fixed_scan_is_a_conflict(finished, tmp_path):
    case, out, _ = finished
    other = tmp_path / "fixed2.nii"
    other.write_bytes(b"G" * 300)
    plan = plan_case(case, out, OPTIONS, input_fingerprint(str(other)), False)
    assert plan.action == CONFLICT and "another fixed input" in plan.reason


def test_a_touched_moving_scan_is_a_conflict_giving_both_times(finished):
    path = finished[0].path
    before = os.stat(path).st_mtime_ns
    after = before + 5_000_000_000
    os.utime(path, ns=(after, after))

    def when(ns):
        return datetime.datetime.fromtimestamp(ns / 1e9).isoformat(sep=" ", timespec="microseconds")

    plan = _plan(finished)
    assert plan.action == CONFLICT
    assert plan.reason.endswith(f"({os.path.realpath(path)}: modified {when(before)}, now {when(after)})")
    _, out, _ = finished
    _, report = _report(out)
    report["inputs"]["moving"]["mtime_ns"] = "yesterday"
    _rewrite(out, inputs=report["inputs"])
    assert f"modified unknown, now {when(after)}" in _plan(finished).reason


def test_a_case_with_labels_is_done_with_the_same_labels_and_a_conflict_with_others(tmp_path):
    fixed, moving, labels = tmp_path / "fixed.nii", tmp_path / "m1.nii", tmp_path / "m1_labels.nii"
    fixed.write_bytes(b"F" * 300)
    moving.write_bytes(b"M" * 200)
    labels.write_bytes(b"L" * 50)
    out = tmp_path / "out"
    out.mkdir()
    case = MovingInput(str(moving), "m1", str(labels))
    names = output_names("m1", OPTIONS.output_format, True)
    assert "labels" in names
    for role, name in names.items():
        if role != "report":
            (out / name).write_bytes(b"x" * 12)
    inputs = {
        "fixed": input_fingerprint(str(fixed)),
        "moving": input_fingerprint(str(moving)),
        "labels": input_fingerprint(str(labels)),
    }
    report = {
        "format": CASE_REPORT_FORMAT,
        "status": "ok",
        "inputs": inputs,
        "options": OPTIONS.to_dict(),
        "outputs": {role: name for role, name in names.items() if role != "report"},
        "output_bytes": {role: 12 for role in names if role != "report"},
    }
    (out / names["report"]).write_text(json.dumps(report), encoding="utf-8")
    fixed_fingerprint = input_fingerprint(str(fixed))
    assert plan_case(case, str(out), OPTIONS, fixed_fingerprint, False).action == DONE
    labels.write_bytes(b"L" * 60)
    plan = plan_case(case, str(out), OPTIONS, fixed_fingerprint, False)
    assert plan.action == CONFLICT and "another labels input" in plan.reason


def test_an_option_an_older_report_did_not_record_is_named(finished):
    _, out, _ = finished
    _, report = _report(out)
    del report["options"]["allow_slice_gaps"]
    _rewrite(out, options=report["options"])
    plan = _plan(finished)
    assert plan.action == CONFLICT
    assert plan.reason.endswith("other options (allow_slice_gaps None now False)")


def _labelled_case(tmp_path):
    """(case, out_dir, fixed fingerprint, names) of a finished case carrying labels."""
    fixed, moving, labels = tmp_path / "fixed.nii", tmp_path / "m2.nii", tmp_path / "m2_labels.nii"
    fixed.write_bytes(b"F" * 300)
    moving.write_bytes(b"M" * 200)
    labels.write_bytes(b"L" * 50)
    out = tmp_path / "out2"
    out.mkdir()
    names = output_names("m2", OPTIONS.output_format, True)
    for role, name in names.items():
        if role != "report":
            (out / name).write_bytes(b"x" * 12)
    report = {
        "format": CASE_REPORT_FORMAT,
        "status": "ok",
        "inputs": {
            "fixed": input_fingerprint(str(fixed)),
            "moving": input_fingerprint(str(moving)),
            "labels": input_fingerprint(str(labels)),
        },
        "options": OPTIONS.to_dict(),
        "outputs": {role: name for role, name in names.items() if role != "report"},
        "output_bytes": {role: 12 for role in names if role != "report"},
    }
    (out / names["report"]).write_text(json.dumps(report), encoding="utf-8")
    return MovingInput(str(moving), "m2", str(labels)), str(out), input_fingerprint(str(fixed)), names


def test_a_missing_carried_label_output_makes_the_case_run_again(tmp_path):
    case, out, fixed_fingerprint, names = _labelled_case(tmp_path)
    assert plan_case(case, out, OPTIONS, fixed_fingerprint, False).action == DONE
    os.remove(os.path.join(out, names["labels"]))
    assert plan_case(case, out, OPTIONS, fixed_fingerprint, False).action == RUN


def test_labels_given_now_but_not_before_are_a_conflict_saying_none_before(finished, tmp_path):
    labels = tmp_path / "new_labels.nii"
    labels.write_bytes(b"L" * 77)
    case = MovingInput(finished[0].path, "m0", str(labels))
    plan = _plan(finished, case=case)
    assert plan.action == CONFLICT
    assert plan.reason.endswith(f"another labels input (none; now {os.path.realpath(labels)}, 77 bytes)")


def test_an_input_missing_before_and_there_now_is_described_as_both(finished):
    _, out, _ = finished
    _, report = _report(out)
    moving = os.path.realpath(finished[0].path)
    report["inputs"]["moving"] = {"path": moving, "kind": "missing"}
    _rewrite(out, inputs=report["inputs"])
    plan = _plan(finished)
    assert plan.action == CONFLICT
    assert plan.reason.endswith(f"({moving} missing; now {moving}, 200 bytes)")


def test_a_file_replaced_by_a_folder_and_folder_edits_are_told_apart(finished, tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    (series / "1.dcm").write_bytes(b"a" * 10)
    (series / "2.dcm").write_bytes(b"b" * 10)
    case = MovingInput(str(series), "m0")
    _, out, _ = finished
    _, report = _report(out)
    recorded = input_fingerprint(str(series))
    report["inputs"]["moving"] = dict(recorded, kind="file")
    _rewrite(out, inputs=report["inputs"])
    reason = _plan(finished, case=case).reason
    assert reason.endswith(f"({os.path.realpath(series)}: was a file, now a folder)")
    # same count, same bytes, same times: only the names differ
    report["inputs"]["moving"] = recorded
    _rewrite(out, inputs=report["inputs"])
    stat = os.stat(series / "2.dcm")
    os.rename(series / "2.dcm", series / "3.dcm")
    os.utime(series / "3.dcm", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reason = _plan(finished, case=case).reason
    assert reason.endswith(f"({os.path.realpath(series)}: a file in it was renamed, resized or modified)")
    # same count, other size
    (series / "3.dcm").write_bytes(b"c" * 15)
    os.utime(series / "3.dcm", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report["inputs"]["moving"] = input_fingerprint(str(series))
    _rewrite(out, inputs=report["inputs"])
    (series / "3.dcm").write_bytes(b"c" * 16)
    os.utime(series / "3.dcm", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reason = _plan(finished, case=case).reason
    assert "files, now" not in reason and "25 bytes, now 26" in reason


def test_a_time_on_a_whole_second_is_written_with_its_microseconds(finished):
    path = finished[0].path
    before = os.stat(path).st_mtime_ns
    whole = (before // 1_000_000_000 + 60) * 1_000_000_000
    os.utime(path, ns=(whole, whole))
    reason = _plan(finished).reason
    assert reason.endswith(".000000)")


def test_plans_keep_their_case(finished):
    case = finished[0]
    assert _plan(finished, overwrite=True).case is case
    _, out, _ = finished
    path, _ = _report(out)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("not ours")
    assert _plan(finished).case is case


def test_every_kind_of_plan_keeps_its_case_and_a_block_names_the_first_output(finished, tmp_path):
    case, out, _ = finished
    assert _plan(finished).case is case  # done
    _rewrite(out, status="failed")
    assert _plan(finished).case is case  # run: unfinished
    _rewrite(out, status="ok")
    assert _plan(finished, options=CaseOptions(fill=-5.0)).case is case  # conflict
    os.remove(os.path.join(out, output_names("m0")["qc"]))
    assert _plan(finished).case is case  # run: an output missing
    path, _ = _report(out)
    os.remove(path)
    plan = _plan(finished)
    assert plan.case is case and plan.action == BLOCKED
    first = os.path.join(out, output_names("m0")["registered"])
    assert plan.reason == f"{first}: already exists (use --overwrite to replace it)"
