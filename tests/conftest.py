"""Shared fixtures: a per-test time limit, leak checks, and the executor matrix."""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import commandexec as ce
from tests import handlers

DEFAULT_TIME_LIMIT = 30.0
KINDS = ["inline", "threads", "processes", "processes-spawn"]
"""Every executor kind the contract suite runs against; a new kind adds one entry."""


class TestTimeLimitExceeded(Exception):
    """Raised inside a test that ran past its time limit."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "time_limit(seconds): per-test time limit (default 30 s)")
    faulthandler.enable()
    _start_process_singletons()  # before TMPDIR changes: multiprocessing cleans its own dir at exit
    # A private temp directory (inherited by child processes through TMPDIR), so the
    # temp-file leak check sees only this run's files, and nothing outlives the run.
    private = tempfile.mkdtemp(prefix="commandexec-tests-")
    config.stash[_TEMP_KEY] = (private, tempfile.tempdir, os.environ.get("TMPDIR"))
    tempfile.tempdir = private
    os.environ["TMPDIR"] = private


def _start_process_singletons() -> None:
    """Start what multiprocessing keeps for the life of the interpreter, once.

    The forkserver process, the resource tracker and the first shared-memory
    arena are process-wide singletons, not executor resources: started here,
    they are part of every test's baseline, so the leak check still sees any
    worker, queue or fd an executor leaves behind.
    """
    from multiprocessing import forkserver, resource_tracker, sharedctypes

    forkserver.ensure_running()
    resource_tracker.ensure_running()
    sharedctypes.RawArray("q", 1)


def pytest_unconfigure(config: pytest.Config) -> None:
    private, previous, previous_env = config.stash[_TEMP_KEY]
    tempfile.tempdir = previous
    if previous_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous_env
    shutil.rmtree(private, ignore_errors=True)


_TEMP_KEY = pytest.StashKey[tuple[str, "str | None", "str | None"]]()


@pytest.fixture(autouse=True)
def _time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that runs too long instead of hanging the suite."""
    marker = request.node.get_closest_marker("time_limit")
    limit = float(marker.args[0]) if marker else DEFAULT_TIME_LIMIT

    def on_alarm(signum: int, frame: Any) -> None:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise TestTimeLimitExceeded(f"test exceeded its {limit:.0f} s time limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    # Backstop for a hang that the alarm cannot interrupt: dump stacks and exit.
    faulthandler.dump_traceback_later(limit + 30, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


def _children() -> set[int]:
    me = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces; fields resume after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == me:
            found.add(int(entry))
    return found


def _fds() -> set[str]:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listing /proc itself closes at once
            fds.add(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
    return fds


def _temp_entries() -> set[str]:
    return {e for e in os.listdir(tempfile.gettempdir()) if not e.startswith("pytest-of-")}


def _snapshot() -> tuple[set[threading.Thread], set[int], set[str], set[str]]:
    return set(threading.enumerate()), _children(), _fds(), _temp_entries()


@pytest.fixture(autouse=True)
def no_leaks(_time_limit: None) -> Iterator[None]:
    """Fail a test that leaves a thread, child process, fd or temp file behind."""
    threads, children, fds, temps = _snapshot()
    yield
    deadline = time.monotonic() + 5.0
    while True:
        now_threads, now_children, now_fds, now_temps = _snapshot()
        leaked = {
            "threads": sorted(t.name for t in now_threads - threads if t.is_alive()),
            "child processes": sorted(now_children - children),
            "file descriptors": sorted(now_fds - fds),
            "temp files": sorted(now_temps - temps),
        }
        leaked = {k: v for k, v in leaked.items() if v}
        if not leaked or time.monotonic() > deadline:
            break
        gc.collect()  # what the test dropped is finalized now, not whenever gc next runs
        time.sleep(0.02)
    assert not leaked, f"test leaked resources: {leaked}"


@pytest.fixture
def registry() -> ce.Registry:
    """A fresh registry holding every handler of tests/handlers.py."""
    return handlers.make_registry()


def make_executor(kind: str, registry: ce.Registry, **options: Any) -> ce.Executor:
    """Build an executor of *kind* with test-friendly defaults."""
    if kind == "inline":
        return ce.InlineExecutor(registry=registry, **options)
    if kind == "threads":
        options.setdefault("max_workers", 4)
        return ce.ThreadExecutor(registry=registry, **options)
    if kind == "processes":
        options.setdefault("max_workers", 2)
        return ce.ProcessExecutor(registry=registry, **options)
    if kind == "processes-spawn":
        options.setdefault("max_workers", 2)
        return ce.ProcessExecutor(registry=registry, mp_context="spawn", **options)
    raise ValueError(kind)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def executor(kind: str, registry: ce.Registry) -> Iterator[ce.Executor]:
    """One executor of every kind, shut down (and leak-checked) after the test."""
    with make_executor(kind, registry) as executor:
        yield executor
