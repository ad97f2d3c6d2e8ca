"""Cases on a Dask cluster: an existing one (``--scheduler tcp://HOST:PORT``) or a local one.

One task per case with ``client.submit``; results are taken as they complete, so every finished
case is on record at once. Tasks carry paths, never images: each worker reads the fixed scan once
(per worker process) and every moving scan itself, so the workers must see the same file system.
A stop sets a Dask ``Event`` that running cases poll at their checkpoints: they end as
"cancelled" and remove what they wrote, on any cluster. A worker that dies fails the case it ran
(on the local cluster at once; an existing cluster retries it as its ``allowed-failures`` says).

Dask is an optional extra (``pip install "ctaffineregister[dask]"``): only this module imports it,
and only when a cohort is run on Dask. The core and the Slicer module never need it.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Optional

from ..errors import SchedulerLost
from .backends import GROUP_SIGNALS, STOP_GRACE_SECONDS, OnDone, StopRequest, sigint_ignored
from .case import CaseTask, FixedScan, load_fixed, now_text, record_lost_case, run_case
from .resume import read_case_report

# A case that was only waiting on a worker that died is sent again, up to this many times in all.
MAX_ATTEMPTS = 3
# A running case asks the scheduler whether to stop at most this often (seconds).
STOP_POLL_SECONDS = 0.5
# Address schemes a Dask scheduler listens on (inproc:// is only reachable inside its own process).
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
# Dask loggers that print a lost scheduler as ERROR blocks with tracebacks, silenced while we run.
QUIET_LOGGERS = ("distributed.client", "distributed.core", "distributed.batched", "distributed.comm")
DASK_MISSING = 'Dask is not installed: pip install "ctaffineregister[dask]" (or dask[distributed])'


def import_distributed():
    """The ``distributed`` module, or ImportError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ImportError(DASK_MISSING) from None
    return distributed


def start_local_cluster(workers: int):
    """A LocalCluster of ``workers`` single-threaded worker processes, and a client for it.

    A worker that dies fails its case at once (no retry on another worker: a scan that kills one
    worker with its memory would kill the next); rerunning the command retries failed cases. The
    backend sends such a cluster no more cases than it has threads, so no case waits on a worker
    behind another, and a dead worker takes no other case down with it.

    Args:
        workers: the number of worker processes.

    Returns:
        (client, cluster).

    Raises:
        ImportError: Dask is not installed.
    """
    distributed = import_distributed()
    import dask

    settings = {
        "distributed.scheduler.allowed-failures": 0,
        # Dask starts its workers with MALLOC_TRIM_THRESHOLD_ set, which also fixes glibc's mmap
        # threshold: every large numpy temporary is then a fresh mmap with its pages faulted in anew,
        # about 6 % more time per case here. Our workers' memory stays flat without it (measured).
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    }
    with dask.config.set(settings), sigint_ignored():
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = distributed.Client(cluster)
    itk_threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    _register_plugin(client, _worker_setup_plugin(distributed, itk_threads))
    return client, cluster


def scheduler_problem(address: str) -> Optional[str]:
    """Why ``address`` is not a Dask scheduler address this tool can reach, or None.

    Checked before any work (Dask itself fails with a traceback on ``http://x``, ``tcp://`` or
    ``inproc://x``): ``local``, or ``[SCHEME://]HOST:PORT`` with a scheme a scheduler listens on.
    """
    if not isinstance(address, str) or not address.strip():
        return "is empty; give tcp://HOST:PORT or 'local'"
    if address == "local":
        return None
    scheme, separator, rest = address.partition("://")
    if not separator:
        scheme, rest = "tcp", address
    scheme = scheme.lower()
    if scheme == "inproc":
        return "inproc:// addresses live inside one process only; give tcp://HOST:PORT or 'local'"
    if scheme not in SCHEDULER_SCHEMES:
        known = ", ".join(f"{name}://" for name in SCHEDULER_SCHEMES)
        return (
            f"unknown address scheme {scheme!r} (a Dask scheduler listens on {known}); give tcp://HOST:PORT"
        )
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not host.strip("[]") or not port:
        return "has no HOST:PORT; give tcp://HOST:PORT (the address `dask scheduler` prints) or 'local'"
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"port {port!r} is not a number from 1 to 65535"
    return None


