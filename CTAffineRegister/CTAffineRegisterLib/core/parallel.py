"""Independent pieces of one registration run side by side, on the machine's second core.

Why: one registration's optimiser runs are single-threaded (so that results never depend on how
threads are scheduled), which leaves a core idle on the usual two-core workstation. Work whose pieces
do not depend on each other (the coarse metric of each candidate placement, the two scans'
pyramids, the two polishes) runs on two threads instead: SimpleITK releases the GIL while it
computes, and each piece is computed exactly as it would be alone, so the results are bit-identical
to a sequential run.

What must not be shared: a SimpleITK image used by two threads at once races (an ITK filter writes
its input's requested region), so a piece on a helper thread gets its own copy (``private_image``).
The process-wide ITK thread settings are never touched.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional, TypeVar

import SimpleITK as sitk

Result = TypeVar("Result")


def side_by_side(tasks: list[Callable[[], Result]]) -> list[Result]:
    """Run the tasks at the same time, the first on the calling thread, each other one on a thread of
    its own; their results in the tasks' order.

    Args:
        tasks: callables without arguments; each must touch only its own SimpleITK images.

    Returns:
        Each task's return value, in order.

    Raises:
        The first task's exception (in the tasks' order) after every task has ended: a failure never
        leaves a helper thread running behind the caller.
    """
    results: list = [None] * len(tasks)
    failures: list[Optional[BaseException]] = [None] * len(tasks)

    def work(index: int) -> None:
        try:
            results[index] = tasks[index]()
        except BaseException as error:  # noqa: B036 - handed to the calling thread below
            failures[index] = error

    helpers = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(1, len(tasks))]
    for helper in helpers:
        helper.start()
    if tasks:
        work(0)
    for helper in helpers:
        helper.join()
    for failure in failures:
        if failure is not None:
            raise failure
    return results


def split_in_two(items: list) -> tuple[list, list]:
    """The items dealt alternately into two lists (first, third, ... and second, fourth, ...), so
    two threads get about the same share even when the costly items come together.

    Args:
        items: anything.

    Returns:
        (the even-indexed items, the odd-indexed ones).
    """
    return items[0::2], items[1::2]


def private_image(image: Optional[sitk.Image]) -> Optional[sitk.Image]:
    """A copy of ``image`` with its own pixel buffer (None stays None), for another thread to use.

    Args:
        image: a SimpleITK image, or None.

    Returns:
        The copy, or None.
    """
    if image is None:
        return None
    copy = sitk.Image(image)
    copy.MakeUnique()
    return copy
