"""The output folder's lock itself (cohort/lock.py), without running a cohort: who holds it, when a
second run is refused and in which words, when a stale lock is taken over, and that a run only ever
removes its own lock. Fast: files in a temporary folder and this process's own id (alive by
definition); test_cohort_lock.py checks the same through the command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from support.cohort_helpers import finished_pid

from CTAffineRegisterLib.cohort import lock as cohort_lock
from CTAffineRegisterLib.cohort.lock import LINK_PREFIX, LOCK_FORMAT, LOCK_NAME, acquire_lock
from CTAffineRegisterLib.errors import InputError

HOST = socket.gethostname()
# The lock tells a live owner from a reused process id by /proc (Linux); so do these tests.
pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")


def _links_not_supported(*args, **kwargs):
    """``os.symlink``/``os.link`` on a file system without them (some network shares, FAT)."""
    raise OSError("links not supported")


def _process_start(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[-1].split()[19]


def _write_json_lock(folder, **fields) -> str:
    holder = {"format": LOCK_FORMAT, "host": HOST, "token": "old", "started": "yesterday", **fields}
    path = folder / LOCK_NAME
    path.write_text(json.dumps(holder))
    return str(path)


def test_the_lock_is_a_link_naming_this_process_and_goes_with_the_run(tmp_path):
    with acquire_lock(str(tmp_path), "run-1") as held:
        path = tmp_path / LOCK_NAME
        assert held.path == str(path) and held.note is None
        assert path.is_symlink()
        pid = os.getpid()
        assert os.readlink(path) == (f"{LINK_PREFIX}{pid}:{_process_start(pid)}:{held.owner['token']}@{HOST}")
        assert held.owner["format"] == LOCK_FORMAT and held.owner["run_id"] == "run-1"
        assert held.owner["host"] == HOST and held.owner["pid"] == pid
        assert len(held.owner["token"]) == 16
        assert time.strptime(held.owner["started"], "%Y-%m-%dT%H:%M:%S%z")
    assert not os.path.lexists(path)
    assert os.listdir(tmp_path) == []


def test_a_second_run_while_this_process_holds_the_lock_is_refused_naming_the_owner(tmp_path):
    held = acquire_lock(str(tmp_path))
    try:
        with pytest.raises(InputError) as refused:
            acquire_lock(str(tmp_path))
        assert refused.value.path == str(tmp_path)
        started = time.strftime(
            "%Y-%m-%dT%H:%M:%S%z", time.localtime(os.lstat(tmp_path / LOCK_NAME).st_mtime)
        )
        assert refused.value.reason == (
            f"is in use by another run (pid {os.getpid()} on host {HOST}, started {started}); "
            "wait for it to finish or use another --out"
        )
        assert os.listdir(tmp_path) == [LOCK_NAME]  # the refused run left nothing behind
    finally:
        held.release()
    assert os.listdir(tmp_path) == []


def test_a_live_json_lock_without_a_start_time_is_respected(tmp_path):
    _write_json_lock(tmp_path, pid=os.getpid())
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    assert refused.value.reason == (
        f"is in use by another run (pid {os.getpid()} on host {HOST}, started yesterday); "
        "wait for it to finish or use another --out"
    )
    _write_json_lock(tmp_path, pid=os.getpid(), process_start=_process_start(os.getpid()))
    with pytest.raises(InputError):
        acquire_lock(str(tmp_path))


def test_a_lock_of_another_host_is_refused_with_the_way_to_remove_it(tmp_path):
    path = _write_json_lock(tmp_path, host="node-17.cluster", pid=os.getpid())
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    assert refused.value.path == str(tmp_path)
    assert refused.value.reason == (
        f"is in use by another run (pid {os.getpid()} on host node-17.cluster, started yesterday); "
        "its host cannot be checked from here: wait for it, use another --out, "
        f"or remove {path} if that run is surely gone"
    )
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "node-17.cluster"


@pytest.mark.parametrize(
    "holder",
    [
        "gone",  # no such process
        "reused",  # this process's id, but another process's start time: the id was reused
        "no pid",
        "zero pid",
    ],
)
def test_a_stale_lock_is_taken_over_with_a_note_naming_its_run(tmp_path, holder):
    fields = {
        "gone": lambda: {"pid": finished_pid()},
        "reused": lambda: {"pid": os.getpid(), "process_start": "1"},
        "no pid": lambda: {"pid": "1234"},
        "zero pid": lambda: {"pid": 0},
    }[holder]()
    _write_json_lock(tmp_path, **fields)
    with acquire_lock(str(tmp_path)) as held:
        assert held.note == (
            f"took over the stale lock of run pid {fields['pid']} on host {HOST}, which is no longer running"
        )
        assert os.readlink(tmp_path / LOCK_NAME).startswith(f"{LINK_PREFIX}{os.getpid()}:")
        assert os.listdir(tmp_path) == [LOCK_NAME]  # the stale lock was not left aside
    assert os.listdir(tmp_path) == []


def test_a_stale_link_lock_is_taken_over_too(tmp_path):
    pid = finished_pid()
    os.symlink(f"{LINK_PREFIX}{pid}:-:abc@{HOST}", tmp_path / LOCK_NAME)
    with acquire_lock(str(tmp_path)) as held:
        assert (
            held.note
            == f"took over the stale lock of run pid {pid} on host {HOST}, which is no longer running"
        )


def test_a_zombie_owner_has_finished_its_work(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(500):
            with open(f"/proc/{child.pid}/stat", encoding="ascii") as handle:
                if handle.read().rsplit(")", 1)[-1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        _write_json_lock(tmp_path, pid=child.pid)
        with acquire_lock(str(tmp_path)) as held:
            assert held.note is not None and f"pid {child.pid} " in held.note
    finally:
        child.wait()


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        json.dumps({"format": "another tool's lock", "host": HOST, "pid": 1}),
        json.dumps(["a list"]),
    ],
)
def test_a_file_that_is_no_lock_of_this_tool_is_refused_and_kept(tmp_path, content):
    path = tmp_path / LOCK_NAME
    path.write_text(content)
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    assert refused.value.path == str(path)
    assert refused.value.reason == f"is not a lock of this tool; another run may be using {tmp_path}"
    assert path.read_text() == content


@pytest.mark.parametrize(
    "target",
    [
        "somewhere/else",
        f"{LINK_PREFIX}12:34:token",  # no host
        f"{LINK_PREFIX}12:34@{HOST}",  # a part missing
        f"{LINK_PREFIX}12:34:5:6@{HOST}",  # a part too many
        f"{LINK_PREFIX}x12:34:tok@{HOST}",  # not a process id
        f"ct-affine-register;12:34:tok@{HOST}",
    ],
)
def test_a_link_that_is_no_lock_of_this_tool_is_refused(tmp_path, target):
    os.symlink(target, tmp_path / LOCK_NAME)
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    assert refused.value.reason.startswith("is not a lock of this tool")
    assert os.readlink(tmp_path / LOCK_NAME) == target


def test_a_link_lock_names_its_owner_like_a_file_lock(tmp_path):
    os.symlink(f"{LINK_PREFIX}{os.getpid()}:-:tok@{HOST}", tmp_path / LOCK_NAME)
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    assert f"(pid {os.getpid()} on host {HOST}, started " in refused.value.reason
    os.unlink(tmp_path / LOCK_NAME)
    os.symlink(f"{LINK_PREFIX}{os.getpid()}:{_process_start(os.getpid())}:tok@{HOST}", tmp_path / LOCK_NAME)
    with pytest.raises(InputError):
        acquire_lock(str(tmp_path))


def test_release_leaves_a_lock_another_run_took_over(tmp_path):
    held = acquire_lock(str(tmp_path))
    os.unlink(tmp_path / LOCK_NAME)
    other = acquire_lock(str(tmp_path))
    held.release()  # not ours any more
    assert os.readlink(tmp_path / LOCK_NAME).endswith(f":{other.owner['token']}@{HOST}")
    other.release()
    assert os.listdir(tmp_path) == []
    other.release()  # already gone: nothing to do, no error


def test_without_symbolic_links_the_lock_is_a_json_file(tmp_path, monkeypatch):
    monkeypatch.setattr(cohort_lock.os, "symlink", _links_not_supported)
    with acquire_lock(str(tmp_path), "run-2") as held:
        path = tmp_path / LOCK_NAME
        assert not path.is_symlink()
        assert path.read_text() == json.dumps(held.owner, indent=2) + "\n"  # readable by a person
        assert os.listdir(tmp_path) == [LOCK_NAME]  # the temporary name is gone
        with pytest.raises(InputError) as refused:
            acquire_lock(str(tmp_path))
        assert refused.value.reason.startswith(f"is in use by another run (pid {os.getpid()} ")
        assert os.listdir(tmp_path) == [LOCK_NAME]
    assert os.listdir(tmp_path) == []


def test_without_any_links_the_lock_is_created_exclusively(tmp_path, monkeypatch):
    monkeypatch.setattr(cohort_lock.os, "symlink", _links_not_supported)
    monkeypatch.setattr(cohort_lock.os, "link", _links_not_supported)
    mask = os.umask(0o022)
    try:
        held = acquire_lock(str(tmp_path))
    finally:
        os.umask(mask)
    with held:
        assert (tmp_path / LOCK_NAME).read_text() == json.dumps(held.owner, indent=2) + "\n"
        assert (tmp_path / LOCK_NAME).stat().st_mode & 0o777 == 0o644
        assert os.listdir(tmp_path) == [LOCK_NAME]
        with pytest.raises(InputError) as refused:
            acquire_lock(str(tmp_path))
        assert refused.value.reason.startswith("is in use by another run")
    assert os.listdir(tmp_path) == []


def test_a_folder_where_no_lock_can_be_made_is_named(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(InputError) as refused:
        acquire_lock(str(missing))
    assert refused.value.path == str(missing / LOCK_NAME)
    assert refused.value.reason == "cannot create the run's lock (No such file or directory)"


def test_a_lock_replaced_while_it_is_taken_over_is_put_back_untouched(tmp_path):
    """Two runs find the same stale lock; the slower one must not remove the lock the faster one has
    just made: it moves the lock aside, sees another token, and puts it back."""
    path = str(tmp_path / LOCK_NAME)
    stale = {"format": LOCK_FORMAT, "host": HOST, "pid": 1234, "token": "old"}
    os.symlink(f"{LINK_PREFIX}{os.getpid()}:-:new@{HOST}", path)
    assert cohort_lock._take_over(path, stale) is False
    assert os.readlink(path) == f"{LINK_PREFIX}{os.getpid()}:-:new@{HOST}"
    os.unlink(path)
    (tmp_path / LOCK_NAME).write_text(json.dumps({**stale, "token": "newer"}))
    assert cohort_lock._take_over(path, stale) is False
    assert json.loads((tmp_path / LOCK_NAME).read_text())["token"] == "newer"
    os.unlink(path)
    (tmp_path / LOCK_NAME).write_text("no lock at all")
    assert cohort_lock._take_over(path, stale) is False
    assert (tmp_path / LOCK_NAME).read_text() == "no lock at all"
    assert os.listdir(tmp_path) == [LOCK_NAME]  # nothing left aside
    os.unlink(path)
    assert cohort_lock._take_over(path, stale) is False  # gone meanwhile: looked at anew
    (tmp_path / LOCK_NAME).write_text(json.dumps(stale))
    assert cohort_lock._take_over(path, stale) is True
    assert os.listdir(tmp_path) == []


def test_an_owner_this_user_may_not_signal_counts_as_alive(tmp_path, monkeypatch):
    _write_json_lock(tmp_path, pid=finished_pid())
    for error in (PermissionError("not yours"), OSError("cannot tell")):

        def kill(pid, signal, error=error):
            raise error

        monkeypatch.setattr(cohort_lock.os, "kill", kill)
        with pytest.raises(InputError, match="is in use by another run"):
            acquire_lock(str(tmp_path))


def test_process_one_is_always_alive(tmp_path):
    _write_json_lock(tmp_path, pid=1)
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    assert refused.value.reason.startswith(f"is in use by another run (pid 1 on host {HOST}, ")


@pytest.mark.parametrize("name", ["ctär-läuft", "x) Z (y"])
def test_an_owner_with_an_odd_process_name_is_still_judged_alive(tmp_path, name):
    """A process's name is free text in /proc/PID/stat: letters beyond ASCII, even ") Z (" that
    would read as a zombie's state if the name were not skipped as a whole."""
    with open("/proc/self/comm", encoding="utf-8") as handle:
        own_name = handle.read().strip()
    held = acquire_lock(str(tmp_path))  # made under the usual name, judged under the odd one
    try:
        with open("/proc/self/comm", "w", encoding="utf-8") as handle:
            handle.write(name)
        with pytest.raises(InputError, match="is in use by another run"):
            acquire_lock(str(tmp_path))
        held.release()
        held = acquire_lock(str(tmp_path))  # made and judged under the odd name
        with pytest.raises(InputError, match="is in use by another run"):
            acquire_lock(str(tmp_path))
        held.release()
    finally:
        with open("/proc/self/comm", "w", encoding="utf-8") as handle:
            handle.write(own_name)
    assert os.listdir(tmp_path) == []


