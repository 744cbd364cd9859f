"""ProcessExecutor specifics: real worker processes, real signals, real deaths.

The contract suite already runs every common behaviour against this executor;
these tests cover what only processes have: pickling, start methods, worker
deaths and replacement, hard timeouts, initializers, max_tasks_per_child, and
what happens to workers when their parent dies. Nothing here is mocked.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import gc
import inspect
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from commandexec.executors.processes import default_start_method
from tests import handlers, proc_handlers

ROOT = Path(__file__).resolve().parents[2]
CPU_COUNT = (os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()) or 1
FORKING = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
"""Python >= 3.12 warns when forking a threaded process; forking one is what 'fork' tests do."""


# -- helpers ------------------------------------------------------------------------


@pytest.fixture
def registry() -> ce.Registry:
    """tests/handlers.py's handlers plus the process-specific ones."""
    return proc_handlers.make_registry()


@pytest.fixture
def executor(registry: ce.Registry) -> Iterator[ce.ProcessExecutor]:
    with ce.ProcessExecutor(2, registry=registry) as executor:
        yield executor


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Exceptions that escape a thread during the test, as text (not kept alive)."""
    errors: list[str] = []
    monkeypatch.setattr(
        threading, "excepthook", lambda args: errors.append(f"{args.exc_type.__name__}: {args.exc_value}")
    )
    return errors


@pytest.fixture
def collect_garbage(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Drop the test's log records and collect garbage after it, before the leak check.

    A worker start that fails leaves its queues in the failure's traceback, which
    a logged record keeps (pytest keeps the call's records until the item ends).
    """
    yield
    caplog.get_records("call").clear()
    gc.collect()


def open_fds() -> set[str]:
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listing /proc itself closes at once
            fds.add(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
    return fds


class Gate:
    """Holds workers on ``hold`` commands, which report their pids, until opened."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.release = directory / "release"
        self.count = 0

    def command(self) -> ce.Command:
        self.count += 1
        return ce.Command("hold", str(self.directory / f"started-{self.count}"), str(self.release))

    def pids(self, n: int, timeout: float = 10.0) -> list[int]:
        """Wait until the first *n* gated commands run; return their pids in submit order."""
        files = [self.directory / f"started-{i}" for i in range(1, n + 1)]
        wait_until(lambda: all(f.exists() for f in files), timeout, f"{n} gated commands started")
        return [int(f.read_text()) for f in files]

    def open(self) -> None:
        self.release.touch()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    gate = Gate(tmp_path)
    yield gate
    gate.open()  # never leave a worker blocked


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """True while *pid* runs; a zombie has exited, so it counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def warm_up(executor: ce.ProcessExecutor) -> set[int]:
    """Run one command on every worker at once; return the workers' pids."""
    futures = [executor.submit("pid_after", 0.2) for _ in range(executor.max_workers)]
    pids = {f.result(timeout=20) for f in futures}
    assert len(pids) == executor.max_workers
    assert set(executor.worker_pids()) == pids
    return pids


def replaced(executor: ce.ProcessExecutor, dead: int) -> Callable[[], bool]:
    """A condition: *dead* is no longer a worker and the pool is back to full size."""

    def check() -> bool:
        pids = executor.worker_pids()
        return dead not in pids and len(pids) == executor.max_workers

    return check


def lost_pid(error: BaseException) -> int:
    """The pid a WorkerLost message names."""
    match = re.search(r"worker process (\d+) died", str(error))
    assert match, f"WorkerLost does not name the worker: {error}"
    return int(match[1])


def stdlib_error(**kwargs: Any) -> str:
    """The message ProcessPoolExecutor's constructor raises for *kwargs*."""
    with pytest.raises((ValueError, TypeError)) as info:
        concurrent.futures.ProcessPoolExecutor(**kwargs)
    return str(info.value)


class Script:
    """Python code run with ``python -c`` in a session of its own, as a user's program.

    Its output goes to files, so processes it leaves behind cannot hold a pipe
    open. Its workers (the pids it prints, read with :meth:`read_workers`) are
    killed by pid on close if they outlived it, so a failing test leaves
    nothing running.
    """

    def __init__(self, code: str, *args: str) -> None:
        # A short private TMPDIR: the forkserver's socket path must fit in sun_path,
        # and whatever the script leaves in it is removed with it.
        self.temp = Path(tempfile.mkdtemp(prefix="ce-"))
        self.stdout_path = self.temp / "stdout"
        self.stderr_path = self.temp / "stderr"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(self.temp)}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(code), *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.workers: list[int] = []
        self.lines_read = 0

    def __enter__(self) -> Script:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read_line(self, timeout: float = 20.0) -> str:
        """Wait for the script's next line of output and return it."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.stdout_path.read_text().splitlines(keepends=True)
            if len(lines) > self.lines_read and lines[self.lines_read].endswith("\n"):
                self.lines_read += 1
                return lines[self.lines_read - 1]
            assert self.process.poll() is None, f"the script ended early: {self.stderr_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"the script printed no line within {timeout} s"
            time.sleep(0.01)

    def read_workers(self) -> list[int]:
        self.workers = [int(pid) for pid in self.read_line().split()]
        return self.workers

    def wait(self, timeout: float) -> int | None:
        """The script's return code, or None if it still runs after *timeout* seconds."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def output(self, timeout: float = 20.0) -> tuple[str, str]:
        """Wait for the script to end; return its stdout not yet read, and its stderr."""
        assert self.wait(timeout) is not None, f"the script still runs after {timeout} s"
        rest = self.stdout_path.read_text().splitlines(keepends=True)[self.lines_read :]
        return "".join(rest), self.stderr_path.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        for pid in self.workers:
            with contextlib.suppress(OSError):  # it may exit between the check and the kill
                if alive(pid) and b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


