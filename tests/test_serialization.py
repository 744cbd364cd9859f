"""Codecs: commands and values to bytes and back, with errors that say what to do."""

from __future__ import annotations

import datetime
import math
import pickle
import threading
from typing import Any

import pytest

import commandexec as ce
from commandexec.serialization import Codec, JsonCodec, PickleCodec, get_codec
from tests import handlers

CODEC_NAMES = ["pickle", "json"]


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


# -- choosing a codec -----------------------------------------------------------


@pytest.mark.parametrize(("name", "codec_type"), [("pickle", PickleCodec), ("json", JsonCodec)])
def test_get_codec_returns_the_named_codec(name: str, codec_type: type) -> None:
    codec = get_codec(name)

    assert isinstance(codec, codec_type)
    assert codec.name == name


@pytest.mark.parametrize("name", ["JSON", "msgpack", "", "pickle "])
def test_get_codec_rejects_an_unknown_name_listing_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match=r"'json', 'pickle'"):
        get_codec(name)


# -- round trips ----------------------------------------------------------------


def _json_able_commands() -> list[ce.Command]:
    root = ce.Command("upload", "a.png")
    return [
        ce.Command("noop"),
        ce.Command("resize", "a.png", width=64),
        ce.Command("store", [1, 2.5, None, True], {"nested": {"text": "é 中 \u2028"}}, n=-3),
        ce.Command("retry").with_options(timeout=0.5, retries=2, retry_on=["ValueError"]),
        ce.Command("child").caused_by(ce.Command("step").caused_by(root)),
    ]


@pytest.mark.parametrize("name", CODEC_NAMES)
@pytest.mark.parametrize("command", _json_able_commands(), ids=lambda c: c.key)
def test_both_codecs_round_trip_a_json_able_command(name: str, command: ce.Command) -> None:
    # Given
    codec = get_codec(name)

    # When
    data = codec.encode_command(command)
    restored = codec.decode_command(data)

    # Then
    assert isinstance(data, bytes)
    assert restored == command
    assert (restored.id, restored.root_id, restored.depth) == (
        command.id,
        command.root_id,
        command.depth,
    )


@pytest.mark.parametrize("name", CODEC_NAMES)
@pytest.mark.parametrize(
    "value",
    [None, True, 0, -7, 2**70, 1.5, "", "héllo", [], [1, [2, [3]]], {}, {"a": {"b": [None]}}],
)
def test_both_codecs_round_trip_json_values(name: str, value: Any) -> None:
    codec = get_codec(name)

    restored = codec.decode_value(codec.encode_value(value, ce.Command("k")))

    assert restored == value
    assert type(restored) is type(value)


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1, 2},
        b"\x00\xff",
        datetime.date(2024, 1, 2),
        handlers.HandlerError("kept"),
        handlers.Multiplier(3),
        math.nan,
    ],
    ids=["tuple", "set", "bytes", "date", "exception", "object", "nan"],
)
def test_pickle_round_trips_values_that_json_cannot(value: Any) -> None:
    codec = get_codec("pickle")

    restored = codec.decode_value(codec.encode_value(value, ce.Command("k")))

    assert type(restored) is type(value)
    if isinstance(value, handlers.HandlerError):
        assert restored.args == value.args
    elif isinstance(value, handlers.Multiplier):
        assert restored.factor == 3
    elif isinstance(value, float):
        assert math.isnan(restored)
    else:
        assert restored == value


def test_pickle_round_trips_a_command_wrapping_a_module_level_function() -> None:
    codec = get_codec("pickle")
    command = ce.Command(handlers.add, 1, b=2)

    restored = codec.decode_command(codec.encode_command(command))

    assert restored == command
    assert restored.fn is handlers.add


def test_json_turns_tuples_into_lists() -> None:
    codec = get_codec("json")
    command = ce.Command("k", (1, 2), pair=(3, 4))

    restored = codec.decode_command(codec.encode_command(command))

    assert restored.args == ([1, 2],)
    assert restored.kwargs["pair"] == [3, 4]


# -- pickle failures ------------------------------------------------------------


def test_pickle_refuses_an_unpicklable_argument_naming_the_command_and_the_fix() -> None:
    # Given
    command = ce.Command("resize", lambda: None)

    # When
    with pytest.raises(ce.SerializationError) as caught:
        get_codec("pickle").encode_command(command)

    # Then
    message = str(caught.value)
    assert command.id in message
    assert "'resize'" in message
    assert "picklable" in message
    assert caught.value.__cause__ is not None


def test_pickle_refuses_a_command_wrapping_a_local_function() -> None:
    def local() -> None: ...

    command = ce.Command(local)

    with pytest.raises(ce.SerializationError, match="module-level function or a registry key"):
        get_codec("pickle").encode_command(command)