def test_without_proc_a_process_that_answers_the_signal_is_alive(tmp_path, monkeypatch):
    def no_proc(*args, **kwargs):
        raise FileNotFoundError("no /proc here")

    monkeypatch.setattr(cohort_lock, "open", no_proc, raising=False)
    os.symlink(f"{LINK_PREFIX}{os.getpid()}:-:tok@{HOST}", tmp_path / LOCK_NAME)
    with pytest.raises(InputError, match="is in use by another run"):
        acquire_lock(str(tmp_path))


def test_asking_whether_the_owner_lives_sends_it_no_signal(tmp_path):
    received = []
    previous = signal.signal(signal.SIGHUP, lambda number, frame: received.append(number))
    try:
        held = acquire_lock(str(tmp_path))
        with pytest.raises(InputError):
            acquire_lock(str(tmp_path))
        held.release()
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert received == []


def test_a_link_lock_whose_process_id_now_belongs_to_another_process_is_stale(tmp_path):
    os.symlink(f"{LINK_PREFIX}{os.getpid()}:1:old@{HOST}", tmp_path / LOCK_NAME)  # started at tick 1
    with acquire_lock(str(tmp_path)) as held:
        assert held.note == (
            f"took over the stale lock of run pid {os.getpid()} on host {HOST}, which is no longer running"
        )