def connect(address: str):
    """A client of the Dask scheduler at ``address`` (tcp://HOST:PORT).

    Args:
        address: the scheduler's address.

    Returns:
        The ``distributed.Client``.

    Raises:
        ImportError: Dask is not installed.
        ValueError: ``address`` is not a scheduler address (see ``scheduler_problem``).
        ConnectionError: nothing answers there, or Dask refuses to connect (TLS without settings...).
    """
    problem = scheduler_problem(address)
    if problem is not None:
        raise ValueError(f"scheduler {address!r}: {problem}")
    distributed = import_distributed()
    try:
        return distributed.Client(address, timeout="20s")
    except Exception as error:  # OSError, TimeoutError, Dask's own TypeError/ValueError: one line
        text = " ".join(str(error).split())[:200] or type(error).__name__
        raise ConnectionError(f"cannot reach the Dask scheduler at {address} ({text})") from None


class DaskBackend:
    """Run cases on ``client``'s cluster; ``cluster`` (ours to close) when it is a local one."""

    name = "dask"

    def __init__(self, client, cluster=None, grace: float = STOP_GRACE_SECONDS):
        self.client, self.cluster, self.grace = client, cluster, grace
        self.address = getattr(getattr(client, "scheduler", None), "address", None) or "?"

    def describe(self) -> str:
        """How the cases run, for the summary and the progress display.

        Returns:
            The words.
        """
        workers = self.client.scheduler_info().get("workers", {})
        threads = sum(info.get("nthreads", 1) for info in workers.values())
        kind = f"Dask scheduler {self.client.scheduler.address}"
        if self.cluster is not None:
            kind = "local Dask cluster"
        return f"{kind} ({len(workers)} workers, {threads} threads)"

    def run(self, tasks: list[CaseTask], fixed: FixedScan, on_done: OnDone, stop: StopRequest) -> None:
        """Run the cases as Dask tasks; the workers read the inputs from the shared file system.

        Args:
            tasks: the cases to run, in order.
            fixed: the analysed fixed scan.
            on_done: called with each case's report as it finishes.
            stop: set to stop: queued cases do not start, running ones are cancelled.

        Raises:
            SchedulerLost: the scheduler went away (raised after handing on every case that finished);
                Dask's own reconnect errors and tracebacks are not shown.
        """
        run = _DaskRun(self.client, fixed, on_done, tasks[0].run_id if tasks else "")
        owned = self.cluster is not None
        lost = None
        with _client_logs_quiet():
            try:
                if tasks:
                    run.submit(tasks, limit=self._limit())
                while run.waiting_or_running() and not stop.is_set() and not self._scheduler_gone():
                    run.take(timeout=0.2)
                    run.submit([], limit=self._limit())
                if run.unreported() and not stop.is_set() and self._scheduler_gone():
                    lost = self._lost("the connection to it closed")
            except Exception as error:
                if not self._scheduler_gone() and not _comm_error(error):
                    raise
                lost = self._lost(" ".join(str(error).split())[:200] or type(error).__name__)
            finally:
                if lost is not None:
                    run.finished_on_disk()
                else:
                    if run.unreported():
                        run.stop(self.grace, stop)
                    self._close()
                    if owned:
                        run.sweep()
        if lost is not None:
            self._close()
            raise lost

    def _scheduler_gone(self) -> bool:
        """The client lost its scheduler. Reconnecting ("connecting") counts: Dask has cancelled every
        future of the lost connection by then, so no result of this run can come back."""
        return getattr(self.client, "status", "running") in ("connecting", "closing", "closed", "failed")

    def _lost(self, why: str) -> SchedulerLost:
        return SchedulerLost(f"lost the Dask scheduler at {self.address} ({why})")

    def close_quietly(self) -> None:
        """Close the client of a scheduler we did not start, whatever state it is in."""
        with _client_logs_quiet():
            try:
                self.client.close(timeout=5)
            except Exception:  # a scheduler that is gone: nothing to close politely
                pass

    def _limit(self) -> Optional[int]:
        """On our local cluster, no more cases than worker threads: none waits on a worker behind
        another, so a worker that dies takes no other case down. An existing cluster gets every
        case at once (its scheduler and autoscaler decide)."""
        if self.cluster is None:
            return None
        workers = self.client.scheduler_info().get("workers", {})
        return max(1, sum(info.get("nthreads", 1) for info in workers.values()))

    def _close(self) -> None:
        if self.cluster is None:
            return
        quiet = logging.getLogger("distributed")
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            self.client.close()
            self.cluster.close()
        except Exception:  # a cluster whose scheduler died: its processes are going anyway
            pass
        finally:
            quiet.setLevel(level)
        self.cluster = None


