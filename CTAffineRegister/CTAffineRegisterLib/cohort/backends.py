"""Where the cases of a cohort run: in this process, or in local worker processes.

A backend takes the cases to run and hands each finished case's report to ``on_done`` in the
calling thread, as soon as it is finished. It knows nothing of registration: ``cohort.case`` does
the work. All backends obey one ``StopRequest``: once it is set, no queued case starts, running
ones are asked to stop (they end as "cancelled", removing what they wrote) and, after a grace
period or a second request, their processes are killed and what they left is removed.

The process pool is this project's own, not ``concurrent.futures``: there one dead worker breaks
the whole pool and fails every queued case. Here a worker that dies (killed by the out-of-memory
killer, say) fails only the case it was running, and a new worker takes its place. Each worker
also retires after a number of cases, so memory stays flat over a long cohort whatever a library
keeps. The Dask backend is in ``cohort.dask_backend``. Pure module: SimpleITK and the standard library.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Callable, Optional

from .case import CaseTask, FixedScan, now_text, record_lost_case, remember_fixed, run_case

OnDone = Callable[[CaseTask, dict], None]
# Seconds a running case gets to wind up after a stop before its process is killed.
STOP_GRACE_SECONDS = 10.0
# A worker process retires after this many cases; its replacement starts from a clean slate.
CASES_PER_WORKER = 25
# How often the collecting loop wakes up to look at the stop request (seconds).
POLL_SECONDS = 0.2


class StopRequest:
    """Set from a signal handler (Ctrl-C, SIGTERM) or by the caller; a second request forces."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.forced = threading.Event()
        self.reason: Optional[str] = None

    def request(self, reason: str = "stopped") -> None:
        """Ask the run to stop; a second request forces it (running cases are cancelled at once).

        Args:
            reason: why, for the summary ("stopped", "SIGTERM"...); the first reason is kept.
        """
        if self.requested.is_set():
            self.forced.set()
        self.reason = self.reason or reason
        self.requested.set()

    def is_set(self) -> bool:
        """Whether a stop was requested.

        Returns:
            True once ``request`` was called.
        """
        return self.requested.is_set()


class InProcessBackend:
    """One case after another in the calling process: what Slicer's Python can do, and --jobs 1."""

    name = "in-process"

    def describe(self) -> str:
        """How the cases run, for the summary and the progress display.

        Returns:
            The words.
        """
        return "in this process, one case at a time"

    def run(self, tasks: list[CaseTask], fixed: FixedScan, on_done: OnDone, stop: StopRequest) -> None:
        """Run the cases one after another in this process.

        Args:
            tasks: the cases to run, in order.
            fixed: the analysed fixed scan.
            on_done: called with each case's report as it finishes.
            stop: set to stop: queued cases do not start, running ones are cancelled.
        """
        for task in tasks:
            if stop.is_set():
                return
            on_done(task, run_case(task, fixed, cancel=stop.is_set, where={"backend": self.name}))


@dataclass
class _Worker:
    process: multiprocessing.Process
    connection: object
    cancel: object  # a multiprocessing Event
    task: Optional[CaseTask] = None
    started_wall: str = ""
    started: float = 0.0
    cases: int = 0
    retiring: bool = False


