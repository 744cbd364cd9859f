"""Composites beyond the contract: value semantics, wire forms, scale, faults and chaos."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import os
import pickle
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from commandexec.composite import Composite
from commandexec.serialization import get_codec
from tests import composite_handlers
from tests.composite_handlers import Boom
from tests.conftest import make_executor
from tests.contract.test_composites import Gate

C = ce.Command


@pytest.fixture
def registry(registry: ce.Registry) -> ce.Registry:
    return composite_handlers.register(registry)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    directory = tmp_path / "gate"
    directory.mkdir()
    gate = Gate(directory)
    yield gate
    gate.open()


# -- construction and value semantics ---------------------------------------------


def test_a_composite_is_an_immutable_command_with_its_own_id() -> None:
    composite = ce.Sequential(C("add", 1, 2), ce.Parallel(C("square", 3)))
    assert isinstance(composite, ce.Command)
    assert composite.key == "Sequential"
    assert composite.args == () and dict(composite.kwargs) == {}
    assert [child.key for child in composite.children] == ["add", "Parallel"]
    assert composite.id != ce.Sequential().id
    assert (composite.parent_id, composite.root_id, composite.depth) == (None, composite.id, 0)
    with pytest.raises(AttributeError):
        composite.children = ()  # type: ignore[misc]


def test_children_must_be_commands() -> None:
    with pytest.raises(ce.InvalidCommand, match="child 1 of Parallel must be a Command, got 'add'"):
        ce.Parallel(C("add"), "add")  # type: ignore[arg-type]


def test_a_pipeline_needs_a_child_and_collect_all_must_be_a_bool() -> None:
    with pytest.raises(ce.InvalidCommand, match="at least one child"):
        ce.Pipeline()
    with pytest.raises(ce.InvalidCommand, match="collect_all must be True or False"):
        ce.Parallel(collect_all=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="abstract"):
        Composite(C("add"))


def test_derived_copies_keep_the_kind_children_and_collect_all() -> None:
    parent = C("noop")
    composite = ce.Parallel(C("add", 1), collect_all=True)
    for copy in (composite.with_options(timeout=5), composite.caused_by(parent)):
        assert type(copy) is ce.Parallel
        assert copy.children == composite.children and copy.collect_all and copy.id == composite.id
    assert composite.with_options(timeout=5).options.timeout == 5
    assert composite.caused_by(parent).parent_id == parent.id


def test_a_composite_takes_only_the_timeout_option() -> None:
    with pytest.raises(ce.InvalidCommand, match="takes only the 'timeout' option, got retries=2"):
        ce.Sequential().with_options(retries=2)
    with pytest.raises(ce.InvalidCommand, match="did you mean 'timeout'"):
        ce.Sequential().with_options(timout=2)
    assert ce.Sequential().with_options(retries=0).options.retries == 0


def test_equality_and_hash_follow_the_fields() -> None:
    composite = ce.Sequential(C("add", 1), ce.Parallel(C("add", 2), collect_all=True))
    same = pickle.loads(pickle.dumps(composite))
    assert same == composite and hash(same) == hash(composite)
    assert composite.with_options(timeout=1) != composite
    assert composite != C("Sequential")
    assert ce.Parallel(collect_all=True) != ce.Parallel()


def test_repr_is_bounded_for_wide_and_deep_composites() -> None:
    deep: ce.Command = C("add", 1)
    for _ in range(50):
        deep = ce.Parallel(deep, *[C("add", i) for i in range(20)])
    text = repr(deep)
    assert text.startswith("Parallel(Parallel(<21 children>") and "... 17 more" in text
    assert len(text) < 400
    assert repr(ce.Sequential().with_options(timeout=2)).endswith(".with_options(timeout=2)")


# -- wire forms ---------------------------------------------------------------------


def test_to_dict_describes_the_tree_as_json() -> None:
    leaf = C("add", 1, 2)
    inner = ce.Parallel(C("square", 3), collect_all=True)
    composite = ce.Sequential(leaf, inner).with_options(timeout=5)
    assert composite.to_dict() == {
        "composite": "sequential",
        "children": [leaf.to_dict(), {"composite": "parallel", "children": [inner.children[0].to_dict()],
                                      "collect_all": True, "id": inner.id}],
        "id": composite.id,
        "options": {"timeout": 5},
    }  # fmt: skip
    restored = ce.Command.from_dict(json.loads(json.dumps(composite.to_dict())))
    assert type(restored) is ce.Sequential and restored == composite


def test_from_dict_on_a_composite_class_checks_the_kind() -> None:
    data = ce.Sequential(C("add")).to_dict()
    assert type(ce.Sequential.from_dict(data)) is ce.Sequential
    with pytest.raises(ce.InvalidCommand, match=r"Parallel.from_dict\(\) got a Sequential description"):
        ce.Parallel.from_dict(data)
    with pytest.raises(ce.InvalidCommand, match="needs a composite description"):
        ce.Sequential.from_dict(C("add").to_dict())


def test_causation_round_trips_with_the_composite() -> None:
    composite = ce.Pipeline(C("add", 1)).caused_by(C("noop"))
    restored = ce.Command.from_dict(json.loads(json.dumps(composite.to_dict())))
    assert (restored.parent_id, restored.root_id, restored.depth) == (
        composite.parent_id,
        composite.root_id,
        1,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"composite": "serial", "children": []}, "must be one of 'sequential', 'parallel', 'pipeline'"),
        ({"composite": "sequential", "children": {}}, "'children' must be a list, got dict"),
        ({"composite": "sequential", "children": [], "collect_all": True}, "unknown field.*'collect_all'"),
        ({"composite": "parallel", "children": [], "collect_all": "yes"}, "collect_all must be True or False"),
        ({"composite": "pipeline", "children": []}, "at least one child"),
        ({"composite": "sequential", "children": [], "options": {"retries": 1}}, "only the 'timeout' option"),
        ({"composite": "sequential", "children": [], "options": {"timeout": -1}}, "timeout must be a positive"),
        ({"composite": "sequential", "children": [], "depth": 3}, "'depth'"),
        ({"composite": "sequential", "children": [], "id": 7}, "'id'"),
        (
            {
                "composite": "sequential",
                "children": [{"key": "a"}, {"composite": "parallel", "children": [{"key": ""}]}],
            },
            r"composite child \[1, 0\]: command field 'key'",
        ),
        ({"composite": "sequential", "children": [{"composite": "x", "children": []}]}, r"composite child \[0\] field"),
    ],
)
def test_from_dict_rejects_a_malformed_composite_naming_the_place(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ce.InvalidCommand, match=message):
        ce.Command.from_dict(data)


def test_from_dict_refuses_absurd_nesting_with_invalid_command_not_recursion_error() -> None:
    data: dict[str, Any] = {"key": "add"}
    for _ in range(5000):
        data = {"composite": "sequential", "children": [data]}
    with pytest.raises(ce.InvalidCommand, match="nests too deeply"):
        ce.Command.from_dict(data)


@pytest.mark.parametrize("codec", ["json", "pickle"])
def test_a_composite_crosses_each_codec(codec: str) -> None:
    composite = ce.Sequential(C("add", 1, 2), ce.Pipeline(C("add", 1), C("square"))).with_options(timeout=3)
    wire = get_codec(codec)
    assert wire.decode_command(wire.encode_command(composite)) == composite


@pytest.mark.parametrize("strict", ["json", "pickle"])
def test_children_with_causation_survive_a_strict_inline_round_trip(registry: ce.Registry, strict: str) -> None:
    # Each child travels (through the codec) with parent_id/root_id/depth filled in.
    with ce.InlineExecutor(registry=registry, strict=strict) as executor:
        composite = ce.Sequential(C("whoami"), ce.Parallel(C("whoami")))
        first, [second] = executor.submit(composite).result(timeout=5)
    assert (first["parent_id"], first["depth"]) == (composite.id, 1)
    assert (second["root_id"], second["depth"]) == (composite.id, 2)


def test_submitting_a_composite_leaves_it_unchanged_and_it_can_run_twice(registry: ce.Registry) -> None:
    composite = ce.Sequential(C("add", 1, 2), ce.Parallel(C("square", 2)))
    before = pickle.dumps(composite)
    with ce.ThreadExecutor(2, registry=registry) as executor:
        futures = [executor.submit(composite) for _ in range(2)]
        assert [f.result(timeout=5) for f in futures] == [[3, [4]], [3, [4]]]
    assert pickle.dumps(composite) == before
    assert composite._link is None


# -- scale: no recursion, no deadlock ---------------------------------------------------


def nested_parallels(levels: int = 20, width: int = 50) -> tuple[ce.Command, list[Any]]:
    """A chain of *levels* nested Parallels, each with *width* leaves and the next level last.

    20 x 50 = 1,000 leaves, 20 levels deep: [leaves of level 0..., [leaves of level 1..., [...]]].
    """
    composite: ce.Command | None = None
    expected: list[Any] | None = None
    for level in reversed(range(levels)):
        leaves = [C("add", level, i) for i in range(width)]
        composite = ce.Parallel(*leaves, *([composite] if composite is not None else []))
        expected = [level + i for i in range(width)] + ([expected] if expected is not None else [])
    assert composite is not None and expected is not None
    return composite, expected


def long_pipeline(steps: int) -> ce.Command:
    return ce.Pipeline(C("add", 0, 1), *[C("add", b=1)] * (steps - 1))


@pytest.mark.time_limit(90)
@pytest.mark.parametrize(
    "make",
    [
        lambda r: ce.InlineExecutor(registry=r),
        lambda r: ce.ThreadExecutor(max_workers=1, registry=r),
        lambda r: ce.ProcessExecutor(max_workers=2, registry=r),
    ],
    ids=["inline", "threads-1-worker", "processes-2-workers"],
)
def test_deep_and_wide_composites_complete_on_a_tiny_pool(
    registry: ce.Registry, make: Callable[[ce.Registry], ce.Executor]
) -> None:
    composite, expected = nested_parallels(levels=20, width=50)
    with make(registry) as executor:
        wide = executor.submit(composite)
        long = executor.submit(long_pipeline(1000))
        sequence = executor.submit(ce.Sequential(*[C("add", i, 1) for i in range(1000)]))
        assert wide.result(timeout=60) == expected
        assert long.result(timeout=60) == 1000
        assert sequence.result(timeout=60) == list(range(1, 1001))


def test_inline_orchestration_uses_a_fixed_stack_however_long_or_deep(registry: ce.Registry) -> None:
    deep: ce.Command = C("add", 0, 1)
    for level in range(2000):
        deep = [ce.Sequential, ce.Pipeline, ce.Parallel][level % 3](deep)
    with ce.InlineExecutor(registry=registry) as executor:
        assert executor.submit(long_pipeline(20_000)).result(timeout=0) == 20_000
        result = executor.submit(deep).result(timeout=0)
        with pytest.raises(ExceptionGroup):
            executor.submit(ce.Sequential(deep, ce.Parallel(C("boom")))).result(timeout=0)
    depth = 0
    while isinstance(result, list):
        (result,) = result
        depth += 1
    assert (result, depth) == (1, sum(level % 3 != 1 for level in range(2000)))


# -- faults ----------------------------------------------------------------------------


def test_a_worker_killed_mid_child_fails_the_composite_with_worker_lost(registry: ce.Registry, tmp_path: Path) -> None:
    with ce.ProcessExecutor(max_workers=2, registry=registry) as executor:
        composite = ce.Sequential(C("add", 1, 1), C("die"), C("touch", str(tmp_path / "after")))
        with pytest.raises(ce.WorkerLost) as info:
            executor.submit(composite).result(timeout=20)
        assert info.value.__notes__ == ["in child [1] 'die' of Sequential"]
        assert info.value.partial_results == {(0,): 2}  # type: ignore[attr-defined]
        assert executor.submit(ce.Parallel(C("add", 2, 2))).result(timeout=20) == [4]
    assert not (tmp_path / "after").exists()


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_shutdown_mid_composite_fails_it_with_runtime_error_at_the_next_child(
    kind: str, registry: ce.Registry, gate: Gate, tmp_path: Path
) -> None:
    executor = make_executor(kind, registry)
    try:
        future = executor.submit(ce.Sequential(gate.command("first"), C("touch", str(tmp_path / "second"))))
        gate.wait_started(1)
        executor.shutdown(wait=False)
        gate.open()
        with pytest.raises(RuntimeError, match="after shutdown") as info:
            future.result(timeout=10)
        assert info.value.__notes__ == ["in child [1] 'touch' of Sequential"]
        assert info.value.partial_results == {(0,): "first"}  # type: ignore[attr-defined]
    finally:
        executor.shutdown(wait=True)
    assert not (tmp_path / "second").exists()


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_shutdown_cancelling_a_pending_child_cancels_its_composite(
    kind: str, registry: ce.Registry, gate: Gate
) -> None:
    executor = make_executor(kind, registry)
    try:
        busy = [gate.command(i) for i in range(executor.max_workers)]  # type: ignore[attr-defined]
        outer = executor.submit(ce.Sequential(ce.Parallel(*busy, C("add", 1, 1)), C("add", 2, 2)))
        gate.wait_started(len(busy))
        executor.shutdown(wait=False, cancel_futures=True)
        assert outer.cancelled()
        gate.open()
    finally:
        executor.shutdown(wait=True)


def test_a_keyboard_interrupt_in_an_inline_child_reaches_the_caller(registry: ce.Registry, tmp_path: Path) -> None:
    with ce.InlineExecutor(registry=registry) as executor:
        composite = ce.Sequential(C("add", 1), ce.Pipeline(C("interrupt")), C("touch", str(tmp_path / "after")))
        with pytest.raises(KeyboardInterrupt):
            executor.submit(composite)
        assert executor.submit(ce.Sequential(C("add", 1, 1))).result(timeout=0) == [2]
    assert not (tmp_path / "after").exists()


def test_a_composite_timeout_on_a_nested_composite_is_noted_with_its_path(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(2, registry=registry) as executor:
        inner = ce.Sequential(C("sleep", 0.5)).with_options(timeout=0.05)
        with pytest.raises(ExceptionGroup) as info:
            executor.submit(ce.Parallel(C("add", 1, 1), inner)).result(timeout=10)
    (error,) = info.value.exceptions
    assert isinstance(error, ce.CommandTimeout)
    assert error.__notes__ == ["in child [1] 'Sequential' of Parallel"]


class _UnstartableContext:
    """A multiprocessing context whose processes fail to start, as when fork() meets EAGAIN."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("forkserver")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def Process(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError(11, "Resource temporarily unavailable")


