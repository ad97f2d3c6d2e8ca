"""Runs a Python script the way ``Slicer --no-main-window --python-script`` does, as far as a script sees it.

What it reproduces, from Slicer 5.8's source (qSlicerCoreApplication::handleCommandLineArguments and
CTK's ctkAbstractPythonManager::executeFile):
- once Python is up, ``sys.executable`` is replaced by the ``PythonSlicer`` launcher (``--launcher``);
- the script runs in ``__main__`` with ``__file__`` set, its folder first on ``sys.path``, and the
  arguments after the script (Slicer's own options removed) as ``sys.argv[1:]``;
- ``slicer.app`` exists and ``slicer.util.exit(status)`` ends the application with that status;
- after the script, the application keeps running until something calls ``slicer.util.exit``: here
  that is a sleep of ``--stay-up`` seconds, so a script that forgets to exit shows up as a hang.
It is not Slicer: no MRML, no Qt. ``--block-import NAME`` makes ``import NAME`` fail, as in a broken
installation; ``--import-spawn-early`` imports ``multiprocessing.spawn`` before the executable changes.

    python slicer_script_host.py [--launcher PATH] [--block-import NAME] SCRIPT [ARG ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--launcher", help="what Slicer would set sys.executable to (PythonSlicer)")
    parser.add_argument("--block-import", action="append", default=[], metavar="NAME")
    parser.add_argument("--import-spawn-early", action="store_true")
    parser.add_argument("--stay-up", type=float, default=3600.0, metavar="SECONDS")
    parser.add_argument("script")
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    options = parser.parse_args()

    if options.import_spawn_early:
        import multiprocessing.spawn  # noqa: F401
    for name in options.block_import:
        sys.modules[name] = None  # "import NAME" now raises ImportError
    exit_status = []
    sys.modules["slicer"] = types.SimpleNamespace(
        app=types.SimpleNamespace(), util=types.SimpleNamespace(exit=exit_status.append)
    )
    if options.launcher:
        sys.executable = options.launcher

    script = os.path.abspath(options.script)
    sys.argv = [script, *options.arguments]
    sys.path.insert(0, os.path.dirname(script))
    main_module = types.ModuleType("__main__")  # the script's own __main__, as in Slicer
    main_module.__file__ = script
    sys.modules["__main__"] = main_module
    try:
        with open(script, encoding="utf-8") as source:
            exec(compile(source.read(), script, "exec"), main_module.__dict__)
    except BaseException as error:  # Slicer prints the error and carries on
        print(f"[script raised {type(error).__name__}: {error}]", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if exit_status:
        os._exit(int(exit_status[-1]))
    time.sleep(options.stay_up)  # the event loop: nobody asked Slicer to exit
    os._exit(99)


if __name__ == "__main__":
    main()
