"""The module logic's background run: one ``ThreadedRegistration`` at a time, polled on the
GUI thread, and let go of as soon as it has finished.

A finished run still holds what it worked with: its results (the result nodes, each with its voxels)
and, until it lets go of it, the copy of the fixed CT. A logic that kept its last run would keep all of
that alive for the panel's life, also after *File > Close Scene* (about 1 GB for five 512×512×300
scans), so ``PanelRun`` forgets the run the moment its ``on_finished`` has been called.

The poll is handed to a scheduler (in Slicer ``qt.QTimer.singleShot(0, ...)``), so this module needs
no Qt and the test suite drives it with a plain queue of calls. The run itself is made by the class it
is given (``mrml.volume_nodes.ThreadedRegistration``), so it imports neither ``slicer`` nor ``mrml``
(the layers: ``panel`` and ``mrml`` are side by side); the nodes it is given are MRML nodes.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from typing import Any, Callable, Optional

# The GUI thread holds Python's GIL while Qt runs, so a worker's Python code (progress callbacks, numpy
# glue) only moves while the GUI thread sleeps: each poll ends with a short sleep (as SlicerSimpleFilters
# does), then the next poll is scheduled right away.
GIL_YIELD_SECONDS = 0.01

_log = logging.getLogger(__name__)


class PanelRun:
    """Start, poll, cancel and forget the panel's registration run (see the module docstring)."""

    def __init__(
        self,
        schedule: Callable[[Callable[[], None]], None],
        pause_seconds: float = GIL_YIELD_SECONDS,
        *,
        registration: Callable[..., Any],
    ):
        """
        Args:
            schedule: calls its argument soon on the GUI thread (Slicer: ``qt.QTimer.singleShot(0, f)``).
            pause_seconds: sleep after each poll that found the run unfinished (lets the worker run).
            registration: makes one threaded run from ``start``'s arguments
                (``mrml.volume_nodes.ThreadedRegistration``).
        """
        self._schedule = schedule
        self._pause_seconds = pause_seconds
        self._registration = registration
        self._run: Optional[Any] = None

    def is_running(self) -> bool:
        """A run has started and not finished yet."""
        return self._run is not None and not self._run.finished

    def cancel(self) -> None:
        """Stop the run at the optimizer's next iteration (it still finishes through the poll)."""
        if self._run is not None:
            self._run.cancel()

    def wait(self) -> None:
        """Block until the worker thread has stopped (on shutdown, after ``cancel``)."""
        if self._run is not None:
            self._run.wait()

    def start(
        self,
        fixed_node,
        moving_nodes: Sequence,
        *,
        on_progress: Optional[Callable] = None,
        on_case_done: Optional[Callable] = None,
        on_finished: Optional[Callable] = None,
        **options,
    ) -> None:
        """Start registering in a worker thread; call on the GUI thread, callbacks come back there.

        Args:
            fixed_node, moving_nodes: the volumes (``panel.decisions.run_arguments`` gives them).
            on_progress, on_case_done, on_finished: as for ``mrml.volume_nodes.ThreadedRegistration``.
            **options: ``transform``, ``fill``, ``create_mask``, ``carry_segmentations``.

        Raises:
            RuntimeError: a run is already going.
            VolumeNodeError: the fixed volume cannot be used, or no moving volume is given.
        """
        if self.is_running():
            raise RuntimeError("A registration is already running.")
        run = self._registration(
            fixed_node,
            moving_nodes,
            on_progress=on_progress,
            on_case_done=on_case_done,
            on_finished=on_finished,
            **options,
        )
        self._run = run
        run.start()
        self._schedule(lambda: self._poll(run))

    def _poll(self, run: Any) -> None:
        try:
            if run.poll():
                if run.error_details:
                    _log.error("CTAffineRegister: %s", run.error_details)
                self._forget(run)
                return
        except Exception:  # a callback failed: keep polling so the run still finishes
            _log.error("CTAffineRegister: %s", traceback.format_exc())
        time.sleep(self._pause_seconds)  # let the worker's Python run
        self._schedule(lambda: self._poll(run))

    def _forget(self, run: Any) -> None:
        """Drop the finished run: nothing of it (fixed copy, results, nodes) stays reachable from here."""
        if self._run is run:
            self._run = None