def test_pickle_refuses_an_unpicklable_result_naming_the_command() -> None:
    command = ce.Command("make_lock")

    with pytest.raises(ce.SerializationError) as caught:
        get_codec("pickle").encode_value(_a_lock_in_a_dict(), command)

    assert command.id in str(caught.value)
    assert "return picklable values" in str(caught.value)


def _a_lock_in_a_dict() -> Any:
    return {"lock": threading.Lock()}


def test_pickle_decode_command_rejects_a_pickled_non_command() -> None:
    data = pickle.dumps({"key": "resize"})

    with pytest.raises(ce.InvalidCommand, match="dict"):
        get_codec("pickle").decode_command(data)


# -- json failures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((object(),), {}),
        (({1, 2},), {}),
        ((b"bytes",), {}),
        ((math.nan,), {}),
        ((), {"limit": math.inf}),
        ((_deep(100_000),), {}),
        ((_circular(),), {}),
        ((handlers.HandlerError("x"),), {}),
    ],
    ids=["object", "set", "bytes", "nan", "inf", "deep", "circular", "exception"],
)
def test_json_refuses_non_json_arguments_naming_the_command_and_the_fix(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    # Given
    command = ce.Command("store", *args, **kwargs)

    # When
    with pytest.raises(ce.SerializationError) as caught:
        get_codec("json").encode_command(command)

    # Then
    message = str(caught.value)
    assert command.id in message
    assert "'store'" in message
    assert "pickle codec" in message


def test_json_refuses_a_wrapped_callable_saying_to_register_it() -> None:
    command = ce.Command(handlers.add, 1)

    with pytest.raises(ce.SerializationError) as caught:
        get_codec("json").encode_command(command)

    message = str(caught.value)
    assert "tests.handlers:add" in message
    assert "register the callable" in message
    assert isinstance(caught.value.__cause__, ce.InvalidCommand)


@pytest.mark.parametrize(
    "value",
    [object(), (b"x",), math.nan, -math.inf, _deep(100_000), _circular()],
    ids=["object", "bytes", "nan", "inf", "deep", "circular"],
)
def test_json_refuses_a_non_json_result_naming_the_command(value: Any) -> None:
    command = ce.Command("compute")

    with pytest.raises(ce.SerializationError) as caught:
        get_codec("json").encode_value(value, command)

    assert command.id in str(caught.value)
    assert "return JSON values" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe\xfa",
        b"\x80abc",
        b'{"key": "resize"',
        b"[1, 2]",
        b'"resize"',
        b"null",
        b"[" * 100_000,
        b'{"key": "resize", "args": [NaN]}',
        b'{"key": "resize", "kwargs": {"limit": Infinity}}',
    ],
    ids=[
        "empty",
        "text",
        "bad-utf16",
        "bad-utf8",
        "truncated",
        "list",
        "string",
        "null",
        "deeply-nested",
        "nan",
        "infinity",
    ],
)
def test_json_decoding_rejects_bytes_that_are_not_a_command(data: bytes) -> None:
    with pytest.raises(ce.InvalidCommand):
        get_codec("json").decode_command(data)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"key": 5}', "'key'"),
        (b'{"args": []}', "'key'"),
        (b'{"key": "k", "args": "a.png"}', "'args'"),
        (b'{"key": "k", "kwargs": [1]}', "'kwargs'"),
        (b'{"key": "k", "id": 3}', "'id'"),
        (b'{"key": "k", "options": {"timout": 5}}', "'timeout'"),
        (b'{"key": "k", "options": {"retries": -2}}', "retries"),
        (b'{"key": "k", "depth": 2}', "'depth'"),
        (b'{"key": "k", "code": "import os"}', "'code'"),
    ],
)
def test_json_decoding_names_the_bad_field(data: bytes, field: str) -> None:
    with pytest.raises(ce.InvalidCommand) as caught:
        get_codec("json").decode_command(data)

    assert field in str(caught.value)


def test_json_decoding_accepts_what_another_json_writer_produced() -> None:
    # Given a command written by hand, as a non-Python client would
    data = '{"kwargs": {"width": 64}, "key": "resize", "args": ["ä.png"]}'.encode("utf-16")

    # When
    command = get_codec("json").decode_command(data)

    # Then
    assert (command.key, command.args, dict(command.kwargs)) == ("resize", ("ä.png",), {"width": 64})


def test_json_value_decoding_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        get_codec("json").decode_value(b"[NaN]")


def test_serialization_error_is_a_type_error_and_a_command_exec_error() -> None:
    assert issubclass(ce.SerializationError, TypeError)
    assert issubclass(ce.SerializationError, ce.CommandExecError)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_every_codec_provides_the_codec_protocol(name: str) -> None:
    codec: Codec = get_codec(name)

    for method in ("encode_command", "decode_command", "encode_value", "decode_value"):
        assert callable(getattr(codec, method))
