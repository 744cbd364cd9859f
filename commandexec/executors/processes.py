"""ProcessExecutor: worker processes fed by multiprocessing queues; self-healing.

Each worker has its own inbound ``multiprocessing.Queue`` (batches of pickled
commands) and its own outbound ``multiprocessing.SimpleQueue`` (batches of
outcomes). One manager thread in the parent dispatches, collects outcomes and
watches every worker's sentinel, so it knows exactly which commands a dead
worker held: the one it was running fails with :class:`WorkerLost`, the ones
it had not started go to another worker, and a replacement is started. The
stdlib's ProcessPoolExecutor breaks the whole pool instead.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import weakref
from concurrent.futures import Future
from typing import Any

from ..command import DEFAULT_OPTIONS, Command
from ..errors import BrokenExecutor, SerializationError, WorkerLost
from ..events import Event, EventBus
from ..registry import Registry, resolve_reference
from ._observe import ObservedFuture
from ._procworker import EVENT, INIT_FAILED, RESULTS, RemoteTraceback, worker_main
from .base import Executor, finished_future, timeout_error

__all__ = ["ProcessExecutor", "default_start_method"]

logger = logging.getLogger("commandexec")

# (seq, future, command, pickled command)
_Item = tuple[int, "Future[Any]", Command, bytes]

MAX_BATCH = 512
"""Most commands a worker holds at once (sent, not yet returned)."""
QUEUED_WORK = 0.005
"""Seconds of work, by the measured average, that a busy worker may hold queued.

