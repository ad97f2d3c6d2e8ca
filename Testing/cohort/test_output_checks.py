"""The checks that keep a cohort run from destroying anything, and the output names it writes
(cohort/outputs.py), each with the words a user reads. Fast: files in a temporary folder, no scan."""

from __future__ import annotations

import errno
import os
from types import SimpleNamespace

import pytest

from CTAffineRegisterLib.cohort import outputs
from CTAffineRegisterLib.cohort.outputs import (
    SUMMARY_MARKERS,
    check_inputs_not_outputs,
    check_not_full,
    check_summary_paths,
    is_own_summary,
    output_error_reason,
    output_names,
    prepare_out_dir,
    remove_files,
    stray_temporaries,
)
from CTAffineRegisterLib.errors import InputError


def test_a_case_writes_its_images_pictures_and_report_under_its_id():
    assert output_names("p01") == {
        "registered": "p01_registered.nii.gz",
        "transform": "p01_transform.tfm",
        "validmask": "p01_validmask.nii.gz",
        "qc": "p01_qc.png",
        "qc_thumb": "p01_qc_thumb.png",
        "report": "p01_report.json",
    }
    assert list(output_names("p01"))[-1] == "report"  # written last
    with_labels = output_names("p02", "mha", labels=True)
    assert with_labels["labels"] == "p02_labels.mha" and with_labels["registered"] == "p02_registered.mha"
    assert list(with_labels)[-1] == "report"
    assert output_names("p03", "nrrd", labels=True, images=False) == {
        "transform": "p03_transform.tfm",
        "report": "p03_report.json",
    }
    with pytest.raises(ValueError, match="output_format must be one of"):
        output_names("p04", "png")


def test_an_output_folder_is_made_and_probed_without_leaving_the_probe(tmp_path):
    out = tmp_path / "a" / "b"
    assert prepare_out_dir(out) == str(out)
    assert out.is_dir() and os.listdir(out) == []
    assert prepare_out_dir(str(out)) == str(out)  # an existing folder is fine


