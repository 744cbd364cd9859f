"""Retries: run a failed command again, the same way on every executor.

A command whose ``retries`` option is above zero is submitted through
:func:`submit_with_retries`: each attempt is an ordinary submission, and a
failure that may be retried is followed, after an exponential backoff with
jitter measured on the executor's timer, by another attempt, with a
``command.retrying`` event each time. The caller's future completes once,
with the last attempt's outcome. Commands without retries never come here.
"""

from __future__ import annotations

import contextlib
import random
import threading
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING, Any

from .command import Command
from .errors import (
    BrokenExecutor,
    CascadeLimitExceeded,
    InvalidCommand,
    SerializationError,
    UnknownCommand,
    WorkerLost,
)

if TYPE_CHECKING:
    from .executors.base import Executor
    from .timers import TimerHandle

__all__ = ["backoff_delay", "is_retryable", "submit_with_retries"]

# Failures that another attempt cannot mend: they are never retried.
_NEVER = (UnknownCommand, SerializationError, InvalidCommand, BrokenExecutor, CascadeLimitExceeded)


def is_retryable(command: Command, error: BaseException) -> bool:
    """True if *error* from *command* may be retried under its ``retry_on`` option.

    A lost worker may always be retried. Otherwise an empty ``retry_on`` means
    any ``Exception``; else the error must be an instance of one of the listed
    types, or of a class with one of the listed names (``"ValueError"`` or
    ``"package.module.Error"``), which is how types travel as data. Errors that
    another attempt cannot mend (unknown key, serialisation, invalid command,
    broken executor) are never retried.
    """
    if isinstance(error, WorkerLost):
        return True
    if not isinstance(error, Exception) or isinstance(error, _NEVER):
        return False
    retry_on = command.options.retry_on
    if not retry_on:
        return True
    for cls in type(error).__mro__:
        for item in retry_on:
            if item is cls or (
                isinstance(item, str) and item in (cls.__qualname__, f"{cls.__module__}.{cls.__qualname__}")
            ):
                return True
    return False


def backoff_delay(command: Command, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number *attempt* (1 for the first retry).

    ``retry_backoff * 2 ** (attempt - 1)``, capped at ``retry_backoff_max``, then
    spread by up to ``retry_jitter`` of itself either way.
    """
    options = command.options
    delay = min(options.retry_backoff_max, options.retry_backoff * 2 ** (attempt - 1))
    if options.retry_jitter and delay:
        spread = (rng or random).uniform(-options.retry_jitter, options.retry_jitter)
        delay *= 1 + spread
    return max(0.0, float(delay))


class _Retrying:
    """The state of one command's attempts; callbacks move it along."""

    def __init__(self, executor: Executor, command: Command) -> None:
        self.executor = executor
        self.command = command
        self.outer: Future[Any] = Future()
        self.attempt = 0
        self.inner: Future[Any] | None = None
        self.timer: TimerHandle | None = None
        self.lock = threading.Lock()
        self.outer.add_done_callback(self._outer_done)

    def start(self) -> None:
        if self.outer.done():
            return  # cancelled during the backoff
        try:
            inner = self.executor._submit(self.command)
        except BaseException as exc:  # shut down during a backoff, or broken
            if not self.outer.done():
                self.outer.set_exception(exc)
            return
        with self.lock:
            self.inner = inner
        inner.add_done_callback(self._attempt_done)

    def _attempt_done(self, inner: Future[Any]) -> None:
        outer = self.outer
        if outer.done():
            return
        if inner.cancelled():
            outer.cancel()
            return
        error = inner.exception()
        if error is None:
            _complete(outer, True, inner.result())
            return
        if self.attempt >= self.command.options.retries or not is_retryable(self.command, error):
            _complete(outer, False, error)
            return
        self.attempt += 1
        delay = backoff_delay(self.command, self.attempt)
        if self.executor._events._subscriptions:
            payload = {"attempt": self.attempt, "retries": self.command.options.retries, "delay": delay, "error": error}
            self.executor._publish("command.retrying", self.command, payload)
        try:
            handle = self.executor.timer.call_later(delay, self.start)
        except RuntimeError:  # the executor closed its timer: no more attempts
            _complete(outer, False, error)
            return
        with self.lock:
            self.timer = handle
        if outer.cancelled():  # cancelled before the handle was recorded
            handle.cancel()

    def _outer_done(self, outer: Future[Any]) -> None:
        if outer.cancelled():
            with self.lock:
                inner, timer = self.inner, self.timer
            if timer is not None:
                timer.cancel()
            if inner is not None:
                inner.cancel()


def _complete(future: Future[Any], ok: bool, value: Any) -> None:
    with contextlib.suppress(InvalidStateError):  # cancelled meanwhile by its owner
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def submit_with_retries(executor: Executor, command: Command) -> Future[Any]:
    """Submit *command* on *executor*, retrying failures as its options allow.

    The returned future completes once, with the last attempt's outcome.
    Cancelling it cancels the attempt in flight (if it has not started) and
    every later one.
    """
    retrying = _Retrying(executor, command)
    quiet = executor._quiet
    quiet.retry_started()
    retrying.outer.add_done_callback(lambda _: quiet.retry_finished())
    retrying.start()
    return retrying.outer
