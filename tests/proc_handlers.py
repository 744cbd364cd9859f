"""Handlers for the process executor's tests: worker deaths, gates, awkward values.

Module-level, so worker processes import them by reference. Several end their
own process on purpose; they are only ever run inside a ProcessExecutor worker.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import signal
import struct
import threading
import time
from pathlib import Path
from typing import Any

import commandexec as ce
from tests import handlers

# -- deaths -----------------------------------------------------------------------


def die(how: str, stamp: str | None = None) -> None:
    """End this worker process now: ``"SIGKILL"``/``"SIGTERM"``, ``"exit"`` (code 3) or ``"segfault"``.

    If *stamp* is given, the monotonic time of death is written there first
    (``CLOCK_MONOTONIC`` is shared by every process on the machine).
    """
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault must not leave a core file behind
    if stamp is not None:
        write_atomically(stamp, repr(time.monotonic()))
    if how == "exit":
        os._exit(3)
    elif how == "segfault":
        ctypes.string_at(0)
    else:
        os.kill(os.getpid(), signal.Signals[how])
    time.sleep(10)  # a signal to oneself may take a moment to land
    raise AssertionError(f"die({how!r}) did not end the process")


def die_mid_message() -> None:
    """Write the start of a message to the parent, then die: a crash while sending a result.

    Models a worker killed (say by the OOM killer) while it writes a large
    outcome: the parent has read a frame header that promises more bytes than
    will ever come.
    """
    from multiprocessing.queues import SimpleQueue

    (outbound,) = [o for o in gc.get_objects() if type(o) is SimpleQueue]
    os.write(outbound._writer.fileno(), struct.pack("!i", 1 << 20) + b"partial")  # type: ignore[attr-defined]
    os._exit(1)


# -- gates and timing -------------------------------------------------------------


def write_atomically(path: str, text: str) -> None:
    """Write *text* to *path* so a reader never sees the file half written."""
    temporary = f"{path}.part"
    Path(temporary).write_text(text)
    os.replace(temporary, path)


def hold(started: str, release: str, timeout: float = 20.0) -> int:
    """Write this process's pid to *started*, wait until *release* exists, return the pid."""
    write_atomically(started, str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {release} was not opened within {timeout} s")
        time.sleep(0.005)
    return os.getpid()


def nap(started: str, seconds: float) -> int:
    """Write this process's pid to *started*, sleep *seconds*, return the pid."""
    write_atomically(started, str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


def pid_after(seconds: float) -> int:
    """Sleep *seconds*, then return this process's pid."""
    time.sleep(seconds)
    return os.getpid()


def tag(value: Any) -> tuple[Any, int]:
    """Return *value* with the pid of the process that ran it."""
    return value, os.getpid()


# -- initializers -------------------------------------------------------------------


def touch_pid_file(directory: str) -> None:
    """Initializer: create ``init-<pid>`` in *directory*."""
    Path(directory, f"init-{os.getpid()}").touch()


def fail_initializer(message: str) -> None:
    """Initializer that raises."""
    raise OSError(message)


def slow_initializer(seconds: float) -> None:
    """Initializer that takes *seconds* (loading a model, warming a cache...)."""
    time.sleep(seconds)


def exit_initializer() -> None:
    """Initializer whose process dies before it can report anything."""
    os._exit(5)


# -- values that do not cross the process boundary -----------------------------------


class TwoArgError(Exception):
    """Pickles, but cannot be unpickled: ``__init__`` needs two arguments, ``args`` holds one."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"error {code}: {detail}")
        self.code = code
        self.detail = detail


class LockedError(Exception):
    """Cannot be pickled at all: it carries a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_two_arg(code: int, detail: str) -> None:
    raise TwoArgError(code, detail)


def raise_locked(message: str) -> None:
    raise LockedError(message)


def return_lock() -> threading.Lock:
    return threading.Lock()


def _refuse_to_load(reason: str) -> None:
    raise RuntimeError(reason)


class Unloadable:
    """Pickles fine in the worker; unpickling it in the parent raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse_to_load, ("this value refuses to be unpickled",))


def return_unloadable() -> Unloadable:
    return Unloadable()


def exit_with(code: int) -> None:
    """Raise SystemExit from a command (it fails the command, not the worker)."""
    raise SystemExit(code)


def make_bytes(size: int) -> bytes:
    return b"x" * size


def length(data: bytes) -> int:
    return len(data)


# -- registries -----------------------------------------------------------------------


def make_registry() -> ce.Registry:
    """tests/handlers.py's registry plus every handler above."""
    registry = handlers.make_registry()
    for fn in (die, die_mid_message, hold, nap, pid_after, tag, raise_two_arg, raise_locked, return_lock,
               return_unloadable, exit_with, make_bytes, length):  # fmt: skip
        registry.register(fn.__name__, fn)
    return registry


REGISTRY = make_registry()
"""For executors given the reference ``"tests.proc_handlers:REGISTRY"``."""
REGISTRY.register("lambda_square", lambda x: x * x)  # cannot be pickled: workers must import this module
