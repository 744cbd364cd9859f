"""ThreadExecutor: a bounded pool of worker threads, a drop-in ThreadPoolExecutor."""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any, Literal

from ..command import DEFAULT_OPTIONS, Command
from ..errors import BrokenExecutor, ExecutorFull
from ..events import EventBus
from ..registry import Registry
from ..runtime import execute
from ._observe import ObservedFuture
from .base import Executor, timeout_error

__all__ = ["ThreadExecutor"]

logger = logging.getLogger("commandexec")

_Item = tuple[Future[Any], Command, contextvars.Context]

# Worker threads of every live executor, so interpreter exit can wake and join
# them (as concurrent.futures.thread does); weak, so it holds nothing alive.
_live_workers: weakref.WeakKeyDictionary[threading.Thread, queue.SimpleQueue[_Item | None]] = (
    weakref.WeakKeyDictionary()
)
_exiting = False


def _at_exit() -> None:
    global _exiting
    _exiting = True
    items = list(_live_workers.items())
    for _, work in items:
        work.put(None)
    for thread, _ in items:
        thread.join()


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]


def _default_workers() -> int:
    count = os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()
    return min(32, (count or 1) + 4)


class ThreadExecutor(Executor, concurrent.futures.ThreadPoolExecutor):
    """Runs commands on up to *max_workers* threads; takes ThreadPoolExecutor's arguments.

    Each command runs in a copy of the submitter's :mod:`contextvars` context,
    as :func:`asyncio.to_thread` does. Threads are started on demand, reusing
    idle ones first. A thread cannot be stopped from outside, so a command past
    its ``timeout`` fails with :class:`~commandexec.CommandTimeout` at once while
    the callable runs on to its end (its result is then dropped).

    Args:
        max_workers: Most threads at once; default ``min(32, cpu_count + 4)``.
        thread_name_prefix: Prefix of the worker threads' names.
        initializer: Called with *initargs* at the start of each worker thread;
            if it raises, the executor is broken and pending commands fail with
            :class:`~commandexec.BrokenExecutor`.
        initargs: Arguments for *initializer*.
        registry: Where command keys are resolved.
        events: The event bus (default: one of its own).
        max_pending: Bound on commands submitted but not yet started; ``None``
            (default) is unbounded.
        on_full: When *max_pending* is reached, ``"block"`` makes ``submit`` wait
            for room; ``"raise"`` makes it raise :class:`~commandexec.ExecutorFull`.
    """

    kind = "threads"
    _counter = 0

    # It also derives from ThreadPoolExecutor, without using any of its code, so
    # that APIs which insist on one accept it, e.g. loop.set_default_executor().

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        registry: Registry | None = None,
        events: EventBus | None = None,
        max_pending: int | None = None,
        on_full: Literal["block", "raise"] = "block",
    ) -> None:
        super().__init__(registry=registry, events=events)
        if max_workers is None:
            max_workers = _default_workers()
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_pending is not None and (type(max_pending) is not int or max_pending < 1):
            raise ValueError(f"max_pending must be None or an int >= 1, got {max_pending!r}")
        if on_full not in ("block", "raise"):
            raise ValueError(f"on_full must be 'block' or 'raise', got {on_full!r}")
        ThreadExecutor._counter += 1
        self._max_workers = max_workers
        self._thread_name_prefix = thread_name_prefix or f"ThreadExecutor-{ThreadExecutor._counter}"
        self._init = initializer
        self._initargs = initargs
        self._max_pending = max_pending
        self._block_when_full = on_full == "block"
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._slots = threading.Semaphore(max_pending) if max_pending is not None else None
        self._lock = threading.Lock()
        self._broken_reason: str | None = None
        self._submitted = 0  # under _lock
        self._discarded = 0  # taken off the queue unrun (shutdown, broken), under _lock
        self._shared = _Shared(self)
        # If the executor is dropped without shutdown(), wake the workers so they exit.
        weakref.finalize(self, self._queue.put, None)

    @property
    def max_workers(self) -> int:
        """The most worker threads this executor runs at once."""
        return self._max_workers

    def _submit(self, command: Command) -> Future[Any]:
        slots = self._slots
        if slots is not None:
            self._acquire_slot(slots, command)
        future: Future[Any] = ObservedFuture(self, command) if self._events._subscriptions else Future()
        with self._lock:
            if self._shutdown or self._broken_reason:
                if slots is not None:
                    slots.release()
                if self._broken_reason:
                    raise BrokenExecutor(self._broken_reason)
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put((future, command, contextvars.copy_context()))
            self._submitted += 1
            if len(self._workers) < self._max_workers and not self._idle.acquire(blocking=False):
                self._start_worker()
        return future

    def _acquire_slot(self, slots: threading.Semaphore, command: Command) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if self._block_when_full:
            # Wake now and then so a shutdown elsewhere is noticed.
            while not slots.acquire(timeout=0.1):
                if self._shutdown:
                    raise RuntimeError("cannot schedule new futures after shutdown")
        elif not slots.acquire(blocking=False):
            raise ExecutorFull(
                f"cannot submit {command!r}: {self._max_pending} commands are already pending "
                "(max_pending); wait for some to finish or use on_full='block'"
            )

    def _start_worker(self) -> None:
        index = len(self._workers)
        thread = threading.Thread(
            target=_worker,
            name=f"{self._thread_name_prefix}_{index}",
            args=(self._shared, index, self._init, self._initargs, weakref.ref(self)),
        )
        thread.start()
        self._workers.append(thread)
        _live_workers[thread] = self._queue

    def _drain_queue(self) -> list[Future[Any]]:
        """Take every queued command off the queue (under the lock); return their futures."""
        futures = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                if self._slots is not None:
                    self._slots.release()
                futures.append(item[0])
        self._discarded += len(futures)
        return futures

    def _initializer_failed(self) -> None:
        reason = "a worker thread's initializer failed; the executor cannot run commands"
        with self._lock:
            self._broken_reason = reason
            futures = self._drain_queue()
        # Outside the lock: a failing future's observers may call submit().
        for future in futures:
            future.set_exception(BrokenExecutor(reason))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            cancelled = self._drain_queue() if cancel_futures else []
            self._queue.put(None)
        for future in cancelled:  # outside the lock: observers may call submit()
            future.cancel()
            future.set_running_or_notify_cancel()  # wakes wait() and as_completed()
        if wait:
            for thread in self._workers:
                thread.join()
        self._quiet.notify()
        self._close_timer_and_events(wait)

    shutdown.__doc__ = Executor.shutdown.__doc__

    def _unfinished(self) -> int:
        return self._submitted - sum(self._shared.done) - self._discarded