class ProcessPoolBackend:
    """``jobs`` worker processes on this machine, each running one case at a time."""

    name = "process-pool"

    def __init__(
        self, jobs: int, cases_per_worker: int = CASES_PER_WORKER, grace: float = STOP_GRACE_SECONDS
    ):
        self.jobs = max(1, int(jobs))
        self.cases_per_worker = max(1, int(cases_per_worker))
        self.grace = grace
        # Each case's registration runs its metric on one thread; resampling and I/O may use the
        # rest of the machine's share of cores (in our own worker processes only, never in Slicer).
        self.threads = max(1, (os.cpu_count() or 1) // self.jobs)

    def describe(self) -> str:
        """How the cases run, for the summary and the progress display.

        Returns:
            The words.
        """
        return f"{self.jobs} local worker process{'es' if self.jobs > 1 else ''}"

    def run(self, tasks: list[CaseTask], fixed: FixedScan, on_done: OnDone, stop: StopRequest) -> None:
        """Run the cases in local worker processes; a worker that dies fails only its case.

        Args:
            tasks: the cases to run, in order.
            fixed: the analysed fixed scan.
            on_done: called with each case's report as it finishes.
            stop: set to stop: queued cases do not start, running ones are cancelled.
        """
        context = multiprocessing.get_context("spawn")
        with sigint_ignored():  # the helper process that tracks our workers' semaphores, too
            _start_resource_tracker()
        queue = deque(tasks)
        workers: list[_Worker] = []
        try:
            while not stop.is_set() and (queue or any(worker.task for worker in workers)):
                self._staff(context, workers, len(queue), fixed)
                for worker in workers:
                    if worker.task is None and not worker.retiring and queue:
                        self._send(worker, queue.popleft())
                self._collect(workers, fixed, on_done, POLL_SECONDS)
        finally:
            self._shut_down(workers, fixed, on_done, stop)

    # -- workers ------------------------------------------------------------------------------

    def _staff(self, context, workers: list[_Worker], queued: int, fixed: FixedScan) -> None:
        """Start workers until there is one per job (or per case left)."""
        busy = sum(1 for worker in workers if worker.task is not None)
        idle = sum(1 for worker in workers if worker.task is None and not worker.retiring)
        wanted = min(self.jobs, busy + queued)
        for _ in range(max(0, wanted - busy - idle)):
            parent_end, child_end = context.Pipe()
            cancel = context.Event()
            process = context.Process(
                target=_worker_main,
                args=(child_end, cancel, fixed, self.threads, self.cases_per_worker),
                name="ct-affine-register-worker",
                daemon=True,
            )
            with sigint_ignored():  # children inherit it: Ctrl-C reaches only this process
                process.start()
            child_end.close()
            workers.append(_Worker(process, parent_end, cancel))

    def _send(self, worker: _Worker, task: CaseTask) -> None:
        worker.task, worker.started_wall, worker.started = task, now_text(), time.perf_counter()
        worker.cases += 1
        worker.retiring = worker.cases >= self.cases_per_worker
        worker.connection.send(task)

    def _collect(self, workers: list[_Worker], fixed: FixedScan, on_done: OnDone, timeout: float) -> None:
        """Wait for a report or a dead worker; hand reports on, replace the dead."""
        if not workers:
            return
        by_handle = {}
        for worker in workers:
            by_handle[worker.connection] = worker
            by_handle[worker.process.sentinel] = worker
        ready = wait(list(by_handle), timeout=timeout)
        finished = {id(by_handle[handle]): by_handle[handle] for handle in ready}
        for worker in finished.values():
            report = self._receive(worker)
            if report is not None:
                task, worker.task = worker.task, None
                on_done(task, report)
        for worker in list(workers):
            if worker.process.is_alive():
                continue
            report = self._receive(worker)
            if report is not None:
                task, worker.task = worker.task, None
                on_done(task, report)
            if worker.task is not None:
                task, worker.task = worker.task, None
                on_done(task, self._lost(worker, task, fixed, "failed"))
            worker.process.join()
            worker.connection.close()
            workers.remove(worker)

    @staticmethod
    def _receive(worker: _Worker) -> Optional[dict]:
        try:
            if worker.task is not None and worker.connection.poll():
                return worker.connection.recv()
        except (EOFError, OSError):
            return None
        return None

    def _lost(self, worker: _Worker, task: CaseTask, fixed: FixedScan, status: str) -> dict:
        code = worker.process.exitcode
        if status == "cancelled":
            error = f"{task.moving_path}: cancelled; its worker process was stopped"
        elif code is not None and code < 0:
            name = _signal_name(-code)
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            what = f"was killed by {name}{hint}"
        else:
            what = f"ended (exit status {code})"
        if status != "cancelled":
            error = f"{task.moving_path}: worker process {worker.process.pid} {what} while registering it"
        where = {"backend": self.name, "pid": worker.process.pid}
        seconds = time.perf_counter() - worker.started
        return record_lost_case(task, fixed, status, error, worker.started_wall, seconds, where)

    def _shut_down(
        self, workers: list[_Worker], fixed: FixedScan, on_done: OnDone, stop: StopRequest
    ) -> None:
        """Idle workers leave; running cases are asked to stop, then killed after the grace period."""
        for worker in workers:
            if worker.task is None:
                _quietly(worker.connection.send, None)
            else:
                worker.cancel.set()
        deadline = time.monotonic() + (0.0 if stop.forced.is_set() else self.grace)
        while any(worker.task for worker in workers) and time.monotonic() < deadline:
            if stop.forced.is_set():
                break
            self._collect(workers, fixed, on_done, POLL_SECONDS)
        for worker in workers:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(timeout=5)
            if worker.task is not None:
                task, worker.task = worker.task, None
                on_done(task, self._lost(worker, task, fixed, "cancelled"))
            _quietly(worker.connection.close)
        workers.clear()


def _worker_main(connection, cancel, fixed: FixedScan, threads: int, cases: int) -> None:
    """A worker process: run cases sent by the main process until told to stop or retired.

    Ctrl-C is ignored here (the main process decides); SIGTERM or the main process's death stops
    the running case at its next checkpoint, so its temporary files are removed before exiting.
    """
    import SimpleITK as sitk

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):  # a closed terminal reaches the whole group: the main process decides
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    stopping = threading.Event()
    state = {"busy": False}

    def on_term(signum, frame) -> None:
        stopping.set()
        if not state["busy"]:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    _watch_parent(stopping)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)  # our own process, never Slicer's
    remember_fixed(fixed)

    def should_stop() -> bool:
        return cancel.is_set() or stopping.is_set()

    for _ in range(cases):
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        state["busy"] = True
        report = run_case(task, fixed, cancel=should_stop, where={"backend": "process-pool"})
        state["busy"] = False
        try:
            connection.send(report)
        except (BrokenPipeError, OSError):
            return
        if stopping.is_set():
            return


def _watch_parent(stopping: threading.Event) -> None:
    """If the main process dies (even by SIGKILL), stop this worker's case instead of orphaning it."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        stopping.set()
        if hasattr(signal, "SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)  # wakes the main thread if it waits for a case

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# Signals a terminal sends to the whole process group: only the main process acts on them.
GROUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGHUP") if hasattr(signal, name))


@contextmanager
def sigint_ignored():
    """Ignore Ctrl-C (and SIGHUP, a closed terminal) while starting child processes: they inherit
    "ignored" across exec, so what a terminal sends to the whole process group reaches only the main
    process, which stops the run cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in GROUP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, so it inherits the signals ignored here: it
    ignores Ctrl-C itself but not SIGHUP, and dying of a closed terminal it prints a traceback and
    "leaked semaphore" warnings. (POSIX only; elsewhere there is none.)"""
    try:
        from multiprocessing import resource_tracker
    except ImportError:
        return
    try:
        resource_tracker.ensure_running()
    except (OSError, ValueError):
        pass  # it starts on first use instead, as before


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except (OSError, ValueError, EOFError, BrokenPipeError):
        pass
