"""One cohort run at a time per output folder: a lock file naming its owner.

Two runs into the same ``--out`` would each take the other's cases for their own unfinished work:
one run's clean-up (Ctrl-C) would remove results the other had just finished. So a run first
creates ``OUT/.ct-affine-register.lock`` holding the owner's host, process id and start time, and
removes it when it ends. A second run finding a live owner's lock is refused at once, naming the
owner. A lock whose owner is gone (same host, no such process, or another process now holds its
id) is stale: the run takes it over and says so. A lock from another host cannot be checked from
here, so it is refused with the way to remove it by hand.

The lock is created complete in one step, so another run never reads half a lock: a symbolic link
whose target text names the owner (``ct-affine-register:PID:START:TOKEN@HOST``, as Emacs locks
files), which needs no data block and so is taken even on a full disk; where links cannot be made
(Windows without the privilege), a small JSON file written under a temporary name and hard-linked.
Pure module:
the standard library only.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from typing import Optional

from ..errors import InputError

LOCK_NAME = ".ct-affine-register.lock"
LOCK_FORMAT = "ct-affine-register cohort lock"
LINK_PREFIX = "ct-affine-register:"


class CohortLock:
    """The lock of one run on one output folder; ``release()`` removes it if it is still this run's."""

    def __init__(self, path: str, owner: dict, note: Optional[str] = None):
        self.path, self.owner, self.note = path, owner, note

    def release(self) -> None:
        """Remove the lock, only when it is still ours (never a lock another run took over)."""
        current = _read(self.path)
        if current is not None and current.get("token") == self.owner["token"]:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def __enter__(self) -> CohortLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire_lock(out_dir: str, run_id: str = "") -> CohortLock:
    """Lock ``out_dir`` for this run, taking over a stale lock (``lock.note`` then says whose).

    Raises:
        InputError: naming the lock file, when a live run (or one on another host) holds it, or the
            lock cannot be written.
    """
    path = os.path.join(out_dir, LOCK_NAME)
    owner = _owner(run_id)
    note = None
    for _ in range(5):
        if _create(path, owner):
            return CohortLock(path, owner, note)
        holder = _read(path)
        if holder is None:
            if not os.path.lexists(path):
                continue  # released between our attempt and our look: try again
            raise InputError(path, f"is not a lock of this tool; another run may be using {out_dir}")
        problem = _live_owner(holder, path)
        if problem is not None:
            raise InputError(out_dir, problem)
        if _take_over(path, holder):
            note = f"took over the stale lock of run {_who(holder)}, which is no longer running"
    raise InputError(path, "cannot be taken: other runs keep changing it")


def _owner(run_id: str) -> dict:
    pid = os.getpid()
    return {
        "format": LOCK_FORMAT,
        "host": socket.gethostname(),
        "pid": pid,
        "process_start": _process_start(pid),
        "run_id": run_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "token": secrets.token_hex(8),
    }


def _create(path: str, owner: dict) -> bool:
    """Create the lock with its content in one step; False if a lock is already there."""
    try:
        os.symlink(_link_text(owner), path)
        return True
    except FileExistsError:
        return False
    except (OSError, NotImplementedError):
        pass  # no symbolic links here: a file
    folder = os.path.dirname(path) or "."
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{owner['token']}")
    try:
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(json.dumps(owner, indent=2) + "\n")
        try:
            os.link(temporary, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links either (FAT, some network shares): create it exclusively
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(owner, indent=2) + "\n")
            return True
    except FileExistsError:
        return False
    except OSError as error:
        raise InputError(path, f"cannot create the run's lock ({error.strerror or error})") from None
    finally:
        _unlink(temporary)


def _link_text(owner: dict) -> str:
    start = owner.get("process_start") or "-"
    return f"{LINK_PREFIX}{owner['pid']}:{start}:{owner['token']}@{owner['host']}"


def _read(path: str) -> Optional[dict]:
    """The owner a lock names, or None when it is no lock of this tool (or gone)."""
    try:
        if os.path.islink(path):
            return _parse_link(os.readlink(path), os.lstat(path).st_mtime)
        with open(path, encoding="utf-8") as handle:
            holder = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or holder.get("format") != LOCK_FORMAT:
        return None
    return holder


def _parse_link(text: str, made: float) -> Optional[dict]:
    if not text.startswith(LINK_PREFIX) or "@" not in text:
        return None
    numbers, _, host = text[len(LINK_PREFIX) :].partition("@")
    parts = numbers.split(":")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return {
        "format": LOCK_FORMAT,
        "host": host,
        "pid": int(parts[0]),
        "process_start": None if parts[1] == "-" else parts[1],
        "token": parts[2],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(made)),
    }


def _live_owner(holder: dict, lock: str) -> Optional[str]:
    """Why the lock's owner counts as running (a refusal in words), or None when it is stale."""
    where = f"{_who(holder)}, started {holder.get('started')}"
    if holder.get("host") != socket.gethostname():
        return (
            f"is in use by another run ({where}); its host cannot be checked from here: wait for it, "
            f"use another --out, or remove {lock} if that run is surely gone"
        )
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _process_alive(pid):
        return None
    recorded = holder.get("process_start")
    if recorded is not None and _process_start(pid) not in (None, recorded):
        return None  # the id now belongs to another process
    return f"is in use by another run ({where}); wait for it to finish or use another --out"


def _take_over(path: str, holder: dict) -> bool:
    """Remove a stale lock; False when another run replaced it meanwhile (then it is looked at anew)."""
    aside = f"{path}.stale.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    moved = _read(aside)
    if moved is None or moved.get("token") != holder.get("token"):
        _put_back(aside, path)
        return False
    _unlink(aside)
    return True


def _put_back(aside: str, path: str) -> None:
    """Return a live lock moved aside by mistake, unless a new lock took its place meanwhile."""
    try:
        if os.path.islink(aside):
            os.symlink(os.readlink(aside), path)
        else:
            os.link(aside, path)
    except OSError:
        pass
    _unlink(aside)


def _who(holder: dict) -> str:
    return f"pid {holder.get('pid')} on host {holder.get('host')}"


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    except OSError:
        return True
    try:  # a zombie has finished its work
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _process_start(pid: int) -> Optional[str]:
    """When the process started (clock ticks since boot, Linux), to tell a reused pid; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
