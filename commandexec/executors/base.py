"""The executor contract every kind keeps: a ``concurrent.futures.Executor``.

Subclasses write ``_submit(command)`` and ``shutdown``; ``submit`` (commands,
keys or plain callables), ``map`` (with ``timeout``, ``chunksize`` and
``buffersize``) and the context manager come from here, so they behave the
same on every kind.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures._base import FINISHED
from typing import Any, ClassVar

from ..command import DEFAULT_OPTIONS, Command
from ..errors import CommandTimeout
from ..events import Event, EventBus
from ..registry import Registry
from ..registry import registry as default_registry
from ..retries import submit_with_retries
from ..runtime import run_chunk
from ..timers import Timer
from ._observe import Emitter, ObservedFuture, Quiet

__all__ = ["Executor"]


class Executor(concurrent.futures.Executor):
    """Base class of every commandexec executor.

    Args:
        registry: Where command keys are resolved; defaults to the module-level
            :data:`commandexec.registry`.
        events: The :class:`~commandexec.EventBus` its commands' events go to;
            by default one of its own (closed at shutdown). A bus may be shared.
    """

    kind: ClassVar[str] = ""
    """The name of this executor kind in configuration (``"threads"``, ...)."""

    def __init__(self, *, registry: Registry | None = None, events: EventBus | None = None) -> None:
        if registry is not None and not isinstance(registry, Registry):
            raise TypeError(f"registry must be a commandexec.Registry, got {type(registry).__name__}")
        if events is not None and not isinstance(events, EventBus):
            raise TypeError(f"events must be a commandexec.EventBus, got {type(events).__name__}")
        self._registry = registry if registry is not None else default_registry
        self._shutdown = False
        self._timer = Timer(f"{type(self).__name__}-timer")
        self._owns_events = events is None
        self._events = EventBus() if events is None else events
        self._emitter = Emitter(self._events, self)
        self._quiet = Quiet()

    @property
    def events(self) -> EventBus:
        """The event bus this executor's commands publish to."""
        return self._events

    @property
    def timer(self) -> Timer:
        """The executor's clock and scheduler for timeouts, backoff and heartbeats."""
        return self._timer

    @property
    def registry(self) -> Registry:
        """The registry this executor resolves command keys in."""
        return self._registry

    def submit(self, fn: Command | str | Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule a command and return a Future for its outcome.

        ``submit(command)`` runs a :class:`Command`; ``submit("key", *args, **kwargs)``
        is shorthand for ``submit(Command("key", *args, **kwargs))``; and
        ``submit(fn, *args, **kwargs)`` runs a plain callable, as the stdlib
        executors do.

        Raises:
            RuntimeError: if shutdown() has been called.
            TypeError: if *fn* is none of the above, or a Command is given extra arguments.
        """
        if type(fn) is Command:
            if args or kwargs:
                raise TypeError("submit(command) takes no further arguments; put them in the Command")
            command = fn
        elif isinstance(fn, Command):
            if args or kwargs:
                raise TypeError("submit(command) takes no further arguments; put them in the Command")
            # A Command subclass may orchestrate itself (composites submit their
            # children here, by callbacks, never occupying a worker).
            run_on: Callable[[Executor], Future[Any]] | None = getattr(fn, "_run_on", None)
            if run_on is not None:
                if self._events._subscriptions:
                    self._publish("command.submitted", fn, {})
                return run_on(self)
            command = fn
        elif isinstance(fn, str) or callable(fn):
            command = Command(fn, *args, **kwargs)
        else:
            raise TypeError(f"submit() takes a Command, a registry key or a callable, got {type(fn).__name__}")
        if self._events._subscriptions:
            self._publish("command.submitted", command, {})
        if command._options is not DEFAULT_OPTIONS and command._options.retries:
            return submit_with_retries(self, command)
        return self._submit(command)

    def _new_future(self, command: Command) -> Future[Any]:
        """A Future for *command*: one that publishes lifecycle events while anyone listens."""
        return ObservedFuture(self, command) if self._events._subscriptions else Future()

    def _publish(self, name: str, command: Command, payload: dict[str, Any]) -> None:
        self._events.publish(Event.of(name, payload, command), executor=self, cause=command)

    # -- follow-ups and waiting for quiet ------------------------------------------

    def _submit_follow_up(self, command: Command) -> None:
        """Run an observer's follow-up *command*, counted in its root's cascade."""
        root_id = command.root_id
        self._quiet.add(root_id)
        try:
            future = self.submit(command)
        except BaseException:
            self._quiet.done(root_id)
            raise
        future.add_done_callback(lambda _: self._quiet.done(root_id))

    def _cascade_add(self, root_id: str) -> None:
        self._quiet.add(root_id)

    def _cascade_done(self, root_id: str) -> None:
        self._quiet.done(root_id)

    def _unfinished(self) -> int:
        """Commands submitted to this executor and not yet finished (each kind counts its own)."""
        return 0

    def drain(self, timeout: float | None = None) -> None:
        """Wait until every command submitted so far, and every follow-up it caused, has finished.

        Raises:
            TimeoutError: if that takes longer than *timeout* seconds.
        """
        bus = self._events
        quiet = self._quiet
        self._quiet.wait(
            lambda: not self._unfinished() and not quiet.retrying and not bus._async_pending, timeout, f"{self!r}"
        )

    def wait_cascade(self, root: Future[Any] | Command | str, timeout: float | None = None) -> None:
        """Wait until a root command and every follow-up it caused have finished.

        Args:
            root: The root command, its id, or the Future ``submit`` returned
                for it (a Future is also waited for itself).

        Raises:
            TimeoutError: if that takes longer than *timeout* seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if isinstance(root, Future):
            concurrent.futures.wait([root], timeout)
            if not root.done():
                raise TimeoutError(f"the root command did not finish within {timeout} s")
            command = getattr(root, "_ce_command", None)
            if command is None:
                return  # submitted while nothing listened: no observer could answer it
            root_id = command.root_id
        else:
            root_id = root.root_id if isinstance(root, Command) else root
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        cascades = self._quiet.cascades
        self._quiet.wait(lambda: root_id not in cascades, remaining, f"the cascade of {root_id!r}")

    def _submit(self, command: Command) -> Future[Any]:
        """Schedule *command*; the one method each executor kind must write."""
        raise NotImplementedError

    def map(
        self,
        fn: str | Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """Return an iterator equivalent to ``map(fn, *iterables)``, run on this executor.

        Results come back in input order, each as soon as it and those before it
        are done. *fn* may be a callable or a registry key.

        Args:
            timeout: Seconds, from this call, after which the iterator raises
                ``TimeoutError`` for a result not yet done (and cancels the rest).
            chunksize: Items sent per command. Larger chunks amortise per-command
                cost (most useful for process and remote executors).
            buffersize: At most this many chunks in flight; the input is then
                consumed lazily, so it may be endless. ``None`` submits everything
                at once, as the stdlib does.

        Raises:
            ValueError: if *chunksize* or *buffersize* is below 1.
        """
        if type(chunksize) is not int or chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        if buffersize is not None and (type(buffersize) is not int or buffersize < 1):
            raise ValueError("buffersize must be None or > 0.")
        end_time = None if timeout is None else time.monotonic() + timeout

        work: Iterator[Any] = zip(*iterables, strict=False)
        if chunksize > 1:
            work = itertools.batched(work, chunksize) if hasattr(itertools, "batched") else _batched(work, chunksize)

            def submit_one(item: Any) -> Future[Any]:
                return self.submit(run_chunk, fn, item)
        else:

            def submit_one(item: Any) -> Future[Any]:
                return self.submit(fn, *item)

        first = work if buffersize is None else itertools.islice(work, buffersize)
        futures = collections.deque(submit_one(item) for item in first)
        return self._map_results(futures, work, submit_one, end_time, chunksize > 1, buffersize is not None)

    @staticmethod
    def _map_results(
        futures: collections.deque[Future[Any]],
        work: Iterator[Any],
        submit_one: Callable[[Any], Future[Any]],
        end_time: float | None,
        chunked: bool,
        buffered: bool,
    ) -> Iterator[Any]:
        # A generator of its own, so everything above runs eagerly at map() time.
        try:
            while futures:
                if buffered:
                    for item in itertools.islice(work, 1):
                        futures.append(submit_one(item))
                future = futures.popleft()
                try:
                    remaining = None if end_time is None else end_time - time.monotonic()
                    result = future.result(remaining)
                finally:
                    future.cancel()
                    del future
                if chunked:
                    yield from result
                else:
                    yield result
        finally:
            for future in futures:
                future.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting commands and release the executor's resources.

        Safe to call more than once. Commands already submitted still run unless
        *cancel_futures* is true, which cancels every one not yet started.

        Args:
            wait: Return only when running commands have finished and workers
                have exited.
            cancel_futures: Cancel pending commands instead of running them.
        """
        self._shutdown = True
        self._close_timer_and_events(wait)

    def _close_timer_and_events(self, wait: bool) -> None:
        self._timer.close(wait)
        if self._owns_events and wait:
            self._events.close()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return f"<{type(self).__name__} {state}>"


def _batched(iterable: Iterator[Any], n: int) -> Iterator[tuple[Any, ...]]:
    # itertools.batched arrived in 3.12.
    while chunk := tuple(itertools.islice(iterable, n)):
        yield chunk


class _FinishedFuture(Future[Any]):
    """A ``concurrent.futures.Future`` born finished, for outcomes known at submit.

    A Future's Condition is most of its cost (and 8 of its 11 garbage-collected
    objects); one that is finished before anyone sees it never needs to wait or
    notify, so the Condition is made only if something asks for it (``wait``,
    ``as_completed``, ``add_done_callback``). The fields are the ones
    ``set_result``/``set_exception`` write, unchanged in CPython since 3.2; the
    state never changes again, so the readers below need no lock.
    """

    def __init__(self, result: Any, exception: BaseException | None) -> None:  # no super(): no Condition
        self._state = FINISHED
        self._result = result
        self._exception = exception
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]  # lazy, read-only by design
        condition = self.__dict__.get("_lazy_condition")
        if condition is None:  # setdefault: racing threads still share one
            condition = self.__dict__.setdefault("_lazy_condition", threading.Condition())
        return condition  # type: ignore[no-any-return]

    def done(self) -> bool:
        return True

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> Any:
        if self._exception is not None:
            try:
                raise self._exception
            finally:
                self = None  # type: ignore[assignment]  # break the frame <-> traceback cycle
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._exception


def finished_future(ok: bool, value: Any) -> Future[Any]:
    """Return a new Future already holding the outcome ``(ok, value)``."""
    return _FinishedFuture(value, None) if ok else _FinishedFuture(None, value)


def timeout_error(command: Command, note: str = "") -> CommandTimeout:
    """The error for *command* running past its ``timeout`` option."""
    return CommandTimeout(f"{command!r} exceeded its timeout of {command.options.timeout} s{note}")


def check_not_shutdown(executor: Executor) -> None:
    """Raise the stdlib's RuntimeError for a submit after shutdown."""
    if executor._shutdown:
        raise RuntimeError("cannot schedule new futures after shutdown")