# -- 1. the constructor: ProcessPoolExecutor's keywords ------------------------------


def test_the_constructor_takes_process_pool_executor_s_parameters_in_the_same_places() -> None:
    ours = inspect.signature(ce.ProcessExecutor).parameters
    for name, theirs in inspect.signature(concurrent.futures.ProcessPoolExecutor).parameters.items():
        assert name in ours, f"ProcessExecutor lacks {name!r}"
        assert (ours[name].kind, ours[name].default) == (theirs.kind, theirs.default), name


@pytest.mark.parametrize("bad", [0, -1])
def test_max_workers_below_one_is_rejected_with_the_stdlib_s_message(bad: int, registry: ce.Registry) -> None:
    with pytest.raises(ValueError) as info:
        ce.ProcessExecutor(bad, registry=registry)
    assert str(info.value) == stdlib_error(max_workers=bad)


def test_the_default_worker_count_is_the_cpu_count_and_the_default_start_method_forkserver(
    registry: ce.Registry,
) -> None:
    with ce.ProcessExecutor(registry=registry) as executor:
        assert executor.max_workers == CPU_COUNT
        assert executor.start_method == default_start_method() == "forkserver"


@pytest.mark.parametrize(
    "mp_context",
    ["spawn", "fork", "forkserver", multiprocessing.get_context("spawn"), multiprocessing.get_context("fork")],
    ids=["name-spawn", "name-fork", "name-forkserver", "context-spawn", "context-fork"],
)
def test_mp_context_is_a_context_object_or_a_start_method_name(mp_context: Any, registry: ce.Registry) -> None:
    expected = mp_context if isinstance(mp_context, str) else mp_context.get_start_method()
    with ce.ProcessExecutor(2, mp_context, registry=registry) as executor:
        assert executor.start_method == expected


def test_an_unknown_start_method_name_is_rejected(registry: ce.Registry) -> None:
    with pytest.raises(ValueError, match="sporn"):
        ce.ProcessExecutor(2, mp_context="sporn", registry=registry)


def test_a_non_callable_initializer_is_rejected_with_the_stdlib_s_message(registry: ce.Registry) -> None:
    with pytest.raises(TypeError) as info:
        ce.ProcessExecutor(2, initializer=42, registry=registry)
    assert str(info.value) == stdlib_error(initializer=42)


@pytest.mark.parametrize("bad", [0, -3])
def test_max_tasks_per_child_below_one_is_rejected_with_the_stdlib_s_message(bad: int, registry: ce.Registry) -> None:
    with pytest.raises(ValueError) as info:
        ce.ProcessExecutor(2, max_tasks_per_child=bad, registry=registry)
    assert str(info.value) == stdlib_error(max_tasks_per_child=bad)


@pytest.mark.parametrize("bad", [1.5, "2"])
def test_a_max_tasks_per_child_that_is_not_an_int_raises_the_stdlib_s_type_error(
    bad: Any, registry: ce.Registry
) -> None:
    with pytest.raises(TypeError) as info:
        ce.ProcessExecutor(2, max_tasks_per_child=bad, registry=registry)
    assert str(info.value) == stdlib_error(max_tasks_per_child=bad)


@pytest.mark.parametrize("fork", ["fork", multiprocessing.get_context("fork")], ids=["name", "context"])
def test_max_tasks_per_child_with_the_fork_start_method_raises_the_stdlib_s_error(
    fork: Any, registry: ce.Registry
) -> None:
    with pytest.raises(ValueError) as info:
        ce.ProcessExecutor(2, fork, max_tasks_per_child=1, registry=registry)
    assert str(info.value) == stdlib_error(mp_context=multiprocessing.get_context("fork"), max_tasks_per_child=1)


@FORKING
def test_a_pool_works_under_the_fork_start_method(registry: ce.Registry) -> None:
    # Given a pool whose workers are forked from this (multi-threaded) test process
    with ce.ProcessExecutor(2, mp_context="fork", registry=registry) as executor:
        # When it runs keys, lazy references and plain callables
        results = [executor.submit("add", 2, 3), executor.submit("lazy_add", 3, 4), executor.submit(handlers.square, 6)]
        pids = {executor.submit(os.getpid).result(timeout=10) for _ in range(4)}
        # Then they run in other processes, as under the other start methods
        assert [f.result(timeout=10) for f in results] == [5, 7, 36]
        assert executor.start_method == "fork"
        assert os.getpid() not in pids and pids <= set(executor.worker_pids())


# -- 2. what crosses to the worker: keys, references, callables -----------------------


def test_a_registry_object_travels_to_the_workers_with_its_lazy_references(registry: ce.Registry) -> None:
    # Given a registry with functions, objects, and lazy references the workers import
    registry.register("dumps", "json:dumps")
    with ce.ProcessExecutor(2, registry=registry) as executor:
        # When commands name them by key
        futures = [
            executor.submit("dumps", {"a": 1}),
            executor.submit("lazy_add", 3, 4),
            executor.submit("triple", 7),
            executor.submit("double", 7),
            executor.submit("pid"),
        ]
        # Then each key resolves inside a worker process
        *values, pid = (f.result(timeout=10) for f in futures)
        assert values == ['{"a": 1}', 7, 21, 14]
        assert pid != os.getpid() and pid in executor.worker_pids()


