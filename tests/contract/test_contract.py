"""The executor contract: every kind in conftest.KINDS passes every test here.

These tests use only the ``executor`` fixture and handlers from tests/handlers.py,
so a new executor joins by adding its kind to ``KINDS``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from tests import handlers


def concurrent_kind(executor: ce.Executor) -> bool:
    return not isinstance(executor, ce.InlineExecutor)


def capacity(executor: ce.Executor) -> int:
    return int(getattr(executor, "max_workers", 1))


class Gate:
    """Holds workers busy on ``wait_file`` commands until opened."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.release = directory / "release"
        self.count = 0

    def command(self, result: Any = None) -> ce.Command:
        self.count += 1
        started = self.directory / f"started-{self.count}"
        return ce.Command("wait_file", str(started), str(self.release), 20.0, result)

    def wait_started(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(list(self.directory.glob("started-*"))) < n:
            assert time.monotonic() < deadline, f"only some of {n} gated commands started"
            time.sleep(0.005)

    def open(self) -> None:
        self.release.touch()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    gate = Gate(tmp_path)
    yield gate
    gate.open()  # never leave a worker blocked


# -- results and arguments -------------------------------------------------------


def test_a_command_returns_its_result(executor: ce.Executor) -> None:
    assert executor.submit(ce.Command("add", 2, 3)).result(timeout=10) == 5


def test_positional_and_keyword_arguments_reach_the_callable(executor: ce.Executor) -> None:
    result = executor.submit(ce.Command("echo", 1, "two", x=3, y=[4])).result(timeout=10)
    assert result == {"args": [1, "two"], "kwargs": {"x": 3, "y": [4]}}


def test_a_key_is_shorthand_for_a_command(executor: ce.Executor) -> None:
    assert executor.submit("add", 2, b=5).result(timeout=10) == 7


def test_a_plain_callable_runs_as_with_the_stdlib(executor: ce.Executor) -> None:
    assert executor.submit(handlers.add, 4, b=5).result(timeout=10) == 9


@pytest.mark.parametrize("key", ["lazy_add", "triple", "double"])
def test_lazy_references_callable_objects_and_bound_methods_run(executor: ce.Executor, key: str) -> None:
    expected = {"lazy_add": 7, "triple": 21, "double": 14}[key]
    args = (3, 4) if key == "lazy_add" else (7,)
    assert executor.submit(ce.Command(key, *args)).result(timeout=10) == expected


def test_a_coroutine_function_is_awaited_to_completion(executor: ce.Executor) -> None:
    assert executor.submit(ce.Command("async_add", 20, b=22)).result(timeout=10) == 42


def test_a_command_with_options_still_gets_only_its_own_kwargs(executor: ce.Executor) -> None:
    command = ce.Command("echo", timeout="callable's own").with_options(timeout=30)
    assert executor.submit(command).result(timeout=10) == {"args": [], "kwargs": {"timeout": "callable's own"}}


# -- errors ----------------------------------------------------------------------


def test_a_user_exception_keeps_its_type_message_and_traceback(executor: ce.Executor) -> None:
    future = executor.submit(ce.Command("fail", "disk on fire"))
    with pytest.raises(handlers.HandlerError, match="disk on fire") as info:
        future.result(timeout=10)
    text = "".join(traceback.format_exception(info.value))
    assert "raise HandlerError(message)" in text
    assert "in fail" in text


def test_an_unknown_key_fails_only_that_future_and_names_close_matches(executor: ce.Executor) -> None:
    bad = executor.submit(ce.Command("ad", 1, 2))
    good = executor.submit(ce.Command("add", 1, 2))
    with pytest.raises(ce.UnknownCommand, match="did you mean 'add'"):
        bad.result(timeout=10)
    assert good.result(timeout=10) == 3


def test_wrong_arguments_fail_the_future_not_submit(executor: ce.Executor) -> None:
    future = executor.submit(ce.Command("add", 1, 2, 3, 4))
    with pytest.raises(TypeError):
        future.result(timeout=10)


def test_submit_rejects_what_is_not_a_command_key_or_callable(executor: ce.Executor) -> None:
    with pytest.raises(TypeError, match="Command, a registry key or a callable"):
        executor.submit(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no further arguments"):
        executor.submit(ce.Command("add", 1), 2)


def test_submit_after_shutdown_raises_runtime_error(executor: ce.Executor) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(ce.Command("add", 1, 2))


def test_shutdown_twice_is_harmless(executor: ce.Executor) -> None:
    executor.shutdown()
    executor.shutdown(wait=True, cancel_futures=True)


# -- map -------------------------------------------------------------------------


def test_map_returns_results_in_input_order(executor: ce.Executor) -> None:
    delays = [0.03, 0.0, 0.02, 0.0, 0.01]
    assert list(executor.map(handlers.sleep, delays, range(5))) == [0, 1, 2, 3, 4]


def test_map_takes_a_key_and_several_iterables(executor: ce.Executor) -> None:
    assert list(executor.map("add", [1, 2, 3], [10, 20, 30])) == [11, 22, 33]


@pytest.mark.parametrize("chunksize", [1, 3, 100])
def test_map_with_chunks_gives_the_same_results(executor: ce.Executor, chunksize: int) -> None:
    assert list(executor.map("square", range(50), chunksize=chunksize)) == [x * x for x in range(50)]
    assert list(executor.map(handlers.square, range(7), chunksize=chunksize)) == [x * x for x in range(7)]


def test_map_raises_the_first_error_in_order(executor: ce.Executor) -> None:
    results = executor.map(handlers.fail_value, ["a", "b"])
    with pytest.raises(ValueError, match=r"^a$"):
        next(results)


def test_map_rejects_a_bad_chunksize(executor: ce.Executor) -> None:
    with pytest.raises(ValueError):
        executor.map("square", [1], chunksize=0)


def test_map_with_a_buffer_consumes_its_input_lazily(executor: ce.Executor) -> None:
    consumed = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            consumed.append(n)
            yield n
            n += 1

    results = executor.map("square", endless(), buffersize=4)
    assert [next(results) for _ in range(10)] == [n * n for n in range(10)]
    assert len(consumed) <= 10 + 4 + 1
    results.close()  # type: ignore[attr-defined]


def test_map_yields_early_results_before_late_ones_finish(executor: ce.Executor, gate: Gate) -> None:
    if not concurrent_kind(executor):
        pytest.skip("an inline map finishes every item inside map()")
    late = executor.submit(gate.command("late"))
    lazy = executor.map("add", [1, 2], [1, 2])
    assert list(lazy) == [2, 4]  # not held up by the gated command
    assert not late.done()
    gate.open()
    assert late.result(timeout=10) == "late"


def test_map_timeout_raises_timeout_error_and_cancels_the_rest(executor: ce.Executor, gate: Gate) -> None:
    if not concurrent_kind(executor):
        pytest.skip("an inline map never waits")
    blocker = executor.submit(gate.command())
    gate.wait_started(1)
    results = executor.map(handlers.sleep, [5.0] * capacity(executor) * 2, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        list(results)
    assert time.monotonic() - start < 3.0
    gate.open()
    assert blocker.result(timeout=10) is None


# -- cancellation and shutdown ----------------------------------------------------


def test_an_inline_future_is_done_at_submit_and_cannot_be_cancelled(executor: ce.Executor) -> None:
    if concurrent_kind(executor):
        pytest.skip("only inline futures are done at submit")
    future = executor.submit(ce.Command("add", 1, 1))
    assert future.done()
    assert not future.cancel()
    assert future.result(timeout=0) == 2


def occupy(executor: ce.Executor, gate: Gate) -> list[concurrent.futures.Future[Any]]:
    busy = [executor.submit(gate.command(i)) for i in range(capacity(executor))]
    gate.wait_started(len(busy))
    return busy


def test_a_pending_command_can_be_cancelled_and_never_runs(executor: ce.Executor, gate: Gate, tmp_path: Path) -> None:
    if not concurrent_kind(executor):
        pytest.skip("inline commands are never pending")
    busy = occupy(executor, gate)
    marker = tmp_path / "ran"
    pending = executor.submit(ce.Command("wait_file", str(marker), str(gate.release)))
    assert pending.cancel()
    assert pending.cancelled()
    gate.open()
    assert [f.result(timeout=10) for f in busy] == list(range(len(busy)))
    executor.shutdown(wait=True)
    assert not marker.exists()


def test_a_running_command_cannot_be_cancelled(executor: ce.Executor, gate: Gate) -> None:
    if not concurrent_kind(executor):
        pytest.skip("inline commands are never running after submit")
    future = executor.submit(gate.command("done"))
    gate.wait_started(1)
    assert not future.cancel()
    assert future.running()
    gate.open()
    assert future.result(timeout=10) == "done"


def test_shutdown_without_cancel_runs_every_pending_command(executor: ce.Executor, gate: Gate) -> None:
    if not concurrent_kind(executor):
        pytest.skip("inline commands are never pending")
    busy = occupy(executor, gate)
    pending = [executor.submit(ce.Command("add", i, 1)) for i in range(20)]
    gate.open()
    executor.shutdown(wait=True)
    assert all(f.done() for f in busy + pending)
    assert [f.result(timeout=0) for f in pending] == [i + 1 for i in range(20)]


def test_shutdown_with_cancel_futures_cancels_pending_and_finishes_running(executor: ce.Executor, gate: Gate) -> None:
    if not concurrent_kind(executor):
        pytest.skip("inline commands are never pending")
    busy = occupy(executor, gate)
    pending = [executor.submit(ce.Command("add", i, 1)) for i in range(20)]
    executor.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in pending)
    gate.open()
    assert [f.result(timeout=10) for f in busy] == list(range(len(busy)))


def test_shutdown_without_wait_returns_at_once(executor: ce.Executor, gate: Gate) -> None:
    if not concurrent_kind(executor):
        pytest.skip("inline commands never outlive submit")
    future = executor.submit(gate.command("late"))
    gate.wait_started(1)
    start = time.monotonic()
    executor.shutdown(wait=False)
    assert time.monotonic() - start < 1.0
    gate.open()
    assert future.result(timeout=10) == "late"


# -- volume and overlap ----------------------------------------------------------


@pytest.mark.time_limit(60)
def test_a_burst_of_ten_thousand_commands_all_complete(executor: ce.Executor) -> None:
    futures = [executor.submit(ce.Command("add", i, 1)) for i in range(10_000)]
    _, not_done = concurrent.futures.wait(futures, timeout=50)
    assert not not_done
    assert sum(f.result() for f in futures) == sum(range(1, 10_001))


def test_concurrent_executors_really_overlap_commands(executor: ce.Executor) -> None:
    if not concurrent_kind(executor):
        pytest.skip("inline runs one command at a time by design")
    futures = [executor.submit(ce.Command("overlap", 0.3)) for _ in range(2)]
    (start1, end1), (start2, end2) = (f.result(timeout=10) for f in futures)
    assert max(start1, start2) < min(end1, end2), "the two commands did not run at the same time"


# -- futures interoperate with the stdlib and asyncio --------------------------


def test_futures_work_with_as_completed(executor: ce.Executor) -> None:
    futures = {executor.submit(ce.Command("square", i)): i for i in range(20)}
    seen = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures, timeout=10)}
    assert seen == {i: i * i for i in range(20)}


