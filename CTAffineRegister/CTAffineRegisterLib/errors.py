"""The one exception every reader raises for a bad input, in a module of its own.

``imageio`` and the format-specific readers (``file_checks``, ``dicom_series``) all raise it, and
``imageio`` re-exports it, so callers keep importing ``InputError`` from ``imageio``.
Pure module: the standard library only.
"""

from __future__ import annotations


class InputError(Exception):
    """A problem with one input: names the file and says what is wrong."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