def test_a_registry_given_as_an_import_reference_is_imported_by_each_worker() -> None:
    # Given the reference of a registry holding a lambda, which could never be pickled
    with ce.ProcessExecutor(2, registry="tests.proc_handlers:REGISTRY") as executor:
        assert executor.registry is proc_handlers.REGISTRY
        # When a command names the lambda's key
        future = executor.submit("lambda_square", 7)
        # Then it runs: the worker imported the registry itself instead of receiving it
        assert future.result(timeout=10) == 49
        assert executor.submit("lazy_add", 1, 2).result(timeout=10) == 3


def test_a_lazy_reference_that_cannot_be_imported_fails_only_its_own_command(registry: ce.Registry) -> None:
    registry.register("ghost", "tests.no_such_module:fn")
    with ce.ProcessExecutor(2, registry=registry) as executor:
        bad = executor.submit("ghost")
        good = executor.submit("add", 1, 2)
        with pytest.raises(ImportError, match=re.escape("'ghost' refers to 'tests.no_such_module:fn'")):
            bad.result(timeout=10)
        assert good.result(timeout=10) == 3


def test_a_plain_callable_runs_in_a_worker_as_with_the_stdlib(executor: ce.ProcessExecutor) -> None:
    # When module-level functions and builtins are submitted, as to a ProcessPoolExecutor
    added = executor.submit(handlers.add, 2, b=3)
    pid = executor.submit(os.getpid)
    # Then they run, pickled by reference, in a worker process
    assert added.result(timeout=10) == 5
    assert pid.result(timeout=10) in executor.worker_pids() and pid.result() != os.getpid()


def make_scaler(factor: int) -> Callable[[int], int]:
    def scale(x: int) -> int:
        return x * factor

    return scale


def unpicklable(kind: str) -> tuple[tuple[Any, ...], str]:
    """Submit arguments that cannot be pickled, and a name the error must mention."""
    if kind == "lambda":
        return (lambda x: x, 1), "<lambda>"
    if kind == "closure":
        return (make_scaler(3), 1), "scale"
    if kind == "local function":

        def shout(text: str) -> str:
            return text.upper()

        return (shout, "hi"), "shout"
    return (ce.Command("echo", threading.Lock()),), "'echo'"


@pytest.mark.parametrize("kind", ["lambda", "closure", "local function", "lock argument"])
def test_what_cannot_be_pickled_fails_its_own_future_at_submit_and_nothing_else(
    kind: str, executor: ce.ProcessExecutor
) -> None:
    # Given commands submitted before and after one that cannot be pickled
    args, name = unpicklable(kind)
    before = executor.submit("add", 1, 1)
    # When it is submitted
    future = executor.submit(*args)
    after = executor.submit("add", 2, 2)
    # Then its future is already failed when submit returns, with advice
    assert future.done()
    error = future.exception(timeout=0)
    assert isinstance(error, ce.SerializationError)
    assert name in str(error)
    assert "cannot be pickled" in str(error) and "module-level function" in str(error)
    # And its neighbours are unaffected
    assert (before.result(timeout=10), after.result(timeout=10)) == (2, 4)


MAIN_MODULE_SCRIPT = """
    import commandexec as ce

    def double(x):
        return 2 * x

    with ce.ProcessExecutor(1, mp_context="spawn", registry="tests.handlers:REGISTRY") as executor:
        bad = executor.submit(double, 21)
        good = executor.submit("add", 1, 2)
        try:
            bad.result(timeout=20)
        except ce.SerializationError as error:
            print("SerializationError:", error)
        print("good:", good.result(timeout=20))
"""


def test_a_function_from_a_main_module_that_spawned_workers_cannot_import_fails_with_advice() -> None:
    # Given a script run with `python -c` that submits a function defined in its __main__
    with Script(MAIN_MODULE_SCRIPT) as script:
        # When a spawned worker tries to unpickle it
        out, err = script.output()
    # Then that command fails with a SerializationError saying where to define it
    assert script.process.returncode == 0, err
    assert "SerializationError:" in out, out
    assert "'double'" in out and "define its callable" in out and "module the worker can import" in out
    # And the command submitted after it still ran
    assert "good: 3" in out


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("return_lock", "cannot be pickled back from the worker process"),
        ("return_unloadable", "could not be unpickled in the parent process"),
    ],
)
def test_a_result_that_cannot_cross_back_fails_only_its_own_future(
    key: str, message: str, executor: ce.ProcessExecutor
) -> None:
    # Given a warm pool
    pids = warm_up(executor)
    # When a command returns a value that cannot make the trip back
    future = executor.submit(key)
    neighbours = [executor.submit("add", i, 1) for i in range(10)]
    # Then that future fails with a SerializationError naming the command
    with pytest.raises(ce.SerializationError, match=message) as info:
        future.result(timeout=10)
    assert repr(key) in str(info.value)
    # And nothing else is lost: the neighbours succeed and no worker was replaced
    assert [f.result(timeout=10) for f in neighbours] == list(range(1, 11))
    assert set(executor.worker_pids()) == pids


@pytest.mark.parametrize(
    ("key", "args", "type_name", "message", "source_line"),
    [
        ("raise_two_arg", (7, "bad"), "TwoArgError", "error 7: bad", "raise TwoArgError(code, detail)"),
        ("raise_locked", ("held",), "LockedError", "held", "raise LockedError(message)"),
    ],
    ids=["cannot-unpickle", "cannot-pickle"],
)
def test_an_exception_that_cannot_cross_arrives_as_remote_command_error_with_its_text(
    key: str, args: tuple[Any, ...], type_name: str, message: str, source_line: str, executor: ce.ProcessExecutor
) -> None:
    # When a command raises an exception that cannot make the trip back
    future = executor.submit(key, *args)
    # Then a RemoteCommandError carries its type name, message and traceback text
    error = future.exception(timeout=10)
    assert isinstance(error, ce.RemoteCommandError)
    assert error.type_name == f"tests.proc_handlers.{type_name}"
    assert error.message == message
    assert source_line in error.traceback_text and f"in {key}" in error.traceback_text
    assert source_line in "".join(traceback.format_exception(error))
    # And the pool carries on
    assert executor.submit("add", 1, 2).result(timeout=10) == 3


