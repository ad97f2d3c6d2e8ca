"""The step timer behind every case report's ``timings`` and ``--verbose``: steps in the order they
ran, repeated steps added up, a failing step still counted, and the table's lines."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from CTAffineRegisterLib.core.timing import StepTimer, add_up, format_table, process_seconds, rounded


def test_steps_keep_their_order_and_a_repeated_step_adds_up():
    timer = StepTimer()
    with timer.step("read"):
        time.sleep(0.02)
    with timer.step("write"):
        pass
    with timer.step("read"):
        time.sleep(0.02)
    assert list(timer.steps) == ["read", "write"]
    assert timer.steps["read"] >= 0.04
    assert timer.steps["write"] < timer.steps["read"]
    assert timer.total() == pytest.approx(sum(timer.steps.values()))


def test_a_step_that_raises_is_still_timed():
    timer = StepTimer()
    with pytest.raises(ValueError), timer.step("register"):
        time.sleep(0.01)
        raise ValueError("bad scan")
    assert timer.steps["register"] >= 0.01


def test_negative_seconds_count_as_zero_and_totals_add_per_step():
    timer = StepTimer()
    timer.add("clock went back", -1.0)
    assert timer.steps == {"clock went back": 0.0}
    assert add_up([{"a": 1.0, "b": 0.5}, {"b": 0.25, "c": 2.0}]) == {"a": 1.0, "b": 0.75, "c": 2.0}


def test_table_lists_steps_inner_steps_total_and_what_is_outside():
    table = format_table({"read": 1.0, "cases": 2.0}, wall=4.0, inner={"cases": {"register": 1.5}})
    lines = table.splitlines()
    first_words = [line.split()[0] for line in lines[1:]]
    assert first_words == ["read", "cases", "register", "total", "outside", "wall"]
    assert lines[3].startswith("  register")
    assert "3.000" in lines[4] and " 75.0%" in lines[4]  # the inner step is not counted twice
    assert "1.000" in lines[5]  # 4 s wall - 3 s of steps


def test_table_lists_work_beside_a_step_under_it_and_a_group_without_its_step_at_the_end():
    inner = {"analyse": {"read other (beside it)": 0.5}, "cases": {"register": 1.5}}
    table = format_table({"read": 1.0, "analyse": 1.0}, wall=2.5, inner=inner)
    names = [line.rsplit(None, 2)[0] for line in table.splitlines()[1:]]
    beside, cases = "  read other (beside it)", "  register"
    assert names == ["read", "analyse", beside, cases, "total", "outside the steps", "wall time"]
    assert "2.000" in table.splitlines()[5]  # beside or inner, never added to the total


def test_process_seconds_grow_with_the_process():
    first = process_seconds()
    if first is None:
        assert not os.path.exists("/proc/self/stat"), "Linux says when a process started"
        pytest.skip("this system does not say when a process started")
    time.sleep(0.05)
    assert process_seconds() >= first + 0.03


@pytest.mark.skipif(not os.path.exists("/proc/uptime"), reason="no /proc here")
def test_this_process_is_younger_than_the_system_and_a_new_one_younger_still():
    with open("/proc/uptime", encoding="ascii") as handle:
        uptime = float(handle.read().split()[0])
    mine = process_seconds()
    assert mine is not None and 0.0 < mine <= uptime + 0.1
    test_a_process_just_started_is_a_few_seconds_old()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc here")
def test_a_process_just_started_is_a_few_seconds_old():
    code = "from CTAffineRegisterLib.core.timing import process_seconds; print(process_seconds())"
    seconds = float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True).stdout
    )
    assert 0.0 < seconds < 60.0


@pytest.mark.skipif(not os.path.exists("/proc/self/comm"), reason="no /proc here")
def test_process_seconds_are_known_for_a_process_with_a_non_ascii_name():
    """/proc/self/stat holds the process name, which may be any bytes, a ")" too (a script named
    "régistre (2).py"): the seconds after it must still be read."""
    with open("/proc/self/comm", encoding="utf-8", errors="replace") as handle:
        name = handle.read().rstrip("\n")
    before = process_seconds()
    try:
        with open("/proc/self/comm", "w", encoding="utf-8") as handle:
            handle.write("ré) 1 2 3 4 5")
        seconds = process_seconds()
    finally:
        with open("/proc/self/comm", "w", encoding="utf-8") as handle:
            handle.write(name)
    assert seconds is not None and before is not None and 0.0 <= seconds - before < 5.0


def test_the_step_table_exactly_as_printed():
    table = format_table({"read": 1.0, "register": 3.0}, wall=5.0)
    assert table.splitlines() == [
        "step                seconds   share",
        "read                  1.000   20.0%",
        "register              3.000   60.0%",
        "total                 4.000   80.0%",
        "outside the steps     1.000   20.0%",
        "wall time             5.000  100.0%",
    ]


def test_without_a_wall_time_shares_are_of_the_total_and_an_empty_table_has_none():
    assert format_table({"a": 0.5, "b": 1.5}, title="case").splitlines() == [
        "case    seconds   share",
        "a         0.500   25.0%",
        "b         1.500   75.0%",
        "total     2.000  100.0%",
    ]
    # a wall time of 0 (a clock too coarse) falls back to the total; nothing at all gives no shares
    assert format_table({"a": 0.5}, wall=0.0).splitlines()[1] == "a                     0.500  100.0%"
    assert format_table({"a": 0.0}, wall=0.0).splitlines()[1:3] == [
        "a                     0.000       -",
        "total                 0.000       -",
    ]
    # a wall time shorter than the steps (clock rounding) leaves nothing outside them, never less
    assert "outside the steps     0.000" in format_table({"a": 0.5}, wall=0.4)
    assert format_table({"a": 0.5}, wall=0.9).splitlines()[1] == "a                     0.500   55.6%"


def test_inner_steps_not_among_the_steps_are_listed_after_them_once():
    table = format_table({"read": 1.0}, inner={"cases": {"register": 2.0, "write": 1.0}})
    assert table.splitlines() == [
        "step         seconds   share",
        "read           1.000  100.0%",
        "  register     2.000  200.0%",
        "  write        1.000  100.0%",
        "total          1.000  100.0%",
    ]


def test_a_step_table_is_kept_to_the_millisecond_in_its_order():
    assert list(rounded({"read": 1.23456, "analyse": 0.0004}).items()) == [("read", 1.235), ("analyse", 0.0)]
