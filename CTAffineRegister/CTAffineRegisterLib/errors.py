"""Every exception type of the library, in one module that imports nothing of the package.

One place to look for what can go wrong and what to catch: a bad input file (``InputError``), an
output the user did not allow to be replaced (``OutputExistsError``) or that could not be written
(``OutputWriteError``), a label map that cannot be carried (``LabelError``), a registration that
cannot run or give an answer (``RegistrationError``) or was cancelled (``RegistrationCancelled``),
a cohort stopping (``CaseStopped``) or losing its Dask scheduler (``SchedulerLost``) and a Slicer
volume node that cannot be used (``VolumeNodeError``).
The modules that raise them re-export them, so ``from CTAffineRegisterLib.io.images import InputError``
still works; ``from CTAffineRegisterLib import InputError`` is the public way.
Pure module: the standard library only.
"""

from __future__ import annotations


class InputError(Exception):
    """A problem with one input: names the file and says what is wrong."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class OutputExistsError(Exception):
    """Refusing to overwrite an existing output without the user's consent."""

    def __init__(self, path: str):
        super().__init__(f"{path}: already exists (use --overwrite to replace it)")
        self.path = str(path)


class OutputWriteError(Exception):
    """Writing one output failed: names the output, not the input (a full disk is about the output)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: cannot write ({reason})")
        self.path = path


class LabelError(ValueError):
    """A label image that cannot be carried; ``reason`` says why in words a user can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class RegistrationError(Exception):
    """The registration cannot run or cannot give an answer; the message says why in plain words."""


class RegistrationCancelled(Exception):
    """The caller asked to stop (``cancel`` returned True or its Event was set)."""


class CaseStopped(Exception):
    """The run is stopping (Ctrl-C, SIGTERM, the main process gone): this case ends as "cancelled"."""


class SchedulerLost(Exception):
    """The cluster's scheduler went away mid-run: no more results can come; the run ends with its
    summary (finished cases kept, the others resumable), its message one line for the user."""


class VolumeNodeError(ValueError):
    """A volume node cannot be used as it is; the message says what to do about it."""
