"""What a cohort run shows while it runs (cohort/progress.py), as the user reads it: the bar on a
terminal, one line per case in a log, only errors when quiet, nothing when silent; every failed case
one ``error:`` line and every untrustworthy one a ``warning:`` line. Fast: a string stream, no run."""

from __future__ import annotations

import io
import sys
import time

import pytest

from CTAffineRegisterLib.cohort import progress
from CTAffineRegisterLib.cohort.progress import ProgressDisplay, choose_mode, one_line


def _ok(case_id: str, verdict: str = "ok", seconds=2.0, **extra) -> dict:
    return {
        "id": case_id,
        "status": "ok",
        "moving_path": f"/data/{case_id}.nii.gz",
        "quality": {"verdict": verdict},
        "seconds": seconds,
        **extra,
    }


def _failed(case_id: str) -> dict:
    return {"id": case_id, "status": "failed", "error": f"/data/{case_id}.nii.gz: no such file or folder"}


@pytest.fixture(autouse=True)
def _steady(monkeypatch):
    """An 80-column terminal, and no redraw by the ticker unless a test asks for it."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 3600.0)


class _Closed(io.StringIO):
    def isatty(self):
        raise ValueError("I/O operation on closed file")


def test_the_mode_follows_the_stream_and_quiet(monkeypatch):
    assert choose_mode(False, io.StringIO()) == "lines"
    assert choose_mode(True, io.StringIO()) == "quiet"
    assert choose_mode(False, _Closed()) == "lines"
    assert choose_mode(False, object()) == "lines"  # no isatty at all
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    assert choose_mode(False, terminal) == "bar"
    monkeypatch.setattr(sys, "stderr", terminal)
    assert choose_mode(False) == "bar"
    assert ProgressDisplay(0, 0, "lines").stream is terminal
    with pytest.raises(ValueError, match="progress mode must be one of"):
        ProgressDisplay(1, 0, "loud", io.StringIO())


def test_a_log_gets_one_line_per_case_with_its_verdict_time_rate_and_eta():
    log = io.StringIO()
    display = ProgressDisplay(4, 2, "lines", log)
    display.say("fixed: /data/f.nii.gz")
    display.started -= 120.0  # two minutes in
    display.case_finished(_ok("a", seconds=12.345))
    display.case_finished({"id": "b", "status": "cancelled", "seconds": None})
    display.case_finished(_ok("c", "suspect", trustworthy=True))
    display.close()
    assert log.getvalue().splitlines() == [
        "fixed: /data/f.nii.gz",
        "[1/4] a: registered, verdict ok, 12.3 s; 0.5 scans/min, ETA 6:00",
        "[2/4] b: cancelled, 0.0 s; 1.0 scans/min, ETA 2:00",
        "[3/4] c: registered, verdict suspect, 2.0 s; 1.5 scans/min, ETA 0:40",
    ]
    assert display.verdicts == {"ok": 1, "suspect": 1} and display.failed == 0 and display.finished == 3


def test_a_failed_case_is_one_error_line_and_an_untrustworthy_one_a_warning_too():
    log = io.StringIO()
    display = ProgressDisplay(3, 0, "lines", log)
    display.case_finished(_failed("a"))
    untrusted = _ok("b", "failed", trustworthy=False, trust_reason="quality verdict failed")
    display.case_finished(untrusted)
    display.error("/data/x: vanished")
    lines = log.getvalue().splitlines()
    assert lines[0] == "error: /data/a.nii.gz: no such file or folder"
    assert lines[1] == "warning: /data/b.nii.gz: quality verdict failed"
    assert lines[2].startswith("[2/3] b: registered, verdict failed, 2.0 s; ")
    assert lines[3] == "error: /data/x: vanished" and len(lines) == 4
    assert display.failed == 1 and display.verdicts == {"failed": 1}


def test_quiet_shows_errors_and_warnings_only_and_silent_nothing():
    untrusted = _ok("b", "failed", trustworthy=False, trust_reason="r")
    quiet = io.StringIO()
    display = ProgressDisplay(3, 0, "quiet", quiet)
    display.say("fixed ...")
    display.case_finished(_ok("a"))
    display.case_finished(untrusted)
    display.case_finished(_failed("c"))
    display.error("/x: gone")
    display.close()
    assert quiet.getvalue() == (
        "warning: /data/b.nii.gz: r\nerror: /data/c.nii.gz: no such file or folder\nerror: /x: gone\n"
    )
    silent = io.StringIO()
    display = ProgressDisplay(3, 0, "silent", silent)
    display.say("fixed ...")
    display.case_finished(untrusted)
    display.case_finished(_failed("c"))
    display.case_finished({"id": "d", "status": "ok"})  # no quality: an unknown verdict
    display.error("/x: gone")
    display.close()
    assert silent.getvalue() == ""
    assert display.finished == 3 and display.failed == 1 and display.verdicts == {"failed": 1, "?": 1}


def test_the_bar_shows_counts_verdicts_rate_and_eta_on_one_redrawn_line():
    terminal = io.StringIO()
    display = ProgressDisplay(4, 0, "bar", terminal)
    display.started -= 120.0
    display.case_finished(_ok("a", "suspect"))
    display.case_finished(_ok("b"))
    display.case_finished(_failed("c"))
    display.close()
    tail = " 3/4 1 ok, 1 suspect, 1 failed | 1.5 scans/min, ETA 0:40"
    bar = "[" + "#" * 15 + "-" * 5 + "]" + tail + " "  # 20 columns of bar, padded to the width
    assert len(bar) == 79
    blank = "\r" + " " * 79 + "\r"
    assert terminal.getvalue().split("\r[")[-1] == bar[1:] + "\n"  # closed: the bar's line is finished
    assert blank + "error: /data/c.nii.gz: no such file or folder\n" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r" + bar + "\n")
    assert terminal.getvalue().count("\n") == 2  # the error above the bar, and the bar's own end


def test_the_bar_is_cut_to_the_terminal_width_and_keeps_ten_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    terminal = io.StringIO()
    display = ProgressDisplay(2, 0, "bar", terminal)
    display.case_finished(_ok("a"))
    text = display._bar_text()
    assert len(text) == 39 and text.startswith("[#####-----] 1/2 1 ok | ")
    display.close()


def test_a_bar_with_nothing_to_run_shows_nothing_but_messages():
    terminal = io.StringIO()
    display = ProgressDisplay(0, 5, "bar", terminal)
    assert display._ticker is None
    display.say("all 5 cases already done")
    display.close()
    assert terminal.getvalue() == "all 5 cases already done\n"


def test_the_bar_is_redrawn_while_nothing_finishes_and_not_after_close(monkeypatch):
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0.01)
    terminal = io.StringIO()
    display = ProgressDisplay(2, 0, "bar", terminal)
    deadline = time.monotonic() + 30
    while terminal.getvalue().count("\r[") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert terminal.getvalue().count("\r[") >= 2
    assert "0/2" in terminal.getvalue() and "elapsed 0:0" in terminal.getvalue()
    display.close()
    assert not display._ticker.is_alive()
    closed = terminal.getvalue()
    time.sleep(0.05)
    display.say("after")
    assert terminal.getvalue() == closed + "\r" + " " * 79 + "\rafter\n"


def test_durations_read_as_minutes_or_hours():
    assert progress._duration(0.4) == "0:00"
    assert progress._duration(59.6) == "1:00"
    assert progress._duration(3599) == "59:59"
    assert progress._duration(3600 + 2 * 60 + 3) == "1:02:03"
    assert progress._duration(36000) == "10:00:00"


def test_control_characters_are_shown_as_escapes_and_other_text_kept():
    assert one_line("a\nb\tc\rd\x1b[2Je\u2028f\u2029g") == "a\\nb\\tc\\rd\\x1b[2Je\\u2028f\\u2029g"
    assert one_line("Größe µm – 1") == "Größe µm – 1"
    assert one_line(42) == "42"
    assert one_line("C:\\scans\\p01 'a' \"b\"") == "C:\\scans\\p01 'a' \"b\""  # a Windows path as it is
    log = io.StringIO()
    ProgressDisplay(1, 0, "lines", log).say("two\nlines")
    assert log.getvalue() == "two\\nlines\n"


def test_a_bar_of_failures_only_lists_them_without_a_leading_comma():
    terminal = io.StringIO()
    display = ProgressDisplay(2, 0, "bar", terminal)
    display.case_finished(_failed("a"))
    assert "-] 1/2 1 failed | " in display._bar_text()
    display.close()


def test_a_bar_is_at_most_forty_columns_wide_and_full_when_its_one_case_is_done(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    terminal = io.StringIO()
    display = ProgressDisplay(1, 0, "bar", terminal)
    display.case_finished(_ok("a"))
    text = display._bar_text()
    assert text.startswith("[" + "#" * 40 + "] 1/1 1 ok | ") and len(text) == 199
    display.close()


def test_a_long_bar_line_is_cut_at_the_last_column(monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    terminal = io.StringIO()
    display = ProgressDisplay(2, 0, "bar", terminal)
    display.started -= 60.0
    display.case_finished(_ok("a"))
    assert display._bar_text() == "[#####-----] 1/2 1 ok | 1.0 s"
    display.close()


def test_without_a_terminal_size_the_bar_assumes_a_hundred_columns(monkeypatch):
    monkeypatch.delenv("COLUMNS")

    def no_terminal(*args):
        raise OSError("not a terminal")

    monkeypatch.setattr(progress.shutil.os, "get_terminal_size", no_terminal)
    terminal = io.StringIO()
    display = ProgressDisplay(2, 0, "bar", terminal)
    assert len(display._bar_text()) == 99
    display.say("fixed read")
    assert terminal.getvalue().startswith("\r" + " " * 99 + "\rfixed read\n")
    display.close()


class _Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_rate_is_scans_per_minute_of_the_time_so_far(monkeypatch):
    clock = _Clock(1000.0)
    monkeypatch.setattr(progress.time, "monotonic", clock)
    log = io.StringIO()
    display = ProgressDisplay(20, 0, "lines", log)
    clock.now += 60.0
    for name in "abcdefghij":
        display.case_finished(_ok(name))
    assert log.getvalue().splitlines()[-1].endswith("; 10.0 scans/min, ETA 1:00")
    quick = ProgressDisplay(3, 0, "lines", log)
    clock.now += 0.5  # the first case took half a second: 120 a minute at that pace
    quick.case_finished(_ok("k"))
    assert log.getvalue().splitlines()[-1].endswith("; 120.0 scans/min, ETA 0:01")


def test_each_finished_case_redraws_the_bar_with_running_totals():
    terminal = io.StringIO()
    display = ProgressDisplay(5, 0, "bar", terminal)
    display.case_finished(_ok("a"))
    assert "] 1/5 1 ok | " in terminal.getvalue()  # drawn at once, not only at the next tick
    display.case_finished(_ok("b"))
    display.case_finished(_failed("c"))
    display.case_finished(_failed("d"))
    assert display.verdicts == {"ok": 2} and display.failed == 2
    assert "] 4/5 2 ok, 2 failed | " in terminal.getvalue()
    display.close()


def test_a_bar_left_open_by_a_failing_run_does_not_keep_the_process_alive():
    display = ProgressDisplay(2, 0, "bar", io.StringIO())
    assert display._ticker.daemon  # Python may exit while it still ticks
    display.close()
