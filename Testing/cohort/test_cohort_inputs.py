"""Finding a cohort's inputs and naming its cases: unique, stable, never hidden. No registration here."""

from __future__ import annotations

from pathlib import Path

import pytest

from CTAffineRegisterLib.cohort.batch import BatchSettings, run_batch
from CTAffineRegisterLib.cohort.inputs import (
    MovingInput,
    case_id_from_name,
    inputs_from_list_file,
    inputs_from_paths,
    inputs_from_root,
)
from CTAffineRegisterLib.cohort.run import run_cohort
from CTAffineRegisterLib.io.images import InputError


def _touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_same_names_in_different_folders_get_ids_that_collide_with_nothing():
    cases = inputs_from_paths(["a/scan.nii.gz", "b/scan.nii.gz", "c/scan_2.nii.gz", "d/SCAN.nrrd"])
    ids = [case.case_id for case in cases]
    assert ids == ["scan", "scan_3", "scan_2", "SCAN_4"]
    assert len({case_id.lower() for case_id in ids}) == 4  # case-insensitive file systems too


def test_a_file_named_only_by_its_suffix_gives_visible_outputs():
    assert case_id_from_name(".nii.gz") == "unnamed"
    assert case_id_from_name("dir/.hidden.nrrd") == "hidden"
    assert case_id_from_name("scan.NII.GZ") == "scan"
    assert case_id_from_name("series_folder/") == "series_folder"


def test_plain_list_file_relative_to_its_folder_with_comments(tmp_path):
    listing = _touch(tmp_path / "lists" / "cohort.txt", b"# dataset B\n\nscans/a.nii.gz\n  /abs/b.nrrd  \n")
    cases = inputs_from_list_file(listing)
    assert [case.path for case in cases] == [str(tmp_path / "lists" / "scans" / "a.nii.gz"), "/abs/b.nrrd"]
    assert [case.case_id for case in cases] == ["a", "b"]


def test_csv_list_with_ids_and_labels(tmp_path):
    listing = _touch(
        tmp_path / "cohort.csv",
        b"id,path,labels\nP001,scans/x.nii.gz,labels/x_seg.nii.gz\n,scans/P001.nii.gz,\nP002,y/,\n",
    )
    cases = inputs_from_list_file(listing)
    assert cases[0] == MovingInput(
        str(tmp_path / "scans" / "x.nii.gz"), "P001", str(tmp_path / "labels" / "x_seg.nii.gz")
    )
    # a derived id never takes an id the file gave to another row
    assert cases[1].case_id == "P001_2" and cases[1].labels is None
    assert cases[2].case_id == "P002" and cases[2].path == str(tmp_path / "y")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"path,id\na.nii.gz,S1\nb.nii.gz,s1\n", "line 3: id 's1' is already used on line 2"),
        (b"path,id\na.nii.gz,../up\n", "line 2: id '../up' cannot name files"),
        (b"path,id\n,S1\n", "line 2: the path column is empty"),
        (b"# nothing here\n\n", "lists no moving scans"),
    ],
)
def test_bad_list_files_are_refused_naming_the_file_and_line(tmp_path, content, message):
    listing = _touch(tmp_path / "list.csv", content)
    with pytest.raises(InputError) as raised:
        inputs_from_list_file(listing)
    assert str(listing) in str(raised.value) and message in str(raised.value)


def test_root_finds_files_and_series_names_them_by_relative_path(tmp_path):
    root = tmp_path / "datasetB"
    _touch(root / "p1" / "ct.nii.gz")
    _touch(root / "p1" / "notes.txt")
    _touch(root / "p2" / "scan.nrrd")
    _touch(root / "p2_scan.mha")  # would collide with p2/scan if folders were joined by "_"
    _touch(root / "p3" / "series" / "IM0001.dcm")
    _touch(root / "p4" / "IM1", b"\0" * 128 + b"DICM" + b"\0" * 16)  # DICOM without a suffix
    _touch(root / ".trash" / "old.nii.gz")
    _touch(root / "registered" / "p1__ct_registered.nii.gz")  # the output folder, below the root
    cases = inputs_from_root(root, exclude=root / "registered")
    found = {case.case_id: case.path for case in cases}
    assert found == {
        "p1__ct": str(root / "p1" / "ct.nii.gz"),
        "p2__scan": str(root / "p2" / "scan.nrrd"),
        "p2_scan": str(root / "p2_scan.mha"),
        "p3__series": str(root / "p3" / "series"),
        "p4": str(root / "p4"),
    }
    assert [case.case_id for case in inputs_from_root(root, exclude=root / "registered")] == [
        case.case_id for case in cases
    ]  # stable across runs


def test_root_without_scans_is_refused(tmp_path):
    _touch(tmp_path / "empty" / "readme.txt")
    with pytest.raises(InputError, match="holds no image files or DICOM series"):
        inputs_from_root(tmp_path / "empty")


