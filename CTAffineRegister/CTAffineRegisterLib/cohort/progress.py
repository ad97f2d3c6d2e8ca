"""What a cohort run says while it runs: a progress bar with ETA on a terminal, plain lines in a log.

- ``bar``: one line redrawn in place (cases done, verdicts so far, scans/min, ETA); errors are
  printed above it as they happen.
- ``lines``: one line per finished case, for a log file or a batch system (stderr not a terminal).
- ``quiet``: only the ``error: <path>: <reason>`` line of each failed case.
- ``silent``: nothing (the Python API's default: the caller reads the summary).

Every failed case gets exactly one ``error:`` line in every mode but ``silent``, and a case whose
verdict is "failed" one ``warning:`` line (its outputs are written, but not to be trusted).
Pure module: the standard library.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
import unicodedata
from typing import Optional, TextIO

MODES = ("bar", "lines", "quiet", "silent")
# The bar is redrawn at least this often (seconds) so elapsed time and ETA keep moving.
REDRAW_SECONDS = 1.0


def choose_mode(quiet: bool, stream: Optional[TextIO] = None) -> str:
    """The progress display for "auto": a bar on a terminal, lines otherwise, nothing but errors when quiet.

    Args:
        quiet: only error lines.
        stream: where progress goes; None: stderr.

    Returns:
        "quiet", "bar" or "lines".
    """
    stream = stream or sys.stderr
    if quiet:
        return "quiet"
    return "bar" if _is_terminal(stream) else "lines"


class ProgressDisplay:
    """Counts finished cases and shows them; safe to call from the thread that collects results."""

    def __init__(self, to_run: int, already_done: int, mode: str, stream: Optional[TextIO] = None):
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {MODES}, not {mode!r}")
        self.to_run, self.already_done, self.mode = to_run, already_done, mode
        self.stream = stream or sys.stderr
        self.finished = 0
        self.verdicts: dict[str, int] = {}
        self.failed = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        if mode == "bar" and to_run:
            self._ticker = threading.Thread(target=self._tick, name="cohort-progress", daemon=True)
            self._ticker.start()

    def say(self, message: str) -> None:
        """An information line (not in quiet or silent mode).

        Args:
            message: the line.
        """
        if self.mode not in ("quiet", "silent"):
            self._print(message)

    def error(self, message: str) -> None:
        """An ``error:`` line for a problem outside any case (in every mode but silent).

        Args:
            message: what went wrong, naming the file.
        """
        if self.mode != "silent":
            self._print(f"error: {message}")

    def case_finished(self, report: dict) -> None:
        """Count a finished case and show it (a line, or the bar updated).

        Args:
            report: the case's report.
        """
        with self._lock:
            self.finished += 1
            status = report.get("status")
            if status == "ok":
                verdict = (report.get("quality") or {}).get("verdict", "?")
                self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
            elif status == "failed":
                self.failed += 1
        if self.mode == "silent":
            return
        if status == "failed":
            self._print(f"error: {report.get('error')}")
            return
        if report.get("trustworthy") is False and status == "ok":
            self._print(f"warning: {report.get('moving_path')}: {report.get('trust_reason')}")
        if self.mode == "lines":
            self._print(self._case_line(report))
        elif self.mode == "bar":
            self._draw()

    def close(self) -> None:
        """End the display: stop the ticker and finish the bar's line."""
        self._closed.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.mode == "bar" and self.to_run:
            with self._lock:
                self.stream.write("\r" + self._bar_text() + "\n")
                self.stream.flush()

    # -- text ---------------------------------------------------------------------------------

    def _case_line(self, report: dict) -> str:
        status = report.get("status")
        if status == "ok":
            quality = report.get("quality") or {}
            what = f"registered, verdict {quality.get('verdict')}"
        else:
            what = status
        seconds = report.get("seconds") or 0.0
        counter = f"[{self.finished}/{self.to_run}]"
        return f"{counter} {report.get('id')}: {what}, {seconds:.1f} s; {self._rate_text()}"

    def _bar_text(self) -> str:
        width = shutil.get_terminal_size((100, 20)).columns
        counts = ", ".join(f"{count} {verdict}" for verdict, count in sorted(self.verdicts.items()))
        if self.failed:
            counts += (", " if counts else "") + f"{self.failed} failed"
        tail = f" {self.finished}/{self.to_run} {counts} | {self._rate_text()}"
        bar_width = max(10, min(40, width - len(tail) - 4))
        filled = int(bar_width * self.finished / max(1, self.to_run))
        text = f"[{'#' * filled}{'-' * (bar_width - filled)}]{tail}"
        return text[: width - 1].ljust(width - 1)

    def _rate_text(self) -> str:
        elapsed = time.monotonic() - self.started
        if not self.finished:
            return f"elapsed {_duration(elapsed)}"
        per_minute = 60.0 * self.finished / max(elapsed, 1e-6)
        remaining = (self.to_run - self.finished) * elapsed / self.finished
        return f"{per_minute:.1f} scans/min, ETA {_duration(remaining)}"

    # -- drawing ------------------------------------------------------------------------------

    def _print(self, message: str) -> None:
        message = one_line(message)
        with self._lock:
            if self.mode == "bar" and self.to_run:
                width = shutil.get_terminal_size((100, 20)).columns
                self.stream.write("\r" + " " * (width - 1) + "\r" + message + "\n")
                if not self._closed.is_set():
                    self.stream.write(self._bar_text())
            else:
                self.stream.write(message + "\n")
            self.stream.flush()

    def _draw(self) -> None:
        with self._lock:
            if not self._closed.is_set():
                self.stream.write("\r" + self._bar_text())
                self.stream.flush()

    def _tick(self) -> None:
        while not self._closed.wait(REDRAW_SECONDS):
            self._draw()


def one_line(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\t``, ``\\x1b``): a case id or
    path holding a newline must not break the one-line-per-case log, nor a stray escape code
    redraw the terminal."""
    return "".join(
        repr(char)[1:-1] if unicodedata.category(char) in ("Cc", "Zl", "Zp") else char for char in str(text)
    )


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