def test_large_arguments_and_results_cross_intact(executor: ce.ProcessExecutor) -> None:
    size = 8 * 1024 * 1024  # far beyond a pipe's buffer
    assert executor.submit("length", b"y" * size).result(timeout=20) == size
    assert executor.submit("make_bytes", size).result(timeout=20) == b"x" * size


# -- 3. errors keep their type and carry the worker's traceback -------------------------


@pytest.mark.parametrize(
    ("key", "error_type", "source_line"),
    [
        ("fail", handlers.HandlerError, "raise HandlerError(message)"),
        ("fail_value", ValueError, "raise ValueError(message)"),
    ],
)
def test_a_user_exception_keeps_its_type_and_carries_the_worker_s_traceback(
    key: str, error_type: type[Exception], source_line: str, executor: ce.ProcessExecutor
) -> None:
    # When a command raises in a worker
    future = executor.submit(key, "disk on fire")
    # Then the caller gets the same type and message
    with pytest.raises(error_type, match=r"^disk on fire$") as info:
        future.result(timeout=10)
    # And the worker's traceback text, chained as the cause, shows where it was raised
    assert info.value.__cause__ is not None
    text = "".join(traceback.format_exception(info.value))
    assert source_line in text and f"in {key}" in text and "handlers.py" in text
    assert "direct cause of the following exception" in text


def test_a_command_that_raises_system_exit_fails_its_future_but_not_its_worker(executor: ce.ProcessExecutor) -> None:
    # Given a warm pool
    pids = warm_up(executor)
    # When a command raises SystemExit
    future = executor.submit("exit_with", 4)
    # Then its future raises it, as with the stdlib, and its worker lives on
    with pytest.raises(SystemExit) as info:
        future.result(timeout=10)
    assert info.value.code == 4
    assert set(executor.worker_pids()) == pids
    assert executor.submit("add", 1, 2).result(timeout=10) == 3


# -- 4. self-healing: a dead worker costs one command, not the pool --------------------


@FORKING
@pytest.mark.parametrize(
    ("how", "method", "description"),
    [
        ("SIGKILL", "forkserver", "killed by SIGKILL"),
        ("exit", "forkserver", "exit code 3"),
        ("segfault", "forkserver", "killed by SIGSEGV"),
        ("SIGTERM", "forkserver", "killed by SIGTERM"),
        ("SIGKILL", "spawn", "killed by SIGKILL"),
        ("SIGKILL", "fork", "killed by SIGKILL"),
    ],
    ids=["sigkill", "os-exit", "segfault", "sigterm", "sigkill-spawn", "sigkill-fork"],
)
def test_a_worker_that_dies_mid_command_fails_it_with_worker_lost_within_a_second_and_is_replaced(
    how: str, method: str, description: str, registry: ce.Registry, tmp_path: Path
) -> None:
    with ce.ProcessExecutor(2, mp_context=method, registry=registry) as executor:
        # Given a warm pool
        pids = warm_up(executor)
        # When a command ends its own worker process
        stamp = tmp_path / "died"
        future = executor.submit("die", how, str(stamp))
        error = future.exception(timeout=10)
        noticed = time.monotonic()
        # Then that command fails with WorkerLost, naming the worker and how it died, within a second
        assert isinstance(error, ce.WorkerLost), repr(error)
        assert description in str(error)
        assert noticed - float(stamp.read_text()) < 1.0
        dead = lost_pid(error)
        assert dead in pids
        # And the dead worker was reaped (no zombie) and replaced
        assert not os.path.exists(f"/proc/{dead}")
        wait_until(replaced(executor, dead), 10, "a replacement worker")
        assert executor.submit("add", 1, 2).result(timeout=10) == 3


def test_commands_queued_behind_a_dying_command_run_on_another_worker(executor: ce.ProcessExecutor) -> None:
    # Given a command that kills its worker, submitted first, and fifty others behind it
    killer = executor.submit("die", "SIGKILL")
    others = [executor.submit("tag", i) for i in range(50)]
    # Then only the killer is lost
    assert isinstance(killer.exception(timeout=10), ce.WorkerLost)
    assert [f.result(timeout=20)[0] for f in others] == list(range(50))


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a worker buffers outcomes (FLUSH_AFTER) and the parent fails every command of the dying "
    "worker's batch up to the one running (seq <= started) with WorkerLost, including ones that had finished",
)
def test_commands_submitted_around_a_dying_command_all_still_complete(executor: ce.ProcessExecutor) -> None:
    # Given a pool warmed up with quick commands, so it sends them in batches
    assert list(executor.map("add", range(500), range(500))) == [2 * i for i in range(500)]
    lost: list[int] = []
    for _ in range(3):
        # When one command kills its worker among fifty others
        before = [executor.submit("tag", i) for i in range(25)]
        killer = executor.submit("die", "SIGKILL")
        after = [executor.submit("tag", i) for i in range(25, 50)]
        assert isinstance(killer.exception(timeout=10), ce.WorkerLost)
        # Then every one of the fifty others still completes
        for i, future in enumerate(before + after):
            if future.exception(timeout=20) is not None:
                lost.append(i)
    assert not lost, f"{len(lost)} commands that did not kill anything failed with WorkerLost"


