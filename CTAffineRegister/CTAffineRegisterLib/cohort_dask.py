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
import queue
import signal
import threading
import time
from typing import Optional

from .case_runner import CaseTask, FixedScan, _now, load_fixed, record_lost_case, run_case
from .cohort_backends import STOP_GRACE_SECONDS, OnDone, StopRequest, _sigint_ignored
from .cohort_resume import read_case_report

# A running case asks the scheduler whether to stop at most this often (seconds).
STOP_POLL_SECONDS = 0.5
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
    worker with its memory would kill the next); rerunning the command retries failed cases.
    """
    distributed = import_distributed()
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), _sigint_ignored():
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = distributed.Client(cluster)
    _register_plugin(client, _ignore_interrupt_plugin(distributed))
    return client, cluster


def connect(address: str):
    """A client of the Dask scheduler at ``address`` (tcp://HOST:PORT)."""
    distributed = import_distributed()
    try:
        return distributed.Client(address, timeout="20s")
    except (OSError, TimeoutError) as error:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address} ({error})") from None


class DaskBackend:
    """Run cases on ``client``'s cluster; ``cluster`` (ours to close) when it is a local one."""

    name = "dask"

    def __init__(self, client, cluster=None, grace: float = STOP_GRACE_SECONDS):
        self.client, self.cluster, self.grace = client, cluster, grace

    def describe(self) -> str:
        workers = self.client.scheduler_info().get("workers", {})
        threads = sum(info.get("nthreads", 1) for info in workers.values())
        kind = f"Dask scheduler {self.client.scheduler.address}"
        if self.cluster is not None:
            kind = "local Dask cluster"
        return f"{kind} ({len(workers)} workers, {threads} threads)"

    def run(self, tasks: list[CaseTask], fixed: FixedScan, on_done: OnDone, stop: StopRequest) -> None:
        distributed = import_distributed()
        if not tasks:
            self._close()
            return
        stop_name = f"ct-affine-register-stop-{tasks[0].run_id}"
        futures = {}
        for task in tasks:
            future = self.client.submit(
                dask_case, task, stop_name, key=f"ct-affine-register-{task.run_id}-{task.case_id}", pure=False
            )
            futures[future] = (task, _now(), time.perf_counter())
        finished: queue.Queue = queue.Queue()

        def pump() -> None:
            try:
                for future in distributed.as_completed(list(futures)):
                    finished.put(future)
            except Exception:  # the client was closed under it after a stop: nothing more to take
                pass

        threading.Thread(target=pump, name="dask-results", daemon=True).start()
        reported: set = set()
        try:
            while len(reported) < len(futures) and not stop.is_set():
                self._take(finished, futures, reported, fixed, on_done, timeout=0.2)
        finally:
            if len(reported) < len(futures):
                self._stop_running(stop_name, finished, futures, reported, fixed, on_done, stop)
            self._close()
            self._sweep(futures, reported, fixed, on_done)

    def _take(self, finished, futures, reported, fixed, on_done, timeout: float) -> None:
        try:
            future = finished.get(timeout=timeout)
        except queue.Empty:
            return
        task, started_wall, started = futures[future]
        if future.status == "finished":
            report = future.result()
            if report is None:  # stopped before it began: nothing was written
                return
        elif future.status == "error":
            error = future.exception()
            if type(error).__name__ == "KilledWorker":
                reason = f"{task.moving_path}: its Dask worker died (out of memory?) while registering it"
            else:
                reason = f"{task.moving_path}: {error}"
            report = record_lost_case(
                task,
                fixed,
                "failed",
                reason,
                started_wall,
                time.perf_counter() - started,
                {"backend": self.name},
            )
        else:  # cancelled by us: handled by the sweep
            return
        reported.add(future)
        on_done(task, report)

    def _stop_running(self, stop_name, finished, futures, reported, fixed, on_done, stop) -> None:
        """Queued cases are cancelled; running ones see the stop event and wind up, within the grace."""
        distributed = import_distributed()
        try:
            distributed.Event(stop_name, self.client).set()
        except Exception:  # the scheduler may be gone; cancelling below still stops the queue
            pass
        running = [future for future in futures if future not in reported and _started(future, futures)]
        self.client.cancel([future for future in futures if future not in reported and future not in running])
        deadline = time.monotonic() + (0.0 if stop.forced.is_set() else self.grace)
        while running and time.monotonic() < deadline and not stop.forced.is_set():
            self._take(finished, futures, reported, fixed, on_done, timeout=0.2)
            running = [future for future in running if future not in reported]
        self.client.cancel([future for future in futures if future not in reported])

    def _sweep(self, futures, reported, fixed, on_done) -> None:
        """After a stop: a case still marked "running" by this run on a cluster we closed is ours to clean."""
        for future, (task, started_wall, started) in futures.items():
            if future in reported or not _started(future, futures):
                continue
            if self.cluster is None:
                continue  # a running case on a shared cluster cleans up after itself when it stops
            report = record_lost_case(
                task, fixed, "cancelled", f"{task.moving_path}: cancelled; its Dask worker was stopped",
                started_wall, time.perf_counter() - started, {"backend": self.name},
            )  # fmt: skip
            on_done(task, report)

    def _close(self) -> None:
        if self.cluster is None:
            return
        quiet = logging.getLogger("distributed")
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            self.client.close()
            self.cluster.close()
        finally:
            quiet.setLevel(level)
        self.cluster = None


def _started(future, futures) -> bool:
    """Whether the case has begun on a worker: its own report says "running" for this run."""
    task = futures[future][0]
    report, _ = read_case_report(task.paths()["report"])
    return bool(report) and report.get("status") == "running" and report.get("run_id") == task.run_id


def dask_case(task: CaseTask, stop_name: str) -> Optional[dict]:
    """The Dask task: one case on a worker, which reads its inputs from the shared file system."""
    from distributed import Event, get_worker

    worker = get_worker()
    should_stop = _Throttled(Event(stop_name).is_set, STOP_POLL_SECONDS)
    if should_stop():
        return None
    fixed = load_fixed(task.fixed_path, task.fixed_fingerprint)
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


def _ignore_interrupt_plugin(distributed):
    """A worker plugin: Ctrl-C in a terminal reaches the whole process group; only the client acts,
    so workers (restarted ones too) ignore it instead of printing a traceback."""

    class IgnoreInterrupt(distributed.WorkerPlugin):
        name = "ct-affine-register-ignore-sigint"

        def setup(self, worker) -> None:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return IgnoreInterrupt()


def _register_plugin(client, plugin) -> None:
    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    try:
        register(plugin)
    except Exception:  # an older Dask without plugins of this form: Ctrl-C may print worker noise
        pass
