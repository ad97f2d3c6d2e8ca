"""Reading the candidates of a reference choice (reference/candidates.py): each gets its facts and a
thumbnail, one that cannot be used keeps its reason (and the user reads one ``error:`` line), only the
first usable one keeps the scan the workers start with, and the sample's extents come from facts
already read where they can. Fast: tiny phantoms (40×40×24 voxels), no registration."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import SimpleITK as sitk
from support.cohort_helpers import TINY, write_fixed, write_moving
from support.dicom_writer import write_series, write_volume

from CTAffineRegisterLib.cohort.case import CaseOptions
from CTAffineRegisterLib.cohort.inputs import MovingInput
from CTAffineRegisterLib.cohort.progress import ProgressDisplay
from CTAffineRegisterLib.reference import candidates
from CTAffineRegisterLib.reference.candidates import read_candidates, sample_extents
from CTAffineRegisterLib.synthetic import make_pair


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("candidates")
    fine = write_fixed(folder / "fine.nii.gz")
    image = sitk.ReadImage(str(fine))
    image.SetSpacing((3.0, 3.0, 9.0))  # read at 6 mm, every 2nd voxel in-plane
    sitk.WriteImage(image, str(fine))
    write_moving(folder / "other.nii.gz", 1)
    sitk.WriteImage(sitk.ReadImage(str(fine))[:, :, 3:4], str(folder / "slab.nii.gz"))
    (folder / "broken.nii.gz").write_bytes(b"garbage" * 10)
    return folder


def _inputs(folder, *names):
    return [MovingInput(str(folder / name), name.split(".")[0]) for name in names]


def _read(folder, tmp_path, names, options=None):
    log = io.StringIO()
    found = read_candidates(
        _inputs(folder, *names), options or CaseOptions(), str(tmp_path), ProgressDisplay(0, 0, "lines", log)
    )
    return found, log.getvalue().splitlines()


def test_usable_candidates_get_facts_and_a_thumbnail_and_only_the_first_keeps_its_scan(scans, tmp_path):
    found, lines = _read(scans, tmp_path, ["missing.nii.gz", "fine.nii.gz", "other.nii.gz"])
    assert list(found) == ["missing", "fine", "other"]
    assert lines == [f"error: {scans / 'missing.nii.gz'}: no such file or folder"]
    fine, other = found["fine"], found["other"]
    assert fine.problem is None and other.problem is None
    assert fine.path == str(scans / "fine.nii.gz")
    assert fine.out_dir == str(tmp_path / "pairs")
    assert fine.fingerprint is not None and fine.fingerprint != other.fingerprint
    assert fine.facts.size == (40, 40, 24) and fine.facts.spacing_mm == (3.0, 3.0, 9.0)
    assert fine.facts.body_extent_mm > 0
    assert fine.thumbnail == "candidates/fine_scan.png" and other.thumbnail == "candidates/other_scan.png"
    picture = sitk.ReadImage(str(tmp_path / "candidates" / "fine_scan.png"))
    assert picture.GetSize() == (256, 170) and picture.GetNumberOfComponentsPerPixel() == 3
    assert fine.fixed is not None and other.fixed is None
    assert fine.fixed.loaded.image.GetSize() == (40, 40, 24)  # read at full size: registrations use it
    assert fine.fixed.fingerprint == fine.fingerprint
    assert fine.fixed.analysis.body_mask.GetSize() == (40, 40, 24)
    missing = found["missing"]
    assert missing.facts is None and missing.thumbnail is None and missing.fixed is None
    assert missing.problem == "no such file or folder"


def test_with_a_reading_voxel_size_the_first_candidate_keeps_its_small_scan(scans, tmp_path):
    found, _ = _read(scans, tmp_path, ["fine.nii.gz"], CaseOptions(read_voxel_mm=6.0))
    fixed = found["fine"].fixed
    assert fixed.loaded.image.GetSize() == (20, 20, 24)
    assert fixed.analysis.body_mask.GetSize() == (20, 20, 24)
    assert fixed.fingerprint == found["fine"].fingerprint is not None


def test_a_candidate_that_cannot_be_a_fixed_scan_keeps_its_reason_and_is_not_kept(scans, tmp_path):
    found, lines = _read(scans, tmp_path, ["slab.nii.gz", "broken.nii.gz", "other.nii.gz"])
    slab, broken = found["slab"], found["broken"]
    assert slab.problem == "has a single slice (40×40×1 voxels); the fixed scan must be a 3D volume"
    assert slab.facts is not None and slab.fixed is None
    assert broken.problem.startswith("not a readable image")
    assert found["other"].fixed is not None  # the first usable one, after two that are not
    assert lines == [
        f"error: {scans / 'slab.nii.gz'}: {slab.problem}",
        f"error: {scans / 'broken.nii.gz'}: {broken.problem}",
    ]


@pytest.mark.parametrize(
    "error, reason",
    [
        (
            RuntimeError("Exception thrown in SimpleITK\n  /build/x.cxx:10:\n  bad direction  \n\n"),
            "bad direction",
        ),
        (ValueError(""), "ValueError"),
        (RuntimeError("x" * 300), "x" * 200),
    ],
)
def test_a_scan_simpleitk_cannot_handle_is_one_candidates_problem(
    scans, tmp_path, monkeypatch, error, reason
):
    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(candidates, "analyze_background", fails)
    found, lines = _read(scans, tmp_path, ["fine.nii.gz"])
    assert found["fine"].problem == f"cannot be read ({reason})"
    assert lines == [f"error: {scans / 'fine.nii.gz'}: cannot be read ({reason})"]


def test_a_thumbnail_that_cannot_be_written_leaves_the_candidate_usable(scans, tmp_path, monkeypatch):
    def fails(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(candidates, "write_atomically", fails)
    found, lines = _read(scans, tmp_path, ["fine.nii.gz"])
    assert found["fine"].thumbnail is None and found["fine"].problem is None and lines == []


def test_sample_extents_reuse_the_candidates_facts_and_skip_unreadable_scans(scans, tmp_path, monkeypatch):
    found, _ = _read(scans, tmp_path, ["fine.nii.gz", "missing.nii.gz"])
    link = tmp_path / "link.nii.gz"
    os.symlink(scans / "fine.nii.gz", link)
    chosen = [
        MovingInput(str(link), "linked"),  # the candidate under another name: its facts
        MovingInput(str(scans / "other.nii.gz"), "other"),  # read here
        MovingInput(str(scans / "missing.nii.gz"), "gone"),  # a candidate without facts: read, fails
        MovingInput(str(scans / "broken.nii.gz"), "broken"),
    ]
    read = []
    original = candidates.CaseOptions.read

    def counted(self, path):
        read.append(os.path.basename(path))
        return original(self, path)

    monkeypatch.setattr(candidates.CaseOptions, "read", counted)
    extents = sample_extents(chosen, found, CaseOptions())
    assert extents == {"linked": found["fine"].facts.body_extent_mm, "other": pytest.approx(217.35, abs=0.01)}
    assert read == ["other.nii.gz", "missing.nii.gz", "broken.nii.gz"]


def test_a_second_reading_into_the_same_folder_replaces_the_thumbnails(scans, tmp_path):
    _read(scans, tmp_path, ["fine.nii.gz"])
    thumbnail = tmp_path / "candidates" / "fine_scan.png"
    thumbnail.write_bytes(b"an old picture")
    found, lines = _read(scans, tmp_path, ["fine.nii.gz"])
    assert found["fine"].thumbnail == "candidates/fine_scan.png" and lines == []
    assert sitk.ReadImage(str(thumbnail)).GetSize() == (256, 170)


def test_a_dicom_candidates_pixel_padding_value_is_used(tmp_path):
    """Padding values spread over -3024..-3001 are padding only by the series' Pixel Padding Value and
    Range Limit; read without them, the scan would not even count as CT."""
    image = make_pair(seed=0, **TINY).fixed
    values = sitk.GetArrayFromImage(image).astype(np.int16)
    _, rows, columns = np.indices(values.shape)
    ring = (rows - 20) ** 2 + (columns - 20) ** 2 > 17**2
    values[ring] = -3024 + np.arange(np.count_nonzero(ring)) % 24
    scan = sitk.GetImageFromArray(values)
    scan.CopyInformation(image)
    write_volume(tmp_path / "series", scan, {"0028|0120": "-3024", "0028|0121": "-3001"})
    found, lines = _read(tmp_path, tmp_path / "out", ["series"])
    series = found["series"]
    assert lines == [] and series.problem is None
    assert series.facts.padding.startswith("fov-padding (-3024..-3001, ")
    assert series.fixed.analysis.summary.startswith("fov-padding (-3024..-3001, ")
    found, _ = _read(tmp_path, tmp_path / "out", ["series"], CaseOptions(read_voxel_mm=6.0))
    assert found["series"].fixed.analysis.summary.startswith("fov-padding (-3024..-3001, ")
    extents = sample_extents([MovingInput(str(tmp_path / "series"), "sample")], {}, CaseOptions())
    assert extents == {"sample": pytest.approx(24 * 9.0)}


def test_slice_gaps_are_bridged_only_when_the_run_allows_them(tmp_path):
    positions = [0, 2, 4, *range(8, 42, 2)]  # one slice missing after 4 mm
    write_series(tmp_path / "gap", positions, size=40)
    refused, lines = _read(tmp_path, tmp_path / "out", ["gap"])
    assert refused["gap"].problem.startswith("DICOM series has 1 missing slice(s)")
    assert refused["gap"].facts is None and len(lines) == 1
    bridged, _ = _read(tmp_path, tmp_path / "out", ["gap"], CaseOptions(allow_slice_gaps=True))
    assert bridged["gap"].facts is not None and bridged["gap"].facts.size[2] == 21
    sample = [MovingInput(str(tmp_path / "gap"), "gap")]
    assert sample_extents(sample, {}, CaseOptions()) == {}
    assert list(sample_extents(sample, {}, CaseOptions(allow_slice_gaps=True))) == ["gap"]