def test_a_worker_killed_from_outside_fails_only_the_command_it_was_running(
    executor: ce.ProcessExecutor, gate: Gate
) -> None:
    # Given two long commands, one on each worker
    victim, survivor = executor.submit(gate.command()), executor.submit(gate.command())
    victim_pid, survivor_pid = gate.pids(2)
    # When the first one's worker is killed from outside
    os.kill(victim_pid, signal.SIGKILL)
    killed = time.monotonic()
    # Then its command fails with WorkerLost within a second
    error = victim.exception(timeout=10)
    assert time.monotonic() - killed < 1.0
    assert isinstance(error, ce.WorkerLost) and "killed by SIGKILL" in str(error)
    assert lost_pid(error) == victim_pid
    # And the other command carries on, and the pool is whole again
    assert not survivor.done()
    gate.open()
    assert survivor.result(timeout=10) == survivor_pid
    wait_until(replaced(executor, victim_pid), 10, "a replacement worker")


def test_an_idle_worker_killed_from_outside_is_replaced(executor: ce.ProcessExecutor) -> None:
    # Given a warm pool
    pids = warm_up(executor)
    # When an idle worker is killed
    dead = min(pids)
    os.kill(dead, signal.SIGKILL)
    # Then it is reaped and replaced, and nothing is lost
    wait_until(replaced(executor, dead), 10, "a replacement worker")
    assert not os.path.exists(f"/proc/{dead}")  # reaped
    assert [f.result(timeout=10) for f in [executor.submit("add", i, 1) for i in range(20)]] == list(range(1, 21))


def test_several_deaths_in_a_row_do_not_break_the_pool(executor: ce.ProcessExecutor) -> None:
    # Given a pool that loses workers one after another, and both at once
    for how in ["SIGKILL", "exit", "segfault", "SIGTERM", "SIGKILL", "exit"]:
        assert isinstance(executor.submit("die", how).exception(timeout=10), ce.WorkerLost)
    together = [executor.submit("die", "SIGKILL"), executor.submit("die", "exit")]
    assert all(isinstance(f.exception(timeout=10), ce.WorkerLost) for f in together)
    # Then it still runs everything else, on a full set of workers
    futures = [executor.submit("add", i, 1) for i in range(200)]
    assert [f.result(timeout=20) for f in futures] == list(range(1, 201))
    wait_until(lambda: len(executor.worker_pids()) == 2, 10, "two workers")


def test_a_worker_that_dies_while_sending_a_result_fails_that_command_instead_of_hanging_the_pool() -> None:
    code = """
        import os
        import commandexec as ce

        executor = ce.ProcessExecutor(2, registry="tests.proc_handlers:REGISTRY")
        futures = [executor.submit("pid_after", 0.2) for _ in range(2)]
        print(*{f.result(timeout=20) for f in futures}, flush=True)
        try:
            error = executor.submit("die_mid_message").exception(timeout=3)
            later = executor.submit("add", 1, 2).result(timeout=3)
        except TimeoutError:
            print("hung", flush=True)
            os._exit(1)
        print(type(error).__name__, later, flush=True)
        executor.shutdown()
    """
    with Script(code) as script:
        assert len(script.read_workers()) == 2
        out, err = script.output()
    assert out.strip() == "WorkerLost 3", err[-2000:]


# -- 5. hard timeouts ------------------------------------------------------------------


def test_a_command_past_its_timeout_is_stopped_with_its_worker_which_is_replaced(
    executor: ce.ProcessExecutor, gate: Gate
) -> None:
    # Given a warm pool, one worker busy with a long command
    pids = warm_up(executor)
    other = executor.submit(gate.command())
    (other_pid,) = gate.pids(1)
    (victim,) = pids - {other_pid}
    # When a command outlives its timeout on the other worker
    start = time.monotonic()
    future = executor.submit(ce.Command("sleep", 10).with_options(timeout=0.3))
    # Then it fails with CommandTimeout, well before it would have finished
    with pytest.raises(ce.CommandTimeout, match=r"exceeded its timeout of 0\.3 s") as info:
        future.result(timeout=10)
    assert 0.3 <= time.monotonic() - start < 2.0
    assert isinstance(info.value, TimeoutError)
    # And its worker is gone, reaped and replaced
    wait_until(replaced(executor, victim), 10, "a replacement for the timed-out worker")
    assert not os.path.exists(f"/proc/{victim}")
    # And the other worker's command carried on, and later commands run
    assert not other.done()
    gate.open()
    assert other.result(timeout=10) == other_pid
    assert [f.result(timeout=10) for f in [executor.submit("add", i, 1) for i in range(10)]] == list(range(1, 11))


def test_a_command_within_its_timeout_keeps_its_worker(executor: ce.ProcessExecutor) -> None:
    # Given a warm pool
    pids = warm_up(executor)
    # When a command with a timeout finishes in time
    pid = executor.submit(ce.Command("pid_after", 0.05).with_options(timeout=5)).result(timeout=10)
    # Then its worker is left alone
    assert pid in pids
    assert set(executor.worker_pids()) == pids


@pytest.mark.xfail(
    strict=True,
    reason="BUG: the timeout clock starts at dispatch, so a fresh worker's start-up and initializer count against it",
)
def test_a_timeout_counts_from_the_start_of_the_command_not_of_its_worker(registry: ce.Registry) -> None:
    # Given workers whose initializer takes longer than the command's timeout
    options = {"initializer": proc_handlers.slow_initializer, "initargs": (0.8,)}
    with ce.ProcessExecutor(1, registry=registry, **options) as executor:  # type: ignore[arg-type]
        # When a quick command with a timeout is the first one submitted
        future = executor.submit(ce.Command("add", 1, 2).with_options(timeout=0.5))
        # Then it runs once its worker is ready, and succeeds
        assert future.result(timeout=10) == 3