Prefetching hides the round trip for small commands; for slow ones it would
queue work behind a busy worker that another worker could start sooner.
"""

_live: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()


def _at_exit() -> None:
    # As concurrent.futures.process does: finish submitted work at interpreter exit.
    for executor in list(_live):
        executor.shutdown(wait=True)


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]


def default_start_method() -> str:
    """``"forkserver"`` where available, else ``"spawn"``: both safe when the parent has threads."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _check_picklable(registry: Registry) -> None:
    """Fail now, naming the key, if a worker could not receive *registry*."""
    try:
        pickle.dumps(registry, pickle.HIGHEST_PROTOCOL)
    except Exception:
        for key in registry:
            target = registry._references.get(key) or registry._callables.get(key)
            try:
                pickle.dumps(target, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise SerializationError(
                    f"command {key!r} ({target!r}) cannot be pickled to worker processes ({exc}); register a "
                    "module-level function or a lazy 'pkg.module:attr' reference, or pass the registry itself "
                    "as a reference such as registry='myapp.commands:registry'"
                ) from exc
        raise


def _close_unfed(inbound: Any) -> None:
    # Queue.close() leaves the pipe to the feeder thread, which closes it on its
    # way out; a queue nothing was ever put on has no feeder, so its write end
    # stayed open until garbage collection.
    if inbound._thread is None:
        inbound._writer.close()


def describe_exit(exitcode: int | None) -> str:
    """Say how a process ended: ``"killed by SIGKILL"``, ``"exit code 3"``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class _Worker:
    __slots__ = ("budget", "inbound", "outbound", "outstanding", "process", "reader", "slot", "timer", "timing")

    def __init__(self, process: Any, inbound: Any, outbound: Any, slot: int, budget: int | None) -> None:
        self.process = process
        self.inbound = inbound
        self.outbound = outbound
        self.reader = outbound._reader
        self.slot = slot
        self.budget = budget  # commands it may still be sent (max_tasks_per_child)
        self.outstanding: collections.deque[_Item] = collections.deque()
        self.timing: int | None = None  # seq of the one command it holds under a timeout
        self.timer: Any = None


class ProcessExecutor(Executor):
    """Runs commands in worker processes; takes ProcessPoolExecutor's arguments.

    Commands travel pickled, so the callable must be importable in the worker:
    a registry key (resolved in the worker's copy of the registry) or a
    module-level function. What cannot be pickled fails that command's future
    at once with :class:`~commandexec.SerializationError`.

    Args:
        max_workers: Number of worker processes; default ``os.process_cpu_count()``.
        mp_context: A multiprocessing context or start method name; default
            :func:`default_start_method` (forkserver on Linux).
        initializer: Called with *initargs* when each worker starts; if it
            raises, the executor is broken (:class:`~commandexec.BrokenExecutor`).
        initargs: Arguments for *initializer*.
        max_tasks_per_child: Replace each worker after this many commands.
        registry: A Registry (pickled to each worker, lazy references as
            strings) or an import reference ``"package.module:registry"``
            that each worker imports itself.
        events: The event bus (default: one of its own). Events a command
            emits in a worker reach it in order, before the command's future
            completes; ``command.started`` is published when a command is
            sent to a worker.
    """

    kind = "processes"

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Any = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        registry: Registry | str | None = None,
        events: EventBus | None = None,
    ) -> None:
        reference = registry if isinstance(registry, str) else None
        if reference is not None:
            registry = resolve_reference(reference)
        super().__init__(registry=registry, events=events)  # type: ignore[arg-type]
        if max_workers is None:
            count = os.process_cpu_count() if hasattr(os, "process_cpu_count") else os.cpu_count()
            max_workers = count or 1
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if mp_context is None or isinstance(mp_context, str):
            mp_context = multiprocessing.get_context(mp_context or default_start_method())
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context.get_start_method(allow_none=False) == "fork":
                raise ValueError(
                    "max_tasks_per_child is incompatible with the 'fork' multiprocessing "
                    "start method; supply a different mp_context."
                )
        self._max_workers = max_workers
        self._context = mp_context
        self._initializer = initializer
        self._initargs = initargs
        self._max_tasks = max_tasks_per_child
        self._worker_registry: Registry | str = reference if reference is not None else self._registry
        if reference is None and mp_context.get_start_method(allow_none=False) != "fork":
            _check_picklable(self._registry)
        self._pending: collections.deque[_Item] = collections.deque()
        self._requeued: collections.deque[_Item] = collections.deque()  # already marked running
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._manager: threading.Thread | None = None
        self._broken: str | None = None
        self._sleeping = False
        self._wake_r = self._wake_w = -1  # the manager's wake-up pipe, made when it starts
        self._expired: collections.deque[tuple[_Worker, int]] = collections.deque()
        self._average = 0.0  # moving average of seconds per command, from the workers' reports
        self._submitted = 0  # under _lock
        self._discarded = 0  # cancelled by shutdown, under _lock
        self._finished = 0  # manager thread only
        self._workers: list[_Worker] = []
        self._free_slots = list(range(max_workers - 1, -1, -1))
        self._progress = mp_context.RawArray("q", max_workers)
        _live.add(self)

    @property
    def max_workers(self) -> int:
        """The number of worker processes."""
        return self._max_workers

    @property
    def start_method(self) -> str:
        """The multiprocessing start method of the workers."""
        return str(self._context.get_start_method(allow_none=False))

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return [w.process.pid for w in list(self._workers) if w.process.pid is not None]

    # -- caller side --------------------------------------------------------

    def _submit(self, command: Command) -> Future[Any]:
        if self._shutdown or self._broken:  # checked again under the lock below
            if self._broken:
                raise BrokenExecutor(self._broken)
            raise RuntimeError("cannot schedule new futures after shutdown")
        try:
            data = pickle.dumps(command, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            error = SerializationError(
                f"{command!r} cannot be pickled for a worker process ({type(exc).__name__}: {exc}); "
                "pass picklable arguments and a registry key or a module-level function "
                "(not a lambda, closure or local function)"
            )
            return finished_future(False, error)
        future: Future[Any] = ObservedFuture(self, command) if self._events._subscriptions else Future()
        with self._lock:
            if self._broken:
                raise BrokenExecutor(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._pending.append((next(self._seq), future, command, data))
            self._submitted += 1
            if self._manager is None:
                self._wake_r, self._wake_w = os.pipe()
                os.set_blocking(self._wake_w, False)
                self._manager = threading.Thread(target=self._manage, name="ProcessExecutor-manager", daemon=True)
                self._manager.start()
        if self._sleeping:
            self._sleeping = False
            self._wake()
        return future

    def _wake(self) -> None:
        # Under the lock: once closed, the fd number may belong to another file.
        with self._lock, contextlib.suppress(OSError):  # already awake: the pipe is full
            if self._wake_w >= 0:
                os.write(self._wake_w, b"\0")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        cancelled = []
        with self._lock:
            self._shutdown = True
            manager = self._manager
            if cancel_futures:
                while self._pending:
                    cancelled.append(self._pending.popleft()[1])
                self._discarded += len(cancelled)
        # Outside the lock: a cancelled future's observers may call submit().
        for future in cancelled:
            future.cancel()
            future.set_running_or_notify_cancel()  # wakes wait() and as_completed()
        if manager is None:
            self._close_wakeup()
        else:
            self._wake()
            if wait and manager is not threading.current_thread():
                manager.join()
        self._quiet.notify()
        self._close_timer_and_events(wait)

    shutdown.__doc__ = Executor.shutdown.__doc__

    def _unfinished(self) -> int:
        return self._submitted - self._finished - self._discarded

    def _close_wakeup(self) -> None:
        with self._lock:
            if self._wake_w >= 0:
                os.close(self._wake_w)
                os.close(self._wake_r)
                self._wake_w = self._wake_r = -1

    # -- manager thread ------------------------------------------------------

    def _manage(self) -> None:
        try:
            for _ in range(self._max_workers):
                self._start_worker()
            while True:
                while self._expired:  # first: a timeout that fired while we were busy
                    self._on_timeout(*self._expired.popleft())
                self._dispatch()
                if self._shutdown and not self._pending and not self._requeued and self._idle():
                    return
                # Announce sleep, then look once more: a submit either sees the flag
                # and wakes us, or its command is seen here.
                self._sleeping = True
                if self._dispatch() or self._expired:
                    self._sleeping = False
                    continue
                waitables: list[Any] = [self._wake_r]
                for w in self._workers:
                    waitables += (w.reader, w.process.sentinel)
                ready = multiprocessing.connection.wait(waitables)
                self._sleeping = False
                for worker in list(self._workers):
                    if worker.reader in ready:
                        self._receive(worker)
                    if worker.process.sentinel in ready:
                        self._on_exit(worker)
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                while self._expired:
                    self._on_timeout(*self._expired.popleft())
                if self._quiet.waiters:
                    self._quiet.notify()
                if self._broken:
                    return
        except BaseException as exc:  # never leave a future pending on a manager bug
            logger.critical("the process executor's manager thread failed", exc_info=True)
            self._break(f"the process executor's manager thread failed: {exc!r}")
        finally:
            self._stop_workers()

    def _idle(self) -> bool:
        return all(not w.outstanding for w in self._workers)

    def _start_worker(self) -> None:
        inbound = self._context.Queue()
        outbound = self._context.SimpleQueue()
        slot = self._free_slots.pop()
        self._progress[slot] = 0
        process = self._context.Process(
            target=worker_main,
            args=(
                inbound,
                outbound,
                self._worker_registry,
                self._initializer,
                self._initargs,
                self._max_tasks,
                self._progress,
                slot,
            ),
            name=f"ProcessExecutor-worker-{slot}",
            daemon=True,
        )
        try:
            process.start()
        except BaseException:
            self._free_slots.append(slot)
            for end in (inbound._reader, inbound._writer, outbound._reader, outbound._writer):
                end.close()
            raise
        # The parent's copies of the worker's ends: closed, so a worker that dies
        # mid-message reads as end-of-file instead of a message that never ends.
        outbound._writer.close()
        inbound._reader.close()
        inbound._ignore_epipe = True
        self._workers.append(_Worker(process, inbound, outbound, slot, self._max_tasks))

    def _dispatch(self) -> bool:
        """Send waiting commands to workers with room; True if any was taken."""
        pending, requeued = self._pending, self._requeued
        if not pending and not requeued:
            return False
        progressed = False
        workers = [w for w in self._workers if w.timing is None and w.budget != 0]
        idle = [w for w in workers if not w.outstanding]
        # Until a first outcome says how long commands take, send one each.
        limit = 1 if self._average <= 0 else max(1, min(MAX_BATCH, int(QUEUED_WORK / self._average)))
        if idle:
            workers = idle  # never queue behind a running command while a worker is free
        else:
            workers.sort(key=lambda w: len(w.outstanding))
        for index, worker in enumerate(workers):
            room = limit - len(worker.outstanding)
            if room <= 0:
                continue
            if worker.budget is not None:
                room = min(room, worker.budget)
            # Spread what is waiting over the workers that can take it.
            share = -(-(len(pending) + len(requeued)) // (len(workers) - index))
            batch: list[_Item] = []
            while (requeued or pending) and len(batch) < min(room, share):
                source = requeued if requeued else pending
                seq, future, command, _ = item = source[0]
                timed = command._options is not DEFAULT_OPTIONS and command._options.timeout is not None
                if timed and (batch or worker.outstanding):
                    break  # a command with a timeout runs alone on an idle worker
                source.popleft()
                progressed = True
                if source is pending and not future.set_running_or_notify_cancel():
                    self._finished += 1
                    continue  # cancelled while waiting
                batch.append(item)
                if timed:
                    worker.timing = seq
                    worker.timer = self._timer.call_later(
                        command._options.timeout,  # type: ignore[arg-type]
                        self._expire,
                        worker,
                        seq,
                    )
                    break
            if batch:
                worker.outstanding.extend(batch)
                if worker.budget is not None:
                    worker.budget -= len(batch)
                worker.inbound.put([(seq, data) for seq, _, _, data in batch])
            if not pending and not requeued:
                break
        return progressed

    def _expire(self, worker: _Worker, seq: int) -> None:
        # Timer thread: hand over to the manager, which owns all worker state.
        self._expired.append((worker, seq))
        self._wake()

    def _on_timeout(self, worker: _Worker, seq: int) -> None:
        if worker.timing != seq or worker not in self._workers:
            return  # it finished in time
        _, future, command, _ = worker.outstanding.popleft()
        self._finished += 1
        future.set_exception(timeout_error(command, "; its worker process was killed and replaced"))
        worker.timing = None
        worker.process.kill()  # _on_exit replaces it once its sentinel fires

    def _receive(self, worker: _Worker) -> bool:
        """Handle one message from *worker*; False if its pipe is broken (it died mid-message)."""
        try:
            message = worker.outbound.get()
        except (EOFError, OSError, pickle.UnpicklingError):
            return False
        kind, payload = message[0], message[1]
        if kind == RESULTS:
            self._deliver(worker, payload)
            if payload:
                self._average = 0.8 * self._average + 0.2 * (message[2] / len(payload))
        elif kind == EVENT:
            self._on_event(worker, message)
        elif kind == INIT_FAILED:
            self._break(f"a worker process's initializer failed:\n{payload}")
        return True

    def _on_event(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        _, seq, name, payload, timestamp = message
        command = next((item[2] for item in worker.outstanding if item[0] == seq), None)
        if command is None or not self._events._subscriptions:
            return  # its command timed out meanwhile, or nobody listens
        event = Event(name, payload, command.id, command.root_id, command.parent_id, timestamp)
        self._events.publish(event, executor=self, cause=command)

    def _deliver(self, worker: _Worker, outcomes: list[tuple[int, bool, bytes]]) -> None:
        outstanding = worker.outstanding
        loads = pickle.loads
        for seq, ok, data in outcomes:
            if not outstanding or outstanding[0][0] != seq:
                continue  # timed out and already failed
            _, future, command, _ = outstanding.popleft()
            self._finished += 1
            try:
                value = loads(data)
            except Exception as exc:
                ok, value = False, None
                error: BaseException = SerializationError(
                    f"the result of {command!r} could not be unpickled in the parent process "
                    f"({type(exc).__name__}: {exc}); return types the parent can import"
                )
            else:
                if not ok:
                    error, text = value
                    error.__cause__ = RemoteTraceback(text)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(error)
            if worker.timing == seq:
                worker.timing = None
                worker.timer.cancel()

    def _on_exit(self, worker: _Worker) -> None:
        # Outcomes it sent before dying are still in the pipe: deliver them first.
        while worker.reader.poll() and self._receive(worker):
            pass
        worker.process.join()
        exitcode = worker.process.exitcode
        started = self._progress[worker.slot]
        self._workers.remove(worker)
        self._free_slots.append(worker.slot)
        if worker.timer is not None:
            worker.timer.cancel()
        if self._broken:
            self._close_worker(worker)
            return
        lost = [item for item in worker.outstanding if item[0] <= started]
        unstarted = [item for item in worker.outstanding if item[0] > started]
        self._finished += len(lost)
        for _, future, command, _ in lost:
            future.set_exception(
                WorkerLost(
                    f"worker process {worker.process.pid} died ({describe_exit(exitcode)}) while it held "
                    f"{command!r}; the pool replaced it and other commands are unaffected"
                )
            )
        self._requeued.extendleft(reversed(unstarted))
        self._close_worker(worker)
        if not self._shutdown or self._pending or self._requeued or not self._idle():
            self._start_worker()

    def _close_worker(self, worker: _Worker) -> None:
        worker.inbound.close()
        worker.inbound.cancel_join_thread()  # the reader is gone: do not block on unsent data
        _close_unfed(worker.inbound)
        worker.outbound.close()
        worker.process.close()

    def _break(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            self._shutdown = True
        error = BrokenExecutor(reason)
        for worker in self._workers:
            for _, future, _, _ in worker.outstanding:
                future.set_exception(error)
            self._finished += len(worker.outstanding)
            worker.outstanding.clear()
        for source in (self._requeued, self._pending):
            while source:
                future = source.popleft()[1]
                self._finished += 1
                if source is self._requeued or future.set_running_or_notify_cancel():
                    future.set_exception(error)

    def _stop_workers(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(ValueError, OSError):  # already closed
                worker.inbound.put(None)
        for worker in self._workers:
            worker.process.join(5)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
        if self._workers and any(w.outstanding for w in self._workers):
            self._break("the process executor stopped with commands in flight")
        for worker in self._workers:
            worker.inbound.close()
            worker.inbound.join_thread()
            _close_unfed(worker.inbound)
            worker.outbound.close()
            worker.process.close()
        self._workers.clear()
        self._close_wakeup()