def test_futures_work_with_wait(executor: ce.Executor) -> None:
    futures = [executor.submit(ce.Command("square", i)) for i in range(20)]
    futures.append(executor.submit(ce.Command("fail")))
    done, not_done = concurrent.futures.wait(futures, timeout=10, return_when=concurrent.futures.ALL_COMPLETED)
    assert not not_done and len(done) == 21
    first_error = concurrent.futures.wait(futures, timeout=10, return_when=concurrent.futures.FIRST_EXCEPTION)
    assert any(f.exception() is not None for f in first_error.done)


def test_futures_work_with_asyncio_wrap_future(executor: ce.Executor) -> None:
    async def main() -> list[Any]:
        wrapped = [asyncio.wrap_future(executor.submit(ce.Command("add", i, i))) for i in range(10)]
        return await asyncio.wait_for(asyncio.gather(*wrapped), timeout=10)

    assert asyncio.run(main()) == [2 * i for i in range(10)]


def test_the_executor_works_with_loop_run_in_executor(executor: ce.Executor) -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        result: int = await asyncio.wait_for(loop.run_in_executor(executor, handlers.add, 2, 40), timeout=10)
        return result

    assert asyncio.run(main()) == 42


def test_an_error_travels_through_asyncio_wrap_future(executor: ce.Executor) -> None:
    async def main() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(executor.submit(ce.Command("fail", "async"))), 10)

    with pytest.raises(handlers.HandlerError, match="async"):
        asyncio.run(main())


