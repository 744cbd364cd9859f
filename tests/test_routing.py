"""RoutedExecutor: each command, composite child and follow-up runs where its key is routed."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from commandexec.command import Options
from commandexec.config import from_config
from commandexec.executors.routed import RoutedExecutor
from tests import handlers
from tests.contract.test_events import Recorder


def where(x: Any = None) -> tuple[Any, int, str]:
    """Where a command ran: (x, process id, thread name). Module-level: it crosses processes."""
    return x, os.getpid(), threading.current_thread().name


def announce(x: Any) -> Any:
    ce.emit("thing.done", x=x)
    return x


@pytest.fixture
def registry(registry: ce.Registry) -> ce.Registry:
    for key in ("cpu.where", "io.where", "here.where", "where"):
        registry.register(key, where)
    registry.register("announce", announce)
    return registry


@pytest.fixture
def routed(registry: ce.Registry) -> Iterator[RoutedExecutor]:
    """cpu.* -> 2 processes, io.* and announce -> threads named io_N, the rest inline."""
    bus = ce.EventBus()
    cpu = ce.ProcessExecutor(max_workers=2, registry=registry, events=bus)
    io = ce.ThreadExecutor(max_workers=2, thread_name_prefix="io", registry=registry, events=bus)
    here = ce.InlineExecutor(registry=registry, events=bus)
    with RoutedExecutor({"cpu.*": cpu, "io.*": io, "announce": io}, default=here, close_events=True) as executor:
        yield executor


ME = os.getpid()


def test_each_command_runs_on_the_executor_its_key_routes_to(routed: RoutedExecutor) -> None:
    cpu = routed.submit(ce.Command("cpu.where", 1)).result(timeout=20)
    io = routed.submit(ce.Command("io.where", 2)).result(timeout=10)
    rest = routed.submit(ce.Command("where", 3)).result(timeout=10)
    assert cpu[1] != ME
    assert io[1] == ME and io[2].startswith("io_")
    assert rest == (3, ME, threading.current_thread().name)


def test_the_first_matching_route_wins_and_route_names_the_target(registry: ce.Registry) -> None:
    bus = ce.EventBus()
    a = ce.InlineExecutor(registry=registry, events=bus)
    b = ce.InlineExecutor(registry=registry, events=bus)
    c = ce.InlineExecutor(registry=registry, events=bus)
    with RoutedExecutor([("img.resize", a), ("img.*", b), ("im?.x[0-9]", a)], default=c) as routed:
        assert routed.route("img.resize") is a
        assert routed.route("img.crop") is b
        assert routed.route("imx.x7") is a
        assert routed.route("image") is c
        assert routed.executors == (c, a, b)
        assert routed.default is c
        assert [p for p, _ in routed.routes] == ["img.resize", "img.*", "im?.x[0-9]"]


def test_plain_callables_go_to_the_default_route(routed: RoutedExecutor) -> None:
    assert routed.submit(where, "x").result(timeout=10) == ("x", ME, threading.current_thread().name)


def test_every_child_of_a_composite_is_routed_by_its_own_key(routed: RoutedExecutor) -> None:
    # Given a composite mixing keys of every route, nested
    work = ce.Parallel(
        ce.Command("cpu.where", 1),
        ce.Sequential(ce.Command("io.where", 2), ce.Pipeline(ce.Command("where", 3), ce.Command("cpu.where"))),
    )
    # When it runs on the routed executor
    first, (second, third) = routed.submit(work).result(timeout=20)
    # Then each child ran where its key is routed
    assert first[1] != ME
    assert second[1] == ME and second[2].startswith("io_")
    assert third[0] == (3, ME, threading.current_thread().name)  # the inline result, piped on...
    assert third[1] != ME  # ...into a worker process


def test_follow_ups_are_routed_by_key_not_run_where_their_cause_ran(routed: RoutedExecutor) -> None:
    # Given an observer answering an event from a thread-routed command with a cpu-routed command
    seen = Recorder()
    routed.events.subscribe("thing.done", lambda e: ce.Command("cpu.where", e.payload["x"]))
    routed.events.subscribe("command.succeeded", seen)
    # When the cause runs and the cascade drains
    future = routed.submit(ce.Command("announce", 7))
    assert future.result(timeout=10) == 7
    routed.drain(timeout=20)
    # Then the follow-up ran in a worker process
    (follow_up,) = [r for r in seen.results() if isinstance(r, tuple)]
    assert follow_up[0] == 7 and follow_up[1] != ME


def test_wait_cascade_waits_for_follow_ups_on_other_routes(routed: RoutedExecutor) -> None:
    # Given a thread-routed root whose event is answered by a process-routed follow-up
    seen = Recorder()
    routed.events.subscribe("thing.done", lambda e: ce.Command("cpu.where", "follow-up"))
    routed.events.subscribe("command.succeeded", seen)
    # When we wait for the root's cascade
    future = routed.submit(ce.Command("announce", "root"))
    routed.wait_cascade(future, timeout=20)
    # Then the follow-up has finished too
    assert any(isinstance(r, tuple) and r[0] == "follow-up" for r in seen.results())


def test_coroutine_observers_follow_ups_are_routed_and_drained(routed: RoutedExecutor) -> None:
    seen = Recorder()

    async def answer(event: ce.Event) -> ce.Command:
        return ce.Command("cpu.where", event.payload["x"])

    routed.events.subscribe("thing.done", answer)
    routed.events.subscribe("command.succeeded", seen)
    routed.submit(ce.Command("announce", 5)).result(timeout=10)
    routed.drain(timeout=20)
    assert any(isinstance(r, tuple) and r[0] == 5 and r[1] != ME for r in seen.results())


def test_lifecycle_events_are_published_once_per_command(routed: RoutedExecutor) -> None:
    seen = Recorder()
    routed.events.subscribe("command.*", seen)
    routed.submit(ce.Command("io.where", 1)).result(timeout=10)
    routed.drain(timeout=10)
    names = [e.name for e in seen.events]
    assert names.count("command.submitted") == 1
    assert names.count("command.succeeded") == 1


def test_map_runs_on_the_route_of_its_key_also_in_chunks(routed: RoutedExecutor) -> None:
    assert [r[0] for r in routed.map("io.where", range(5), timeout=20)] == [0, 1, 2, 3, 4]
    chunked = list(routed.map("cpu.where", range(7), chunksize=3, timeout=20))
    assert [r[0] for r in chunked] == list(range(7))
    assert all(r[1] != ME for r in chunked)


def test_retries_work_across_routes(routed: RoutedExecutor, tmp_path: Path, registry: ce.Registry) -> None:
    # flaky is unrouted: it runs inline, and is retried there
    command = ce.Command("flaky", str(tmp_path / "count"), 2).with_options(retries=2, retry_backoff=0.01)
    assert routed.submit(command).result(timeout=10) == "ok"


def test_futures_work_with_as_completed(routed: RoutedExecutor) -> None:
    futures = [routed.submit(ce.Command(key, i)) for i, key in enumerate(["cpu.where", "io.where", "where"])]
    done = {f.result()[0] for f in concurrent.futures.as_completed(futures, timeout=20)}
    assert done == {0, 1, 2}


def test_shutdown_reaches_every_route(registry: ce.Registry) -> None:
    bus = ce.EventBus()
    io = ce.ThreadExecutor(max_workers=1, registry=registry, events=bus)
    here = ce.InlineExecutor(registry=registry, events=bus)
    routed = RoutedExecutor({"wait_event": io, "add": io}, default=here)
    name = f"routing-{time.monotonic()}"
    gate = handlers.gate(name)
    # Given one command running and three queued behind it on the thread route
    running = routed.submit(ce.Command("wait_event", name))
    queued = [routed.submit(ce.Command("add", i)) for i in range(3)]
    # When the routed executor shuts down, cancelling what has not started
    routed.shutdown(wait=False, cancel_futures=True)
    # Then the queued commands are cancelled, and nothing more is accepted anywhere
    assert all(f.cancelled() for f in queued)
    for executor in (routed, io, here):
        with pytest.raises(RuntimeError):
            executor.submit(ce.Command("add", 1))
    gate.set()
    assert running.result(timeout=10) is True
    routed.shutdown(wait=True)


def test_a_composite_submitted_after_shutdown_is_refused(routed: RoutedExecutor) -> None:
    routed.shutdown()
    with pytest.raises(RuntimeError):
        routed.submit(ce.Sequential(ce.Command("where")))


def test_command_defaults_apply_to_commands_that_set_no_options(registry: ce.Registry, tmp_path: Path) -> None:
    here = ce.InlineExecutor(registry=registry)
    defaults = Options(retries=2, retry_backoff=0.01)
    with RoutedExecutor({}, default=here, command_defaults=defaults) as routed:
        # A command without options gets the defaults: it is retried
        assert routed.submit(ce.Command("flaky", str(tmp_path / "a"), 2)).result(timeout=10) == "ok"
        # So do keys, plain callables, and composite children
        assert routed.submit("flaky", str(tmp_path / "b"), 1).result(timeout=10) == "ok"
        assert routed.submit(handlers.flaky, str(tmp_path / "c"), 1).result(timeout=10) == "ok"
        work = ce.Sequential(ce.Command("flaky", str(tmp_path / "d"), 1))
        assert routed.submit(work).result(timeout=10) == ["ok"]
        # A command that sets any option keeps its own: no retries here
        own = ce.Command("flaky", str(tmp_path / "e"), 1).with_options(timeout=10)
        with pytest.raises(ValueError, match="call 1 fails"):
            routed.submit(own).result(timeout=10)


def test_routed_executors_must_share_one_event_bus(registry: ce.Registry) -> None:
    a = ce.InlineExecutor(registry=registry)
    b = ce.InlineExecutor(registry=registry)
    with pytest.raises(ValueError, match="share one"):
        RoutedExecutor({"x": a}, default=b)


def test_routes_must_lead_to_executors_by_non_empty_patterns(registry: ce.Registry) -> None:
    a = ce.InlineExecutor(registry=registry)
    with pytest.raises(TypeError, match="not a commandexec Executor"):
        RoutedExecutor({"x": concurrent.futures.ThreadPoolExecutor()}, default=a)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="non-empty"):
        RoutedExecutor({"": a}, default=a)


def test_repr_names_each_route(routed: RoutedExecutor) -> None:
    text = repr(routed)
    assert "'cpu.*' -> ProcessExecutor" in text and "default -> InlineExecutor" in text and "running" in text


def test_from_config_builds_a_routed_executor_routing_is_invisible(registry: ce.Registry) -> None:
    config = {
        "executor": "inline",
        "executors": {"cpu": {"kind": "processes", "max_workers": 1}, "io": {"kind": "threads", "max_workers": 2}},
        "routes": [{"pattern": "cpu.*", "executor": "cpu"}, {"pattern": ["io.*", "announce"], "executor": "io"}],
    }
    with from_config(config, registry=registry, environ={}) as executor:
        assert isinstance(executor, RoutedExecutor)
        assert [type(e).__name__ for e in executor.executors] == ["InlineExecutor", "ProcessExecutor", "ThreadExecutor"]
        assert executor.submit(ce.Command("cpu.where", 1)).result(timeout=20)[1] != ME
        assert executor.submit(ce.Command("io.where", 1)).result(timeout=20)[2] != threading.current_thread().name
    assert all(e._shutdown for e in executor.executors)
