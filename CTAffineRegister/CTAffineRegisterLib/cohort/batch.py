"""The batch API of version 0.1, kept for scripts that use it: a thin layer over ``cohort.run_cohort``.

New code should call ``cohort.run_cohort`` directly (list files, folders, Dask, resume, progress).
Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from ..registration.options import RegistrationOptions
from .outputs import output_names
from .run import run_cohort

REPORT_NAME = "report.json"


@dataclass
class BatchSettings:
    """What the user chose for a batch; defaults are the command line's defaults."""

    out_dir: str
    transform: str = "affine"
    fill: Optional[float] = None
    interpolator: str = "linear"
    overwrite: bool = False
    jobs: Optional[int] = None
    quiet: bool = False
    output_format: str = "nii.gz"
    options: Optional[RegistrationOptions] = field(default=None, repr=False)


def output_paths(out_dir: str, stem: str, output_format: str = "nii.gz") -> dict:
    """The four outputs of a case: registered, transform, validmask, qc.

    Args:
        out_dir: the output folder.
        stem: the case's id.
        output_format: "nii.gz", "nii", "nrrd" or "mha".

    Returns:
        Path by role.
    """
    names = output_names(stem, output_format)
    roles = ("registered", "transform", "validmask", "qc")
    return {role: os.path.join(out_dir, names[role]) for role in roles}


def run_batch(fixed_path: str, moving_paths: list, settings: BatchSettings) -> dict:
    """Run every case; returns the summary (also written as report.json/.csv/.html).

    Raises ``InputError`` when nothing can start (unreadable fixed scan, unusable output folder),
    and ``TypeError`` when ``moving_paths`` is a single path instead of a list.

    Args:
        fixed_path: the fixed scan.
        moving_paths: the moving scans (a list, not one path).
        settings: the ``BatchSettings``.

    Returns:
        The cohort summary.

    Raises:
        InputError: nothing can start.
        TypeError: ``moving_paths`` is a single path.
    """
    return run_cohort(
        fixed_path,
        moving_paths,
        settings.out_dir,
        jobs=settings.jobs,
        transform=settings.transform,
        fill=settings.fill,
        interpolator=settings.interpolator,
        output_format=settings.output_format,
        overwrite=settings.overwrite,
        options=settings.options,
        progress="quiet" if settings.quiet else "auto",
    )
