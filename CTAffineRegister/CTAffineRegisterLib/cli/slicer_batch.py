"""Batch registration inside Slicer, with the command-line tool's options and outputs.

    Slicer --no-main-window --python-script <module dir>/CTAffineRegisterLib/cli/slicer_batch.py -- \\
        --fixed A.nrrd --moving B.nii.gz C/ --out results

Options are those of ``ct-affine-register register``. Everything after ``--`` reaches this script
untouched; without it Slicer itself takes ``--help``, ``-h`` and ``--version``. Slicer's launcher
(CTK's ``ctkAppLauncher::processArguments``) still sees ``--help`` and ``-h`` anywhere on the command
line, even after ``--``, and prints its own help as well; ``--tool-help`` (this script's own flag)
prints only the tool's. Slicer keeps running after a ``--python-script`` ends, so whatever happens
(even a failed import) the exit status is handed to ``slicer.util.exit``, which stops Slicer; with
plain Python (the same file works without Slicer) it is ``sys.exit``.

Cases run in parallel worker processes (``--jobs``, default one per core). Inside Slicer the workers
are started through ``PythonSlicer``, which Slicer sets as ``sys.executable``; a quick probe checks
that such a worker can start and import this package, and without one the cases run one after another.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Optional

EXIT_CRASHED = 1
# The tool's help without the launcher's: a flag CTK's launcher does not react to (it does to -h, --help).
TOOL_HELP = "--tool-help"
# A worker that cannot import the package within this time is not going to help (seconds).
PROBE_TIMEOUT = 120.0


def cli_arguments(argv: list[str], serial: bool) -> list[str]:
    """The ``cli.main`` argument list for this script's arguments: ``--tool-help`` becomes ``--help``;
    ``serial`` adds ``--jobs 1`` unless the user chose ``--jobs``.

    Args:
        argv: the script's arguments.
        serial: run the cases one at a time.

    Returns:
        The arguments for ``main``.
    """
    arguments = ["register", *("--help" if arg == TOOL_HELP else arg for arg in argv)]
    given_jobs = any(arg == "--jobs" or arg.startswith("--jobs=") for arg in argv)
    if serial and not given_jobs:
        arguments += ["--jobs", "1"]
    return arguments


def run(argv: list[str], inside_slicer: bool) -> int:
    """Run the command line tool; its status, or 1 if it crashed (argparse's own exits are kept).

    Args:
        argv: the script's arguments.
        inside_slicer: running in Slicer's Python.

    Returns:
        The exit status.
    """
    try:
        from CTAffineRegisterLib.cli.commands import main
        from CTAffineRegisterLib.cohort.run import run_cohort  # noqa: F401 (what register runs: load it now)
    except Exception as error:  # a broken installation: one line, not a traceback
        print(f"error: cannot load CTAffineRegisterLib: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_CRASHED
    serial = False
    if inside_slicer and _may_use_workers(argv):
        problem = worker_processes_problem()
        if problem:
            print(f"note: cases run one at a time: {problem}", file=sys.stderr)
            serial = True
    try:
        return int(main(cli_arguments(argv, serial)) or 0)
    except SystemExit as stop:  # argparse: --help (0) and usage errors (2)
        return stop.code if isinstance(stop.code, int) else EXIT_CRASHED
    except Exception:
        traceback.print_exc()
        return EXIT_CRASHED


def _may_use_workers(argv: list[str]) -> bool:
    """False when the run certainly starts no worker: help, version, or one job asked for."""
    if any(arg in ("-h", "--help", TOOL_HELP, "--version") for arg in argv):
        return False
    for index, arg in enumerate(argv):
        if arg == "--jobs=1" or (arg == "--jobs" and argv[index + 1 : index + 2] == ["1"]):
            return False
    return True


def worker_processes_problem(timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """None when a worker process can be started here and can import this package; otherwise why not.

    The batch's workers are started with 'spawn', which runs ``sys.executable``. Slicer sets that to
    its ``PythonSlicer`` launcher once Python is up, but ``multiprocessing.spawn`` reads it when first
    imported, which may have happened earlier: it is handed over explicitly.

    Args:
        timeout: how long the probe may take (seconds).

    Returns:
        None, or why not.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    executable = sys.executable
    if not executable or not os.path.isfile(executable):
        return f"no Python executable to start worker processes with ({executable!r})"
    multiprocessing.set_executable(executable)
    # by its package name, so the worker finds it by importing the package (this file may be __main__)
    from CTAffineRegisterLib.cli.slicer_batch import probe_worker

    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(probe_worker).result(timeout=timeout)
    except Exception as error:
        return f"a worker process started with {executable} failed: {type(error).__name__}: {error}"
    return None


def probe_worker() -> str:
    """Runs in a worker process: the imports a registration case needs."""
    import SimpleITK

    import CTAffineRegisterLib.pair.register  # noqa: F401

    return SimpleITK.Version.VersionString()


def _slicer_application() -> Optional[object]:
    """Slicer's application object, or None outside Slicer (plain Python, or the slicer-core wheel).

    Slicer imports its ``slicer`` module at start-up (``slicerqt.py``), before any ``--python-script``
    runs, so looking in ``sys.modules`` is enough. Importing it to find out would load the slicer-core
    wheel where one is installed: 0.8 s of start-up for nothing in every plain-Python run.
    """
    return getattr(sys.modules.get("slicer"), "app", None)


def _make_package_importable(script_path: str) -> None:
    """Import ``CTAffineRegisterLib`` as a package even when this file is run as a script.

    Running a script (Slicer does the same) puts its own folder first on sys.path, which would expose
    the subpackage's modules (``commands``, ``demo``, ...) as top-level names: take it off and add the
    module folder, the one above the package (this file is in ``CTAffineRegisterLib/cli/``).
    """
    script_dir = os.path.dirname(os.path.abspath(script_path))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != script_dir]
    module_dir = os.path.dirname(os.path.dirname(script_dir))
    if module_dir not in sys.path:
        sys.path.insert(0, module_dir)


def _finish(status: int) -> None:
    if _slicer_application() is not None:
        import slicer  # already loaded by Slicer: free

        slicer.util.exit(status)
    else:
        sys.exit(status)


def _main() -> None:
    """Whatever goes wrong, the exit status reaches ``_finish``: a headless Slicer must never stay up."""
    status = EXIT_CRASHED
    try:
        _make_package_importable(globals().get("__file__") or sys.argv[0])
        status = run(sys.argv[1:], inside_slicer=_slicer_application() is not None)
    except BaseException as error:  # noqa: B036 - even Ctrl+C must end Slicer with a status
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        _finish(status)


if __name__ == "__main__":
    _main()
