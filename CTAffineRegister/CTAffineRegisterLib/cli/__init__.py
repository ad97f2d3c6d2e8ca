"""The command line: ``ct-affine-register`` and its subcommands (``commands``), the demo, and the
Slicer batch entry (``slicer_batch``, run as a script by Slicer's ``--python-script``)."""

from __future__ import annotations

from .commands import add_input_options, main

__all__ = ["add_input_options", "main"]
