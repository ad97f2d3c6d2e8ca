"""What a scan covers, for choosing a reference: facts read from one scan alone, before any registration.

A reference scan is the grid every other scan is put on, so what it does not show, no registered
scan can show: where its field of view (the reconstruction circle, a padding edge, or the image's
own border) cuts through the body, everything beyond the cut is lost for every case. Facts here:

- **FOV cut**: the share of the body's outline, slice by slice in-plane, that lies on the edge of
  the real data (next to padding or on the image border) instead of on air. A body wholly inside
  its field of view has none (a few arm or couch voxels at most); a circle or crop through the chest
  has a long straight or curved stretch of it.
- **extent along the body axis**: how many mm of body the slices hold (slices with body × slice
  spacing), compared later with the sample's.
- **slice thickness** (the scan's own slice spacing, before any subsampling) and the padding found.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..padding.analysis import BackgroundAnalysis

# The outline of one in-plane slice: body voxels with a non-body neighbour in-plane.
SLICE_AXIS = 2  # the image's third axis: the slices of an axial CT, the body axis


@dataclass(frozen=True)
class ScanFacts:
    """Coverage facts of one scan (all JSON-able)."""

    fov_cut_share: float  # share of the in-plane body outline on the edge of the real data
    body_extent_mm: float  # body along the slice axis: slices holding body × slice spacing
    slice_mm: float  # the scan's own slice spacing (mm), before subsampling
    padding: str  # what the padding finder said (its one-line summary)
    padding_kind: str
    size: tuple  # voxels of the scan as read (before subsampling)
    spacing_mm: tuple  # voxel size (mm) of the scan as read

    def to_dict(self) -> dict:
        """Plain values for reference.json.

        Returns:
            The dict.
        """
        return {
            "fov_cut_share": round(self.fov_cut_share, 4),
            "body_extent_mm": round(self.body_extent_mm, 1),
            "slice_mm": round(self.slice_mm, 3),
            "padding": self.padding,
            "padding_kind": self.padding_kind,
            "size": list(self.size),
            "spacing_mm": [round(value, 4) for value in self.spacing_mm],
        }


def scan_facts(
    image: sitk.Image, analysis: BackgroundAnalysis, original: Optional[sitk.Image] = None
) -> ScanFacts:
    """The coverage facts of one scan from its background analysis.

    Args:
        image: the scan the analysis was made on (may be subsampled).
        analysis: its ``analyze_background`` result.
        original: the scan as read (for its size and slice spacing), or None: ``image`` itself.

    Returns:
        The ``ScanFacts``.
    """
    original = original or image
    body = sitk.GetArrayViewFromImage(analysis.body_mask) > 0  # (z, y, x)
    valid = sitk.GetArrayViewFromImage(analysis.valid_mask) > 0
    slices_with_body = int(np.count_nonzero(body.any(axis=(1, 2))))
    spacing = original.GetSpacing()
    return ScanFacts(
        fov_cut_share=fov_cut_share(body, valid),
        body_extent_mm=slices_with_body * image.GetSpacing()[SLICE_AXIS],
        slice_mm=float(spacing[SLICE_AXIS]),
        padding=analysis.summary,
        padding_kind=analysis.kind,
        size=tuple(int(n) for n in original.GetSize()),
        spacing_mm=tuple(float(s) for s in spacing),
    )


def fov_cut_share(body: np.ndarray, valid: np.ndarray) -> float:
    """Share of the in-plane body outline that lies on the edge of the real data.

    Args:
        body: the body mask, (z, y, x) booleans.
        valid: where the scan holds real data (not padding), same shape.

    Returns:
        0 for a body wholly inside its field of view, up to 1; 0 when there is no body.
    """
    if not body.any():
        return 0.0
    # in-plane neighbours, outside the image counting as "not body" and as "no data"
    padded_body = np.pad(body, ((0, 0), (1, 1), (1, 1)), constant_values=False)
    padded_gap = np.pad(~valid, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    outline = np.zeros_like(body)
    edge = np.zeros_like(body)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rows, columns = (
            slice(1 + dy, padded_body.shape[1] - 1 + dy),
            slice(1 + dx, padded_body.shape[2] - 1 + dx),
        )
        outline |= ~padded_body[:, rows, columns]
        edge |= padded_gap[:, rows, columns]
    outline &= body
    total = int(np.count_nonzero(outline))
    return float(np.count_nonzero(outline & edge)) / total if total else 0.0
