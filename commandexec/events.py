"""Events and observers: what commands emit, and follow-up commands in answer.

An :class:`EventBus` delivers :class:`Event` objects to observers subscribed by
exact name or glob pattern (``"image.*"``). An observer is any callable (or
coroutine function) taking the event and returning ``None``, a
:class:`~commandexec.Command`, or an iterable of commands: those run as
follow-ups on the executor that ran the emitting command, with causation
filled in, up to a depth limit that stops runaway cascades.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Iterable, Mapping
from types import CoroutineType, MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from .command import Command
from .errors import CascadeLimitExceeded

if TYPE_CHECKING:
    from .executors.base import Executor

__all__ = ["DEFAULT_CASCADE_LIMIT", "Event", "EventBus", "Observer", "Subscription"]

logger = logging.getLogger("commandexec")

DEFAULT_CASCADE_LIMIT = 32
"""Deepest causation depth a follow-up command may have (a root command has depth 0)."""

_GLOB = frozenset("*?[")


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a name, a payload, and the command it came from.

    Attributes:
        name: Dotted name, e.g. ``"image.resized"`` or ``"command.succeeded"``.
        payload: Read-only mapping of details.
        command_id: Id of the command that emitted it (``None`` outside commands).
        root_id: Id of the root of that command's causation chain.
        parent_id: Id of that command's parent, if any.
        timestamp: ``time.time()`` when it was emitted.
    """

    name: str
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    command_id: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    timestamp: float = dataclasses.field(default_factory=time.time)

    def __post_init__(self) -> None:
        if type(self.payload) is not MappingProxyType:
            object.__setattr__(self, "payload", MappingProxyType(dict(self.payload)))

    @classmethod
    def of(cls, name: str, payload: Mapping[str, Any], command: Command | None) -> Event:
        """Build the event *command* emits (or a free-standing one if it is ``None``)."""
        if command is None:
            return cls(name, payload)
        return cls(name, payload, command.id, command.root_id, command.parent_id)

    def to_dict(self) -> dict[str, Any]:
        """Describe the event as plain data (JSON-able when its payload is)."""
        return {
            "name": self.name,
            "payload": dict(self.payload),
            "command_id": self.command_id,
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_dict` output.

        Raises:
            ValueError: naming the first field that is missing or of the wrong type.
        """
        name, payload = data.get("name"), data.get("payload", {})
        if type(name) is not str or not name:
            raise ValueError(f"event field 'name' must be a non-empty string, got {name!r}")
        if not isinstance(payload, Mapping):
            raise ValueError("event field 'payload' must be a mapping")
        ids = {k: data.get(k) for k in ("command_id", "root_id", "parent_id")}
        for key, value in ids.items():
            if value is not None and type(value) is not str:
                raise ValueError(f"event field {key!r} must be a string or null, got {value!r}")
        timestamp = data.get("timestamp", time.time())
        if type(timestamp) not in (int, float):
            raise ValueError(f"event field 'timestamp' must be a number, got {timestamp!r}")
        return cls(name, payload, timestamp=float(timestamp), **ids)


class Observer(Protocol):
    """Anything called with an event; may return follow-up commands (or a coroutine)."""

    def __call__(self, event: Event, /) -> Command | Iterable[Command] | Awaitable[Any] | None: ...


@dataclasses.dataclass(frozen=True, eq=False)
class Subscription:
    """One observer subscribed to one pattern; :meth:`cancel` unsubscribes it."""

    pattern: str
    observer: Observer
    bus: EventBus = dataclasses.field(repr=False)

    def matches(self, name: str) -> bool:
        """True if an event called *name* reaches this subscription."""
        if _GLOB.isdisjoint(self.pattern):
            return name == self.pattern
        return fnmatch.fnmatchcase(name, self.pattern)

    def cancel(self) -> None:
        """Unsubscribe; harmless if already done."""
        self.bus._remove(self)


class EventBus:
    """Delivers events to observers; observers may answer with follow-up commands.

    Plain observers run synchronously, in the thread that publishes (for a
    command's own events, where the command runs or where its outcome arrives),
    so a command's events reach them in order before its future completes.
    Coroutine observers run as tasks on one event-loop thread owned by the bus,
    so a slow one delays nobody. An observer that raises is logged and reported
    as an ``observer.failed`` event; it breaks nothing else.

    Args:
        cascade_limit: Deepest causation depth a follow-up may have; deeper
            follow-ups are not run, and a ``cascade.limit_exceeded`` event
            carries a :class:`~commandexec.CascadeLimitExceeded` error instead.
    """

    def __init__(self, *, cascade_limit: int = DEFAULT_CASCADE_LIMIT) -> None:
        if type(cascade_limit) is not int or cascade_limit < 0:
            raise ValueError(f"cascade_limit must be an int >= 0, got {cascade_limit!r}")
        self.cascade_limit = cascade_limit
        self._subscriptions: tuple[Subscription, ...] = ()
        self._cache: dict[str, tuple[Subscription, ...]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._async_pending = 0
        self._idle = threading.Condition(self._lock)

    # -- subscriptions ---------------------------------------------------------

    def subscribe(self, pattern: str, observer: Observer) -> Subscription:
        """Call *observer* with every event whose name matches *pattern*.

        Raises:
            TypeError: if *observer* is not callable.
            ValueError: if *pattern* is empty.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"an event pattern must be a non-empty string, got {pattern!r}")
        if not callable(observer):
            raise TypeError(f"observer {observer!r} is not callable")
        subscription = Subscription(pattern, observer, self)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self._cache = {}
        return subscription

    def unsubscribe(self, pattern: str, observer: Observer) -> None:
        """Remove every subscription of *observer* to *pattern*.

        Raises:
            ValueError: if there is none.
        """
        with self._lock:
            kept = tuple(s for s in self._subscriptions if not (s.pattern == pattern and s.observer == observer))
            if len(kept) == len(self._subscriptions):
                raise ValueError(f"{observer!r} is not subscribed to {pattern!r}")
            self._subscriptions, self._cache = kept, {}

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self._cache = {}

    @property
    def active(self) -> bool:
        """True while anything is subscribed (executors skip all event work otherwise)."""
        return bool(self._subscriptions)

    def wants(self, name: str) -> bool:
        """True if an event called *name* would reach at least one observer."""
        return bool(self._matching(name))

    def _matching(self, name: str) -> tuple[Subscription, ...]:
        found = self._cache.get(name)
        if found is None:
            found = tuple(s for s in self._subscriptions if s.matches(name))
            if len(self._cache) < 4096:
                self._cache[name] = found
        return found

    # -- delivery ---------------------------------------------------------------

    def publish(self, event: Event, *, executor: Executor | None = None, cause: Command | None = None) -> None:
        """Deliver *event* to its observers; submit their follow-ups to *executor*.

        Follow-ups record *cause* as their parent. Without an executor, an
        observer's follow-ups cannot run: that is logged as an error.
        """
        for subscription in self._matching(event.name):
            observer = subscription.observer
            if inspect.iscoroutinefunction(observer) or inspect.iscoroutinefunction(
                getattr(observer, "__call__", None)  # noqa: B004 - an object with async __call__
            ):
                try:
                    coro = observer(event)
                except Exception as exc:
                    self._observer_failed(subscription, event, exc, executor)
                else:
                    self._schedule(subscription, event, coro, executor, cause)
                continue
            try:
                result = observer(event)
            except Exception as exc:
                self._observer_failed(subscription, event, exc, executor)
                continue
            if type(result) is CoroutineType:
                self._schedule(subscription, event, result, executor, cause)
            elif result is not None:
                self._follow_up(subscription, event, result, executor, cause)

    def _follow_up(
        self,
        subscription: Subscription,
        event: Event,
        result: Any,
        executor: Executor | None,
        cause: Command | None,
    ) -> None:
        commands = [result] if isinstance(result, Command) else result
        try:
            commands = list(commands)
            if not all(isinstance(c, Command) for c in commands):
                raise TypeError("an observer must return None, a Command or an iterable of Commands")
        except TypeError as exc:
            self._observer_failed(subscription, event, TypeError(f"{exc}, got {result!r}"), executor)
            return
        if executor is None:
            logger.error(
                "observer %r returned follow-ups for %r but no executor can run them", subscription.observer, event
            )
            return
        for command in commands:
            if cause is not None:
                command = command.caused_by(cause)
            if command.depth > self.cascade_limit:
                error = CascadeLimitExceeded(
                    f"{command!r} would run at causation depth {command.depth}, beyond the cascade limit of "
                    f"{self.cascade_limit} (event {event.name!r}, observer {subscription.observer!r}); not run"
                )
                logger.error("%s", error)
                self.publish(Event.of("cascade.limit_exceeded", {"error": error, "command": command}, cause))
                continue
            try:
                executor._submit_follow_up(command)
            except Exception as exc:  # e.g. the executor was shut down meanwhile
                self._observer_failed(subscription, event, exc, executor)

    def _observer_failed(
        self, subscription: Subscription, event: Event, error: BaseException, executor: Executor | None
    ) -> None:
        logger.error("observer %r failed on event %r", subscription.observer, event.name, exc_info=error)
        if event.name == "observer.failed":
            return  # never cascade failures of failure observers
        payload = {"observer": subscription.observer, "pattern": subscription.pattern, "event": event, "error": error}
        failed = Event("observer.failed", payload, event.command_id, event.root_id, event.parent_id)
        self.publish(failed, executor=executor)

    # -- coroutine observers ------------------------------------------------------

    def _schedule(
        self,
        subscription: Subscription,
        event: Event,
        coro: Any,
        executor: Executor | None,
        cause: Command | None,
    ) -> None:
        with self._lock:
            self._async_pending += 1
            loop = self._ensure_loop()
        if executor is not None and event.root_id is not None:
            executor._cascade_add(event.root_id)

        async def deliver() -> None:
            try:
                result = await coro
            except Exception as exc:
                self._observer_failed(subscription, event, exc, executor)
            else:
                if result is not None:
                    self._follow_up(subscription, event, result, executor, cause)
            finally:
                if executor is not None and event.root_id is not None:
                    executor._cascade_done(event.root_id)
                with self._lock:
                    self._async_pending -= 1
                    if self._async_pending == 0:
                        self._idle.notify_all()

        loop.call_soon_threadsafe(loop.create_task, deliver())

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            self._loop_thread = threading.Thread(target=run, name="EventBus-loop", daemon=True)
            self._loop_thread.start()
            started.wait()
            self._loop = loop
        return self._loop

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no coroutine observer is running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._async_pending == 0, timeout)

    def close(self) -> None:
        """Stop the event-loop thread (after waiting for running coroutine observers)."""
        self.wait_idle()
        with self._lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def __repr__(self) -> str:
        return f"<EventBus with {len(self._subscriptions)} subscription(s)>"
