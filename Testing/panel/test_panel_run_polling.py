"""The panel's background run (panel/run.py) with a stand-in registration: it starts once at a time,
is polled on the GUI thread until it finishes, logs a run's error, keeps polling when a callback
fails, and is let go of as soon as it has finished. Fast: no MRML, no registration."""

from __future__ import annotations

import collections
import logging

import pytest

from CTAffineRegisterLib.panel import run as panel_run
from CTAffineRegisterLib.panel.run import GIL_YIELD_SECONDS, PanelRun


class FakeRun:
    """Finishes on its ``polls_to_finish``-th poll; records what the panel asked of it."""

    made: list = []

    def __init__(self, fixed, moving, *, polls_to_finish=2, poll_error=None, error_details=None, **callbacks):
        self.arguments = (fixed, moving, callbacks)
        self.polls_to_finish, self.poll_error, self.error_details = polls_to_finish, poll_error, error_details
        self.polls = 0
        self.finished = False
        self.events: list = []
        FakeRun.made.append(self)

    def start(self):
        self.events.append("start")

    def poll(self):
        self.polls += 1
        if self.polls >= self.polls_to_finish:
            self.finished = True
        if self.poll_error is not None and self.polls == 1:
            raise self.poll_error
        return self.finished

    def cancel(self):
        self.events.append("cancel")

    def wait(self):
        self.events.append("wait")


class Timer:
    """The Qt single-shot timer as a queue of calls."""

    def __init__(self):
        self.queue = collections.deque()

    def schedule(self, call):
        self.queue.append(call)

    def drain(self, limit=100):
        count = 0
        while self.queue and count < limit:
            self.queue.popleft()()
            count += 1
        return count


@pytest.fixture
def sleeps(monkeypatch):
    recorded = []
    monkeypatch.setattr(panel_run.time, "sleep", recorded.append)
    return recorded


def test_a_run_is_polled_until_it_finishes_then_let_go(sleeps):
    timer = Timer()
    runner = PanelRun(timer.schedule, 0.25, registration=FakeRun)
    assert not runner.is_running()
    runner.cancel()  # nothing to cancel or wait for yet: no error
    runner.wait()
    done = []
    runner.start("fixed", ["m1", "m2"], on_finished=done.append, transform="rigid", fill=None)
    run = FakeRun.made[-1]
    assert run.arguments == (
        "fixed",
        ["m1", "m2"],
        {
            "on_progress": None,
            "on_case_done": None,
            "on_finished": done.append,
            "transform": "rigid",
            "fill": None,
        },
    )
    assert run.events == ["start"] and runner.is_running() and len(timer.queue) == 1
    with pytest.raises(RuntimeError, match="already running"):
        runner.start("fixed", ["m3"])
    assert FakeRun.made[-1] is run  # the refused start made no run
    runner.cancel()
    runner.wait()
    assert run.events == ["start", "cancel", "wait"]
    assert timer.drain() == 2  # the unfinished poll schedules the next; the finishing one does not
    assert run.polls == 2 and sleeps == [0.25]  # slept only after the poll that found it unfinished
    assert not runner.is_running() and runner._run is None
    runner.cancel()  # let go: cancel and wait no longer reach it
    runner.wait()
    assert run.events == ["start", "cancel", "wait"]


def test_the_pause_is_short_by_default(sleeps):
    timer = Timer()
    PanelRun(timer.schedule, registration=FakeRun).start("f", ["m"])
    timer.drain()
    assert sleeps == [GIL_YIELD_SECONDS] and GIL_YIELD_SECONDS == 0.01


def test_a_finished_run_lets_a_new_one_start(sleeps):
    timer = Timer()
    runner = PanelRun(timer.schedule, registration=lambda *a, **k: FakeRun(*a, polls_to_finish=1, **k))
    runner.start("f", ["m"])
    first = FakeRun.made[-1]
    first.finished = True  # finished, not yet polled: a new run may start
    assert not runner.is_running()
    runner.start("f", ["m2"])
    second = FakeRun.made[-1]
    assert second is not first
    timer.drain()
    assert runner._run is None
    assert first.polls == 1 and second.polls == 1


def test_an_older_runs_poll_does_not_forget_the_current_run(sleeps):
    timer = Timer()
    runner = PanelRun(timer.schedule, registration=lambda *a, **k: FakeRun(*a, polls_to_finish=1, **k))
    runner.start("f", ["m"])
    old_poll = timer.queue.popleft()
    FakeRun.made[-1].finished = True
    runner.start("f", ["m2"])
    current = FakeRun.made[-1]
    old_poll()
    assert runner._run is current


def test_a_runs_error_is_logged_and_a_failing_poll_keeps_polling(sleeps, caplog):
    timer = Timer()
    runner = PanelRun(
        timer.schedule,
        registration=lambda *a, **k: FakeRun(*a, poll_error=ValueError("callback broke"), **k),
    )
    with caplog.at_level(logging.ERROR, logger=panel_run.__name__):
        runner.start("f", ["m"])
        timer.drain()
    run = FakeRun.made[-1]
    assert run.polls == 2 and runner._run is None
    assert len(caplog.records) == 1 and "ValueError: callback broke" in caplog.records[0].getMessage()
    assert caplog.records[0].getMessage().startswith("CTAffineRegister: Traceback")
    caplog.clear()
    runner = PanelRun(timer.schedule, registration=lambda *a, **k: FakeRun(*a, error_details="bad scan", **k))
    with caplog.at_level(logging.ERROR, logger=panel_run.__name__):
        runner.start("f", ["m"])
        timer.drain()
    assert [record.getMessage() for record in caplog.records] == ["CTAffineRegister: bad scan"]
