"""Independent pieces of one registration side by side (core/parallel.py): every piece runs, at the
same time, its result in the caller's order, a failure raised only once every piece has ended, and a
scan handed to another thread as a private copy. Fast: tiny callables and images."""

from __future__ import annotations

import threading
import time

import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.core.parallel import private_image, side_by_side, split_in_two


def test_results_come_in_the_tasks_order_from_tasks_running_at_the_same_time():
    count = 3
    barrier = threading.Barrier(count, timeout=30)  # breaks unless all three run at once
    threads = []

    def task(value):
        def run():
            threads.append(threading.current_thread())
            barrier.wait()
            return value

        return run

    assert side_by_side([task("a"), task("b"), task("c")]) == ["a", "b", "c"]
    assert len(set(threads)) == count and threading.current_thread() in threads


def test_the_first_task_runs_on_the_calling_thread():
    assert side_by_side([threading.current_thread]) == [threading.current_thread()]
    assert side_by_side([]) == []


def test_a_helper_thread_never_keeps_the_program_alive():
    # Ctrl-C while the caller waits for a helper leaves the helper behind: as a daemon thread it ends
    # with the program instead of keeping a cancelled registration running to its end
    def on_a_helper():
        return threading.current_thread().daemon

    assert side_by_side([lambda: None, on_a_helper, on_a_helper]) == [None, True, True]


def test_the_first_failure_in_task_order_is_raised_after_every_task_has_ended():
    ended = []

    def slow_failure():
        time.sleep(0.2)
        ended.append("slow")
        raise KeyError("second")

    def quick_failure():
        ended.append("quick")
        raise ValueError("third")

    with pytest.raises(KeyError, match="second"):
        side_by_side([lambda: ended.append("first"), slow_failure, quick_failure])
    assert sorted(ended) == ["first", "quick", "slow"]
    with pytest.raises(ValueError, match="first"):
        side_by_side([lambda: (_ for _ in ()).throw(ValueError("first")), slow_failure])


def test_items_are_dealt_alternately_into_two_shares():
    assert split_in_two([1, 2, 3, 4, 5]) == ([1, 3, 5], [2, 4])
    assert split_in_two([]) == ([], [])


def test_a_private_image_is_an_equal_copy_that_changes_alone():
    image = sitk.Image([3, 4, 5], sitk.sitkFloat32)
    image.SetSpacing((0.5, 1.0, 2.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    image[1, 2, 3] = 7.0
    copy = private_image(image)
    assert copy is not image
    assert sitk.GetArrayViewFromImage(copy).tolist() == sitk.GetArrayViewFromImage(image).tolist()
    assert (copy.GetSpacing(), copy.GetOrigin(), copy.GetDirection()) == (
        image.GetSpacing(),
        image.GetOrigin(),
        image.GetDirection(),
    )
    copy[1, 2, 3] = -1.0
    assert image[1, 2, 3] == 7.0
    assert private_image(None) is None