@contextmanager
def _client_logs_quiet():
    """Dask logs a lost scheduler as ERROR blocks with tracebacks; the run says it in one line."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _comm_error(error: BaseException) -> bool:
    """Whether ``error`` is Dask losing its connection (CommClosedError is an OSError)."""
    return isinstance(error, (OSError, TimeoutError)) or type(error).__name__ in (
        "CommClosedError",
        "CancelledError",
        "FutureCancelledError",
    )


class _DaskRun:
    """The futures of one run: submitted as capacity allows, taken as they finish."""

    def __init__(self, client, fixed: FixedScan, on_done: OnDone, run_id: str):
        self.client, self.fixed, self.on_done = client, fixed, on_done
        self.stop_name = f"ct-affine-register-stop-{run_id}"
        self.waiting: deque = deque()
        self.futures: dict = {}  # future -> (task, started wall clock, started perf counter)
        self.pending: set = set()
        self.reported: set = set()
        self.finished: queue.Queue = queue.Queue()

    def waiting_or_running(self) -> bool:
        return bool(self.waiting or self.pending)

    def unreported(self) -> list:
        return [future for future in self.futures if future not in self.reported]

    def submit(self, tasks: list[CaseTask], limit: Optional[int]) -> None:
        self.waiting.extend(tasks)
        while self.waiting and (limit is None or len(self.pending) < limit):
            task = self.waiting.popleft()
            attempt = sum(1 for known, _, _ in self.futures.values() if known.case_id == task.case_id)
            key = f"ct-affine-register-{task.run_id}-{task.case_id}" + (f"-{attempt}" if attempt else "")
            future = self.client.submit(dask_case, task, self.stop_name, key=key, pure=False)
            self.futures[future] = (task, now_text(), time.perf_counter())
            self.pending.add(future)
            future.add_done_callback(self.finished.put)

    def take(self, timeout: float) -> None:
        """Hand on one finished case, if one finishes within ``timeout``."""
        try:
            future = self.finished.get(timeout=timeout)
        except queue.Empty:
            return
        self.pending.discard(future)
        task, started_wall, started = self.futures[future]
        if future.status == "finished":
            report = future.result()
            if report is None:  # stopped before it began: nothing was written
                return
        elif future.status == "error":
            error = future.exception()
            killed = type(error).__name__ == "KilledWorker"
            attempts = sum(1 for known, _, _ in self.futures.values() if known.case_id == task.case_id)
            if killed and not _started(future, self.futures) and attempts < MAX_ATTEMPTS:
                self.waiting.appendleft(task)  # it only waited on the worker that died: run it again
                return
            if killed:
                reason = f"{task.moving_path}: its Dask worker died (out of memory?) while registering it"
            else:
                reason = f"{task.moving_path}: {error}"
            seconds = time.perf_counter() - started
            where = {"backend": "dask"}
            report = record_lost_case(task, self.fixed, "failed", reason, started_wall, seconds, where)
        else:  # cancelled by us: handled by the sweep
            return
        self.reported.add(future)
        self.on_done(task, report)

    def stop(self, grace: float, stop: StopRequest) -> None:
        """Queued cases are cancelled; running ones see the stop event and wind up, within the grace."""
        distributed = import_distributed()
        self.waiting.clear()
        try:
            distributed.Event(self.stop_name, self.client).set()
        except Exception:  # the scheduler may be gone; cancelling below still stops the queue
            pass
        running = [future for future in self.unreported() if _started(future, self.futures)]
        self.client.cancel([future for future in self.unreported() if future not in running])
        deadline = time.monotonic() + (0.0 if stop.forced.is_set() else grace)
        while running and time.monotonic() < deadline and not stop.forced.is_set():
            self.take(timeout=0.2)
            running = [future for future in running if future not in self.reported]
        self.client.cancel(self.unreported())

    def finished_on_disk(self) -> None:
        """After losing the scheduler: hand on the cases whose own report says this run finished
        them (their result never came back); the others stay unfinished, to be rerun."""
        for future, (task, _, _) in self.futures.items():
            if future in self.reported:
                continue
            report, _ = read_case_report(task.paths()["report"])
            if report and report.get("status") == "ok" and report.get("run_id") == task.run_id:
                self.reported.add(future)
                self.on_done(task, report)

    def sweep(self) -> None:
        """After our local cluster was closed: a case still marked "running" by this run is ours to
        clean (on a shared cluster a running case cleans up after itself when it sees the stop)."""
        for future, (task, started_wall, started) in self.futures.items():
            if future in self.reported or not _started(future, self.futures):
                continue
            error = f"{task.moving_path}: cancelled; its Dask worker was stopped"
            seconds = time.perf_counter() - started
            where = {"backend": "dask"}
            report = record_lost_case(task, self.fixed, "cancelled", error, started_wall, seconds, where)
            self.reported.add(future)
            self.on_done(task, report)


def _started(future, futures) -> bool:
    """Whether the case has begun on a worker: its own report says "running" for this run."""
    task = futures[future][0]
    report, _ = read_case_report(task.paths()["report"])
    return bool(report) and report.get("status") == "running" and report.get("run_id") == task.run_id


def dask_case(task: CaseTask, stop_name: str) -> Optional[dict]:
    """The Dask task: one case on a worker, which reads its inputs from the shared file system.

    Args:
        task: the case and the run's options.
        stop_name: the name of the Dask Event that stops the run.

    Returns:
        The case report, or None when the run was stopped before the case started.
    """
    from distributed import Event, get_worker

    worker = get_worker()
    should_stop = _Throttled(Event(stop_name).is_set, STOP_POLL_SECONDS)
    if should_stop():
        return None
    fixed = load_fixed(task.fixed_path, task.fixed_fingerprint, task.options)
    return run_case(task, fixed, cancel=should_stop, where={"backend": "dask", "worker": worker.address})


class _Throttled:
    """Ask an expensive question (a scheduler round trip) at most every ``seconds``; True sticks."""

    def __init__(self, question, seconds: float):
        self.question, self.seconds = question, seconds
        self.last, self.answer = float("-inf"), False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.answer and now - self.last >= self.seconds:
            self.last = now
            try:
                self.answer = bool(self.question())
            except Exception:  # no scheduler: keep going, the client decides
                self.answer = False
        return self.answer


def _worker_setup_plugin(distributed, itk_threads: int):
    """A plugin for the workers of our own local cluster (restarted ones too): Ctrl-C in a terminal
    reaches the whole process group, and only the client acts on it; and ITK's threads are shared
    out between the workers as in the process pool, so one machine is not asked for more."""

    class WorkerSetup(distributed.WorkerPlugin):
        name = "ct-affine-register-worker-setup"

        def setup(self, worker) -> None:
            import SimpleITK as sitk

            if threading.current_thread() is threading.main_thread():
                for number in GROUP_SIGNALS:
                    signal.signal(number, signal.SIG_IGN)
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(itk_threads)  # our own worker process

    return WorkerSetup()


def _register_plugin(client, plugin) -> None:
    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    try:
        register(plugin)
    except Exception:  # an older Dask without plugins of this form: Ctrl-C may print worker noise
        pass
