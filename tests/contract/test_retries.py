"""Retries hold the same on every executor kind: one implementation, one contract."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import commandexec as ce
from commandexec.retries import backoff_delay, is_retryable
from tests import handlers
from tests.contract.test_events import Recorder


def flaky(tmp_path: Path, failures: int, error: str = "ValueError", **options: object) -> ce.Command:
    counter = tmp_path / f"counter-{random.random()}"
    options.setdefault("retry_backoff", 0.01)
    return ce.Command("flaky", str(counter), failures, error).with_options(**options)


def calls(command: ce.Command) -> int:
    return int(Path(command.args[0]).read_text())


def test_a_failed_command_is_retried_until_it_succeeds(executor: ce.Executor, tmp_path: Path) -> None:
    command = flaky(tmp_path, failures=2, retries=3)
    assert executor.submit(command).result(timeout=10) == "ok"
    assert calls(command) == 3


def test_when_retries_run_out_the_future_fails_once_with_the_last_error(executor: ce.Executor, tmp_path: Path) -> None:
    command = flaky(tmp_path, failures=5, retries=2)
    with pytest.raises(ValueError, match="call 3 fails"):
        executor.submit(command).result(timeout=10)
    assert calls(command) == 3


def test_each_retry_is_announced_with_a_retrying_event(executor: ce.Executor, tmp_path: Path) -> None:
    retrying = Recorder()
    executor.events.subscribe("command.retrying", retrying)
    command = flaky(tmp_path, failures=2, retries=3)
    executor.submit(command).result(timeout=10)
    assert [e.payload["attempt"] for e in retrying.events] == [1, 2]
    assert all(e.command_id == command.id and isinstance(e.payload["error"], ValueError) for e in retrying.events)


def test_retry_on_limits_which_errors_are_retried(executor: ce.Executor, tmp_path: Path) -> None:
    by_type = flaky(tmp_path, failures=1, retries=2, retry_on=(ValueError,))
    by_name = flaky(tmp_path, failures=1, retries=2, retry_on=("ValueError",))
    not_listed = flaky(tmp_path, failures=1, error="HandlerError", retries=2, retry_on=(ValueError,))
    assert executor.submit(by_type).result(timeout=10) == "ok"
    assert executor.submit(by_name).result(timeout=10) == "ok"
    with pytest.raises(handlers.HandlerError):
        executor.submit(not_listed).result(timeout=10)
    assert calls(not_listed) == 1


def test_an_unknown_key_is_never_retried(executor: ce.Executor) -> None:
    with pytest.raises(ce.UnknownCommand):
        executor.submit(ce.Command("nope").with_options(retries=5, retry_backoff=0.01)).result(timeout=10)


def test_backoff_waits_between_attempts(executor: ce.Executor, tmp_path: Path) -> None:
    command = flaky(tmp_path, failures=2, retries=2, retry_backoff=0.15, retry_jitter=0.0)
    start = time.monotonic()
    assert executor.submit(command).result(timeout=10) == "ok"
    assert time.monotonic() - start >= 0.15 + 0.3 - 0.02


def test_cancelling_during_backoff_stops_further_attempts(executor: ce.Executor, tmp_path: Path) -> None:
    command = flaky(tmp_path, failures=1, retries=3, retry_backoff=1.0, retry_jitter=0.0)
    future = executor.submit(command)
    deadline = time.monotonic() + 10
    while not Path(command.args[0]).exists() or calls(command) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # now in the backoff
    assert future.cancel()
    time.sleep(1.3)
    assert calls(command) == 1


def test_drain_waits_for_a_command_between_attempts(executor: ce.Executor, tmp_path: Path) -> None:
    command = flaky(tmp_path, failures=1, retries=1, retry_backoff=0.3, retry_jitter=0.0)
    future = executor.submit(command)
    executor.drain(timeout=10)
    assert future.done() and future.result() == "ok"


def test_backoff_doubles_up_to_its_cap_with_bounded_jitter() -> None:
    command = ce.Command("x").with_options(retries=9, retry_backoff=0.1, retry_backoff_max=0.5, retry_jitter=0.0)
    assert [round(backoff_delay(command, n), 3) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    jittery = command.with_options(retry_jitter=0.5)
    rng = random.Random(7)
    assert all(0.05 <= backoff_delay(jittery, 1, rng) <= 0.15 for _ in range(200))


def test_a_lost_worker_is_always_retryable_and_deterministic_errors_never() -> None:
    command = ce.Command("x").with_options(retries=1, retry_on=(KeyError,))
    assert is_retryable(command, ce.WorkerLost("gone"))
    assert not is_retryable(command, ValueError())
    assert not is_retryable(ce.Command("x").with_options(retries=1), ce.SerializationError("no"))
    assert not is_retryable(ce.Command("x").with_options(retries=1), KeyboardInterrupt())
