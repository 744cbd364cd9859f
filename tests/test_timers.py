"""The executor's timer: one thread, many calls, cancellable, closes cleanly."""

from __future__ import annotations

import threading
import time

import pytest

import commandexec as ce
from commandexec.timers import Timer


def test_calls_run_in_due_order_on_one_thread() -> None:
    timer = Timer()
    ran: list[tuple[str, str]] = []
    done = threading.Event()
    try:
        for name, delay in [("c", 0.15), ("a", 0.05), ("b", 0.1)]:
            timer.call_later(delay, lambda n: ran.append((n, threading.current_thread().name)), name)
        timer.call_later(0.2, done.set)
        assert done.wait(5)
        assert [n for n, _ in ran] == ["a", "b", "c"]
        assert len({t for _, t in ran}) == 1
    finally:
        timer.close()


def test_a_cancelled_call_never_runs() -> None:
    timer = Timer()
    ran = threading.Event()
    try:
        handle = timer.call_later(0.05, ran.set)
        handle.cancel()
        assert handle.cancelled
        assert not ran.wait(0.2)
    finally:
        timer.close()


def test_a_failing_call_is_logged_and_the_timer_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    timer = Timer()
    done = threading.Event()
    try:
        timer.call_later(0, lambda: 1 / 0)
        timer.call_later(0.05, done.set)
        assert done.wait(5)
        assert "timer callback" in caplog.text and "ZeroDivisionError" in caplog.text
    finally:
        timer.close()


def test_many_cancelled_long_timers_do_not_pile_up() -> None:
    timer = Timer()
    try:
        for _ in range(10_000):
            timer.call_later(3600, lambda: None).cancel()
        assert len(timer._heap) <= 128
    finally:
        timer.close()


def test_close_without_wait_lets_pending_and_later_calls_run_then_exits() -> None:
    timer = Timer("closing-timer")
    ran, later = threading.Event(), threading.Event()
    timer.call_later(0.1, ran.set)
    timer.close(wait=False)
    timer.call_later(0.05, later.set)  # work accepted before shutdown may still need a timer
    assert ran.wait(5) and later.wait(5)
    deadline = time.monotonic() + 5
    while any(t.name == "closing-timer" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_close_with_wait_cancels_pending_calls_and_refuses_new_ones() -> None:
    timer = Timer()
    ran = threading.Event()
    timer.call_later(0.05, ran.set)
    timer.close()
    with pytest.raises(RuntimeError, match="after close"):
        timer.call_later(0, ran.set)
    assert not ran.wait(0.2)


def test_no_timer_thread_starts_for_an_executor_without_timeouts(registry: ce.Registry) -> None:
    with ce.ThreadExecutor(2, registry=registry) as executor:
        executor.submit("add", 1, 2).result(timeout=5)
        assert not any(t.name.endswith("-timer") for t in threading.enumerate())