class _Shared:
    """What the worker threads of one executor share (and nothing that keeps it alive)."""

    __slots__ = ("done", "emitter", "idle", "max_workers", "queue", "quiet", "registry", "slots", "threads", "timer")

    def __init__(self, executor: ThreadExecutor) -> None:
        self.queue = executor._queue
        self.registry = executor._registry
        self.idle = executor._idle
        self.threads = executor._workers
        self.max_workers = executor._max_workers
        self.slots = executor._slots
        self.timer = executor._timer
        self.emitter = executor._emitter
        self.quiet = executor._quiet
        # Commands finished, one counter per worker: each thread writes only its own.
        self.done = [0] * executor._max_workers


def _expire(future: Future[Any], command: Command) -> None:
    with contextlib.suppress(InvalidStateError):  # it finished just in time
        future.set_exception(timeout_error(command, "; its thread runs on to the end (a thread cannot be stopped)"))


def _run_with_timeout(future: Future[Any], command: Command, context: contextvars.Context, shared: _Shared) -> None:
    timeout = command._options.timeout
    assert timeout is not None
    handle = shared.timer.call_later(timeout, _expire, future, command)
    ok, value = context.run(execute, command, shared.registry, shared.emitter)
    handle.cancel()
    with contextlib.suppress(InvalidStateError):  # the timeout fired first
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _worker(
    shared: _Shared,
    index: int,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    executor_ref: weakref.ref[ThreadExecutor],
) -> None:
    # A plain function, not a method: a worker must not keep its executor alive.
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            logger.critical("exception in ThreadExecutor initializer", exc_info=True)
            executor = executor_ref()
            if executor is not None:
                executor._initializer_failed()
            return
    work, registry, emitter, slots, quiet = shared.queue, shared.registry, shared.emitter, shared.slots, shared.quiet
    idle, threads, max_workers, done = shared.idle, shared.threads, shared.max_workers, shared.done
    get = work.get
    get_nowait = work.get_nowait
    Empty = queue.Empty
    while True:
        try:
            item = get_nowait()
        except Empty:
            # About to wait: tell submit() one thread is free, while the pool still
            # grows (once it is full nobody asks, so the count would only pile up).
            if len(threads) < max_workers:
                idle.release()
            item = get()
        if item is None:
            work.put(None)  # pass the sentinel on to the next worker
            return
        future, command, context = item
        del item
        if slots is not None:
            slots.release()
        if not future.set_running_or_notify_cancel():
            pass  # cancelled while queued
        elif command._options is not DEFAULT_OPTIONS and command._options.timeout is not None:
            _run_with_timeout(future, command, context, shared)
        else:
            ok, value = context.run(execute, command, registry, emitter)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
            del value
        done[index] += 1
        if quiet.waiters:
            quiet.notify()
        # Drop references before blocking again (see CPython GH-60488).
        del future, command, context
