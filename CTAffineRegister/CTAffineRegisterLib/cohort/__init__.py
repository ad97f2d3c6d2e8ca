"""Many moving scans onto one fixed scan: inputs, per-case work and outputs, resuming, parallel
backends (processes, Dask), progress, the summary report and its page, and the 0.1 ``batch`` layer.

The names below load on first use (``core.lazy``): ``cohort.outputs`` (what the command line's
``--help`` needs) is importable without the registration behind ``run_cohort``.
"""

from __future__ import annotations

from ..core.lazy import lazy_names

_NAMES = {
    "EXIT_BY_SIGNAL": ".run",
    "MovingInput": ".inputs",
    "exit_status": ".run",
    "inputs_from_list_file": ".inputs",
    "inputs_from_paths": ".inputs",
    "inputs_from_root": ".inputs",
    "run_cohort": ".run",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES, globals())
