"""Events and observers hold on every executor kind: the same contract for all."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import commandexec as ce
from tests import handlers


class Recorder:
    """An observer that records the events it sees (thread-safe)."""

    def __init__(self) -> None:
        self.events: list[ce.Event] = []
        self.lock = threading.Lock()

    def __call__(self, event: ce.Event) -> None:
        with self.lock:
            self.events.append(event)

    def names(self) -> list[str]:
        with self.lock:
            return [e.name for e in self.events]

    def results(self) -> list[Any]:
        with self.lock:
            return [e.payload["result"] for e in self.events if e.name == "command.succeeded"]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"saw {self.names()}, expected {count} events"
            time.sleep(0.005)


def test_a_commands_events_reach_observers_in_order_before_its_future_completes(executor: ce.Executor) -> None:
    seen = Recorder()
    executor.events.subscribe("step.progress", seen)
    future = executor.submit(ce.Command("emit_steps", 5))
    future.add_done_callback(lambda _: seen(ce.Event("future.done")))
    assert future.result(timeout=10) == 5
    seen.wait_for(6)
    assert seen.names() == ["step.progress"] * 5 + ["future.done"]
    assert [e.payload["index"] for e in seen.events[:5]] == [0, 1, 2, 3, 4]


def test_an_event_carries_its_commands_ids_and_a_timestamp(executor: ce.Executor) -> None:
    seen = Recorder()
    executor.events.subscribe("step.*", seen)
    command = ce.Command("emit_steps", 1)
    before = time.time()
    executor.submit(command).result(timeout=10)
    (event,) = seen.events
    assert (event.command_id, event.root_id, event.parent_id) == (command.id, command.id, None)
    assert before - 1 <= event.timestamp <= time.time() + 1


def test_glob_patterns_and_exact_names_select_events(executor: ce.Executor) -> None:
    exact, glob, other = Recorder(), Recorder(), Recorder()
    executor.events.subscribe("step.progress", exact)
    executor.events.subscribe("step.*", glob)
    executor.events.subscribe("image.*", other)
    executor.submit(ce.Command("emit_steps", 2)).result(timeout=10)
    executor.submit(ce.Command("emit_steps", 1, "step.other")).result(timeout=10)
    assert exact.names() == ["step.progress"] * 2
    assert glob.names() == ["step.progress", "step.progress", "step.other"]
    assert other.names() == []


def test_an_unsubscribed_observer_sees_nothing_more(executor: ce.Executor) -> None:
    seen = Recorder()
    subscription = executor.events.subscribe("step.*", seen)
    executor.submit(ce.Command("emit_steps", 1)).result(timeout=10)
    subscription.cancel()
    executor.submit(ce.Command("emit_steps", 1)).result(timeout=10)
    assert len(seen.events) == 1


def test_lifecycle_events_follow_each_command(executor: ce.Executor) -> None:
    seen = Recorder()
    executor.events.subscribe("command.*", seen)
    ok = ce.Command("add", 1, 2)
    bad = ce.Command("fail", "nope")
    assert executor.submit(ok).result(timeout=10) == 3
    with pytest.raises(handlers.HandlerError):
        executor.submit(bad).result(timeout=10)
    by_command = {c.id: [e for e in seen.events if e.command_id == c.id] for c in (ok, bad)}
    assert [e.name for e in by_command[ok.id]] == ["command.submitted", "command.started", "command.succeeded"]
    assert by_command[ok.id][-1].payload["result"] == 3
    assert by_command[ok.id][-1].payload["duration"] >= 0
    assert [e.name for e in by_command[bad.id]] == ["command.submitted", "command.started", "command.failed"]
    assert isinstance(by_command[bad.id][-1].payload["error"], handlers.HandlerError)


def test_an_observer_answers_with_a_follow_up_that_records_its_cause(executor: ce.Executor) -> None:
    results = Recorder()
    executor.events.subscribe("step.progress", lambda e: ce.Command("add", e.payload["index"], 100))
    executor.events.subscribe("command.succeeded", results)
    root = ce.Command("emit_steps", 2)
    executor.submit(root).result(timeout=10)
    executor.drain(timeout=10)
    follow_ups = [e for e in results.events if e.command_id != root.id]
    assert sorted(e.payload["result"] for e in follow_ups) == [100, 101]
    assert all(e.parent_id == root.id and e.root_id == root.id for e in follow_ups)


def test_drain_and_wait_cascade_wait_for_a_cascade_several_levels_deep(executor: ce.Executor) -> None:
    links = Recorder()
    executor.events.subscribe("chain.link", links)
    executor.events.subscribe(
        "chain.link", lambda e: ce.Command("chain", e.payload["n"] + 1) if e.payload["n"] < 5 else None
    )
    root = ce.Command("chain", 0)
    future = executor.submit(root)
    executor.wait_cascade(future, timeout=20)
    assert sorted(e.payload["n"] for e in links.events) == [0, 1, 2, 3, 4, 5]
    assert [e.root_id for e in links.events] == [root.id] * 6
    executor.submit(ce.Command("chain", 3))
    executor.drain(timeout=20)
    assert len(links.events) == 9


def test_a_runaway_cascade_stops_at_the_depth_limit_with_an_error_event(kind: str, registry: ce.Registry) -> None:
    from tests.conftest import make_executor

    bus = ce.EventBus(cascade_limit=3)
    stopped = Recorder()
    bus.subscribe("chain.link", lambda e: ce.Command("chain", e.payload["n"] + 1))  # never ends by itself
    bus.subscribe("cascade.limit_exceeded", stopped)
    with make_executor(kind, registry, events=bus) as executor:
        executor.submit(ce.Command("chain", 0)).result(timeout=10)
        executor.drain(timeout=20)
    bus.close()
    (event,) = stopped.events
    assert isinstance(event.payload["error"], ce.CascadeLimitExceeded)
    assert "cascade limit of 3" in str(event.payload["error"])
    assert event.payload["command"].depth == 4


def test_a_failing_observer_is_reported_and_breaks_nothing(
    executor: ce.Executor, caplog: pytest.LogCaptureFixture
) -> None:
    failures, after = Recorder(), Recorder()

    def broken(event: ce.Event) -> None:
        raise ZeroDivisionError("observer bug")

    executor.events.subscribe("step.progress", broken)
    executor.events.subscribe("step.progress", after)
    executor.events.subscribe("observer.failed", failures)
    assert executor.submit(ce.Command("emit_steps", 2)).result(timeout=10) == 2
    assert len(after.events) == 2
    assert len(failures.events) == 2
    assert isinstance(failures.events[0].payload["error"], ZeroDivisionError)
    assert "observer bug" in caplog.text


def test_an_observer_returning_junk_is_reported_as_failed(executor: ce.Executor) -> None:
    failures = Recorder()
    executor.events.subscribe("step.progress", lambda e: 42)
    executor.events.subscribe("observer.failed", failures)
    executor.submit(ce.Command("emit_steps", 1)).result(timeout=10)
    assert isinstance(failures.events[0].payload["error"], TypeError)


def test_coroutine_observers_run_on_the_bus_loop_and_a_slow_one_delays_nobody(executor: ce.Executor) -> None:
    fast, slow_done = Recorder(), threading.Event()
    loop_threads: list[str] = []

    async def slow(event: ce.Event) -> None:
        loop_threads.append(threading.current_thread().name)
        await asyncio.sleep(0.5)
        slow_done.set()

    async def quick(event: ce.Event) -> ce.Command:
        fast(event)
        return ce.Command("add", 1, 1)

    executor.events.subscribe("step.progress", slow)
    executor.events.subscribe("step.progress", quick)
    start = time.monotonic()
    executor.submit(ce.Command("emit_steps", 1)).result(timeout=10)
    fast.wait_for(1, timeout=5)
    assert time.monotonic() - start < 0.4, "the slow observer held up the command or the quick observer"
    executor.drain(timeout=10)
    assert slow_done.is_set()
    assert loop_threads == ["EventBus-loop"]


def test_emit_outside_a_command_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside a running command"):
        ce.emit("nowhere")


def test_a_shared_bus_serves_several_executors(kind: str, registry: ce.Registry) -> None:
    from tests.conftest import make_executor

    bus = ce.EventBus()
    seen = Recorder()
    bus.subscribe("step.*", seen)
    with make_executor(kind, registry, events=bus) as one, ce.InlineExecutor(registry=registry, events=bus) as two:
        one.submit(ce.Command("emit_steps", 1)).result(timeout=10)
        two.submit(ce.Command("emit_steps", 1)).result(timeout=10)
    assert len(seen.events) == 2
    bus.close()


def test_observers_may_submit_while_shutdown_cancels_pending_commands(executor: ce.Executor, tmp_path: Path) -> None:
    from tests.contract.test_contract import Gate, capacity

    if isinstance(executor, ce.InlineExecutor):
        pytest.skip("inline commands are never pending")
    gate = Gate(tmp_path)
    cancelled = Recorder()

    def resubmit(event: ce.Event) -> None:
        cancelled(event)
        with contextlib.suppress(RuntimeError):  # the executor is shutting down: refused, not deadlocked
            executor.submit(ce.Command("add", 1, 1))

    executor.events.subscribe("command.cancelled", resubmit)
    busy = [executor.submit(gate.command()) for _ in range(capacity(executor))]
    gate.wait_started(len(busy))
    pending = [executor.submit(ce.Command("add", i, 0)) for i in range(5)]
    done = threading.Event()
    stopper = threading.Thread(target=lambda: (executor.shutdown(wait=False, cancel_futures=True), done.set()))
    stopper.start()
    assert done.wait(5), "shutdown deadlocked with an observer calling submit()"
    stopper.join(5)
    assert all(f.cancelled() for f in pending)
    assert len(cancelled.events) == 5
    gate.open()
    for future in busy:
        future.result(timeout=10)
