"""Many moving scans onto one fixed scan: inputs, per-case work and outputs, resuming, parallel
backends (processes, Dask), progress, the summary report and its page, and the 0.1 ``batch`` layer."""

from __future__ import annotations

from .inputs import MovingInput, inputs_from_list_file, inputs_from_paths, inputs_from_root
from .run import EXIT_BY_SIGNAL, exit_status, run_cohort

__all__ = [
    "EXIT_BY_SIGNAL",
    "MovingInput",
    "exit_status",
    "inputs_from_list_file",
    "inputs_from_paths",
    "inputs_from_root",
    "run_cohort",
]
