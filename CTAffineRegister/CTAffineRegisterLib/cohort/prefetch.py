"""A lone moving scan read and analysed beside the fixed scan's analysis, on the second core.

Why: the commonest call registers one moving scan in this process. Its first second goes to reading
and analysing the two scans, one after the other, on one core: the fixed scan's background analysis
and the moving scan's read and analysis do not depend on each other, so the moving scan's run on a
helper thread while the fixed scan is analysed (0.3–0.5 s of a 256²–512² call on two cores).

The moving scan is read only once the fixed scan has been *read*: reading captures ITK's stderr
warnings into the scan's notes, one reader at a time (``io.itk_messages``), and two reads at once
would also compete for the disk. The case takes what was prepared when its path, its file and its
reading options are those the prefetch used (its fingerprint, the one resuming trusts, unchanged),
and reads the scan itself otherwise; a failure to read
is raised where the case would have read, so a bad file gives the case's usual error. What no case
takes is dropped when the run ends. Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..io.images import LoadedImage
from ..padding.analysis import BackgroundAnalysis, analyze_background


@dataclass
class Prefetched:
    """A moving scan read and analysed ahead of its case, with the seconds each step took."""

    loaded: LoadedImage
    analysis: BackgroundAnalysis
    read_seconds: float
    analyse_seconds: float


class MovingPrefetch:
    """Reads and analyses one moving scan on a daemon thread once ``start`` is called.

    Args:
        path: the moving scan (file or DICOM folder), as the case names it.
        read: how the run reads scans (``CaseOptions.read``).
        fingerprint: what tells whether the scan changed on disk (``case.input_fingerprint``).
    """

    def __init__(self, path: str, read: Callable[[str], LoadedImage], fingerprint: Callable[[str], object]):
        self.path = path
        self._read = read
        self._fingerprint = fingerprint
        self._signature = fingerprint(path)
        self._go = threading.Event()
        self._dropped = False
        self._result: Optional[Prefetched] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._work, name="ctar-moving-prefetch", daemon=True)
        self._thread.start()

    def start(self) -> None:
        """Let the helper thread read (call once the fixed scan has been read)."""
        self._go.set()

    def drop(self) -> None:
        """Give up: a read not yet begun never happens; one under way is waited for, then let go."""
        self._dropped = True
        self._go.set()
        self._thread.join()
        self._result = None
        self._error = None

    def pending(self, path: str) -> bool:
        """Whether ``path`` is the scan prefetched and its reading or analysis is still under way.

        Args:
            path: the moving scan a case is about to read.

        Returns:
            True while the helper thread is still working on it.
        """
        same = os.path.realpath(path) == os.path.realpath(self.path)
        return same and not self._dropped and self._thread.is_alive()

    def take(self, path: str) -> Optional[Prefetched]:
        """The prepared scan when ``path`` is the one prefetched and its file has not changed since,
        else None (the caller reads it itself). Waits for the helper thread if it is still working.

        Args:
            path: the moving scan the case is about to read.

        Returns:
            The ``Prefetched`` scan, or None.

        Raises:
            Whatever reading or analysing it raised (an ``InputError`` naming the file, say).
        """
        if self._dropped or os.path.realpath(path) != os.path.realpath(self.path):
            return None
        self._go.set()
        self._thread.join()
        if self._fingerprint(path) != self._signature:
            return None  # changed while it was read: read it again, as a case would have
        result, error = self._result, self._error
        self._dropped, self._result, self._error = True, None, None  # taken once
        if error is not None:
            raise error
        return result

    def _work(self) -> None:
        self._go.wait()
        if self._dropped:
            return
        try:
            started = time.perf_counter()
            loaded = self._read(self.path)
            read_seconds = time.perf_counter() - started
            analysis = analyze_background(loaded.image, loaded.dicom_padding)
            analyse_seconds = time.perf_counter() - started - read_seconds
            self._result = Prefetched(loaded, analysis, read_seconds, analyse_seconds)
        except BaseException as error:  # noqa: B036 - raised again where the case reads the scan
            self._error = error


_CURRENT: Optional[MovingPrefetch] = None
_LOCK = threading.Lock()


def begin_prefetch(
    path: str, read: Callable[[str], LoadedImage], fingerprint: Callable[[str], object]
) -> MovingPrefetch:
    """Start preparing ``path`` for this process's next case that reads it (replacing any other).

    Args:
        path: the moving scan.
        read: how to read it (``CaseOptions.read``).
        fingerprint: what tells whether it changed on disk (``case.input_fingerprint``).

    Returns:
        The prefetch: ``start()`` it once the fixed scan is read, ``drop()`` it when the run ends.
    """
    global _CURRENT
    prefetch = MovingPrefetch(path, read, fingerprint)
    with _LOCK:
        previous, _CURRENT = _CURRENT, prefetch
    if previous is not None:
        previous.drop()
    return prefetch


def take_prefetched(path: str) -> Optional[Prefetched]:
    """What was prepared for ``path`` in this process, or None; see ``MovingPrefetch.take``.

    Args:
        path: the moving scan a case is about to read.

    Returns:
        The ``Prefetched`` scan, or None.

    Raises:
        Whatever reading or analysing it raised.
    """
    with _LOCK:
        prefetch = _CURRENT
    return None if prefetch is None else prefetch.take(path)


def prefetch_pending(path: str) -> bool:
    """Whether this process is still reading or analysing ``path`` ahead (see ``MovingPrefetch.pending``).

    Args:
        path: the moving scan a case is about to read.

    Returns:
        True while that work is under way.
    """
    with _LOCK:
        prefetch = _CURRENT
    return prefetch is not None and prefetch.pending(path)


def end_prefetch(prefetch: Optional[MovingPrefetch]) -> None:
    """Drop ``prefetch`` (if still this process's current one, forget it too).

    Args:
        prefetch: what ``begin_prefetch`` returned, or None.
    """
    global _CURRENT
    if prefetch is None:
        return
    prefetch.drop()
    with _LOCK:
        if _CURRENT is prefetch:
            _CURRENT = None
