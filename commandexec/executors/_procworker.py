"""The worker-process side of the process executor.

A worker reads batches of pickled commands from its own inbound
``multiprocessing.Queue``, runs each with :func:`commandexec.runtime.execute`,
and sends outcomes back through its own ``multiprocessing.SimpleQueue``.
Everything here runs in the child process.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import time
import traceback
from typing import Any

from ..errors import RemoteCommandError, SerializationError
from ..registry import Registry, resolve_reference
from ..runtime import execute

# Messages from a worker to the parent, first element is the kind:
#   (RESULTS, [(seq, ok, payload_bytes), ...], seconds)   outcomes in the order run,
#                                                and the time spent running them
#   (INIT_FAILED, traceback_text)                the initializer raised
#   (EVENT, seq, name, payload, timestamp)       command #seq called emit(); sent at
#                                                once, so before that command's outcome
RESULTS = 0
INIT_FAILED = 1
EVENT = 2

# A worker flushes its outcomes at the latest this long after the first unsent
# one, so a batch of slow commands does not hold back finished results.
FLUSH_AFTER = 0.002


class RemoteTraceback(Exception):
    """The worker's traceback text, attached as ``__cause__`` of a rebuilt error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def encode_error(exc: BaseException) -> bytes:
    """Pickle *exc* with its traceback text, or a stand-in that keeps its text.

    The exception must also unpickle (a custom ``__init__`` often breaks that), so
    the round trip is tried here, where a failure can still be reported.
    """
    text = "".join(traceback.format_exception(exc))
    exc.__traceback__ = None  # frames hold references the parent does not need
    try:
        data = pickle.dumps((exc, text), pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
        return data
    except Exception:
        stand_in = RemoteCommandError(f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text)
        return pickle.dumps((stand_in, text), pickle.HIGHEST_PROTOCOL)


def encode_value(seq: int, value: Any, command: object) -> tuple[int, bool, bytes]:
    try:
        return seq, True, pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        error = SerializationError(
            f"the result of {command!r} cannot be pickled back from the worker process "
            f"({type(exc).__name__}: {exc}); return picklable values"
        )
        return seq, False, encode_error(error)


class _Sink:
    """Sends the running command's events to the parent, in order, before its outcome."""

    __slots__ = ("outbound", "seq")

    def __init__(self, outbound: Any) -> None:
        self.outbound = outbound
        self.seq = 0

    def __call__(self, command: object, name: str, payload: dict[str, Any]) -> None:
        message = (EVENT, self.seq, name, payload, time.time())
        try:
            data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(
                f"event {name!r} from {command!r} cannot be pickled to the parent process "
                f"({type(exc).__name__}: {exc}); emit picklable payload values"
            ) from exc
        # What SimpleQueue.put does, without pickling a second time.
        with self.outbound._wlock:
            self.outbound._writer.send_bytes(data)


def _exit_with_parent() -> None:
    """Exit as soon as the executor's process dies, even mid-command.

    ``os.getppid()`` would not do: under forkserver a worker's parent is the
    fork server, which outlives the executor's process.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="commandexec-parent-watch", daemon=True).start()


def worker_main(
    inbound: Any,
    outbound: Any,
    registry: Registry | str,
    initializer: Any,
    initargs: tuple[Any, ...],
    max_tasks: int | None,
    progress: Any,
    slot: int,
) -> None:
    """Run commands until told to stop, the task budget is spent, or the parent dies."""
    # Ctrl-C reaches the whole process group: the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    if isinstance(registry, str):
        registry = resolve_reference(registry)
        if not isinstance(registry, Registry):
            raise TypeError(f"{registry!r} is not a commandexec.Registry")
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException as exc:
            outbound.put((INIT_FAILED, "".join(traceback.format_exception(exc))))
            return
    done = 0
    sink = _Sink(outbound)
    loads = pickle.loads
    monotonic = time.monotonic
    while True:
        batch = inbound.get()
        if batch is None:
            return
        outcomes: list[tuple[int, bool, bytes]] = []
        first_unsent = started = monotonic()
        for seq, data in batch:
            progress[slot] = sink.seq = seq  # tells the parent, if this process dies, what had started
            try:
                command = loads(data)
            except BaseException as exc:
                error = SerializationError(
                    f"command #{seq} could not be unpickled in the worker process ({type(exc).__name__}: {exc}); "
                    "define its callable and argument types in a module the worker can import (not in "
                    "__main__ under an interactive session or an `if __name__ == '__main__'` block)"
                )
                outcomes.append((seq, False, encode_error(error)))
                continue
            ok, value = execute(command, registry, sink)
            if ok:
                outcomes.append(encode_value(seq, value, command))
            else:
                outcomes.append((seq, False, encode_error(value)))
            del value
            now = monotonic()
            if now - first_unsent > FLUSH_AFTER:
                outbound.put((RESULTS, outcomes, now - started))
                outcomes = []
                first_unsent = started = monotonic()
        if outcomes:
            outbound.put((RESULTS, outcomes, monotonic() - started))
        done += len(batch)
        if max_tasks is not None and done >= max_tasks:
            return