def test_a_composite_on_a_process_executor_whose_workers_cannot_start_fails_instead_of_hanging(
    registry: ce.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The manager logs its failure with the traceback, which holds the queues of the
    # worker that never started; pytest keeps log records to the end of the test, so
    # their pipes would count as leaked (_start_worker could close them when it fails).
    monkeypatch.setattr(logging.getLogger("commandexec"), "disabled", True)
    executor = ce.ProcessExecutor(1, mp_context=_UnstartableContext(), registry=registry)
    try:
        plain = executor.submit(C("add", 1, 2))
        composite = executor.submit(ce.Sequential(C("add", 1, 2)))
        done, _ = concurrent.futures.wait([plain, composite], timeout=10)
        assert len(done) == 2
        assert isinstance(composite.exception(), ce.BrokenExecutor)
    finally:
        executor.shutdown(wait=True)


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_wait_sees_a_future_cancelled_by_shutdown_as_done(kind: str, registry: ce.Registry, gate: Gate) -> None:
    executor = make_executor(kind, registry, max_workers=1)
    try:
        executor.submit(gate.command())
        gate.wait_started(1)
        queued = executor.submit(C("add", 1, 1))
        executor.shutdown(wait=False, cancel_futures=True)
        assert queued.cancelled()
        done, _ = concurrent.futures.wait([queued], timeout=1)
        assert queued in done
    finally:
        gate.open()
        executor.shutdown(wait=True)


def test_a_timeout_firing_while_the_manager_dispatches_is_still_handled(registry: ce.Registry) -> None:
    executor = ce.ProcessExecutor(max_workers=1, registry=registry)
    dispatch = executor._dispatch
    try:
        timed = executor.submit(C("sleep", 1.0, "late").with_options(timeout=0.1))
        deadline = time.monotonic() + 10
        while not (executor._workers and executor._workers[0].timing is not None):
            assert time.monotonic() < deadline, "the timed command was never dispatched"
            time.sleep(0.005)
        calls = iter([True])

        def slow_once() -> bool:  # stands for a busy manager: the timer fires meanwhile
            if next(calls, False):
                time.sleep(0.3)
            return dispatch()

        executor._dispatch = slow_once  # type: ignore[method-assign]
        after = executor.submit(C("add", 1, 1))  # wakes the manager into slow_once
        with pytest.raises(ce.CommandTimeout):
            timed.result(timeout=3)
        assert after.result(timeout=10) == 2
    finally:
        executor._expired.clear()  # unblock a spinning manager, so shutdown can finish
        executor.shutdown(wait=True)


# -- chaos: random composites, random faults; every future completes ---------------------


CHAOS_SEED = int(os.environ.get("COMMANDEXEC_CHAOS_SEED", "20261122"))
"""Round *n* of each kind uses seed ``CHAOS_SEED + n``; set the variable to explore other runs."""
CHAOS_BOUND = 20.0
"""Seconds within which every composite future of a round must complete."""

_ALLOWED_ERRORS = (Boom, ce.WorkerLost, ce.CommandTimeout, RuntimeError)


def random_composite(rng: random.Random, depth: int, deadly: bool, timed_leaves: bool = True) -> ce.Command:
    if depth == 0 or rng.random() < 0.3:
        roll = rng.random()
        if roll < 0.45:
            return C("ok")
        if roll < 0.7:
            return C("nap", seconds=rng.choice([0.0, 0.002, 0.01, 0.03]))
        if roll < 0.75 and deadly:
            return C("die")
        if roll < 0.93 or not timed_leaves:
            return C("boom")
        return C("nap", seconds=0.05).with_options(timeout=0.01)
    kind = rng.choice([ce.Sequential, ce.Parallel, ce.Pipeline])
    children = [
        random_composite(rng, depth - 1, deadly, timed_leaves) for _ in range(rng.randint(kind is ce.Pipeline, 4))
    ]
    composite = ce.Parallel(*children, collect_all=rng.random() < 0.5) if kind is ce.Parallel else kind(*children)
    if rng.random() < 0.15:
        composite = composite.with_options(timeout=rng.uniform(0.01, 0.2))
    return composite


def check_error(error: BaseException | None, seed: int) -> None:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            check_error(inner, seed)
    elif error is not None:
        assert isinstance(error, _ALLOWED_ERRORS), f"seed {seed}: unexpected {error!r}"


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("kind", ["inline", "threads", "processes"])
def test_random_composites_with_faults_always_complete(kind: str, registry: ce.Registry) -> None:
    budget = {"inline": 3.0, "threads": 6.0, "processes": 10.0}[kind]
    end = time.monotonic() + budget
    rounds = 0
    while time.monotonic() < end:
        seed = CHAOS_SEED + rounds
        rounds += 1
        rng = random.Random(seed)
        options = {} if kind == "inline" else {"max_workers": rng.randint(1, 3)}
        executor = make_executor(kind, registry, **options)
        children: list[concurrent.futures.Future[Any]] = []
        submit_leaf = executor._submit

        def recording(command: ce.Command, submit_leaf: Any = submit_leaf, children: Any = children) -> Any:
            future = submit_leaf(command)
            children.append(future)
            return future

        executor._submit = recording  # type: ignore[method-assign]
        futures: list[concurrent.futures.Future[Any]] = []
        try:
            for _ in range(rng.randint(1, 6)):
                # No timed leaves on processes: test_a_timeout_firing_while_the_manager_dispatches_is_still_handled.
                composite = random_composite(rng, 3, deadly=kind == "processes", timed_leaves=kind != "processes")
                if not isinstance(composite, Composite):
                    composite = ce.Sequential(composite)  # a plain future would meet gh-109934, below
                try:
                    futures.append(executor.submit(composite))
                except RuntimeError:
                    break  # shut down below, in an earlier iteration
                roll = rng.random()
                if roll < 0.2:
                    rng.choice(futures).cancel()
                elif roll < 0.35:
                    time.sleep(rng.uniform(0, 0.02))
                elif roll < 0.42:
                    executor.shutdown(wait=False, cancel_futures=rng.random() < 0.5)
            time.sleep(rng.uniform(0, 0.03))
            for future in futures:
                if rng.random() < 0.15:
                    future.cancel()
            if rng.random() < 0.2:
                executor.shutdown(wait=False, cancel_futures=rng.random() < 0.5)
            _, pending = concurrent.futures.wait(futures, timeout=CHAOS_BOUND)
            assert not pending, f"seed {seed}: {len(pending)} composite futures still pending"
        finally:
            executor.shutdown(wait=True)
        assert all(f.done() for f in children), f"seed {seed}: a child future was left pending"
        for future in futures:
            if not future.cancelled():
                check_error(future.exception(), seed)
    assert rounds >= 3