def test_a_lock_names_when_its_run_started(tmp_path):
    path = tmp_path / LOCK_NAME
    os.symlink(f"{LINK_PREFIX}{os.getpid()}:-:tok@{HOST}", path)
    then = time.mktime((2024, 3, 5, 14, 7, 9, 0, 0, -1))
    os.utime(path, (then, then), follow_symlinks=False)
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(then))
    assert started.startswith("2024-03-05T14:07:09")
    assert f", started {started}); " in refused.value.reason


def test_a_lock_without_a_run_id_records_an_empty_one(tmp_path):
    with acquire_lock(str(tmp_path)) as held:
        assert held.owner["run_id"] == ""


def test_a_lock_that_keeps_vanishing_is_tried_five_times_then_refused(tmp_path, monkeypatch):
    attempts = []

    def create(path, owner):
        attempts.append(path)
        return False

    monkeypatch.setattr(cohort_lock, "_create", create)  # another run's lock, gone each time we look
    with pytest.raises(InputError) as refused:
        acquire_lock(str(tmp_path))
    assert len(attempts) == 5
    assert refused.value.path == str(tmp_path / LOCK_NAME)
    assert refused.value.reason == "cannot be taken: other runs keep changing it"


def test_a_lock_file_in_the_current_folder_is_made_there(tmp_path, monkeypatch):
    monkeypatch.setattr(cohort_lock.os, "symlink", _links_not_supported)
    monkeypatch.chdir(tmp_path)
    with acquire_lock("") as held:
        assert held.path == LOCK_NAME
        assert json.loads((tmp_path / LOCK_NAME).read_text()) == held.owner
        assert os.listdir(tmp_path) == [LOCK_NAME]
    assert os.listdir(tmp_path) == []


def test_a_lock_files_temporary_is_made_beside_it_not_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(cohort_lock.os, "symlink", _links_not_supported)
    monkeypatch.chdir("/proc")  # nothing can be made here
    with acquire_lock(str(tmp_path)) as held:
        assert json.loads((tmp_path / LOCK_NAME).read_text()) == held.owner


def test_a_lock_made_where_start_times_cannot_be_read_is_still_respected(tmp_path, monkeypatch):
    monkeypatch.setattr(cohort_lock, "_process_start", lambda pid: None)
    held = acquire_lock(str(tmp_path))
    monkeypatch.undo()
    assert os.readlink(tmp_path / LOCK_NAME) == f"{LINK_PREFIX}{os.getpid()}:-:{held.owner['token']}@{HOST}"
    with pytest.raises(InputError, match="is in use by another run"):
        acquire_lock(str(tmp_path))
    held.release()