# -- 6. max_tasks_per_child ---------------------------------------------------------------


def test_each_worker_is_replaced_after_max_tasks_per_child_commands(registry: ce.Registry) -> None:
    # Given two workers that may each run three commands
    with ce.ProcessExecutor(2, max_tasks_per_child=3, registry=registry) as executor:
        # When fifteen commands run
        results = [f.result(timeout=20) for f in [executor.submit("tag", i) for i in range(15)]]
        # Then every result is right, and no process ran more than three
        assert [value for value, _ in results] == list(range(15))
        runs = collections.Counter(pid for _, pid in results)
        assert max(runs.values()) <= 3 and len(runs) >= 5
        # And each worker that spent its budget is replaced, back to two fresh workers
        wait_until(
            lambda: len(executor.worker_pids()) == 2 and set(executor.worker_pids()).isdisjoint(runs),
            10,
            "two fresh workers",
        )


# -- 7. initializer ------------------------------------------------------------------------


def test_the_initializer_runs_with_its_initargs_in_every_worker(registry: ce.Registry, tmp_path: Path) -> None:
    # Given an initializer that leaves a file named by its process id
    options = {"initializer": proc_handlers.touch_pid_file, "initargs": (str(tmp_path),)}
    with ce.ProcessExecutor(2, registry=registry, **options) as executor:  # type: ignore[arg-type]
        # When both workers run a command
        pids = warm_up(executor)
    # Then each ran the initializer, once
    assert {p.name for p in tmp_path.glob("init-*")} == {f"init-{pid}" for pid in pids}


def test_the_initializer_runs_again_in_every_replacement_worker(registry: ce.Registry, tmp_path: Path) -> None:
    # Given workers replaced after every command
    options = {"initializer": proc_handlers.touch_pid_file, "initargs": (str(tmp_path),)}
    with ce.ProcessExecutor(2, max_tasks_per_child=1, registry=registry, **options) as executor:  # type: ignore[arg-type]
        # When six commands run
        pids = {pid for _, pid in (f.result(timeout=20) for f in [executor.submit("tag", i) for i in range(6)])}
    # Then six processes ran them, each after running the initializer
    assert len(pids) == 6
    assert {f"init-{pid}" for pid in pids} <= {p.name for p in tmp_path.glob("init-*")}


def test_a_failing_initializer_breaks_the_executor_without_hanging(registry: ce.Registry) -> None:
    # Given workers whose initializer raises
    options = {"initializer": proc_handlers.fail_initializer, "initargs": ("no GPU here",)}
    executor = ce.ProcessExecutor(2, registry=registry, **options)  # type: ignore[arg-type]
    try:
        # When commands are submitted
        futures = [executor.submit("add", i, 1) for i in range(5)]
        # Then every one fails with BrokenExecutor, which the stdlib's handlers also catch
        for future in futures:
            error = future.exception(timeout=10)
            assert isinstance(error, ce.BrokenExecutor)
            assert isinstance(error, concurrent.futures.BrokenExecutor)
            assert "initializer failed" in str(error) and "no GPU here" in str(error)
        # And later submits raise it at once
        with pytest.raises(ce.BrokenExecutor):
            executor.submit("add", 1, 2)
    finally:
        start = time.monotonic()
        executor.shutdown(wait=True)
        assert time.monotonic() - start < 5.0


@pytest.mark.xfail(
    strict=True,
    reason="BUG: a worker that dies before it reports (here in its initializer) is replaced for ever and its "
    "commands are requeued for ever: futures never complete and shutdown(wait=True) never returns",
)
def test_a_worker_that_dies_in_its_initializer_breaks_the_executor_instead_of_respawning_for_ever() -> None:
    code = """
        import os
        import commandexec as ce
        from tests import proc_handlers

        executor = ce.ProcessExecutor(
            1, registry="tests.proc_handlers:REGISTRY", initializer=proc_handlers.exit_initializer
        )
        try:
            error = executor.submit("add", 1, 2).exception(timeout=3)
        except TimeoutError:
            print("still pending after 3 s", flush=True)
            os._exit(1)
        print(type(error).__name__, error, flush=True)
        executor.shutdown()
    """
    with Script(code) as script:
        out, err = script.output()
    assert out.startswith("BrokenExecutor") and "exit code 5" in out, out + err[-2000:]


@pytest.mark.parametrize("what", ["registry", "initializer"])
def test_what_a_worker_needs_but_cannot_be_pickled_fails_loudly_instead_of_hanging(
    what: str, registry: ce.Registry, thread_errors: list[str], collect_garbage: None
) -> None:
    # Given a registry or an initializer that cannot be pickled to a worker process
    options: dict[str, Any] = {"registry": registry}
    if what == "registry":
        registry.register("square_lambda", lambda x: x * x)
    else:
        options["initializer"] = lambda: None
    try:
        executor = ce.ProcessExecutor(2, **options)
    except ce.SerializationError as error:  # refused at once, naming the culprit: fine
        assert "square_lambda" in str(error) if what == "registry" else "initializer" in str(error)
        return
    try:
        # When a command is submitted, so workers must start
        future = executor.submit("add", 1, 2)
        done, _ = concurrent.futures.wait([future], timeout=2)  # a failed start is known at once
        outcome = future.exception(timeout=0) if done else "still pending after 2 s"
    finally:
        executor.shutdown(wait=True)
    # Then the command fails, and no thread died unnoticed
    assert isinstance(outcome, (ce.BrokenExecutor, ce.SerializationError)), outcome
    assert not thread_errors, "the executor's manager thread died with an unhandled exception"


