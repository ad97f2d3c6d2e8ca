"""Batch registration inside Slicer, with the command-line tool's options and outputs.

    Slicer --no-main-window --python-script <module dir>/CTAffineRegisterLib/slicer_batch.py \\
        --fixed A.nrrd --moving B.nii.gz C/ --out results

Options are those of ``ct-affine-register register`` (``--transform``, ``--fill``, ``--interpolator``,
``--overwrite``, ``--quiet``, ``--jobs``). Slicer's Python cannot start worker processes, so ``--jobs 1``
is added unless given. Slicer keeps running after a ``--python-script`` ends, so the exit status is
handed to ``slicer.util.exit``, which also stops Slicer; with plain Python (the same file works
without Slicer) it is ``sys.exit``.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Optional

EXIT_CRASHED = 1


def cli_arguments(argv: list[str], inside_slicer: bool) -> list[str]:
    """The ``cli.main`` argument list for this script's arguments."""
    arguments = ["register", *argv]
    given_jobs = any(arg == "--jobs" or arg.startswith("--jobs=") for arg in argv)
    if inside_slicer and not given_jobs:
        arguments += ["--jobs", "1"]
    return arguments


def run(argv: list[str], inside_slicer: bool) -> int:
    """Run the command line tool; its status, or 1 if it crashed (argparse's own exits are kept)."""
    from CTAffineRegisterLib.cli import main

    try:
        return int(main(cli_arguments(argv, inside_slicer)) or 0)
    except SystemExit as stop:  # argparse: --help (0) and usage errors (2)
        return stop.code if isinstance(stop.code, int) else EXIT_CRASHED
    except Exception:
        traceback.print_exc()
        return EXIT_CRASHED


def _slicer_application() -> Optional[object]:
    """Slicer's application object, or None outside Slicer (plain Python, or the slicer-core wheel)."""
    try:
        import slicer
    except ImportError:
        return None
    return getattr(slicer, "app", None)


def _make_package_importable(script_path: str) -> None:
    """Import ``CTAffineRegisterLib`` as a package even when this file is run as a script.

    Running a script puts its own folder first on sys.path, which would expose the package's
    modules (``imageio``, ``cli``, ...) as top-level names: take it off and add the module folder.
    """
    package_dir = os.path.dirname(os.path.abspath(script_path))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != package_dir]
    module_dir = os.path.dirname(package_dir)
    if module_dir not in sys.path:
        sys.path.insert(0, module_dir)


def _finish(status: int) -> None:
    if _slicer_application() is not None:
        import slicer

        slicer.util.exit(status)
    else:
        sys.exit(status)


if __name__ == "__main__":
    _make_package_importable(globals().get("__file__") or sys.argv[0])
    _finish(run(sys.argv[1:], inside_slicer=_slicer_application() is not None))
