"""The candidates of a reference choice, read once each: coverage facts, a thumbnail, and the scan
the workers start with; and the body extent of the sample scans the ranking compares them with.

A candidate that cannot be read, or cannot be a fixed scan, is kept with its reason (it is ranked
last, and the run goes on). Facts are always taken at about ``RANKING_VOXEL_MM`` (every k-th voxel,
so padding stays padding), whatever the registrations' quality. Pure module: SimpleITK, numpy and
the standard library.
"""

from __future__ import annotations

import os
from typing import Optional

import SimpleITK as sitk

from ..cohort.case import CaseOptions, FixedScan, fixed_problem, input_fingerprint, subsampled
from ..cohort.inputs import MovingInput
from ..cohort.progress import ProgressDisplay
from ..errors import InputError
from ..io.images import write_atomically
from ..padding.analysis import analyze_background
from ..quality.picture import qc_picture, thumbnail
from .facts import ScanFacts, scan_facts

# Voxel size (mm) scans are read at for ranking (and their facts always).
RANKING_VOXEL_MM = 6.0
PAIRS_FOLDER = "pairs"
THUMBS_FOLDER = "candidates"


class CandidateScan:
    """One candidate as read: its facts, thumbnail, fingerprint and why it cannot be a fixed scan."""

    def __init__(self, path: str, out_dir: str):
        self.path = path
        self.out_dir = out_dir
        self.fingerprint: Optional[dict] = None
        self.facts: Optional[ScanFacts] = None
        self.problem: Optional[str] = None
        self.thumbnail: Optional[str] = None
        self.fixed: Optional[FixedScan] = None  # kept for the first usable candidate only


def read_candidates(
    candidates: list[MovingInput], options: CaseOptions, out_dir: str, display: ProgressDisplay
) -> dict:
    """Facts and a thumbnail of every candidate; one that cannot be read keeps its reason.

    Args:
        candidates: the candidates.
        options: the registrations' ``CaseOptions`` (how to read; their voxel size).
        out_dir: the output folder (thumbnails go to its ``candidates/``).
        display: where an ``error:`` line goes for a candidate that cannot be used.

    Returns:
        ``CandidateScan`` by candidate id; only the first usable one keeps its ``fixed`` scan.
    """
    scans = {}
    pairs_dir = os.path.join(out_dir, PAIRS_FOLDER)
    keep_first = True
    for candidate in candidates:
        scan = CandidateScan(candidate.path, pairs_dir)
        scan.fingerprint = input_fingerprint(candidate.path)
        try:
            full = CaseOptions(allow_slice_gaps=options.allow_slice_gaps).read(candidate.path)
            small = subsampled(full, RANKING_VOXEL_MM)
            analysis = analyze_background(small.image, small.dicom_padding)
            scan.facts = scan_facts(small.image, analysis, full.image)
            scan.problem = fixed_problem(FixedScan(full, analysis, scan.fingerprint))
            scan.thumbnail = _write_thumbnail(small.image, out_dir, candidate.case_id)
            if scan.problem is None and keep_first:  # the scan the workers start with
                if options.read_voxel_mm is None:
                    scan.fixed = FixedScan(
                        full, analyze_background(full.image, full.dicom_padding), scan.fingerprint
                    )
                else:
                    scan.fixed = FixedScan(small, analysis, scan.fingerprint)
                keep_first = False
        except InputError as error:
            scan.problem = error.reason
        except (RuntimeError, ValueError) as error:  # a scan SimpleITK cannot handle: this candidate only
            lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [
                type(error).__name__
            ]
            scan.problem = f"cannot be read ({lines[-1][:200]})"
        if scan.problem is not None:
            display.error(f"{candidate.path}: {scan.problem}")
        scans[candidate.case_id] = scan
    return scans


def _write_thumbnail(image: sitk.Image, out_dir: str, case_id: str) -> Optional[str]:
    """The scan's three middle planes, small, for the page; None if it cannot be written."""
    name = f"{THUMBS_FOLDER}/{case_id}_scan.png"
    path = os.path.join(out_dir, THUMBS_FOLDER, f"{case_id}_scan.png")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        picture = thumbnail(qc_picture(image, image))
        write_atomically(
            path, lambda temporary: sitk.WriteImage(picture, temporary, imageIO="PNGImageIO"), True
        )
    except (OSError, RuntimeError):
        return None
    return name


def sample_extents(chosen: list[MovingInput], scans: dict, options: CaseOptions) -> dict:
    """Body extent (mm) along the body axis of every sample scan: a candidate's from its facts, the
    others read once (one that cannot be read is left out: its pairs fail on their own, saying why).

    Args:
        chosen: the sample scans.
        scans: ``read_candidates``' result.
        options: the registrations' ``CaseOptions`` (how to read).

    Returns:
        Extent (mm) by sample id.
    """
    by_path = {os.path.realpath(scan.path): scan for scan in scans.values()}
    extents = {}
    for item in chosen:
        known = by_path.get(os.path.realpath(item.path))
        if known is not None and known.facts is not None:
            extents[item.case_id] = known.facts.body_extent_mm
            continue
        try:
            small = subsampled(
                CaseOptions(allow_slice_gaps=options.allow_slice_gaps).read(item.path), RANKING_VOXEL_MM
            )
            analysis = analyze_background(small.image, small.dicom_padding)
            extents[item.case_id] = scan_facts(small.image, analysis).body_extent_mm
        except (InputError, RuntimeError, ValueError):
            continue  # its pairs fail on their own, each saying why
    return extents
