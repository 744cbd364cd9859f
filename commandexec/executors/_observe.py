"""The executors' side of events: lifecycle events, emitted events, waiting for quiet.

Nothing here runs unless the executor's bus has a subscriber (lifecycle events)
or a command calls :func:`commandexec.emit`.
"""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..command import Command
from ..events import Event, EventBus

if TYPE_CHECKING:
    from .base import Executor

__all__ = ["Emitter", "ObservedFuture", "Quiet"]


class ObservedFuture(Future[Any]):
    """A Future that publishes a command's lifecycle events as its state changes.

    ``command.started`` when it starts running, ``command.succeeded`` /
    ``command.failed`` just *before* it completes (so observers see them, and
    their follow-ups are submitted, before anyone waiting on it wakes), and
    ``command.cancelled`` when cancelled. Executors use it instead of a plain
    Future only while their bus has subscribers.
    """

    def __init__(self, executor: Executor, command: Command) -> None:
        super().__init__()
        self._ce_executor = executor
        self._ce_command = command
        self._ce_started: float | None = None

    def set_running_or_notify_cancel(self) -> bool:
        if not super().set_running_or_notify_cancel():
            return False
        self._ce_started = time.monotonic()
        self._ce_executor._publish("command.started", self._ce_command, {})
        return True

    def _duration(self) -> float:
        return 0.0 if self._ce_started is None else time.monotonic() - self._ce_started

    def set_result(self, result: Any) -> None:
        if not self.done():
            payload = {"result": result, "duration": self._duration()}
            self._ce_executor._publish("command.succeeded", self._ce_command, payload)
        super().set_result(result)

    def set_exception(self, exception: BaseException | None) -> None:
        if not self.done():
            payload = {"error": exception, "duration": self._duration()}
            self._ce_executor._publish("command.failed", self._ce_command, payload)
        super().set_exception(exception)

    def cancel(self) -> bool:
        was_done = self.done()
        cancelled = super().cancel()
        if cancelled and not was_done:
            self._ce_executor._publish("command.cancelled", self._ce_command, {})
        return cancelled


class Emitter:
    """The event sink in-process executors give :func:`~commandexec.runtime.execute`.

    Holds its executor weakly: worker threads keep it, and must not keep the
    executor alive.
    """

    __slots__ = ("_bus", "_executor")

    def __init__(self, bus: EventBus, executor: Executor) -> None:
        self._bus = bus
        self._executor = weakref.ref(executor)

    def __call__(self, command: Command, name: str, payload: dict[str, Any]) -> None:
        if self._bus._subscriptions:
            self._bus.publish(Event.of(name, payload, command), executor=self._executor(), cause=command)


class Quiet:
    """Counts what is still running, so ``drain()`` and ``wait_cascade()`` can wait.

    ``notify()`` is called by executors when something finishes; it costs one
    attribute read unless somebody waits.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.waiters = 0
        self.cascades: dict[str, int] = {}  # root id -> follow-ups (and coroutine observers) unfinished
        self.retrying = 0  # commands between attempts, or on one, under their retry options

    def retry_started(self) -> None:
        with self.condition:
            self.retrying += 1

    def retry_finished(self) -> None:
        with self.condition:
            self.retrying -= 1
            if self.waiters:
                self.condition.notify_all()

    def notify(self) -> None:
        if self.waiters:
            with self.condition:
                self.condition.notify_all()

    def add(self, root_id: str) -> None:
        with self.condition:
            self.cascades[root_id] = self.cascades.get(root_id, 0) + 1

    def done(self, root_id: str) -> None:
        with self.condition:
            left = self.cascades[root_id] - 1
            if left:
                self.cascades[root_id] = left
            else:
                del self.cascades[root_id]
            if self.waiters:
                self.condition.notify_all()

    def wait(self, predicate: Any, timeout: float | None, what: str) -> None:
        """Wait until *predicate()* holds, re-checking on every notify and every 50 ms.

        Raises:
            TimeoutError: naming *what* if *timeout* passes first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.condition:
            self.waiters += 1
            try:
                while not predicate():
                    remaining = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                    if remaining <= 0:
                        raise TimeoutError(f"{what} did not finish within {timeout} s")
                    # The bus's coroutine observers do not notify us: poll them.
                    self.condition.wait(remaining)
            finally:
                self.waiters -= 1
