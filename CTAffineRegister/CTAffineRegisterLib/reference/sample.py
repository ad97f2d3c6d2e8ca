"""Which scans of the cohort are registered onto every candidate: a reproducible sample.

Pure module: the standard library only.
"""

from __future__ import annotations

import hashlib

from ..cohort.inputs import MovingInput


def choose_sample(scans: list[MovingInput], size: int) -> list[MovingInput]:
    """``size`` of the scans, the same ones on every run and machine whatever their order: those whose
    id has the smallest SHA-256 (an even spread over names, dates and folders), in the given order.

    Args:
        scans: the scans to choose from.
        size: how many.

    Returns:
        The chosen scans (all of them when there are no more than ``size``).
    """
    if len(scans) <= size:
        return list(scans)
    keyed = sorted(scans, key=lambda scan: hashlib.sha256(scan.case_id.encode("utf-8")).hexdigest())
    chosen = {scan.case_id for scan in keyed[:size]}
    return [scan for scan in scans if scan.case_id in chosen]