def test_a_worker_that_fails_to_start_leaves_no_file_descriptor_open(
    registry: ce.Registry, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an initializer that cannot be pickled, and log records kept (as caplog, or any handler, does)
    before = open_fds()
    executor = ce.ProcessExecutor(2, registry=registry, initializer=lambda: None)
    # When the workers fail to start and the executor is shut down
    try:
        concurrent.futures.wait([executor.submit("add", 1, 2)], timeout=2)
    finally:
        executor.shutdown(wait=True)
    del executor
    gc.collect()
    leaked = sorted(open_fds() - before)
    caplog.clear()  # let the leftovers go before the leak check, whatever the verdict
    gc.collect()
    # Then no pipe of the failed start is left open
    assert not leaked


# -- 8. shutdown, and what happens when the parent dies -----------------------------------


def test_shutdown_with_wait_reaps_every_worker_and_stops_every_thread(executor: ce.ProcessExecutor) -> None:
    # Given a warm pool
    pids = warm_up(executor)
    # When it shuts down, waiting
    executor.shutdown(wait=True)
    # Then every worker has exited and been reaped, and its threads are gone (the leak check sees fds)
    assert executor.worker_pids() == []
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}")], "a worker was not reaped"
    assert not [t.name for t in threading.enumerate() if t.name.startswith("ProcessExecutor")]


def test_shutdown_with_cancel_futures_cancels_what_was_not_dispatched(executor: ce.ProcessExecutor, gate: Gate) -> None:
    # Given both workers busy and ten commands waiting
    busy = [executor.submit(gate.command()) for _ in range(2)]
    pids = gate.pids(2)
    waiting = [executor.submit("add", i, 1) for i in range(10)]
    # When the executor shuts down with cancel_futures
    executor.shutdown(wait=False, cancel_futures=True)
    # Then the waiting commands are cancelled, and the running ones finish
    assert all(f.cancelled() for f in waiting)
    gate.open()
    assert [f.result(timeout=10) for f in busy] == pids
    executor.shutdown(wait=True)


@pytest.mark.xfail(
    strict=True,
    reason="BUG: after quick commands the dispatcher prefetches up to 512 commands per busy worker and marks "
    "them running, so they cannot be cancelled (stdlib: at most one extra)",
)
def test_commands_waiting_behind_busy_workers_stay_cancellable_after_a_warm_up(
    executor: ce.ProcessExecutor, gate: Gate
) -> None:
    # Given a pool that has run many quick commands, now with both workers held
    assert len(list(executor.map("add", range(2000), range(2000)))) == 2000
    busy = [executor.submit(gate.command()) for _ in range(2)]
    gate.pids(2)
    # When twenty more commands wait, and are then cancelled
    waiting = [executor.submit("add", i, 1) for i in range(20)]
    time.sleep(0.3)  # time for the dispatcher to look at them
    cancelled = sum(f.cancel() for f in waiting)
    gate.open()
    assert len({f.result(timeout=10) for f in busy}) == 2
    # Then all but a few prefetched ones could be cancelled
    assert cancelled >= len(waiting) - executor.max_workers


@pytest.mark.xfail(
    strict=True,
    reason="BUG: commands are batched behind a slow one on its worker while the other worker is idle "
    "(prefetch sized by a moving average of past commands)",
)
def test_a_quick_command_never_waits_behind_a_slow_one_while_a_worker_is_idle(executor: ce.ProcessExecutor) -> None:
    # Given a pool that has run many quick commands
    assert len(list(executor.map("add", range(2000), range(2000)))) == 2000
    # When a slow command and twenty quick ones are submitted together
    start = time.monotonic()
    executor.submit("sleep", 0.05)
    executor.submit("sleep", 0.05)
    slow = executor.submit("sleep", 1.0, "slow")
    quick = [executor.submit("tag", i) for i in range(20)]
    done, _ = concurrent.futures.wait(quick, timeout=10)
    # Then the quick ones run on the free worker and do not wait for the slow one
    elapsed = time.monotonic() - start
    assert len(done) == 20
    assert elapsed < 0.7, f"quick commands took {elapsed:.2f} s behind a 1 s command"
    assert slow.result(timeout=10) == "slow"


CALLBACK_SCRIPT = """
    import os, sys, threading, time
    import commandexec as ce

    directory = sys.argv[1]
    executor = ce.ProcessExecutor(1, registry="tests.proc_handlers:REGISTRY")
    busy = executor.submit("hold", f"{directory}/started", f"{directory}/release", 20)
    while not os.path.exists(f"{directory}/started"):
        time.sleep(0.01)
    print(*executor.worker_pids(), flush=True)
    waiting = executor.submit("add", 1, 2)
    outcome = []

    def follow_up(future):
        try:
            executor.submit("add", 3, 4)
            outcome.append("submitted")
        except RuntimeError as error:
            outcome.append(f"RuntimeError: {error}")

    waiting.add_done_callback(follow_up)
    shutdown = threading.Thread(target=executor.shutdown, kwargs={"cancel_futures": True}, daemon=True)
    shutdown.start()
    open(f"{directory}/release", "w").close()
    shutdown.join(3)
    print("deadlock" if shutdown.is_alive() else "returned", *outcome, flush=True)
    os._exit(0)
"""


