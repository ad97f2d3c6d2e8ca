"""Catch what ITK, GDCM and their C libraries print on stderr while a file is read; make notes of it.

ITK prints warnings as multi-line ``WARNING: In /path/file.cxx, line N`` blocks on the process's
stderr (file descriptor 2), and niftilib, MetaIO and GDCM print their own lines there; ``--quiet``
cannot stop them and a user cannot tell which scan they are about. SimpleITK 2.3.1 offers no
Python hook for them, and ``ProcessObject.GlobalWarningDisplayOff`` is process-wide: inside Slicer
it would silence every other module too. So descriptor 2 itself is pointed at a temporary file for
the duration of one read, then put back, and what was caught becomes notes about that scan.

This is for the command-line process (and its worker processes) only: the caller opts in. A second
thread that asks while a capture is running is not captured (its warnings print as before), so two
threads never fight over descriptor 2. Pure module: the standard library only.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_CAPTURE_LOCK = threading.Lock()
# "WARNING: In /path/itkImageSeriesReader.hxx, line 502" opens an ITK block; the message follows.
_ITK_BLOCK_START = re.compile(r"^(WARNING|ERROR): In .*, line \d+\s*$")
# "ImageSeriesReader (0x55d0c0de): message" -> class name and message.
_ITK_OBJECT_PREFIX = re.compile(r"^(\w+) \(0x[0-9a-fA-F]+\): ")
MAX_NOTE_CHARACTERS = 240


@dataclass
class CapturedText:
    """Filled in when the ``with`` block ends."""

    text: str = ""


@contextmanager
def native_stderr_captured(enabled: bool = True) -> Iterator[CapturedText]:
    """Send descriptor 2 to a temporary file for the block; its text is in the yielded object afterwards.

    Args:
        enabled: capture; False: a no-op (inside Slicer, say).

    Yields:
        The ``CapturedText``, whose ``text`` is set when the block ends.
    """
    captured = CapturedText()
    if not enabled or not _CAPTURE_LOCK.acquire(blocking=False):
        yield captured
        return
    try:
        _flush_python_stderr()
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a GUI process without a console): nothing to catch
        _CAPTURE_LOCK.release()
        yield captured
        return
    sink = tempfile.TemporaryFile()
    try:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            _flush_python_stderr()
            os.dup2(saved, 2)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
    finally:
        os.close(saved)
        sink.close()
        _CAPTURE_LOCK.release()


def notes_from_reader_output(text: str, explained: tuple[str, ...] = ()) -> list[str]:
    """One note per ITK block or other message; those containing an ``explained`` phrase are left out.

    Args:
        text: what was captured.
        explained: phrases of messages already explained elsewhere.

    Returns:
        The notes.
    """
    notes: list[str] = []
    for message in _messages(text):
        if any(phrase in message for phrase in explained):
            continue
        note = f"reader said: {message}"
        if len(note) > MAX_NOTE_CHARACTERS:
            note = note[: MAX_NOTE_CHARACTERS - 3] + "..."
        if note not in notes:
            notes.append(note)
    return notes


def _messages(text: str) -> list[str]:
    """ITK blocks become "Class: message" on one line; any other group of lines becomes one line."""
    messages, current, in_itk_block = [], [], False
    for raw in text.splitlines():
        line = raw.strip()
        if _ITK_BLOCK_START.match(line):
            _close(messages, current)
            current, in_itk_block = [], True
            continue
        if not line:
            _close(messages, current)
            current, in_itk_block = [], False
            continue
        if in_itk_block and not current:
            line = _ITK_OBJECT_PREFIX.sub(r"\1: ", line)
        current.append(line)
    _close(messages, current)
    return messages


def _close(messages: list[str], lines: list[str]) -> None:
    if lines:
        messages.append(" ".join(" ".join(lines).split()))


def _flush_python_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
