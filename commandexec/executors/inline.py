"""InlineExecutor: runs each command in the caller's thread, inside ``submit``."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from ..command import Command
from ..events import EventBus
from ..registry import Registry
from ..runtime import execute
from ..serialization import Codec, get_codec
from ._observe import ObservedFuture
from .base import Executor, check_not_shutdown, finished_future, timeout_error

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Runs each command synchronously in ``submit``; the returned future is already done.

    The executor for tests, debugging and for work too small to be worth a
    thread. Errors still go into the future, never out of ``submit``.

    Args:
        registry: Where command keys are resolved.
        events: The event bus (default: one of its own).
        strict: Round-trip every command's arguments and its result through a
            codec before and after running it, as a worker process (``True`` or
            ``"pickle"``) or a remote worker (``"json"``) would. A command that
            works inline but could not reach a worker then fails here too, with
            :class:`~commandexec.SerializationError`.

    A command's ``timeout`` cannot interrupt the caller's thread: a command that
    ran longer fails with :class:`~commandexec.CommandTimeout` when it returns.
    """

    kind = "inline"

    def __init__(
        self, *, registry: Registry | None = None, events: EventBus | None = None, strict: bool | str = False
    ) -> None:
        super().__init__(registry=registry, events=events)
        if strict is True:
            strict = "pickle"
        self._codec: Codec | None = get_codec(strict) if strict else None

    @property
    def strict(self) -> str | None:
        """The codec name strict mode round-trips through, or ``None``."""
        return self._codec.name if self._codec is not None else None

    def _submit(self, command: Command) -> Future[Any]:
        if self._shutdown:
            check_not_shutdown(self)
        if self._codec is None and command._options.timeout is None and not self._events._subscriptions:
            ok, value = execute(command, self._registry, self._emitter)
            if not ok and type(value) is KeyboardInterrupt:
                raise value  # Ctrl-C in the caller's own thread belongs to the caller
            return finished_future(ok, value)
        if not self._events._subscriptions:
            return finished_future(*self._run(command))
        future = ObservedFuture(self, command)
        future.set_running_or_notify_cancel()
        ok, value = self._run(command)
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
        return future

    def _run(self, command: Command) -> tuple[bool, Any]:
        """Run *command* with strict-mode codecs and the timeout check."""
        codec = self._codec
        timeout = command._options.timeout
        if codec is not None:
            try:
                command = codec.decode_command(codec.encode_command(command))
            except Exception as exc:
                return False, exc
        start = self._timer.now()
        ok, value = execute(command, self._registry, self._emitter)
        if not ok and type(value) is KeyboardInterrupt:
            raise value
        if timeout is not None and self._timer.now() - start > timeout:
            # Nothing can interrupt the caller's own thread: the outcome is
            # replaced, as it is on every executor, once the command returns.
            return False, timeout_error(command, " (inline: detected when it returned)")
        if ok and codec is not None:
            try:
                value = codec.decode_value(codec.encode_value(value, command))
            except Exception as exc:
                return False, exc
        return ok, value