def test_a_done_callback_that_submits_during_shutdown_with_cancel_futures_gets_runtime_error_not_a_deadlock(
    tmp_path: Path,
) -> None:
    # Given a waiting command whose done callback submits a follow-up
    with Script(CALLBACK_SCRIPT, str(tmp_path)) as script:
        script.read_workers()
        # When shutdown(cancel_futures=True) cancels it
        out, err = script.output()
    # Then shutdown returns, and the callback's submit raises RuntimeError
    assert out.startswith("returned RuntimeError"), out + err[-2000:]


def test_submit_and_map_after_shutdown_raise_runtime_error(executor: ce.ProcessExecutor) -> None:
    # Given an executor that ran a command and was shut down
    executor.submit("add", 1, 2).result(timeout=10)
    executor.shutdown()
    # Then every way to submit raises the stdlib's RuntimeError
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit("add", 1, 2)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(handlers.add, 1, 2)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.map("square", [1, 2])


def test_submit_after_shutdown_raises_runtime_error_even_for_a_command_that_cannot_be_pickled(
    executor: ce.ProcessExecutor,
) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(lambda: None)  # the stdlib raises before it looks at what is submitted


PARENT_SCRIPT = """
    import glob, sys, time
    import commandexec as ce

    directory, method, busy = sys.argv[1], sys.argv[2], int(sys.argv[3])
    executor = ce.ProcessExecutor(2, mp_context=method, registry="tests.proc_handlers:REGISTRY")
    # Let both workers finish starting: their orphan check compares os.getppid() with its value then.
    assert len({f.result(timeout=20) for f in [executor.submit("pid_after", 0.3) for _ in range(2)]}) == 2
    for i in range(busy):
        executor.submit("hold", f"{directory}/started-{i}", f"{directory}/never", 60)
    deadline = time.monotonic() + 20
    while len(glob.glob(f"{directory}/started-?")) < busy or len(executor.worker_pids()) < 2:
        assert time.monotonic() < deadline, "the pool did not start"
        time.sleep(0.01)
    print(*executor.worker_pids(), flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize(
    ("method", "busy"),
    [
        pytest.param("spawn", 0, id="spawn-idle"),
        pytest.param(
            "forkserver",
            2,
            id="forkserver-busy",
        ),
    ],
)
def test_workers_of_a_parent_killed_by_sigterm_exit_by_themselves(method: str, busy: int, tmp_path: Path) -> None:
    # Given a program whose workers are idle or running long commands
    with Script(PARENT_SCRIPT, str(tmp_path), method, str(busy)) as script:
        workers = script.read_workers()
        assert len(workers) == 2
        # When the program is killed by SIGTERM (no clean-up runs)
        script.process.send_signal(signal.SIGTERM)
        assert script.wait(10) == -signal.SIGTERM
        # Then its workers notice and exit by themselves within about two seconds
        wait_until(lambda: not any(alive(pid) for pid in workers), 2.5, "orphaned workers exiting")


CTRL_C_SCRIPT = """
    import glob, sys, time
    import commandexec as ce

    directory, seconds = sys.argv[1], float(sys.argv[2])
    executor = ce.ProcessExecutor(2, registry="tests.proc_handlers:REGISTRY")
    futures = [executor.submit("nap", f"{directory}/started-{i}", seconds) for i in range(2)]
    deadline = time.monotonic() + 20
    while len(glob.glob(f"{directory}/started-?")) < 2:
        assert time.monotonic() < deadline, "the commands did not start"
        time.sleep(0.01)
    print(*executor.worker_pids(), flush=True)
    print([f.result(timeout=60) for f in futures])
"""


def ctrl_c(script: Script) -> None:
    """Press Ctrl-C: a terminal sends SIGINT to the whole foreground process group."""
    os.killpg(script.process.pid, signal.SIGINT)


def test_ctrl_c_while_waiting_on_results_exits_with_keyboard_interrupt_and_leaves_no_workers(tmp_path: Path) -> None:
    # Given a program waiting on two short commands
    with Script(CTRL_C_SCRIPT, str(tmp_path), "1.0") as script:
        workers = script.read_workers()
        # When the user presses Ctrl-C
        ctrl_c(script)
        # Then it exits with KeyboardInterrupt
        assert script.wait(15) is not None, "the program did not exit after Ctrl-C"
        _, err = script.output()
        assert "KeyboardInterrupt" in err
        assert script.process.returncode != 0
        # And no worker is left running
        wait_until(lambda: not any(alive(pid) for pid in workers), 1.0, "workers exiting")


@pytest.mark.xfail(
    strict=True,
    reason="BUG: workers ignore SIGINT and the at-exit hook runs shutdown(wait=True), so Ctrl-C waits for every "
    "running command to finish (stdlib workers get the KeyboardInterrupt)",
)
def test_ctrl_c_stops_a_program_promptly_even_while_its_commands_run_for_long(tmp_path: Path) -> None:
    # Given a program waiting on two long commands
    with Script(CTRL_C_SCRIPT, str(tmp_path), "30") as script:
        workers = script.read_workers()
        # When the user presses Ctrl-C
        ctrl_c(script)
        # Then it exits within a few seconds, leaving no worker behind
        assert script.wait(3) is not None, "the program still runs 3 s after Ctrl-C"
        wait_until(lambda: not any(alive(pid) for pid in workers), 1.0, "workers exiting")


# -- 9. map ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [handlers.square, "square"], ids=["callable", "key"])
def test_map_with_chunks_returns_ten_thousand_results_in_order(fn: Any, executor: ce.ProcessExecutor) -> None:
    # When ten thousand items are mapped in chunks of 250 (forty commands)
    results = executor.map(fn, range(10_000), chunksize=250)
    # Then every result comes back, in input order
    assert list(results) == [x * x for x in range(10_000)]
