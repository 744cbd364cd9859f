"""Codecs: how commands and results cross a process or network boundary.

``pickle`` is what the process executor uses; ``json`` is the remote executor's
default (a registry key and JSON arguments: no code crosses the wire). The
inline executor's ``strict`` mode runs every command through one of them, so
"works inline, fails on workers" shows up in unit tests.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol

from .command import Command
from .errors import InvalidCommand, SerializationError

__all__ = ["CODECS", "Codec", "JsonCodec", "PickleCodec", "get_codec"]


class Codec(Protocol):
    """Turns commands and result values into bytes and back."""

    name: str

    def encode_command(self, command: Command) -> bytes:
        """Return *command* as bytes; raise :class:`SerializationError` if it cannot be."""
        ...

    def decode_command(self, data: bytes) -> Command:
        """Rebuild a command from :meth:`encode_command` output."""
        ...

    def encode_value(self, value: Any, command: Command) -> bytes:
        """Return the result *value* of *command* as bytes."""
        ...

    def decode_value(self, data: bytes) -> Any:
        """Rebuild a value from :meth:`encode_value` output."""
        ...


class PickleCodec:
    """Pickle (highest protocol): what worker processes receive and send back."""

    name = "pickle"

    def encode_command(self, command: Command) -> bytes:
        try:
            return pickle.dumps(command, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(
                f"{command!r} cannot be pickled for a worker process "
                f"({type(exc).__name__}: {exc}); "
                "pass picklable arguments and a module-level function or a registry key"
            ) from exc

    def decode_command(self, data: bytes) -> Command:
        command = pickle.loads(data)
        if not isinstance(command, Command):
            raise InvalidCommand(f"expected a pickled Command, got {type(command).__name__}")
        return command

    def encode_value(self, value: Any, command: Command) -> bytes:
        try:
            return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(
                f"the result of {command!r} cannot be pickled ({type(exc).__name__}: {exc}); "
                "return picklable values from commands that run in worker processes"
            ) from exc

    def decode_value(self, data: bytes) -> Any:
        return pickle.loads(data)


class JsonCodec:
    """Strict JSON: a registry key plus JSON arguments, as the remote executor sends."""

    name = "json"

    def encode_command(self, command: Command) -> bytes:
        try:
            data = command.to_dict()
        except InvalidCommand as exc:
            # A wrapped callable: the advice is in to_dict's message, not "pass JSON values".
            raise SerializationError(f"cannot encode as JSON: {exc}") from exc
        try:
            return _ENCODER.encode(data).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(
                f"{command!r} cannot be encoded as JSON ({exc}); pass JSON values "
                "(str, int, float, bool, None, list, dict) or choose the pickle codec"
            ) from exc

    def decode_command(self, data: bytes) -> Command:
        try:
            decoded = _loads(data)
        except (ValueError, RecursionError) as exc:
            # RecursionError: deeply nested input from the network must not escape as one.
            raise InvalidCommand(f"command is not valid JSON: {exc}") from exc
        return Command.from_dict(decoded)

    def encode_value(self, value: Any, command: Command) -> bytes:
        try:
            return _ENCODER.encode(value).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(
                f"the result of {command!r} cannot be encoded as JSON ({exc}); "
                "return JSON values or choose the pickle codec"
            ) from exc

    def decode_value(self, data: bytes) -> Any:
        return _loads(data)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Module-level coder objects: json.dumps/loads with non-default arguments build a
# new one per call. Strict both ways: NaN and Infinity are refused, not decoded.
_ENCODER = json.JSONEncoder(allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _loads(data: bytes | str) -> Any:
    if isinstance(data, (bytes, bytearray)):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    return _DECODER.decode(data)


CODECS: dict[str, Codec] = {"pickle": PickleCodec(), "json": JsonCodec()}


def get_codec(name: str) -> Codec:
    """Return the codec called *name* (``"pickle"`` or ``"json"``).

    Raises:
        ValueError: for any other name.
    """
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; choose one of {sorted(CODECS)}") from None