def test_an_output_folder_that_is_or_lies_under_a_file_is_refused(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(InputError) as refused:
        prepare_out_dir(str(afile))
    assert (refused.value.path, refused.value.reason) == (str(afile), "is a file; --out must be a folder")
    below = afile / "deeper" / "out"
    with pytest.raises(InputError) as refused:
        prepare_out_dir(str(below))
    assert refused.value.path == str(below)
    assert refused.value.reason == f"lies under {afile}, which is a file; --out must be a folder"
    assert afile.read_text() == "x"


def test_an_output_folder_that_cannot_be_written_says_why(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.tempfile, "mkstemp", full)
    with pytest.raises(InputError) as refused:
        prepare_out_dir(str(tmp_path / "out"))
    assert refused.value.reason == "output folder cannot be written (no space left on the device)"


@pytest.mark.parametrize(
    "number, words",
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.EROFS, "read-only file system"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_a_write_failure_of_the_system_is_said_in_words(number, words):
    assert output_error_reason(OSError(number, os.strerror(number)), "/x/y.nii") == words
    assert output_error_reason(OSError("plain"), "/x/y.nii") == "plain"


def test_a_write_failure_of_simpleitk_gives_its_last_line_and_names_a_full_disk(tmp_path, monkeypatch):
    error = RuntimeError(
        "Exception thrown in SimpleITK WriteImage:\n  /build/itk.cxx:12:\n  " + "w" * 300 + "\n\n"
    )
    path = str(tmp_path / "out.nii")
    assert output_error_reason(error, path) == "w" * 200
    assert output_error_reason(RuntimeError(""), path) == "unknown error"
    seen = []

    def statvfs(folder):
        seen.append(folder)
        return SimpleNamespace(f_bavail=0, f_bfree=0)

    monkeypatch.setattr(outputs.os, "statvfs", statvfs)
    assert output_error_reason(RuntimeError("cut"), path) == "no space left on the device (cut)"
    assert seen == [str(tmp_path)]


def test_a_file_system_with_free_blocks_is_not_full(tmp_path, monkeypatch):
    path = str(tmp_path / "out.nii")
    check_not_full(path)  # the real file system has room
    blocks = {"f_bavail": 5, "f_bfree": 5}
    monkeypatch.setattr(outputs.os, "statvfs", lambda folder: SimpleNamespace(**blocks))
    check_not_full(path)
    blocks.update(f_bavail=0, f_bfree=0)
    with pytest.raises(OSError) as full:
        check_not_full(path)
    assert full.value.errno == errno.ENOSPC and full.value.filename == path
    # root may still write into the blocks kept for it: only full when those are gone too
    blocks.update(f_bavail=0, f_bfree=7)
    monkeypatch.setattr(outputs.os, "geteuid", lambda: 0)
    check_not_full(path)
    monkeypatch.setattr(outputs.os, "geteuid", lambda: 1000)
    with pytest.raises(OSError):
        check_not_full(path)


def test_summaries_this_tool_wrote_are_rebuilt_and_others_are_kept(tmp_path):
    out = str(tmp_path)
    check_summary_paths(out, overwrite=False)  # none yet
    for kind, name in outputs.SUMMARY_NAMES.items():
        (tmp_path / name).write_text("old " + SUMMARY_MARKERS[kind] + " more")
    check_summary_paths(out, overwrite=False)
    foreign = tmp_path / "report.csv"
    foreign.write_text("somebody's spreadsheet")
    with pytest.raises(InputError) as refused:
        check_summary_paths(out, overwrite=False)
    assert refused.value.path == str(foreign)
    assert (
        refused.value.reason == "already exists and was not written by ct-affine-register (use --overwrite)"
    )
    check_summary_paths(out, overwrite=True)
    foreign.unlink()
    foreign.mkdir()
    with pytest.raises(InputError) as refused:
        check_summary_paths(out, overwrite=True, what="the ranking")
    assert (refused.value.path, refused.value.reason) == (
        str(foreign),
        "is a folder; the ranking is written there",
    )


def test_other_summary_names_and_markers_can_be_given(tmp_path):
    names, markers = {"json": "reference.json"}, {"json": "reference marker"}
    (tmp_path / "reference.json").write_text("x reference marker")
    (tmp_path / "report.json").write_text("not ours")
    check_summary_paths(str(tmp_path), False, names, markers)
    assert is_own_summary(str(tmp_path / "reference.json"), "json", markers)
    assert not is_own_summary(str(tmp_path / "reference.json"), "json")
    assert not is_own_summary(str(tmp_path / "missing.json"), "json")


def test_a_marker_counts_only_near_the_start(tmp_path):
    late = tmp_path / "report.html"
    late.write_text("x" * 5000 + SUMMARY_MARKERS["html"])
    assert not is_own_summary(str(late), "html")
    early = tmp_path / "early.html"
    early.write_text("x" * 4000 + SUMMARY_MARKERS["html"])
    assert is_own_summary(str(early), "html")


def test_an_output_that_is_an_input_or_a_link_to_one_is_refused(tmp_path):
    scan = tmp_path / "scan.nii"
    scan.write_text("voxels")
    out = tmp_path / "out"
    out.mkdir()
    check_inputs_not_outputs([str(scan), None], [str(out / "a.nii")], str(out))
    with pytest.raises(InputError) as refused:
        check_inputs_not_outputs([str(scan)], [str(out / "a.nii"), str(scan)], str(out))
    assert refused.value.path == str(scan)
    assert refused.value.reason == f"is the input {scan}; writing it would destroy an input"
    hard = out / "hard.nii"
    os.link(scan, hard)
    with pytest.raises(InputError) as refused:
        check_inputs_not_outputs([str(scan)], [str(hard)], str(out))
    assert refused.value.path == str(hard)
    soft = out / "soft.nii"
    os.symlink(scan, soft)
    with pytest.raises(InputError):
        check_inputs_not_outputs([str(soft)], [str(scan)], str(out))
    assert scan.read_text() == "voxels"


def test_an_output_folder_inside_an_input_folder_is_refused(tmp_path):
    series = tmp_path / "series"
    (series / "out").mkdir(parents=True)
    for out in (series, series / "out"):
        with pytest.raises(InputError) as refused:
            check_inputs_not_outputs([str(series)], [], str(out))
        assert refused.value.path == str(out)
        assert refused.value.reason == f"lies inside the input folder {series}; outputs would change an input"
    sibling = tmp_path / "series-out"
    sibling.mkdir()
    check_inputs_not_outputs([str(series)], [], str(sibling))  # a name that only starts alike is fine
    check_inputs_not_outputs([str(series) + os.sep], [], str(sibling))


def test_temporaries_of_interrupted_writes_are_found_and_removed(tmp_path):
    for name in (
        "a_registered.nii.gz",
        ".a_registered.nii.gz.x1y2",
        ".a_qc.png.tmp",
        ".other.nii.abc",
        ".a_qc.png",
    ):
        (tmp_path / name).write_text("")
    found = stray_temporaries(str(tmp_path), ["a_registered.nii.gz", "a_qc.png"])
    assert sorted(found) == [str(tmp_path / ".a_qc.png.tmp"), str(tmp_path / ".a_registered.nii.gz.x1y2")]
    assert stray_temporaries(str(tmp_path / "missing"), ["a"]) == []
    remove_files([*found, str(tmp_path / "gone"), str(tmp_path)])  # a folder cannot be unlinked: left
    assert sorted(os.listdir(tmp_path)) == [".a_qc.png", ".other.nii.abc", "a_registered.nii.gz"]


def test_a_summary_marker_is_looked_for_in_the_first_4096_characters_exactly(tmp_path):
    marker = SUMMARY_MARKERS["json"]
    path = tmp_path / "report.json"
    path.write_text("x" * (4096 - len(marker)) + marker)
    assert is_own_summary(str(path), "json")
    path.write_text("x" * (4097 - len(marker)) + marker)
    assert not is_own_summary(str(path), "json")


def test_a_summary_file_in_another_encoding_is_read_without_failing(tmp_path):
    foreign = tmp_path / "report.csv"
    foreign.write_bytes("Größe;Wert\n".encode("latin-1") + b"\xff\xfe")
    assert not is_own_summary(str(foreign), "csv")
    with pytest.raises(InputError, match="was not written by ct-affine-register"):
        check_summary_paths(str(tmp_path), overwrite=False)
    ours = tmp_path / "report.html"
    foreign.unlink()
    ours.write_bytes(b"\xff\xfe" + SUMMARY_MARKERS["html"].encode())
    assert is_own_summary(str(ours), "html")


def test_without_user_ids_a_file_system_without_free_blocks_is_full(tmp_path, monkeypatch):
    monkeypatch.delattr(outputs.os, "geteuid")  # as on Windows
    monkeypatch.setattr(outputs.os, "statvfs", lambda folder: SimpleNamespace(f_bavail=0, f_bfree=9))
    with pytest.raises(OSError) as full:
        check_not_full(str(tmp_path / "out.nii"))
    assert full.value.errno == errno.ENOSPC


def test_a_hard_link_to_an_input_is_named_with_the_input_it_is(tmp_path):
    scan = tmp_path / "scan.nii"
    scan.write_text("voxels")
    hard = tmp_path / "out.nii"
    os.link(scan, hard)
    with pytest.raises(InputError) as refused:
        check_inputs_not_outputs([None, str(scan)], [str(hard)], str(tmp_path / "out"))
    assert refused.value.reason == f"is the input {scan}; writing it would destroy an input"


def test_an_output_folder_anywhere_under_an_input_at_the_root_is_refused(tmp_path):
    with pytest.raises(InputError, match="lies inside the input folder /;"):
        check_inputs_not_outputs([os.sep], [], str(tmp_path / "out"))


def test_a_summary_path_that_is_a_folder_names_the_cohort_summary_by_default(tmp_path):
    (tmp_path / "report.json").mkdir()
    with pytest.raises(InputError) as refused:
        check_summary_paths(str(tmp_path), overwrite=True)
    assert refused.value.reason == "is a folder; the cohort summary is written there"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_existing_folder_nothing_can_be_written_to_is_refused_before_any_work():
    # /proc refuses new files even to root, who may write to any folder a permission test could make
    with pytest.raises(InputError) as refused:
        prepare_out_dir("/proc/self")
    assert refused.value.path == "/proc/self"
    assert refused.value.reason.startswith("output folder cannot be written (")
