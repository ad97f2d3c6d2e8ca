"""Finding a cohort's inputs and naming its cases: unique, stable, never hidden. No registration here."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

import CTAffineRegisterLib.cohort.inputs as inputs_module
from CTAffineRegisterLib.cohort.batch import BatchSettings, run_batch
from CTAffineRegisterLib.cohort.inputs import (
    MovingInput,
    case_id_from_name,
    check_labels_are_not_scans,
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


# --- what users write in list files and folders (issue 22: generated mutants) -------------------------


def test_a_csv_list_skips_comments_and_blank_lines_anywhere_and_reads_short_rows(tmp_path):
    """Comments (also indented) and blank lines before the header or between rows are skipped, never the
    end of the list; a row with fewer cells than the header has the missing ones empty."""
    listing = _touch(
        tmp_path / "cohort.csv",
        b"\n  # made by hand\npath,id,labels\na.nii.gz,A\n\n# one left out\n  # and another\n"
        b"b.nii.gz\nc.nii.gz,C,c_seg.nii.gz\n",
    )
    cases = inputs_from_list_file(listing)
    assert cases == [
        MovingInput(str(tmp_path / "a.nii.gz"), "A"),
        MovingInput(str(tmp_path / "b.nii.gz"), "b"),
        MovingInput(str(tmp_path / "c.nii.gz"), "C", str(tmp_path / "c_seg.nii.gz")),
    ]


def test_a_csv_list_saved_by_excel_with_a_byte_order_mark_is_read_as_csv(tmp_path):
    listing = _touch(tmp_path / "cohort.csv", "path,id\nscans/é.nii.gz,P1\n".encode("utf-8-sig"))
    assert inputs_from_list_file(listing) == [MovingInput(str(tmp_path / "scans" / "é.nii.gz"), "P1")]


def test_an_id_given_in_a_csv_keeps_its_name_and_a_derived_one_moves_aside(tmp_path):
    """The derived id comes first in the file, yet the id the user wrote wins: its outputs are named as
    the user expects, and the derived one gets ``_2``."""
    listing = _touch(tmp_path / "cohort.csv", b"path,id\nx/scan.nii.gz,\ny/other.nii.gz,scan\n")
    assert [(case.case_id, Path(case.path).name) for case in inputs_from_list_file(listing)] == [
        ("scan_2", "scan.nii.gz"),
        ("scan", "other.nii.gz"),
    ]


@pytest.mark.parametrize("case_id", [".hidden", "a/b", "a\\b", "a\0b", ".."])
def test_an_id_that_cannot_name_output_files_is_refused(tmp_path, case_id):
    listing = _touch(tmp_path / "cohort.csv", f"path,id\nscan.nii.gz,{case_id}\n".encode())
    with pytest.raises(InputError) as raised:
        inputs_from_list_file(listing)
    assert str(listing) in str(raised.value) and "line 2: id " in str(raised.value)
    assert "cannot name files" in str(raised.value)


def test_an_absolute_path_in_a_list_is_taken_as_written_even_through_a_link(tmp_path):
    """``/data/link/../scan`` names what the file system finds there: collapsing the ``..`` before the
    link is followed would name another file (or none)."""
    _touch(tmp_path / "real" / "scan.nii.gz", b"the scan")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "link").symlink_to(tmp_path / "real" / "sub", target_is_directory=True)
    (tmp_path / "real" / "sub").mkdir()
    written = f"{tmp_path}/elsewhere/link/../scan.nii.gz"
    listing = _touch(tmp_path / "list.txt", (written + "\n").encode())
    (case,) = inputs_from_list_file(listing)
    assert case.path == written and Path(case.path).read_bytes() == b"the scan"


def test_a_root_that_is_missing_or_a_file_says_which(tmp_path):
    with pytest.raises(InputError) as raised:
        inputs_from_root(tmp_path / "gone")
    assert str(raised.value) == f"{tmp_path / 'gone'}: no such folder; --moving-root takes a folder"
    scan = _touch(tmp_path / "scan.nii.gz")
    with pytest.raises(InputError) as raised:
        inputs_from_root(scan)
    assert str(raised.value) == f"{scan}: is not a folder; --moving-root takes a folder"


def test_a_root_skips_hidden_files_and_stops_at_a_link_back_two_levels_up(tmp_path):
    root = tmp_path / "root"
    _touch(root / "scan.nii.gz")
    _touch(root / "._scan.nii.gz")  # macOS resource fork next to each file copied from a Mac
    _touch(root / "p1" / "visit" / "ct.nii.gz")
    (root / "p1" / "visit" / "up").symlink_to(root / "p1", target_is_directory=True)
    assert [(case.case_id, case.path) for case in inputs_from_root(root)] == [
        ("scan", str(root / "scan.nii.gz")),
        ("p1__visit__ct", str(root / "p1" / "visit" / "ct.nii.gz")),
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="a backslash cannot be part of a file name on Windows")
def test_a_root_unzipped_from_windows_names_cases_by_the_folders_in_the_file_names(tmp_path):
    """Unzipping an archive made on Windows can give files named ``p1\\ct.nii.gz``: the backslashes
    are folders, and the ids are the ones the same files in real folders get."""
    root = tmp_path / "root"
    for name in ("p1\\.ct\\scan.nii.gz", "\\b.nii.gz", "q\\.\\c.nii.gz"):
        _touch(root / name)
    _touch(root / "Xray" / "scan.nii.gz")
    assert sorted(case.case_id for case in inputs_from_root(root)) == [
        "Xray__scan",
        "b",
        "p1__ct__scan",
        "q__c",
    ]


def test_a_series_folder_is_found_past_a_pipe_a_broken_link_or_an_unreadable_file(tmp_path, monkeypatch):
    """Only regular files are opened (a pipe would block the walk forever), and a file that cannot be
    read or is not DICOM does not hide the series files after it."""
    root = tmp_path / "root"
    dicom = b"\0" * 128 + b"DICM" + b"\0" * 16
    _touch(root / "p1" / "2", dicom)
    os.mkfifo(root / "p1" / "0")
    (root / "p2").mkdir()
    (root / "p2" / "0").symlink_to(root / "gone")
    _touch(root / "p2" / "1", dicom)
    _touch(root / "p3" / "0", b"locked")
    _touch(root / "p3" / "1", dicom)
    locked = str(root / "p3" / "0")
    real_open = open

    def open_as_another_user(path, *args, **kwargs):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(inputs_module, "open", open_as_another_user, raising=False)
    opened_the_pipe = []

    def unblock_a_reader_of_the_pipe():  # a walk that opened the pipe would wait for a writer forever
        try:
            os.close(os.open(root / "p1" / "0", os.O_WRONLY | os.O_NONBLOCK))
            opened_the_pipe.append(True)
        except OSError:  # nobody reading it: as it should be
            pass

    watchdog = threading.Timer(3.0, unblock_a_reader_of_the_pipe)
    watchdog.start()
    try:
        found = [case.case_id for case in inputs_from_root(root)]
    finally:
        watchdog.cancel()
    assert not opened_the_pipe
    assert found == ["p1", "p2", "p3"]


def test_a_folder_of_other_files_is_not_a_series_because_of_a_fourth_file(tmp_path):
    """A series without suffixes is recognised by its first files: a folder whose first three files are
    not DICOM is no series (the walk does not read every file of a large folder)."""
    root = tmp_path / "root"
    _touch(root / "scan.nii.gz")
    for name in ("a.txt", "b.txt", "c.txt"):
        _touch(root / "docs" / name)
    _touch(root / "docs" / "d", b"\0" * 128 + b"DICM")
    assert [case.case_id for case in inputs_from_root(root)] == ["scan"]


def test_a_label_map_that_is_a_scan_of_the_cohort_is_refused_naming_it(tmp_path):
    fixed = _touch(tmp_path / "fixed.nii.gz", b"fixed")
    scan = _touch(tmp_path / "p1.nii.gz", b"moving")
    seg = _touch(tmp_path / "p1_seg.nii.gz", b"labels")
    link = tmp_path / "looks_like_labels.nii.gz"
    os.link(scan, link)  # the same file under another name
    check_labels_are_not_scans(fixed, [MovingInput(str(scan), "p1", str(seg))])  # a real label map
    check_labels_are_not_scans(fixed, [MovingInput(str(scan), "p1", str(tmp_path / "not_yet.nii.gz"))])
    with pytest.raises(InputError) as raised:
        check_labels_are_not_scans(fixed, [MovingInput(str(scan), "p1", str(fixed))])
    assert str(raised.value).startswith(f"{fixed}: is the fixed scan, not a label map;")
    other = _touch(tmp_path / "p2.nii.gz", b"moving too")
    cases = [MovingInput(str(scan), "p1", str(seg)), MovingInput(str(other), "p2", str(link))]
    with pytest.raises(InputError) as raised:
        check_labels_are_not_scans(fixed, cases)
    assert str(raised.value).startswith(f"{link}: is the moving scan of case p1 ({scan}), not a label map;")
    with pytest.raises(InputError, match="is the fixed scan"):  # after a case without labels (CSV)
        check_labels_are_not_scans(
            fixed, [MovingInput(str(scan), "p1"), MovingInput(str(other), "p2", str(fixed))]
        )


def test_label_maps_pair_with_the_scans_in_order_and_a_wrong_count_or_a_single_path_is_refused():
    cases = inputs_from_paths(["a/p1.nii.gz", "b/p2.nii.gz"], labels=["a/p1_seg.nii.gz", Path("b/seg.nrrd")])
    assert [(case.case_id, case.labels) for case in cases] == [
        ("p1", "a/p1_seg.nii.gz"),
        ("p2", "b/seg.nrrd"),
    ]
    with pytest.raises(ValueError) as raised:
        inputs_from_paths(["a/p1.nii.gz", "b/p2.nii.gz"], labels=["a/p1_seg.nii.gz"])
    assert str(raised.value) == "1 label map(s) for 2 moving scan(s); give one per scan, in the same order"
    with pytest.raises(TypeError) as raised:
        inputs_from_paths(["a/p1.nii.gz"], labels="a/p1_seg.nii.gz")
    assert str(raised.value).startswith("labels must be a list of paths, not a single path")
    with pytest.raises(TypeError) as raised:
        inputs_from_paths("a/p1.nii.gz")
    assert str(raised.value).startswith("moving must be a list of paths, not a single path")


def test_a_renamed_duplicate_keeps_its_scan_and_labels_and_cases_can_be_given_again():
    cases = inputs_from_paths(["a/scan.nii.gz", "b/scan.nii.gz"], labels=["a/seg.nii.gz", "b/seg.nii.gz"])
    assert cases[1] == MovingInput("b/scan.nii.gz", "scan_2", "b/seg.nii.gz")
    again = inputs_from_paths([MovingInput("a/x.nii.gz", "p1"), MovingInput("b/y.nii.gz", "p2"), "c/z.nrrd"])
    assert [case.path for case in again] == ["a/x.nii.gz", "b/y.nii.gz", "c/z.nrrd"]
    assert case_id_from_name("Xray.nii.gz") == "Xray" and case_id_from_name("..x.nrrd") == "x"
    with pytest.raises(TypeError, match="^moving must be a list of paths, not a single path"):
        inputs_from_paths(Path("a/scan.nii.gz"))  # a Path is one path too
