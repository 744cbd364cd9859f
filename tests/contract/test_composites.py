"""The composite contract: Sequential, Parallel and Pipeline behave the same on every executor kind.

These tests use only the ``executor`` fixture, handlers from tests/handlers.py
and tests/composite_handlers.py (registered here, before any worker starts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from tests import composite_handlers, handlers
from tests.composite_handlers import Boom
from tests.contract.test_contract import Gate, capacity, concurrent_kind

C = ce.Command


@pytest.fixture(autouse=True)
def _composite_handlers(registry: ce.Registry) -> None:
    composite_handlers.register(registry)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    directory = tmp_path / "gate"
    directory.mkdir()
    gate = Gate(directory)
    yield gate
    gate.open()  # never leave a worker blocked


def touch(tmp_path: Path, name: str, result: Any = None) -> ce.Command:
    return C("touch", str(tmp_path / name), result)


def ran(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.is_file())


# -- results -------------------------------------------------------------------


def test_a_sequential_returns_its_children_results_in_order(executor: ce.Executor) -> None:
    future = executor.submit(ce.Sequential(C("add", 1, 2), C("square", 4), C("echo", "x")))
    assert isinstance(future, concurrent.futures.Future)
    assert future.result(timeout=10) == [3, 16, {"args": ["x"], "kwargs": {}}]


def test_a_parallel_returns_results_in_child_order_not_completion_order(executor: ce.Executor) -> None:
    children = [C("sleep", delay, i) for i, delay in enumerate([0.2, 0.0, 0.1, 0.0])]
    assert executor.submit(ce.Parallel(*children)).result(timeout=10) == [0, 1, 2, 3]


def test_a_pipeline_passes_each_result_as_the_first_argument_of_the_next(executor: ce.Executor) -> None:
    pipeline = ce.Pipeline(C("concat", "a", "b"), C("concat", "c"), C("echo", 1, k="v"))
    assert executor.submit(pipeline).result(timeout=10) == {"args": ["abc", 1], "kwargs": {"k": "v"}}


def test_a_pipeline_of_one_child_returns_its_result(executor: ce.Executor) -> None:
    assert executor.submit(ce.Pipeline(C("add", 2, 3))).result(timeout=10) == 5


def test_empty_sequential_and_parallel_return_empty_lists(executor: ce.Executor) -> None:
    assert executor.submit(ce.Sequential()).result(timeout=10) == []
    assert executor.submit(ce.Parallel()).result(timeout=10) == []


def test_composites_nest_and_each_level_returns_its_own_shape(executor: ce.Executor) -> None:
    composite = ce.Sequential(
        C("add", 1, 1),
        ce.Parallel(C("square", 3), ce.Pipeline(C("add", 1, 1), C("square")), ce.Sequential()),
        C("add", 5),
    )
    assert executor.submit(composite).result(timeout=10) == [2, [9, 4, []], 5]


def test_a_value_piped_into_a_composite_reaches_each_branch(executor: ce.Executor) -> None:
    # Parallel and Sequential hand it to every child, a Pipeline to its first.
    fan_out = ce.Pipeline(
        C("add", 1, 2),
        ce.Parallel(C("square"), C("add", b=10), ce.Pipeline(C("add", b=1), C("square"))),
    )
    assert executor.submit(fan_out).result(timeout=10) == [9, 13, 16]
    assert executor.submit(ce.Pipeline(C("concat", "x"), ce.Sequential(C("concat", "1"), C("concat", "2")))).result(
        timeout=10
    ) == ["x1", "x2"]


def test_a_deeply_nested_composite_completes(executor: ce.Executor) -> None:
    composite: ce.Command = C("add", 0, 1)
    for level in range(30):
        composite = [ce.Sequential, ce.Parallel, ce.Pipeline][level % 3](composite)
    result = executor.submit(composite).result(timeout=20)
    for _ in range(20):  # unwrap the list levels (a Pipeline returns its child's result as is)
        if isinstance(result, list):
            (result,) = result
    assert result == 1


def test_a_composite_round_tripped_through_json_and_pickle_runs_the_same(executor: ce.Executor) -> None:
    composite = ce.Sequential(C("add", 1, 2), ce.Parallel(C("square", 3), collect_all=True)).with_options(timeout=30)
    restored = [
        ce.Command.from_dict(json.loads(json.dumps(composite.to_dict()))),
        pickle.loads(pickle.dumps(composite)),
    ]
    assert restored == [composite, composite]
    assert [executor.submit(c).result(timeout=10) for c in restored] == [[3, [9]], [3, [9]]]


def test_children_run_with_causation_pointing_at_their_composite(executor: ce.Executor) -> None:
    inner = ce.Parallel(C("whoami"))
    outer = ce.Sequential(C("whoami"), inner)
    first, [second] = executor.submit(outer).result(timeout=10)
    assert (first["parent_id"], first["root_id"], first["depth"]) == (outer.id, outer.id, 1)
    assert (second["parent_id"], second["root_id"], second["depth"]) == (inner.id, outer.id, 2)


# -- failure -------------------------------------------------------------------


def test_a_sequential_stops_at_the_first_failure_and_raises_that_error(executor: ce.Executor, tmp_path: Path) -> None:
    composite = ce.Sequential(touch(tmp_path, "a", 1), C("fail", "broken"), touch(tmp_path, "c"))
    with pytest.raises(handlers.HandlerError, match="broken") as info:
        executor.submit(composite).result(timeout=10)
    assert info.value.__notes__ == ["in child [1] 'fail' of Sequential"]
    assert info.value.partial_results == {(0,): 1}  # type: ignore[attr-defined]
    assert ran(tmp_path) == ["a"]


def test_a_pipeline_failure_names_the_step_and_keeps_earlier_results(executor: ce.Executor) -> None:
    pipeline = ce.Pipeline(C("add", 1, 2), C("square"), C("fail_value"), C("square"))
    with pytest.raises(ValueError) as info:
        executor.submit(pipeline).result(timeout=10)
    assert info.value.__notes__ == ["in child [2] 'fail_value' of Pipeline"]
    assert info.value.partial_results == {(0,): 3, (1,): 9}  # type: ignore[attr-defined]


def test_a_nested_failure_note_gives_the_index_path_from_the_outermost_composite(executor: ce.Executor) -> None:
    composite = ce.Sequential(C("add", 1, 1), ce.Sequential(C("fail", "deep"), C("add", 1)))
    with pytest.raises(handlers.HandlerError) as info:
        executor.submit(composite).result(timeout=10)
    assert info.value.__notes__ == ["in child [1, 0] 'fail' of Sequential"]
    assert info.value.partial_results == {(0,): 2}  # type: ignore[attr-defined]


def test_an_unknown_key_in_a_child_fails_the_composite_with_a_note(executor: ce.Executor) -> None:
    with pytest.raises(ce.UnknownCommand, match="did you mean 'square'") as info:
        executor.submit(ce.Sequential(C("add", 1, 1), C("squares", 2))).result(timeout=10)
    assert info.value.__notes__ == ["in child [1] 'squares' of Sequential"]


def test_a_parallel_failure_raises_an_exception_group_with_noted_errors(executor: ce.Executor) -> None:
    composite = ce.Sequential(C("add", 1, 1), ce.Parallel(C("add", 2, 2), C("fail", "in group")))
    with pytest.raises(ExceptionGroup) as info:
        executor.submit(composite).result(timeout=10)
    group = info.value
    (error,) = group.exceptions
    assert isinstance(error, handlers.HandlerError)
    assert error.__notes__ == ["in child [1, 1] 'fail' of Sequential"]
    assert group.partial_results[(0,)] == 2  # type: ignore[attr-defined]


def test_a_parallel_cancels_its_pending_siblings_on_the_first_failure(
    executor: ce.Executor, gate: Gate, tmp_path: Path
) -> None:
    busy = capacity(executor) - 1 if concurrent_kind(executor) else 0
    failing = C("fail_when_started", str(gate.directory), busy, "first")
    gated = [gate.command(i) for i in range(busy)]
    later = [touch(tmp_path, f"later-{i}") for i in range(5)]
    future = executor.submit(ce.Parallel(failing, *gated, *later))
    with pytest.raises(ExceptionGroup) as info:
        future.result(timeout=10)
    assert [type(e) for e in info.value.exceptions] == [Boom]
    assert info.value.exceptions[0].__notes__ == ["in child [0] 'fail_when_started' of Parallel"]
    gate.open()
    executor.shutdown(wait=True)
    assert not [name for name in ran(tmp_path) if name.startswith("later")]


def test_a_parallel_with_collect_all_runs_every_child_and_groups_every_failure(
    executor: ce.Executor, tmp_path: Path
) -> None:
    composite = ce.Parallel(
        C("fail", "one"), touch(tmp_path, "b", "b"), C("fail_value", "two"), touch(tmp_path, "d", "d"), collect_all=True
    )
    with pytest.raises(ExceptionGroup) as info:
        executor.submit(composite).result(timeout=10)
    group = info.value
    assert [str(e) for e in group.exceptions] == ["one", "two"]
    assert [e.__notes__ for e in group.exceptions] == [
        ["in child [0] 'fail' of Parallel"],
        ["in child [2] 'fail_value' of Parallel"],
    ]
    assert "2 of 4 children of Parallel failed" in str(group)
    assert group.partial_results == {(1,): "b", (3,): "d"}  # type: ignore[attr-defined]
    assert ran(tmp_path) == ["b", "d"]


def test_a_child_timeout_fails_the_composite_with_command_timeout(executor: ce.Executor) -> None:
    composite = ce.Sequential(C("add", 1, 1), C("sleep", 0.5).with_options(timeout=0.1))
    with pytest.raises(ce.CommandTimeout) as info:
        executor.submit(composite).result(timeout=10)
    assert info.value.__notes__ == ["in child [1] 'sleep' of Sequential"]


def test_a_composite_timeout_fails_it_and_cancels_what_is_left(
    executor: ce.Executor, gate: Gate, tmp_path: Path
) -> None:
    # On a concurrent kind the first child holds until the gate opens, so the
    # composite can only fail by its own timeout; inline notices it when the child returns.
    first = gate.command("first") if concurrent_kind(executor) else C("sleep", 0.3)
    future = executor.submit(ce.Sequential(first, touch(tmp_path, "late")).with_options(timeout=0.1))
    with pytest.raises(ce.CommandTimeout, match=r"exceeded its timeout of 0\.1 s") as info:
        future.result(timeout=10)
    assert info.value.partial_results == {}  # type: ignore[attr-defined]
    gate.open()
    executor.shutdown(wait=True)
    assert ran(tmp_path) == []


def test_a_composite_within_its_timeout_returns_its_result(executor: ce.Executor) -> None:
    composite = ce.Parallel(C("add", 1, 1), C("sleep", 0.01, "ok")).with_options(timeout=10)
    assert executor.submit(composite).result(timeout=10) == [2, "ok"]


# -- cancellation -----------------------------------------------------------------


def test_cancelling_a_sequential_cancels_its_pending_children(
    executor: ce.Executor, gate: Gate, tmp_path: Path
) -> None:
    if not concurrent_kind(executor):
        pytest.skip("an inline composite is done when submit returns")
    future = executor.submit(ce.Sequential(gate.command("first"), touch(tmp_path, "second")))
    gate.wait_started(1)
    assert not future.running()  # a composite's future stays cancellable while its children run
    assert future.cancel()
    assert future.cancelled()
    done, _ = concurrent.futures.wait([future], timeout=5)  # wait() and as_completed() see it at once
    assert future in done
    assert list(concurrent.futures.as_completed([future], timeout=5)) == [future]
    gate.open()
    executor.shutdown(wait=True)
    assert ran(tmp_path) == []


def test_cancelling_a_parallel_cancels_its_pending_children_and_nested_ones(
    executor: ce.Executor, gate: Gate, tmp_path: Path
) -> None:
    if not concurrent_kind(executor):
        pytest.skip("an inline composite is done when submit returns")
    busy = [gate.command(i) for i in range(capacity(executor))]
    nested = ce.Sequential(touch(tmp_path, "nested-0"), touch(tmp_path, "nested-1"))
    future = executor.submit(ce.Parallel(*busy, touch(tmp_path, "pending"), nested))
    gate.wait_started(len(busy))
    assert future.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(timeout=10)
    gate.open()
    executor.shutdown(wait=True)
    assert ran(tmp_path) == []


# -- futures interoperate ------------------------------------------------------------


def test_composite_futures_work_with_as_completed_and_wait(executor: ce.Executor) -> None:
    futures = {executor.submit(ce.Parallel(C("square", i), C("add", i, 1))): i for i in range(10)}
    seen = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures, timeout=10)}
    assert seen == {i: [i * i, i + 1] for i in range(10)}
    failing = executor.submit(ce.Sequential(C("sleep", 0.05), C("fail")))
    done, not_done = concurrent.futures.wait(
        [*futures, failing], timeout=10, return_when=concurrent.futures.FIRST_EXCEPTION
    )
    assert failing in done or not not_done
    concurrent.futures.wait([failing], timeout=10)
    assert isinstance(failing.exception(timeout=0), handlers.HandlerError)


def test_a_composite_future_works_with_asyncio_wrap_future(executor: ce.Executor) -> None:
    async def main() -> Any:
        future = executor.submit(ce.Pipeline(C("add", 1, 2), C("square")))
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout=10)

    assert asyncio.run(main()) == 9


def test_a_done_callback_on_a_composite_runs_once(executor: ce.Executor) -> None:
    called: list[concurrent.futures.Future[Any]] = []
    future = executor.submit(ce.Sequential(C("add", 1, 2)))
    future.add_done_callback(called.append)
    concurrent.futures.wait([future], timeout=10)
    deadline = time.monotonic() + 5
    while not called and time.monotonic() < deadline:
        time.sleep(0.001)
    assert called == [future]


def test_submitting_a_composite_after_shutdown_raises_runtime_error(executor: ce.Executor) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(ce.Sequential(C("add", 1, 2)))


# -- events ----------------------------------------------------------------------------


def test_a_composite_publishes_its_lifecycle_and_its_children_point_at_it(executor: ce.Executor) -> None:
    seen: list[ce.Event] = []
    lock = threading.Lock()

    def record(event: ce.Event) -> None:
        with lock:
            seen.append(event)

    executor.events.subscribe("command.*", record)
    good, bad = ce.Sequential(C("add", 1, 2)), ce.Parallel(C("fail"))
    assert executor.submit(good).result(timeout=10) == [3]
    with pytest.raises(ExceptionGroup):
        executor.submit(bad).result(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(e.name.endswith(("succeeded", "failed")) for e in seen) < 4:
        time.sleep(0.005)
    with lock:
        assert [e.name for e in seen if e.command_id == good.id] == ["command.submitted", "command.succeeded"]
        assert [e.name for e in seen if e.command_id == bad.id] == ["command.submitted", "command.failed"]
        children = [e for e in seen if e.parent_id == good.id]
        assert {e.name for e in children} >= {"command.submitted", "command.succeeded"}
        assert all(e.root_id == good.id for e in children)
