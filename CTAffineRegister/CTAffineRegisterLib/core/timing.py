"""Named steps timed in the order they ran: where a case's seconds go, for its report and ``--verbose``.

A case is a handful of steps (read, analyse, register, resample, write, pictures); a user who finds a
run slow needs to see which one took the time, and the benchmark prints the same table beside the
I/O floor. Steps with the same name add up (writing each output is its own step, a step run twice is
counted twice). Pure module: the standard library only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Optional

# The steps of one case, in the order they run (a report lists only those that ran).
CASE_STEPS = (
    "claim",
    "read_fixed",
    "analyse_fixed",
    "prepare_fixed",
    "wait_moving",
    "read_moving",
    "analyse_moving",
    "register",
    "refine",
    "verdict",
    "resample",
    "labels",
    "pictures",
    "write_registered",
    "write_transform",
    "write_validmask",
    "write_qc",
    "write_qc_thumb",
    "write_labels",
)
# Steps of a run around its cases.
RUN_STEPS = ("read_fixed", "analyse_fixed", "plan", "cases", "summary")


class StepTimer:
    """Seconds per named step, in the order the steps first ran.

    Attributes:
        steps: seconds by step name, insertion-ordered.
    """

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as step ``name`` (added to it if it ran before); counted even
        when the block raises, so a failed case still shows where its time went.

        Args:
            name: the step's name.

        Yields:
            Nothing.
        """
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` (clipped at 0) to step ``name``.

        Args:
            name: the step's name.
            seconds: how long it took.
        """
        self.steps[name] = self.steps.get(name, 0.0) + max(0.0, float(seconds))

    def update(self, steps: Mapping[str, float]) -> None:
        """Add every step of another table (a step ``register_pair`` timed inside a case).

        Args:
            steps: seconds by step name.
        """
        for name, seconds in steps.items():
            self.add(name, seconds)

    def total(self) -> float:
        """The seconds of all steps together.

        Returns:
            Their sum.
        """
        return sum(self.steps.values())

    def to_dict(self) -> dict:
        """The steps for a JSON report, to the millisecond.

        Returns:
            ``{step: seconds}``, in the order they ran.
        """
        return rounded(self.steps)


def rounded(steps: Mapping[str, float]) -> dict:
    """A step table to the millisecond, order kept.

    Args:
        steps: seconds by step name.

    Returns:
        The same table, each value rounded to 3 decimals.
    """
    return {name: round(float(seconds), 3) for name, seconds in steps.items()}


def add_up(tables: list[Mapping[str, float]]) -> dict:
    """Several cases' step tables summed step by step, in the order the steps first appear.

    Args:
        tables: step tables.

    Returns:
        ``{step: total seconds}``.
    """
    timer = StepTimer()
    for table in tables:
        timer.update(table)
    return timer.to_dict()


def format_table(
    steps: Mapping[str, float],
    wall: Optional[float] = None,
    inner: Optional[Mapping[str, Mapping[str, float]]] = None,
    title: str = "step",
) -> str:
    """A step table as aligned text: one line per step with its seconds and share of the whole, then
    the total and, given ``wall``, what lies outside the steps (start-up, imports, waiting).

    Args:
        steps: seconds by step name.
        wall: the whole call's wall time, or None (shares are then of the steps' total).
        inner: ``{step: its own steps}``: listed indented below that step (e.g. "cases" and the
            summed steps of its cases, or work done beside a step on another thread), at the end
            when the step is not in ``steps``; never added to the total again.
        title: the first column's heading.

    Returns:
        The lines, without a final newline.
    """
    inner = inner or {}
    total = sum(steps.values())
    whole = wall if wall is not None and wall > 0 else total
    rows = []
    for name, seconds in steps.items():
        rows.append((name, seconds))
        rows += [(f"  {step}", value) for step, value in inner.get(name, {}).items()]
    for name in inner:
        if name not in steps:
            rows += [(f"  {step}", value) for step, value in inner[name].items()]
    rows.append(("total", total))
    if wall is not None:
        rows += [("outside the steps", max(0.0, wall - total)), ("wall time", wall)]
    width = max([len(title)] + [len(name) for name, _ in rows])

    def share(seconds: float) -> str:
        return f"{100 * seconds / whole:5.1f}%" if whole > 0 else "     -"

    lines = [f"{title:<{width}}  {'seconds':>8}  {'share':>6}"]
    lines += [f"{name:<{width}}  {seconds:8.3f}  {share(seconds):>6}" for name, seconds in rows]
    return "\n".join(lines)


def process_seconds() -> Optional[float]:
    """Seconds since this process started (its start-up and imports count), where the system says
    (Linux ``/proc``, to 10 ms); None elsewhere.

    Returns:
        The seconds, or None.
    """
    try:
        # the process name in it may be any bytes; the numbers after it are ASCII
        with open("/proc/self/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rpartition(")")[2].split()
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        return max(0.0, uptime - int(fields[19]) / ticks)
    except (OSError, ValueError, IndexError, AttributeError):
        return None
