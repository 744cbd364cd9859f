"""Every exception commandexec raises, under one root: :class:`CommandExecError`.

Errors that stand for a familiar Python failure also derive from the builtin
(``UnknownCommand`` is a ``LookupError``, ``CommandTimeout`` a ``TimeoutError``),
so code written against the standard library keeps catching them.
"""

from __future__ import annotations

import concurrent.futures
import difflib
from collections.abc import Iterable

__all__ = [
    "AuthenticationError",
    "BrokenExecutor",
    "CascadeLimitExceeded",
    "CommandExecError",
    "CommandTimeout",
    "ConfigError",
    "DuplicateCommand",
    "ExecutorFull",
    "InvalidCommand",
    "ProtocolError",
    "RemoteCommandError",
    "SerializationError",
    "UnknownCommand",
    "WorkerLost",
]


class CommandExecError(Exception):
    """Raised for every failure that commandexec itself detects (the root of the tree)."""


class ConfigError(CommandExecError, ValueError):
    """Raised when a configuration value is missing, misspelt or of the wrong type."""


class InvalidCommand(CommandExecError, ValueError):
    """Raised when a command, its options or its serialised form is malformed."""


class DuplicateCommand(CommandExecError, ValueError):
    """Raised when a key is registered twice without ``replace=True``."""


class UnknownCommand(CommandExecError, LookupError):
    """Raised when a command's key is not in the registry; names close matches."""

    def __init__(self, key: str, known: Iterable[str] = ()) -> None:
        known = sorted(known)
        self.key = key
        self.suggestions = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        if self.suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        elif known:
            shown = ", ".join(repr(k) for k in known[:10])
            hint = f"registered keys: {shown}" + (", ..." if len(known) > 10 else "")
        else:
            hint = "the registry is empty"
        super().__init__(f"unknown command {key!r}; {hint}")

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuild from the message alone so the error pickles across processes; the
        # instance dict travels as state so notes (add_note) and extra attributes survive.
        return (_rebuild_unknown, (self.key, self.args[0], self.suggestions), self.__dict__)


def _rebuild_unknown(key: str, message: str, suggestions: list[str]) -> UnknownCommand:
    error = UnknownCommand.__new__(UnknownCommand)
    Exception.__init__(error, message)
    error.key = key
    error.suggestions = suggestions
    return error


class CommandTimeout(CommandExecError, TimeoutError):
    """Raised when a command runs longer than its ``timeout`` option allows."""


class WorkerLost(CommandExecError):
    """Raised when the worker running a command died; other commands are unaffected."""


class CascadeLimitExceeded(CommandExecError):
    """Raised when follow-up commands nest deeper than the event bus allows."""


class AuthenticationError(CommandExecError):
    """Raised when a remote peer fails the shared-key handshake."""


class ProtocolError(CommandExecError):
    """Raised when a frame or message on the wire is malformed."""


class RemoteCommandError(CommandExecError):
    """Raised for a remote error whose type cannot be rebuilt safely; carries its text."""

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text

    def __reduce__(self) -> tuple[object, ...]:
        # The instance dict travels as state so notes (add_note) survive, as they
        # do for exceptions without a custom __init__.
        return (type(self), (self.type_name, self.message, self.traceback_text), self.__dict__)


class SerializationError(CommandExecError, TypeError):
    """Raised when a command, its arguments or its result cannot cross the transport."""


class ExecutorFull(CommandExecError):
    """Raised when ``submit`` finds the pending-command bound reached and must not wait."""


class BrokenExecutor(CommandExecError, concurrent.futures.BrokenExecutor):
    """Raised when an executor can no longer run commands (e.g. its initializer failed)."""