# -- timeouts --------------------------------------------------------------------


def test_a_command_past_its_timeout_fails_with_command_timeout(executor: ce.Executor) -> None:
    future = executor.submit(ce.Command("sleep", 0.5, "too late").with_options(timeout=0.1))
    with pytest.raises(ce.CommandTimeout, match=r"exceeded its timeout of 0\.1 s") as info:
        future.result(timeout=10)
    assert isinstance(info.value, TimeoutError)


def test_a_command_within_its_timeout_returns_its_result(executor: ce.Executor) -> None:
    future = executor.submit(ce.Command("sleep", 0.01, "in time").with_options(timeout=5))
    assert future.result(timeout=10) == "in time"


def test_a_timeout_fails_only_its_own_command(executor: ce.Executor) -> None:
    slow = executor.submit(ce.Command("sleep", 0.4).with_options(timeout=0.1))
    fine = [executor.submit(ce.Command("add", i, 1)) for i in range(10)]
    with pytest.raises(ce.CommandTimeout):
        slow.result(timeout=10)
    assert [f.result(timeout=10) for f in fine] == list(range(1, 11))


def test_a_done_callback_runs_once_with_the_future(executor: ce.Executor) -> None:
    future = executor.submit(ce.Command("add", 1, 2))
    called: list[concurrent.futures.Future[Any]] = []
    future.add_done_callback(called.append)
    concurrent.futures.wait([future], timeout=10)
    deadline = time.monotonic() + 5
    while not called and time.monotonic() < deadline:
        time.sleep(0.001)
    assert called == [future]
    late: list[concurrent.futures.Future[Any]] = []
    future.add_done_callback(late.append)  # added after completion: runs at once
    assert late == [future]
