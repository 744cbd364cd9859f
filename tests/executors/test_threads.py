"""ThreadExecutor specifics: sizing, naming, initializer, contextvars, backpressure."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import threading
import time
from pathlib import Path

import pytest

import commandexec as ce
from tests import handlers
from tests.contract.test_contract import Gate


@pytest.fixture
def gate(tmp_path: Path):  # type: ignore[no-untyped-def]
    gate = Gate(tmp_path)
    yield gate
    gate.open()


@pytest.mark.parametrize("bad", [0, -1])
def test_max_workers_below_one_is_rejected_as_the_stdlib_does(bad: int, registry: ce.Registry) -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        ce.ThreadExecutor(bad, registry=registry)


def test_the_default_worker_count_matches_the_stdlib(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(registry=registry) as ours, concurrent.futures.ThreadPoolExecutor() as theirs:
        assert ours.max_workers == theirs._max_workers


def test_a_non_callable_initializer_is_rejected(registry: ce.Registry) -> None:
    with pytest.raises(TypeError, match="initializer must be a callable"):
        ce.ThreadExecutor(2, initializer=42, registry=registry)  # type: ignore[arg-type]


def test_worker_threads_carry_the_name_prefix(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(2, thread_name_prefix="resizer", registry=registry) as executor:
        assert executor.submit("thread_name").result(timeout=5).startswith("resizer_")


def test_an_idle_thread_is_reused_instead_of_starting_another(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(8, registry=registry) as executor:
        names = {executor.submit("thread_name").result(timeout=5) for _ in range(20)}
        assert len(names) == 1


def test_never_more_threads_than_max_workers(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(3, registry=registry) as executor:
        names = {f.result(timeout=10) for f in [executor.submit("sleep", 0.01, None) for _ in range(30)]}
        threads = {n for n in (t.name for t in threading.enumerate()) if n.startswith(executor._thread_name_prefix)}
        assert len(threads) <= 3
        assert names == {None}


def test_the_initializer_runs_in_each_worker_with_its_args(registry: ce.Registry) -> None:
    seen: list[tuple[str, str]] = []

    def init(tag: str) -> None:
        seen.append((tag, threading.current_thread().name))

    with ce.ThreadExecutor(2, initializer=init, initargs=("ready",), registry=registry) as executor:
        list(executor.map("overlap", [0.2, 0.2]))
    assert len(seen) == 2 and all(tag == "ready" for tag, _ in seen)


def test_a_failing_initializer_breaks_the_executor_with_a_clear_error(registry: ce.Registry) -> None:
    def init() -> None:
        raise OSError("no GPU here")

    executor = ce.ThreadExecutor(1, initializer=init, registry=registry)
    try:
        future = executor.submit("add", 1, 2)
        with pytest.raises(ce.BrokenExecutor, match="initializer failed"):
            future.result(timeout=5)
        with pytest.raises(concurrent.futures.BrokenExecutor):
            executor.submit("add", 1, 2).result(timeout=5)
    finally:
        executor.shutdown()


def test_a_command_sees_the_submitters_context_variables(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(2, registry=registry) as executor:
        token = handlers.request_id.set("req-42")
        try:
            future = executor.submit("context_value")
        finally:
            handlers.request_id.reset(token)
        assert future.result(timeout=5) == "req-42"
        assert executor.submit("context_value").result(timeout=5) == "unset"


def test_a_commands_context_changes_do_not_leak_into_the_submitter(registry: ce.Registry) -> None:
    def set_var() -> str:
        handlers.request_id.set("changed inside")
        return handlers.request_id.get()

    with ce.ThreadExecutor(1, registry=registry) as executor:
        assert executor.submit(set_var).result(timeout=5) == "changed inside"
        assert handlers.request_id.get() == "unset"
        assert executor.submit("context_value").result(timeout=5) == "unset"


def test_a_full_executor_raises_executor_full_when_told_not_to_wait(registry: ce.Registry, gate: Gate) -> None:
    with ce.ThreadExecutor(1, registry=registry, max_pending=2, on_full="raise") as executor:
        running = executor.submit(gate.command("running"))
        gate.wait_started(1)
        queued = [executor.submit("add", i, 0) for i in range(2)]
        with pytest.raises(ce.ExecutorFull, match="2 commands are already pending"):
            executor.submit("add", 9, 9)
        gate.open()
        assert running.result(timeout=5) == "running"
        assert [f.result(timeout=5) for f in queued] == [0, 1]
        assert executor.submit("add", 9, 9).result(timeout=5) == 18


def test_a_full_executor_blocks_submit_until_a_command_starts(registry: ce.Registry, gate: Gate) -> None:
    with ce.ThreadExecutor(1, registry=registry, max_pending=1) as executor:
        running = executor.submit(gate.command("running"))
        gate.wait_started(1)
        executor.submit("add", 1, 1)
        submitted = threading.Event()
        results: list[concurrent.futures.Future[int]] = []

        def submit_more() -> None:
            results.append(executor.submit("add", 2, 2))
            submitted.set()

        submitter = threading.Thread(target=submit_more)
        submitter.start()
        assert not submitted.wait(0.3), "submit did not wait for room"
        gate.open()
        assert submitted.wait(5)
        submitter.join(5)
        assert running.result(timeout=5) == "running"
        assert results[0].result(timeout=5) == 4


def test_a_submit_blocked_on_a_full_executor_gives_up_at_shutdown(registry: ce.Registry, gate: Gate) -> None:
    executor = ce.ThreadExecutor(1, registry=registry, max_pending=1)
    running = executor.submit(gate.command())
    gate.wait_started(1)
    executor.submit("add", 1, 1)
    errors: list[BaseException] = []

    def submit_more() -> None:
        try:
            executor.submit("add", 2, 2)
        except BaseException as exc:
            errors.append(exc)

    submitter = threading.Thread(target=submit_more)
    submitter.start()
    time.sleep(0.1)
    executor.shutdown(wait=False, cancel_futures=True)
    submitter.join(5)
    assert not submitter.is_alive()
    assert isinstance(errors[0], RuntimeError)
    gate.open()
    assert running.result(timeout=5) is None
    executor.shutdown()


@pytest.mark.parametrize("bad", [{"max_pending": 0}, {"on_full": "drop"}])
def test_bad_backpressure_settings_are_rejected(registry: ce.Registry, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ce.ThreadExecutor(1, registry=registry, **bad)  # type: ignore[arg-type]


def test_an_executor_dropped_without_shutdown_lets_its_threads_exit(registry: ce.Registry) -> None:
    executor = ce.ThreadExecutor(2, registry=registry)
    assert executor.submit("add", 1, 1).result(timeout=5) == 2
    threads = list(executor._workers)
    del executor
    gc.collect()
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()


def test_a_coroutine_command_runs_on_a_worker_thread(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(2, registry=registry) as executor:
        assert executor.submit("async_add", 1, 2).result(timeout=5) == 3


def test_shutdown_without_wait_still_runs_queued_commands_that_have_timeouts(registry: ce.Registry) -> None:
    executor = ce.ThreadExecutor(1, registry=registry)
    first = executor.submit(ce.Command("sleep", 0.2, "first"))
    queued = executor.submit(ce.Command("add", 1, 2).with_options(timeout=5))
    executor.shutdown(wait=False)
    assert first.result(timeout=5) == "first"
    assert queued.result(timeout=5) == 3
    executor.shutdown(wait=True)


def test_submit_after_shutdown_is_a_runtime_error_even_when_full(registry: ce.Registry, gate: Gate) -> None:
    executor = ce.ThreadExecutor(1, registry=registry, max_pending=1, on_full="raise")
    running = executor.submit(gate.command())
    gate.wait_started(1)
    executor.submit("add", 1, 1)
    executor.shutdown(wait=False)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit("add", 2, 2)
    gate.open()
    assert running.result(timeout=5) is None
    executor.shutdown()


def test_it_can_be_the_event_loops_default_executor(registry: ce.Registry) -> None:
    executor = ce.ThreadExecutor(2, thread_name_prefix="loop-default", registry=registry)

    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(executor)
        return await asyncio.wait_for(asyncio.to_thread(handlers.thread_name), timeout=5)

    assert asyncio.run(main()).startswith("loop-default")
    executor.shutdown()