def test_a_single_path_string_is_refused_before_any_work(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(TypeError, match="moving must be a list of paths"):
        run_cohort(tmp_path / "fixed.nii.gz", "/some/path/scan.nii.gz", out)
    with pytest.raises(TypeError, match="moving must be a list of paths"):
        run_batch(str(tmp_path / "fixed.nii.gz"), "path/string", BatchSettings(out_dir=str(out)))
    with pytest.raises(TypeError, match="moving must hold paths"):
        run_cohort(tmp_path / "fixed.nii.gz", [3], out)
    assert not out.exists()  # refused before the output folder was even made


def _report(case_id: str, status: str = "ok", verdict: str = "ok", seconds: float = 2.0) -> dict:
    return {
        "id": case_id,
        "moving_path": f"/data/{case_id}.nii.gz",
        "status": status,
        "error": None if status == "ok" else f"/data/{case_id}.nii.gz: no such file or folder",
        "quality": {"verdict": verdict, "reason": "r"},
        "trustworthy": verdict != "failed",
        "trust_reason": "quality verdict failed: r; outputs written but not to be trusted",
        "seconds": seconds,
    }


def _read_terminal(leader: int) -> str:
    """Everything written to the terminal so far: a pty hands it over in pieces, not in one read."""
    import os
    import select

    shown = b""
    while select.select([leader], [], [], 0.2)[0]:
        piece = os.read(leader, 65536)
        if not piece:
            break
        shown += piece
    return shown.decode()


def test_progress_is_a_bar_with_eta_on_a_terminal_and_lines_in_a_log():
    import io
    import os

    from CTAffineRegisterLib.cohort.progress import ProgressDisplay, choose_mode

    leader, follower = os.openpty()
    terminal = os.fdopen(follower, "w")
    try:
        assert choose_mode(False, terminal) == "bar" and choose_mode(True, terminal) == "quiet"
        display = ProgressDisplay(3, 0, choose_mode(False, terminal), terminal)
        display.case_finished(_report("a"))
        display.case_finished(_report("b", status="failed"))
        display.close()
        terminal.flush()
        shown = _read_terminal(leader)
    finally:
        terminal.close()
        os.close(leader)
    assert "\r[" in shown and "ETA" in shown and "scans/min" in shown and "2/3" in shown
    assert "error: /data/b.nii.gz: no such file or folder" in shown

    log = io.StringIO()
    assert choose_mode(False, log) == "lines"
    display = ProgressDisplay(2, 5, "lines", log)
    display.case_finished(_report("a", verdict="failed"))
    display.case_finished(_report("b", status="failed"))
    display.close()
    lines = log.getvalue().splitlines()
    assert (
        lines[0]
        == "warning: /data/a.nii.gz: quality verdict failed: r; outputs written but not to be trusted"
    )
    assert lines[1].startswith("[1/2] a: registered, verdict failed, 2.0 s; ") and "ETA" in lines[1]
    assert lines[2] == "error: /data/b.nii.gz: no such file or folder" and len(lines) == 3

    # one of three cases done after a minute: 1 scan/min, two minutes to go
    log = io.StringIO()
    display = ProgressDisplay(3, 0, "lines", log)
    display.started -= 60.0
    display.case_finished(_report("a"))
    display.close()
    assert log.getvalue().endswith("; 1.0 scans/min, ETA 2:00\n"), log.getvalue()

    quiet = io.StringIO()
    display = ProgressDisplay(2, 0, "quiet", quiet)
    display.say("fixed ...")
    display.case_finished(_report("a"))
    display.case_finished(_report("b", status="failed"))
    display.close()
    assert quiet.getvalue() == "error: /data/b.nii.gz: no such file or folder\n"


def test_root_follows_links_to_folders_and_stops_at_link_loops(tmp_path):
    """A root of links to patient folders (``pA -> /real/p01/``) used to give only its plain files."""
    real = tmp_path / "real"
    _touch(real / "p01" / "ct.nii.gz")
    (real / "p01" / "back").symlink_to(real / "p01")  # a loop below the link
    root = tmp_path / "root"
    _touch(root / "p02.nii.gz")
    (root / "pA").symlink_to(real / "p01", target_is_directory=True)
    (root / "again").symlink_to(root, target_is_directory=True)  # a loop at the root itself
    cases = inputs_from_root(root)
    assert [(case.case_id, case.path) for case in cases] == [
        ("p02", str(root / "p02.nii.gz")),
        ("pA__ct", str(root / "pA" / "ct.nii.gz")),
    ]


def test_a_case_id_with_a_newline_stays_on_one_log_line(tmp_path, capsys):
    import io

    from support.cohort_helpers import write_fixed, write_moving

    from CTAffineRegisterLib.cli.commands import main
    from CTAffineRegisterLib.cohort.progress import ProgressDisplay

    log = io.StringIO()
    display = ProgressDisplay(2, 0, "lines", log)
    display.case_finished(_report("two\nlines"))
    display.case_finished({**_report("b", status="failed"), "error": "/data/b\nc.nii.gz: no such file"})
    display.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[1/2] two\\nlines: registered")
    assert lines[1] == "error: /data/b\\nc.nii.gz: no such file"

    fixed = write_fixed(tmp_path / "fixed.nii.gz")
    scan = write_moving(tmp_path / "two\nlines.nii.gz", 3)
    gone = tmp_path / "gone\rscan.nii.gz"
    out = tmp_path / "out"
    assert main(["register", "--fixed", str(fixed), "--moving", str(scan), str(gone), "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert any("] two\\nlines: registered, verdict " in line for line in err), err
    assert f"error: {tmp_path}/gone\\rscan.nii.gz: " in "\n".join(err)
    assert len(err) == 4  # the fixed scan, the count, and one line per case
