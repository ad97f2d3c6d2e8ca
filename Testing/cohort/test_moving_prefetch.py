"""A lone case's moving scan is read and analysed beside the fixed scan's analysis.

The read-ahead must change nothing a user gets (the same files, the same errors naming the same
file) and must never use a scan that is not the one the case reads now.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from support.cohort_helpers import case_report, write_fixed, write_moving

from CTAffineRegisterLib.cohort import case as case_module
from CTAffineRegisterLib.cohort import prefetch as prefetch_module
from CTAffineRegisterLib.cohort.case import CaseOptions, input_fingerprint
from CTAffineRegisterLib.cohort.prefetch import MovingPrefetch
from CTAffineRegisterLib.cohort.run import run_cohort
from CTAffineRegisterLib.errors import InputError

ROLES = ("registered", "transform", "validmask", "qc", "qc_thumb")


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prefetch")
    return write_fixed(folder / "fixed.nii.gz"), write_moving(folder / "m.nrrd", 21)


def test_a_lone_case_gives_the_same_files_read_ahead_as_read_in_turn(scans, tmp_path):
    fixed, moving = scans
    ahead = run_cohort(str(fixed), [str(moving)], str(tmp_path / "ahead"))  # lone, in this process
    twice = [str(moving), str(moving)]  # two cases: each reads its own scan in turn
    in_turn = run_cohort(str(fixed), twice, str(tmp_path / "turn"), jobs=1)
    lone = case_report(tmp_path / "ahead", "m")
    assert set(lone["read_ahead"]) == {"read_moving", "analyse_moving"}
    assert "read_moving" not in lone["timings"]
    assert ahead["counts"]["registered"] == 1
    other = next(case for case in in_turn["cases"] if case["status"] == "ok")
    assert "read_ahead" not in other
    for role in ROLES:
        assert (tmp_path / "ahead" / lone["outputs"][role]).read_bytes() == (
            tmp_path / "turn" / other["outputs"][role]
        ).read_bytes(), role
    other["quality"].pop("cohort")  # a cohort's note on its outliers: a lone case has none
    assert lone["quality"] == other["quality"]


def test_a_bad_moving_scan_read_ahead_fails_its_case_naming_the_file(scans, tmp_path):
    fixed, _ = scans
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image at all")
    summary = run_cohort(str(fixed), [str(broken)], str(tmp_path / "out"))
    case = summary["cases"][0]
    assert case["status"] == "failed"
    assert str(broken) in case["error"]
    assert os.listdir(tmp_path / "out").count("broken_report.json") == 1


def test_a_lone_case_prepares_the_fixed_pyramid_while_its_scan_is_analysed(scans, tmp_path, monkeypatch):
    from CTAffineRegisterLib.registration import preparation

    fixed, moving = scans
    analyse = prefetch_module.analyze_background
    built: list = []
    original = preparation._build_fixed_pyramid

    def slow_analysis(image, padding):  # a moving scan that takes long to analyse
        time.sleep(1.0)
        return analyse(image, padding)

    def counting(*arguments):
        built.append(prefetch_module.prefetch_pending(str(moving)))  # still analysing the moving scan?
        return original(*arguments)

    monkeypatch.setattr(prefetch_module, "analyze_background", slow_analysis)
    monkeypatch.setattr(preparation, "_build_fixed_pyramid", counting)
    case_module._FIXED_CACHE.clear()  # a fixed scan (and its pyramid) of an earlier test is not reused
    summary = run_cohort(str(fixed), [str(moving)], str(tmp_path / "out"))
    case = summary["cases"][0]
    assert case["status"] == "ok"
    assert built == [True]  # once, while the moving scan was still being analysed, not again
    assert case["timings"]["wait_moving"] < case["read_ahead"]["analyse_moving"]


def _counting_reader(calls: list, result="scan"):
    def read(path: str):
        calls.append(path)
        if isinstance(result, BaseException):
            raise result
        return result

    return read


def test_nothing_is_read_before_start_and_nothing_after_drop(tmp_path, monkeypatch):
    path = tmp_path / "m.nii.gz"
    path.write_bytes(b"x")
    calls: list = []
    prefetch = MovingPrefetch(str(path), _counting_reader(calls), input_fingerprint)
    time.sleep(0.05)
    assert calls == []  # waits for the fixed scan to be read
    prefetch.drop()
    assert calls == [] and prefetch.take(str(path)) is None


def test_only_the_scan_prefetched_unchanged_is_taken_and_only_once(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch_module, "analyze_background", lambda image, padding: ("analysed", image))
    loaded = type("Loaded", (), {"image": "voxels", "dicom_padding": None})()
    path, other = tmp_path / "m.nii.gz", tmp_path / "n.nii.gz"
    path.write_bytes(b"x")
    calls: list = []
    prefetch = MovingPrefetch(str(path), _counting_reader(calls, loaded), input_fingerprint)
    prefetch.start()
    assert prefetch.take(str(other)) is None  # another scan: the case reads its own
    taken = prefetch.take(str(tmp_path / "." / "m.nii.gz"))  # the same file, spelled otherwise
    assert taken.loaded is loaded and taken.analysis == ("analysed", "voxels")
    assert taken.read_seconds >= 0 and taken.analyse_seconds >= 0
    assert prefetch.take(str(path)) is None  # taken once: a second case reads it itself
    assert calls == [str(path)]


def test_a_scan_changed_on_disk_after_it_was_read_ahead_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch_module, "analyze_background", lambda image, padding: "analysed")
    path = tmp_path / "m.nii.gz"
    path.write_bytes(b"x")
    reading = threading.Event()
    release = threading.Event()

    def slow_read(name: str):
        reading.set()
        release.wait(5)
        return type("Loaded", (), {"image": "old", "dicom_padding": None})()

    prefetch = MovingPrefetch(str(path), slow_read, input_fingerprint)
    prefetch.start()
    assert reading.wait(5)
    path.write_bytes(b"a new scan, written while the old one was read")
    release.set()
    assert prefetch.take(str(path)) is None


def test_a_read_error_is_raised_where_the_case_reads(tmp_path):
    path = tmp_path / "m.nii.gz"
    path.write_bytes(b"x")
    failing = _counting_reader([], InputError(str(path), "not an image"))
    prefetch = MovingPrefetch(str(path), failing, input_fingerprint)
    prefetch.start()
    with pytest.raises(InputError, match="not an image"):
        prefetch.take(str(path))


def test_the_read_ahead_reads_as_the_run_does(scans, tmp_path):
    """The reading options of the run (subsampling, slice gaps) are the ones the read-ahead uses."""
    _, moving = scans
    options = CaseOptions(read_voxel_mm=12.0)
    prefetch = MovingPrefetch(str(moving), options.read, input_fingerprint)
    prefetch.start()
    taken = prefetch.take(str(moving))
    assert taken.loaded.image.GetSize() == options.read(str(moving)).image.GetSize()
    assert taken.loaded.image.GetSpacing()[0] > CaseOptions().read(str(moving)).image.GetSpacing()[0]
